package postgres

import (
	"context"
	"errors"
	"fmt"

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
	in, err := storage.NewIntent(in, s.db.now())
	if err != nil {
		return storage.Intent{}, err
	}
	id, hash, err := storage.NewIntentID()
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: create intent: %w", err)
	}
	in.ID = id
	sealed, err := sealRecord(s.db.sealer, storage.EncodeIntent, in, hash)
	if err != nil {
		return storage.Intent{}, fmt.Errorf("postgres: create %s intent for %s: %w", in.Kind, in.Requester, err)
	}
	err = s.db.write(ctx, nil, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO intents (id_sha256, sealed) VALUES ($1, $2)`, hash, sealed)
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
	return s.inTx(ctx, "consume", id, func(got storage.Intent, openErr error) storage.IntentOutcome {
		return storage.ConsumeIntent(got, openErr, now, check)
	}, func(tx pgx.Tx, hash []byte, _ storage.Intent) error {
		_, err := tx.Exec(ctx, `DELETE FROM intents WHERE id_sha256 = $1`, hash)
		return err
	})
}

// Update applies fn to the unexpired intent with id and saves the result
// in one transaction, so approvals collected from concurrent clicks all
// land. Errors are as for Get; fn's error comes back unwrapped, with the
// intent as stored. fn may not change ID, Kind, Requester or CreatedAt, and
// may bring ExpiresAt forward but not push it back. fn runs inside the
// transaction, holding the intent's row.
func (s *IntentStore) Update(ctx context.Context, id string, fn func(*storage.Intent) error) (storage.Intent, error) {
	if fn == nil {
		return storage.Intent{}, errors.New("postgres: update intent: nil fn")
	}
	now := s.db.now()
	return s.inTx(ctx, "update", id, func(got storage.Intent, openErr error) storage.IntentOutcome {
		return storage.UpdateIntent(got, openErr, now, fn)
	}, func(tx pgx.Tx, hash []byte, next storage.Intent) error {
		sealed, err := sealRecord(s.db.sealer, storage.EncodeIntent, next, hash)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE intents SET sealed = $2 WHERE id_sha256 = $1`, hash, sealed)
		return err
	})
}

// inTx is the one transaction behind Consume and Update: it locks and
// reads the intent with id, or fails with storage.ErrNotFound when there
// is none, has decide rule on it (with the error of unsealing it), and
// carries the outcome out with write.
func (s *IntentStore) inTx(ctx context.Context, op, id string, decide func(got storage.Intent, openErr error) storage.IntentOutcome, write func(tx pgx.Tx, hash []byte, in storage.Intent) error) (storage.Intent, error) {
	hash, ok := storage.IntentIDHash(id)
	if !ok {
		return storage.Intent{}, fmt.Errorf("postgres: %s intent: %w", op, storage.ErrNotFound)
	}
	var out storage.IntentOutcome
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		out = storage.IntentOutcome{}
		var sealed []byte
		if err := tx.QueryRow(ctx, `SELECT sealed FROM intents WHERE id_sha256 = $1 FOR UPDATE`, hash).Scan(&sealed); err != nil {
			return noRows(err)
		}
		got, openErr := s.db.openIntent(id, sealed, hash)
		if out = decide(got, openErr); !out.Write {
			return nil
		}
		return write(tx, hash, out.Intent)
	})
	return out.Result(op, err)
}

// openIntent unseals an intent stored under hash; id is only copied into
// the result.
func (d *DB) openIntent(id string, sealed, hash []byte) (storage.Intent, error) {
	return openRecord(d.sealer, sealed, hash, func(b []byte) (storage.Intent, error) { return storage.DecodeIntent(id, b) })
}
