package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// apiTokenTouchInterval is how stale LastUsedAt may get before
// Check writes it again. Writing on every call would cost a bbolt
// commit and fsync per API request; a minute is plenty to see which tokens
// are in use.
const apiTokenTouchInterval = time.Minute

// apiTokenNameMax is the longest API token name, enough for
// "ci.deploy-notifier-production" and short enough for an audit line.
const apiTokenNameMax = 64

// APITokenStore holds the bearer tokens of the bot's HTTP API; get it from
// [DB.APITokens].
type APITokenStore struct{ db *DB }

// APIToken is a bearer token for the bot's HTTP API (POST /api/v1/notify,
// GET /api/v1/audit), as an OAuth resource server sees one: a name, the
// scopes it grants, and when it was made, used and revoked. The token
// itself is shown once by Create; the file holds only its SHA-256.
// Revoked tokens are kept, so their names stay taken and audit entries that
// name them stay unambiguous.
type APIToken struct {
	Name       string   // 1–64 of [a-z0-9._-]; unique, even after revocation
	Scopes     []string // what the token may do, e.g. "notify", "audit:read"; checking them is the caller's job
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used; updated at most once a minute
	RevokedAt  time.Time
	Revoked    bool
}

// Create issues a token named name granting scopes and returns it
// with its record. The token is "c66bot_" followed by 32 random bytes in
// base64url without padding; it is returned only here, and the file holds
// its SHA-256. The name must be 1–64 characters of [a-z0-9._-] and not used
// by any token, revoked or not (an error wrapping ErrExists). The audit
// entries, if any, commit with the token or neither does.
func (s *APITokenStore) Create(ctx context.Context, name string, scopes []string, audit ...AuditEntry) (token string, t APIToken, err error) {
	if err := validAPITokenName(name); err != nil {
		return "", APIToken{}, err
	}
	token, hash, err := NewAPIToken()
	if err != nil {
		return "", APIToken{}, fmt.Errorf("storage: create API token %q: %w", name, err)
	}
	// Cloned so a caller reusing its slice cannot change what was saved.
	t = APIToken{Name: name, Scopes: slices.Clone(scopes), CreatedAt: s.db.now()}
	v, err := encodeAPIToken(t, hash)
	if err != nil {
		return "", APIToken{}, fmt.Errorf("storage: create API token %q: %w", name, err)
	}
	key := []byte(name)
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		tokens, hashes, err := apiTokenBuckets(tx)
		if err != nil {
			return err
		}
		if tokens.Get(key) != nil {
			return ErrExists
		}
		if err := tokens.Put(key, v); err != nil {
			return err
		}
		return hashes.Put(hash, key)
	})
	if err != nil {
		return "", APIToken{}, fmt.Errorf("storage: create API token %q: %w", name, err)
	}
	return token, t, nil
}

// List returns every API token's record, revoked ones included, sorted
// by name.
func (s *APITokenStore) List(ctx context.Context) ([]APIToken, error) {
	var list []APIToken
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		list = nil
		tokens, err := bucket(tx, bucketAPITokens)
		if err != nil {
			return err
		}
		// bbolt keeps keys sorted, so this is name order.
		return tokens.ForEach(func(k, v []byte) error {
			t, _, err := decodeAPIToken(string(k), v)
			if err != nil {
				return err
			}
			list = append(list, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list API tokens: %w", err)
	}
	return list, nil
}

// Revoke revokes the token named name and returns its record; an
// error wrapping ErrNotFound means there is none. Revoking a revoked token
// changes nothing and is not an error. The record stays, so the name stays
// taken and Check can say ErrRevoked rather than ErrNotFound. The
// audit entries, if any, commit with the revocation; revoking a revoked
// token appends none.
func (s *APITokenStore) Revoke(ctx context.Context, name string, audit ...AuditEntry) (APIToken, error) {
	key := []byte(name)
	now := s.db.now()
	var t APIToken
	err := s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		t = APIToken{}
		tokens, err := bucket(tx, bucketAPITokens)
		if err != nil {
			return err
		}
		v := tokens.Get(key)
		if v == nil {
			return ErrNotFound
		}
		cur, hash, err := decodeAPIToken(name, v)
		if err != nil {
			return err
		}
		t = cur
		if cur.Revoked {
			return errNoChanges
		}
		t.Revoked, t.RevokedAt = true, now
		nv, err := encodeAPIToken(t, hash)
		if err != nil {
			return err
		}
		return tokens.Put(key, nv)
	})
	if err != nil && !errors.Is(err, errNoChanges) {
		return APIToken{}, fmt.Errorf("storage: revoke API token %q: %w", name, err)
	}
	return t, nil
}

// Check returns the record of the token presented, found by its
// SHA-256. It returns an error wrapping ErrNotFound for a token that is
// malformed or unknown, and ErrRevoked, together with the record, for a
// revoked one. Errors never include the token.
//
// A valid token's LastUsedAt is set to the store's clock when it is more
// than a minute old, so most calls are a read transaction only and a busy
// API client does not cost an fsync per request.
func (s *APITokenStore) Check(ctx context.Context, token string) (APIToken, error) {
	hash, ok := apiTokenKey(token)
	if !ok {
		return APIToken{}, fmt.Errorf("storage: check API token: %w", ErrNotFound)
	}
	var t APIToken
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		t, err = lookupAPIToken(tx, hash)
		return err
	})
	if err != nil {
		return APIToken{}, fmt.Errorf("storage: check API token: %w", err)
	}
	if t.Revoked {
		return t, fmt.Errorf("storage: check API token %q: %w", t.Name, ErrRevoked)
	}
	now := s.db.now()
	if !apiTokenStale(t, now) {
		return t, nil
	}

	// Looked up again inside the write transaction: the token may have been
	// revoked, or touched by a concurrent call, since the read.
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		cur, err := lookupAPIToken(tx, hash)
		if err != nil {
			return err
		}
		t = cur
		if cur.Revoked || !apiTokenStale(cur, now) {
			return errNoChanges
		}
		t.LastUsedAt = now
		v, err := encodeAPIToken(t, hash)
		if err != nil {
			return err
		}
		tokens, err := bucket(tx, bucketAPITokens)
		if err != nil {
			return err
		}
		return tokens.Put([]byte(t.Name), v)
	})
	if err != nil && !errors.Is(err, errNoChanges) {
		return APIToken{}, fmt.Errorf("storage: check API token %q: %w", t.Name, err)
	}
	if t.Revoked {
		return t, fmt.Errorf("storage: check API token %q: %w", t.Name, ErrRevoked)
	}
	return t, nil
}

// lookupAPIToken returns the record whose token hashes to hash, or
// ErrNotFound.
func lookupAPIToken(tx *bbolt.Tx, hash []byte) (APIToken, error) {
	tokens, hashes, err := apiTokenBuckets(tx)
	if err != nil {
		return APIToken{}, err
	}
	name, v, err := follow(hash, hashes, tokens)
	if err != nil {
		return APIToken{}, err
	}
	t, stored, err := decodeAPIToken(string(name), v)
	if err != nil {
		return APIToken{}, err
	}
	// The lookup above was by hash, so its timing says nothing about the
	// token; comparing against the record's own hash catches an index entry
	// the record does not vouch for, and doing it in constant time is
	// defence in depth.
	if subtle.ConstantTimeCompare(stored, hash) != 1 {
		return APIToken{}, ErrNotFound
	}
	return t, nil
}

// apiTokenStale reports whether t's LastUsedAt is due for a write at now.
func apiTokenStale(t APIToken, now time.Time) bool {
	return t.LastUsedAt.IsZero() || now.Sub(t.LastUsedAt) >= apiTokenTouchInterval
}

func apiTokenBuckets(tx *bbolt.Tx) (tokens, hashes *bbolt.Bucket, err error) {
	if tokens, err = bucket(tx, bucketAPITokens); err != nil {
		return nil, nil, err
	}
	if hashes, err = bucket(tx, bucketAPITokenHashes); err != nil {
		return nil, nil, err
	}
	return tokens, hashes, nil
}

// validAPITokenName checks the 1–64 of [a-z0-9._-] rule. The narrow
// alphabet keeps names safe to print in logs, audit lines and the CLI
// without quoting, and lower case only means two names cannot differ by
// case alone.
func validAPITokenName(name string) error {
	if name == "" || len(name) > apiTokenNameMax {
		return fmt.Errorf("storage: invalid API token name %q: want 1 to %d characters", name, apiTokenNameMax)
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("storage: invalid API token name %q: want only a-z, 0-9, '.', '_' and '-'", name)
		}
	}
	return nil
}
