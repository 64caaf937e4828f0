package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DedupStore holds the "already handled" marks, shared by every replica;
// get it from [DB.Dedup]. It behaves as storage.DedupStore does. Keys are
// bytea, as given: they need not be text.
type DedupStore struct{ db *DB }

// FirstTime records key for ttl and reports whether this is the first time
// it has been seen (or the earlier record has expired); of concurrent
// callers, on any replicas, exactly one gets true.
func (s *DedupStore) FirstTime(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, errors.New("postgres: FirstTime: empty key")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("postgres: FirstTime: ttl %s is not positive", ttl)
	}
	now := s.db.now()
	err := s.db.write(ctx, nil, func(q querier) error {
		return changed(q.Exec(ctx, `INSERT INTO dedup (key, expires_at) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE dedup.expires_at <= $3`,
			[]byte(key), micro(now.Add(ttl)), now))
	})
	if errors.Is(err, errNoChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: FirstTime: %w", err)
	}
	return true, nil
}

// Seen reports whether key is recorded and has not expired, without
// recording it.
func (s *DedupStore) Seen(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, errors.New("postgres: Seen: empty key")
	}
	n, err := s.db.count(ctx, `SELECT count(*) FROM dedup WHERE key = $1 AND expires_at > $2`, []byte(key), s.db.now())
	if err != nil {
		return false, fmt.Errorf("postgres: Seen: %w", err)
	}
	return n > 0, nil
}

// Forget drops key, so the next FirstTime(key) reports true again; a key
// not recorded is not an error.
func (s *DedupStore) Forget(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("postgres: Forget: empty key")
	}
	err := s.db.write(ctx, nil, func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM dedup WHERE key = $1`, []byte(key))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: Forget: %w", err)
	}
	return nil
}

// markSeen records key until expires, in tx, as FirstTime does.
func markSeen(ctx context.Context, tx pgx.Tx, key string, expires time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO dedup (key, expires_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at`, []byte(key), micro(expires))
	return err
}
