package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// DedupStore holds the "already handled" marks that make Slack's retries
// and double clicks harmless; get it from [DB.Dedup].
type DedupStore struct{ db *DB }

// FirstTime records key for ttl and reports whether this is the first time
// it has been seen (or the earlier record has expired). The check and the
// write are one transaction, so of two concurrent callers exactly one gets
// true. Slack redelivers envelopes and events it thinks were not
// acknowledged, and people double-click buttons; callers use this to act
// only once. Keys are stored as given, so they must not be secrets.
func (s *DedupStore) FirstTime(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, errors.New("storage: FirstTime: empty key")
	}
	if ttl <= 0 {
		return false, fmt.Errorf("storage: FirstTime: ttl %s is not positive", ttl)
	}
	k := []byte(key)
	now := s.db.now()
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketDedup)
		if err != nil {
			return err
		}
		if v := b.Get(k); v != nil {
			// An unreadable expiry is treated as expired: overwriting it is
			// safer than refusing the key forever.
			if exp, err := decodeTime(v); err == nil && now.Before(exp) {
				return errNoChanges
			}
		}
		return b.Put(k, encodeTime(now.Add(ttl)))
	})
	if errors.Is(err, errNoChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: FirstTime: %w", err)
	}
	return true, nil
}

// Seen reports whether key is recorded and has not expired, without
// recording it: for callers that record a key only once the action it
// guards has happened (see OutboxStore.MarkDone), where FirstTime's claim up
// front would make a crash in between lose the action.
func (s *DedupStore) Seen(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, errors.New("storage: Seen: empty key")
	}
	now := s.db.now()
	v, err := s.db.getCopy(ctx, bucketDedup, []byte(key))
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("storage: Seen: %w", err)
	}
	// As in FirstTime, an unreadable expiry counts as expired.
	exp, err := decodeTime(v)
	return err == nil && now.Before(exp), nil
}

// Forget drops key, so the next FirstTime(key) reports true again. It is
// for undoing a mark when the action it guarded failed, for example an
// announcement that could not be posted and should be retried. A key that
// is not recorded is not an error.
func (s *DedupStore) Forget(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("storage: Forget: empty key")
	}
	k := []byte(key)
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketDedup)
		if err != nil {
			return err
		}
		if b.Get(k) == nil {
			// Nothing to write, so no commit and fsync either.
			return errNoChanges
		}
		return b.Delete(k)
	})
	if err != nil && !errors.Is(err, errNoChanges) {
		return fmt.Errorf("storage: Forget: %w", err)
	}
	return nil
}
