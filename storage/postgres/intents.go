package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// IntentStore holds the pending confirmations, each sealed with the
// SHA-256 of its id as associated data; get it from [DB.Intents]. It
// behaves as storage.IntentStore does; errors never include the id.
type IntentStore struct{ db *DB }

// Create stores in and returns it with ID, CreatedAt and ExpiresAt set: a
// zero ExpiresAt means storage.IntentTTL from now, a later one is capped at
// storage.MaxIntentTTL. It requires Kind and a valid Requester.
func (s *IntentStore) Create(ctx context.Context, in storage.Intent) (storage.Intent, error) {
	if in.Kind == "" {
		return storage.Intent{}, errors.New("postgres: create intent: empty Kind")
	}
	if err := storage.CheckIdentity(in.Requester); err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: create intent: %w", err)
	}
	id, hash, err := storage.NewIntentID()
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: create intent: %w", err)
	}
	in.ID = id
	in.CreatedAt = s.db.now()
	if in.ExpiresAt.IsZero() {
		in.ExpiresAt = in.CreatedAt.Add(storage.IntentTTL)
	} else if limit := in.CreatedAt.Add(storage.MaxIntentTTL); in.ExpiresAt.After(limit) {
		in.ExpiresAt = limit
	}
	sealed, err := sealRecord(s.db.sealer, storage.EncodeIntent, in, hash)
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: create %s intent for %s: %w", in.Kind, in.Requester, err)
	}
	err = s.db.update(ctx, nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO intents (id_sha256, sealed) VALUES ($1, $2)`, hash, sealed)
		return err
	})
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: create %s intent for %s: %w", in.Kind, in.Requester, err)
	}
	return in, nil
}

// Get returns the intent with id without spending it: an error wrapping
// storage.ErrNotFound for one malformed, unknown, spent or not opening,
// and storage.ErrIntentExpired, with the intent, for one past ExpiresAt.
func (s *IntentStore) Get(ctx context.Context, id string) (storage.Intent, error) {
	hash, ok := storage.IntentIDHash(id)
	if !ok {
		return storage.Intent{}, fmt.Errorf("postgres: get intent: %w", storage.ErrNotFound)
	}
	var sealed []byte
	err := s.db.view(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT sealed FROM intents WHERE id_sha256 = $1`, hash).Scan(&sealed))
	})
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: get intent: %w", err)
	}
	in, err := s.db.openIntent(id, sealed, hash)
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: get intent: %w: %w", storage.ErrNotFound, err)
	}
	if !s.db.now().Before(in.ExpiresAt) {
		return in, fmt.Errorf("postgres: get intent: %w", storage.ErrIntentExpired)
	}
	return in, nil
}

// Consume spends the intent with id, once: of concurrent calls, one gets
// it and the others storage.ErrNotFound. An expired one is deleted and
// returned with storage.ErrIntentExpired; one that does not open is
// deleted (storage.ErrNotFound). When check refuses, the intent is kept and
// returned with check's error, unwrapped. check runs inside the
// transaction, holding the intent's row.
func (s *IntentStore) Consume(ctx context.Context, id string, check func(storage.Intent) error) (storage.Intent, error) {
	now := s.db.now()
	return s.inTx(ctx, "consume", id, func(tx pgx.Tx, hash []byte, got storage.Intent, openErr error) (intentOutcome, error) {
		var out intentOutcome
		switch {
		case openErr != nil:
			out.verdict = fmt.Errorf("%w: %w", storage.ErrNotFound, openErr)
		case !now.Before(got.ExpiresAt):
			out.in, out.verdict = got, storage.ErrIntentExpired
		case check != nil:
			if err := check(got); err != nil {
				// Kept: another person's click must not use up the
				// requester's confirmation.
				return intentOutcome{in: got, verdict: err, refusing: true}, errNoChanges
			}
			out.in = got
		default:
			out.in = got
		}
		_, err := tx.Exec(ctx, `DELETE FROM intents WHERE id_sha256 = $1`, hash)
		return out, err
	})
}

// Update applies fn to the unexpired intent with id and saves the result
// in one transaction, so approvals collected from concurrent clicks all
// land. Errors are as for Get; fn's error comes back unwrapped, with the
// intent as stored. fn may not change ID, Kind, Requester or CreatedAt, and
// may bring ExpiresAt forward but not push it back.
func (s *IntentStore) Update(ctx context.Context, id string, fn func(*storage.Intent) error) (storage.Intent, error) {
	if fn == nil {
		return storage.Intent{}, errors.New("postgres: update intent: nil fn")
	}
	now := s.db.now()
	return s.inTx(ctx, "update", id, func(tx pgx.Tx, hash []byte, got storage.Intent, openErr error) (intentOutcome, error) {
		if openErr != nil {
			return intentOutcome{}, fmt.Errorf("%w: %w", storage.ErrNotFound, openErr)
		}
		if !now.Before(got.ExpiresAt) {
			return intentOutcome{in: got, verdict: storage.ErrIntentExpired}, errNoChanges
		}
		next := got
		next.Params = maps.Clone(got.Params)
		if err := fn(&next); err != nil {
			return intentOutcome{in: got, verdict: err, refusing: true}, errNoChanges
		}
		if next.ID != got.ID || next.Kind != got.Kind || next.Requester != got.Requester || !next.CreatedAt.Equal(got.CreatedAt) {
			return intentOutcome{}, errors.New("fn changed the intent's ID, Kind, Requester or CreatedAt")
		}
		if next.ExpiresAt.After(got.ExpiresAt) {
			next.ExpiresAt = got.ExpiresAt
		}
		sealed, err := sealRecord(s.db.sealer, storage.EncodeIntent, next, hash)
		if err != nil {
			return intentOutcome{}, err
		}
		_, err = tx.Exec(ctx, `UPDATE intents SET sealed = $2 WHERE id_sha256 = $1`, hash, sealed)
		return intentOutcome{in: next}, err
	})
}

// intentOutcome is what a step of inTx decided.
type intentOutcome struct {
	in      storage.Intent
	verdict error // for the caller, wrapped with the operation's name
	// refusing marks verdict as check's or fn's own error, which goes out
	// bare, with the intent as stored.
	refusing bool
}

// inTx is the one transaction behind Consume and Update: it locks and
// reads the intent with id and hands it to step with the error of
// unsealing it, or fails with storage.ErrNotFound when there is none.
// step returns the outcome and its error, errNoChanges to roll back.
func (s *IntentStore) inTx(ctx context.Context, op, id string, step func(tx pgx.Tx, hash []byte, got storage.Intent, openErr error) (intentOutcome, error)) (storage.Intent, error) {
	hash, ok := storage.IntentIDHash(id)
	if !ok {
		return storage.Intent{}, fmt.Errorf("postgres: %s intent: %w", op, storage.ErrNotFound)
	}
	var out intentOutcome
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		out = intentOutcome{}
		var sealed []byte
		if err := tx.QueryRow(ctx, `SELECT sealed FROM intents WHERE id_sha256 = $1 FOR UPDATE`, hash).Scan(&sealed); err != nil {
			return noRows(err)
		}
		got, openErr := s.db.openIntent(id, sealed, hash)
		var err error
		out, err = step(tx, hash, got, openErr)
		return err
	})
	switch {
	case out.refusing:
		return out.in, out.verdict
	case err != nil && !errors.Is(err, errNoChanges):
		return storage.Intent{}, fmt.Errorf("postgres: %s intent: %w", op, err)
	case out.verdict != nil:
		return out.in, fmt.Errorf("postgres: %s intent: %w", op, out.verdict)
	}
	return out.in, nil
}

// openIntent unseals an intent stored under hash; id is only copied into
// the result.
func (d *DB) openIntent(id string, sealed, hash []byte) (storage.Intent, error) {
	return openRecord(d.sealer, sealed, hash, func(b []byte) (storage.Intent, error) { return storage.DecodeIntent(id, b) })
}
