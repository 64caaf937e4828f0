package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// OutboxStore holds the events accepted but not yet fully handled, plain
// records; get it from [DB.Outbox]. It behaves as storage.OutboxStore
// does: it reads, it does not claim; which replica drains it is decided
// with a lease.
type OutboxStore struct{ db *DB }

// Enqueue stores a new item of kind with payload, due at once, and returns
// it with ID, At and NextAttempt set. Ids increase in the order items are
// numbered, which is arrival order on one replica.
func (s *OutboxStore) Enqueue(ctx context.Context, kind string, payload []byte) (storage.OutboxItem, error) {
	if kind == "" {
		return storage.OutboxItem{}, errors.New("postgres: enqueue outbox: empty kind")
	}
	now := s.db.now()
	it := storage.OutboxItem{Kind: kind, Payload: bytes.Clone(payload), At: now, NextAttempt: now}
	v, err := storage.EncodeOutbox(it)
	if err != nil {
		return storage.OutboxItem{}, fmt.Errorf("postgres: enqueue outbox %s: %w", kind, err)
	}
	var id int64
	err = s.db.write(ctx, nil, func(q querier) error {
		return q.QueryRow(ctx, `INSERT INTO outbox (next_attempt, record) VALUES ($1, $2) RETURNING id`, now, v).Scan(&id)
	})
	if err != nil {
		return storage.OutboxItem{}, fmt.Errorf("postgres: enqueue outbox %s: %w", kind, err)
	}
	it.ID = uint64(id)
	return it, nil
}

// Pending returns up to limit items whose NextAttempt has come, to the
// microsecond, oldest first; limit <= 0 means no limit.
func (s *OutboxStore) Pending(ctx context.Context, limit int) ([]storage.OutboxItem, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var items []storage.OutboxItem
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT id, record FROM outbox WHERE next_attempt <= $1 ORDER BY id LIMIT $2`, s.db.now(), lim)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, bySeq(storage.DecodeOutbox))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pending outbox: %w", err)
	}
	return items, nil
}

// Ack deletes item id; an unknown id is not an error.
func (s *OutboxStore) Ack(ctx context.Context, id uint64) error {
	err := s.db.write(ctx, nil, func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM outbox WHERE id = $1`, int64(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: ack outbox item %d: %w", id, err)
	}
	return nil
}

// Retry records a failed attempt at item id: Attempts goes up by one and
// NextAttempt becomes next. It returns the updated item, or an error
// wrapping storage.ErrNotFound.
func (s *OutboxStore) Retry(ctx context.Context, id uint64, next time.Time) (storage.OutboxItem, error) {
	var it storage.OutboxItem
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		cur, err := lockOutbox(ctx, tx, id)
		if err != nil {
			return err
		}
		cur.Attempts++
		cur.NextAttempt = next
		if err := saveOutbox(ctx, tx, cur); err != nil {
			return err
		}
		it = cur
		return nil
	})
	if err != nil {
		return storage.OutboxItem{}, fmt.Errorf("postgres: retry outbox item %d: %w", id, err)
	}
	return it, nil
}

// MarkDone records that item id's target is handled for good and, when key
// is not empty, that key has been seen for ttl (see DedupStore), in one
// transaction. The key is recorded even when the item is gone; marking a
// target twice is harmless.
func (s *OutboxStore) MarkDone(ctx context.Context, id uint64, target, key string, ttl time.Duration) error {
	if err := storage.CheckMarkDone(id, target, key, ttl); err != nil {
		return err
	}
	expires := s.db.now().Add(ttl)
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		if key != "" {
			if err := markSeen(ctx, tx, key, expires); err != nil {
				return err
			}
		}
		it, err := lockOutbox(ctx, tx, id)
		if errors.Is(err, storage.ErrNotFound) || err == nil && slices.Contains(it.Done, target) {
			return nil
		}
		if err != nil {
			return err
		}
		it.Done = append(it.Done, target)
		return saveOutbox(ctx, tx, it)
	})
	if err != nil {
		return fmt.Errorf("postgres: mark outbox item %d done: %w", id, err)
	}
	return nil
}

// Count returns how many items are in the outbox, due or not.
func (s *OutboxStore) Count(ctx context.Context) (int, error) {
	n, err := s.db.count(ctx, `SELECT count(*) FROM outbox`)
	if err != nil {
		return 0, fmt.Errorf("postgres: count outbox: %w", err)
	}
	return n, nil
}

// lockOutbox reads item id for an update in tx.
func lockOutbox(ctx context.Context, tx pgx.Tx, id uint64) (storage.OutboxItem, error) {
	rows, err := tx.Query(ctx, `SELECT id, record FROM outbox WHERE id = $1 FOR UPDATE`, int64(id))
	if err != nil {
		return storage.OutboxItem{}, err
	}
	it, err := pgx.CollectExactlyOneRow(rows, bySeq(storage.DecodeOutbox))
	return it, noRows(err)
}

// saveOutbox writes it back.
func saveOutbox(ctx context.Context, tx pgx.Tx, it storage.OutboxItem) error {
	v, err := storage.EncodeOutbox(it)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE outbox SET next_attempt = $2, record = $3 WHERE id = $1`, int64(it.ID), micro(it.NextAttempt), v)
	return err
}
