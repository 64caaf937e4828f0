package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// SweepExpired deletes expired login states and expired dedup keys and
// returns how many it deleted. Expired entries are already refused when
// presented; sweeping only keeps the file small and drops sealed response
// URLs and verifiers nobody will use. Run it every few minutes.
func (s *Store) SweepExpired(ctx context.Context) (int, error) {
	now := s.now()
	var n int
	err := s.update(ctx, func(tx *bbolt.Tx) error {
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
			p, err := s.openLogin(v, k)
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

		n = len(deadStates) + len(deadKeys)
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
