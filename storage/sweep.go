package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// SweepExpired deletes expired login states, expired dedup keys, expired
// intents and watches finished more than 30 days ago, and returns how many
// it deleted. Login states, intents and active watches whose values no
// longer open (their key was retired) are deleted too, since they can never
// be used; such a watch's stack is freed. Expired entries are already
// refused when presented; sweeping only keeps the file small and drops
// sealed response URLs and verifiers nobody will use. Run it every few
// minutes.
func (d *DB) SweepExpired(ctx context.Context) (int, error) {
	now := d.now()
	var n int
	err := d.update(ctx, func(tx *bbolt.Tx) error {
		n = 0
		states, index, err := loginBuckets(tx)
		if err != nil {
			return err
		}
		dedup, err := bucket(tx, bucketDedup)
		if err != nil {
			return err
		}

		// A state that no longer opens (its key was retired) can never be
		// consumed, so it is swept as if expired.
		deadStates, err := collect(ctx, states, func(k, v []byte) bool {
			p, err := d.openLogin(v, k)
			return err != nil || !now.Before(p.ExpiresAt)
		})
		if err != nil {
			return err
		}
		if err := deleteAll(states, deadStates); err != nil {
			return err
		}

		// Index entries whose state is gone point nowhere; they are not
		// counted because they hold no secret and are not a login.
		orphans, err := collect(ctx, index, func(_, v []byte) bool {
			return states.Get(v) == nil
		})
		if err != nil {
			return err
		}
		if err := deleteAll(index, orphans); err != nil {
			return err
		}

		deadKeys, err := collect(ctx, dedup, func(_, v []byte) bool {
			exp, err := decodeTime(v)
			return err != nil || !now.Before(exp)
		})
		if err != nil {
			return err
		}
		if err := deleteAll(dedup, deadKeys); err != nil {
			return err
		}

		deadIntents, err := d.sweepIntents(ctx, tx, now)
		if err != nil {
			return err
		}
		deadWatches, err := d.sweepWatches(ctx, tx, now)
		if err != nil {
			return err
		}

		n = len(deadStates) + len(deadKeys) + deadIntents + deadWatches
		if n == 0 && len(orphans) == 0 {
			return errNoChanges
		}
		return nil
	})
	if errors.Is(err, errNoChanges) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: sweep: %w", err)
	}
	return n, nil
}

// sweepIntents deletes intents that are expired or no longer open.
func (d *DB) sweepIntents(ctx context.Context, tx *bbolt.Tx, now time.Time) (int, error) {
	b, err := bucket(tx, bucketIntents)
	if err != nil {
		return 0, err
	}
	dead, err := collect(ctx, b, func(k, v []byte) bool {
		in, err := d.openIntent("", v, k)
		return err != nil || !now.Before(in.ExpiresAt)
	})
	if err != nil {
		return 0, err
	}
	return len(dead), deleteAll(b, dead)
}

// sweepWatches deletes finished watches older than WatchRetention, found
// through the done index without unsealing the history, and active watches
// that no longer open, which frees their stacks.
func (d *DB) sweepWatches(ctx context.Context, tx *bbolt.Tx, now time.Time) (int, error) {
	wb, err := openWatchBuckets(tx)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-WatchRetention)
	old, err := collect(ctx, wb.done, func(_, v []byte) bool {
		at, err := decodeTime(v)
		return err != nil || !at.After(cutoff)
	})
	if err != nil {
		return 0, err
	}
	unreadable, err := collect(ctx, wb.active, func(k, _ []byte) bool {
		_, err := wb.open(d, k)
		return err != nil
	})
	if err != nil {
		return 0, err
	}
	dead := append(old, unreadable...)
	for _, id := range dead {
		if err := wb.forget(id); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}

// collect returns copies of the keys in b for which dead reports true.
// Deleting is left to the caller because deleting under a bbolt cursor can
// make it skip the following key.
func collect(ctx context.Context, b *bbolt.Bucket, dead func(k, v []byte) bool) ([][]byte, error) {
	var keys [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		// Returning the error rolls the sweep back; a sweep that stops half
		// way would be harmless too, but all-or-nothing is easier to reason
		// about.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if dead(k, v) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	return keys, nil
}

func deleteAll(b *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
