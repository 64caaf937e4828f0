package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/c66bot/c66bot/storage"
)

// LoginStore holds the OAuth logins started but not finished, one per
// person, each sealed with the SHA-256 of its state as associated data;
// get it from [DB.Logins]. It behaves as storage.LoginStore does.
type LoginStore struct{ db *DB }

// Create records p and returns the OAuth state for the authorization URL;
// only its SHA-256 is stored. CreatedAt is the store's clock; ExpiresAt
// defaults to CreatedAt+storage.StateTTL and may be shortened, not
// lengthened. The person's previous pending login, if any, is replaced.
func (s *LoginStore) Create(ctx context.Context, p storage.PendingLogin) (string, error) {
	p, err := storage.NewPendingLogin(p, s.db.now())
	if err != nil {
		return "", err
	}
	state, hash, err := storage.NewLoginState()
	if err != nil {
		return "", fmt.Errorf("postgres: create login state: %w", err)
	}
	sealed, err := sealRecord(s.db.sealer, storage.EncodeLogin, p, hash)
	if err != nil {
		return "", fmt.Errorf("postgres: create login state for %s: %w", p.Identity, err)
	}
	err = s.db.write(ctx, nil, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO login_states (state_sha256, identity, sealed) VALUES ($1, $2, $3)
			ON CONFLICT (identity) DO UPDATE SET state_sha256 = excluded.state_sha256, sealed = excluded.sealed`,
			hash, p.Identity.String(), sealed)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("postgres: create login state for %s: %w", p.Identity, err)
	}
	return state, nil
}

// Consume finishes the redirect flow: it deletes the login of state and
// returns it, once. storage.ErrStateInvalid for a state that is malformed,
// unknown, used or does not open; storage.ErrStateExpired, with the login
// minus its verifier, for one past its expiry, deleted all the same.
func (s *LoginStore) Consume(ctx context.Context, state string) (storage.PendingLogin, error) {
	hash, ok := storage.LoginStateHash(state)
	if !ok {
		return storage.PendingLogin{}, storage.ErrStateInvalid
	}
	return s.consume(ctx, storage.Identity{}, `DELETE FROM login_states WHERE state_sha256 = $1 RETURNING state_sha256, sealed`, hash)
}

// ConsumeFor finishes the out-of-band flow: it consumes id's pending login.
// Errors are as for Consume; storage.ErrStateInvalid means id has none.
func (s *LoginStore) ConsumeFor(ctx context.Context, id storage.Identity) (storage.PendingLogin, error) {
	if err := storage.CheckIdentity(id); err != nil {
		return storage.PendingLogin{}, err
	}
	return s.consume(ctx, id, `DELETE FROM login_states WHERE identity = $1 RETURNING state_sha256, sealed`, id.String())
}

// consume deletes the row del finds, whatever the verdict, since a state is
// spent once presented. owner, when valid, must be the identity sealed in
// the record, as in storage.LoginStore.
func (s *LoginStore) consume(ctx context.Context, owner storage.Identity, del string, arg any) (storage.PendingLogin, error) {
	var hash, sealed []byte
	err := s.db.write(ctx, nil, func(q querier) error {
		return noRows(q.QueryRow(ctx, del, arg).Scan(&hash, &sealed))
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.PendingLogin{}, storage.ErrStateInvalid
	}
	if err != nil {
		return storage.PendingLogin{}, fmt.Errorf("postgres: consume login state: %w", err)
	}
	return s.verdict(hash, sealed, owner)
}

// verdict opens the login sealed under hash and judges it at the store's
// clock, as Consume and Peek report it; owner, when valid, must be whose
// it is.
func (s *LoginStore) verdict(hash, sealed []byte, owner storage.Identity) (storage.PendingLogin, error) {
	p, err := openRecord(s.db.sealer, sealed, hash, storage.DecodeLogin)
	if err != nil {
		return storage.PendingLogin{}, fmt.Errorf("%w: %w", storage.ErrStateInvalid, err)
	}
	if owner.Valid() && p.Identity != owner {
		return storage.PendingLogin{}, storage.ErrStateInvalid
	}
	return p, storage.LoginVerdict(&p, s.db.now())
}

// Peek returns the pending login of state without consuming it, with the
// errors of Consume.
func (s *LoginStore) Peek(ctx context.Context, state string) (storage.PendingLogin, error) {
	hash, ok := storage.LoginStateHash(state)
	if !ok {
		return storage.PendingLogin{}, storage.ErrStateInvalid
	}
	var sealed []byte
	err := s.db.view(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT sealed FROM login_states WHERE state_sha256 = $1`, hash).Scan(&sealed))
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.PendingLogin{}, storage.ErrStateInvalid
	}
	if err != nil {
		return storage.PendingLogin{}, fmt.Errorf("postgres: peek login state: %w", err)
	}
	return s.verdict(hash, sealed, storage.Identity{})
}
