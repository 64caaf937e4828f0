package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// maxRecentWatches bounds how far back ForStack reads: it serves
// "did the bot itself start this deployment?", which is about the last
// hours, not the whole history.
const maxRecentWatches = 500

// ForStack returns the bot's own deployments of stackUID requested at
// or after since, finished or not, oldest first. It reads at most the
// newest 500 watches of all stacks.
func (s *WatchStore) ForStack(ctx context.Context, stackUID string, since time.Time) ([]Watch, error) {
	var ids, sealed [][]byte
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		ids, sealed = nil, nil
		b, err := bucket(tx, bucketWatches)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(ids) < maxRecentWatches; k, v = c.Prev() {
			ids = append(ids, bytes.Clone(k))
			sealed = append(sealed, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: watches for stack: %w", err)
	}
	var out []Watch
	for i, id := range ids {
		w, err := s.db.openWatch(sealed[i], id)
		if err != nil || w.StackUID != stackUID || w.RequestedAt.Before(since) {
			continue
		}
		out = append(out, w)
	}
	slices.Reverse(out)
	return out, nil
}
