package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// APITokenStore holds the bearer tokens of the bot's HTTP API, plain
// records holding the token's SHA-256, never the token; get it from
// [DB.APITokens]. It behaves as storage.APITokenStore does.
type APITokenStore struct{ db *DB }

// Create issues a token named name granting scopes and returns it, once,
// with its record. The name must be 1–64 of [a-z0-9._-] and not taken by
// any token, revoked or not (an error wrapping storage.ErrExists). The
// audit entries, if any, commit with the token.
func (s *APITokenStore) Create(ctx context.Context, name string, scopes []string, audit ...storage.AuditEntry) (token string, t storage.APIToken, err error) {
	if err := storage.CheckAPITokenName(name); err != nil {
		return "", storage.APIToken{}, err
	}
	token, hash, err := storage.NewAPIToken()
	if err != nil {
		return "", storage.APIToken{}, fmt.Errorf("postgres: create API token %q: %w", name, err)
	}
	t = storage.APIToken{Name: name, Scopes: slices.Clone(scopes), CreatedAt: s.db.now()}
	v, err := storage.EncodeAPIToken(t, hash)
	if err != nil {
		return "", storage.APIToken{}, fmt.Errorf("postgres: create API token %q: %w", name, err)
	}
	err = s.db.write(ctx, audit, func(q querier) error {
		err := changed(q.Exec(ctx, `INSERT INTO api_tokens (name, sha256, record) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, name, hash, v))
		if errors.Is(err, errNoChanges) {
			return storage.ErrExists
		}
		return err
	})
	if err != nil {
		return "", storage.APIToken{}, fmt.Errorf("postgres: create API token %q: %w", name, err)
	}
	return token, t, nil
}

// List returns every API token's record, revoked ones included, sorted by
// name.
func (s *APITokenStore) List(ctx context.Context) ([]storage.APIToken, error) {
	var list []storage.APIToken
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT name, record FROM api_tokens ORDER BY name`)
		if err != nil {
			return err
		}
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.APIToken, error) {
			t, _, err := scanAPIToken(r)
			return t, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list API tokens: %w", err)
	}
	return list, nil
}

// Revoke revokes the token named name and returns its record; an error
// wrapping storage.ErrNotFound means there is none. Revoking a revoked
// token changes nothing, appends no audit entry and is not an error.
func (s *APITokenStore) Revoke(ctx context.Context, name string, audit ...storage.AuditEntry) (storage.APIToken, error) {
	if storage.CheckAPITokenName(name) != nil {
		// No token has such a name (and PostgreSQL's text could not hold
		// every one).
		return storage.APIToken{}, fmt.Errorf("postgres: revoke API token %q: %w", name, storage.ErrNotFound)
	}
	now := s.db.now()
	var t storage.APIToken
	err := s.db.update(ctx, audit, func(tx pgx.Tx) error {
		cur, hash, err := scanAPIToken(tx.QueryRow(ctx, `SELECT name, record FROM api_tokens WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return noRows(err)
		}
		t = cur
		if cur.Revoked {
			return errNoChanges
		}
		t.Revoked, t.RevokedAt = true, now
		return saveAPIToken(ctx, tx, t, hash)
	})
	if err != nil && !errors.Is(err, errNoChanges) {
		return storage.APIToken{}, fmt.Errorf("postgres: revoke API token %q: %w", name, err)
	}
	return t, nil
}

// Check returns the record of the token presented, found by its SHA-256:
// an error wrapping storage.ErrNotFound for a token malformed or unknown,
// and storage.ErrRevoked, with the record, for a revoked one. LastUsedAt
// is written when more than a minute old, so most calls only read.
func (s *APITokenStore) Check(ctx context.Context, token string) (storage.APIToken, error) {
	hash, ok := storage.APITokenHash(token)
	if !ok {
		return storage.APIToken{}, fmt.Errorf("postgres: check API token: %w", storage.ErrNotFound)
	}
	const lookup = `SELECT name, record FROM api_tokens WHERE sha256 = $1`
	var t storage.APIToken
	err := s.db.view(ctx, func(q querier) error {
		var err error
		t, err = lookupAPIToken(q.QueryRow(ctx, lookup, hash), hash)
		return err
	})
	if err != nil {
		return storage.APIToken{}, fmt.Errorf("postgres: check API token: %w", err)
	}
	now := s.db.now()
	if !t.Revoked && storage.APITokenStale(t, now) {
		// Looked up again, locked: the token may have been revoked, or
		// touched by a concurrent call, since the read.
		err = s.db.update(ctx, nil, func(tx pgx.Tx) error {
			cur, err := lookupAPIToken(tx.QueryRow(ctx, lookup+` FOR UPDATE`, hash), hash)
			if err != nil {
				return err
			}
			t = cur
			if cur.Revoked || !storage.APITokenStale(cur, now) {
				return nil
			}
			t.LastUsedAt = now
			return saveAPIToken(ctx, tx, t, hash)
		})
		if err != nil {
			return storage.APIToken{}, fmt.Errorf("postgres: check API token %q: %w", t.Name, err)
		}
	}
	if t.Revoked {
		return t, fmt.Errorf("postgres: check API token %q: %w", t.Name, storage.ErrRevoked)
	}
	return t, nil
}

// lookupAPIToken reads the record a lookup by hash found, which must
// vouch for the hash itself (compared in constant time, as defence in
// depth; the lookup by hash says nothing about the token).
func lookupAPIToken(r pgx.Row, hash []byte) (storage.APIToken, error) {
	t, stored, err := scanAPIToken(r)
	if err != nil {
		return storage.APIToken{}, noRows(err)
	}
	if subtle.ConstantTimeCompare(stored, hash) != 1 {
		return storage.APIToken{}, storage.ErrNotFound
	}
	return t, nil
}

func scanAPIToken(r pgx.Row) (storage.APIToken, []byte, error) {
	var (
		name string
		rec  []byte
	)
	if err := r.Scan(&name, &rec); err != nil {
		return storage.APIToken{}, nil, err
	}
	return storage.DecodeAPIToken(name, rec)
}

func saveAPIToken(ctx context.Context, tx pgx.Tx, t storage.APIToken, hash []byte) error {
	v, err := storage.EncodeAPIToken(t, hash)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE api_tokens SET record = $2 WHERE name = $1`, t.Name, v)
	return err
}
