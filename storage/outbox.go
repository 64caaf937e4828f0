package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// OutboxStore holds the events accepted from outside but not yet fully
// handled; get it from [DB.Outbox].
type OutboxStore struct{ db *DB }

// OutboxItem is an event accepted from outside (a Cloud 66 webhook, a call
// to the notify API) but not yet fully handled. It is written before the
// HTTP answer, so a crash between accepting and posting loses nothing:
// Cloud 66 never retries a webhook, so the answer must mean "stored".
//
// An item goes to several targets (channels); Done records those already
// handled for good (see OutboxStore.MarkDone), so after a crash or a retry only
// the others are tried again. What counts as a target is the caller's.
//
// Items are stored as plain JSON. Payload may carry text from outside, so
// it must hold no secrets: no tokens, no webhook secrets, no response URLs.
type OutboxItem struct {
	ID          uint64    // set by Enqueue; increases with every item, so ID order is arrival order
	Kind        string    // what Payload is, e.g. "cloud66.webhook", "api.notify"; the reader dispatches on it
	Payload     []byte    // as received, or as the accepting handler chose to keep it
	At          time.Time // set by Enqueue from the store's clock
	Attempts    int       // failed attempts so far; Retry counts them
	NextAttempt time.Time // not handed out by Pending before this; Enqueue sets it to At
	Done        []string  // targets handled for good, in the order MarkDone recorded them
}

// Enqueue stores a new item of kind with payload, due at once, and
// returns it with ID, At and NextAttempt set. Kind is required. The item's
// key is its ID, big-endian, so bbolt's key order is arrival order.
func (s *OutboxStore) Enqueue(ctx context.Context, kind string, payload []byte) (OutboxItem, error) {
	if kind == "" {
		return OutboxItem{}, errors.New("storage: enqueue outbox: empty kind")
	}
	now := s.db.now()
	// Cloned so a caller reusing its buffer cannot change what was saved.
	it := OutboxItem{Kind: kind, Payload: bytes.Clone(payload), At: now, NextAttempt: now}
	v, err := encodeOutbox(it)
	if err != nil {
		return OutboxItem{}, fmt.Errorf("storage: enqueue outbox %s: %w", kind, err)
	}
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		it.ID = 0
		b, err := bucket(tx, bucketOutbox)
		if err != nil {
			return err
		}
		// NextSequence is part of the transaction, as for the audit log, so
		// a rolled-back enqueue does not use up a number.
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		it.ID = seq
		return b.Put(encodeUint64(seq), v)
	})
	if err != nil {
		return OutboxItem{}, fmt.Errorf("storage: enqueue outbox %s: %w", kind, err)
	}
	return it, nil
}

// Pending returns up to limit items whose NextAttempt has come
// (NextAttempt <= now), oldest first; limit <= 0 means no limit. It only
// reads, it does not claim: an item is returned again by every call until
// Ack deletes it or Retry moves its NextAttempt on, so the
// outbox is meant to be drained by one goroutine.
func (s *OutboxStore) Pending(ctx context.Context, limit int) ([]OutboxItem, error) {
	now := s.db.now()
	var items []OutboxItem
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		items = nil
		b, err := bucket(tx, bucketOutbox)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if limit > 0 && len(items) == limit {
				return nil
			}
			id, err := decodeUint64(k)
			if err != nil {
				return fmt.Errorf("corrupt key %x: %w", k, err)
			}
			// Decoding copies everything out of bbolt's memory map.
			it, err := decodeOutbox(id, v)
			if err != nil {
				return err
			}
			if it.NextAttempt.After(now) {
				continue
			}
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: pending outbox: %w", err)
	}
	return items, nil
}

// Ack deletes item id, once it has been handled for good (posted, or
// given up on). An unknown id is not an error, so acknowledging twice is
// harmless.
func (s *OutboxStore) Ack(ctx context.Context, id uint64) error {
	key := encodeUint64(id)
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketOutbox)
		if err != nil {
			return err
		}
		if b.Get(key) == nil {
			// Nothing to write, so no commit and fsync either.
			return errNoChanges
		}
		return b.Delete(key)
	})
	if err != nil && !errors.Is(err, errNoChanges) {
		return fmt.Errorf("storage: ack outbox item %d: %w", id, err)
	}
	return nil
}

// Retry records a failed attempt at item id: Attempts goes up by one
// and NextAttempt becomes next, so Pending leaves the item out until
// then. It returns the updated item, or an error wrapping ErrNotFound.
// Backoff and giving up are the caller's decisions.
func (s *OutboxStore) Retry(ctx context.Context, id uint64, next time.Time) (OutboxItem, error) {
	key := encodeUint64(id)
	var it OutboxItem
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		it = OutboxItem{}
		b, err := bucket(tx, bucketOutbox)
		if err != nil {
			return err
		}
		v := b.Get(key)
		if v == nil {
			return ErrNotFound
		}
		cur, err := decodeOutbox(id, v)
		if err != nil {
			return err
		}
		cur.Attempts++
		cur.NextAttempt = next
		nv, err := encodeOutbox(cur)
		if err != nil {
			return err
		}
		if err := b.Put(key, nv); err != nil {
			return err
		}
		it = cur
		return nil
	})
	if err != nil {
		return OutboxItem{}, fmt.Errorf("storage: retry outbox item %d: %w", id, err)
	}
	return it, nil
}

// MarkDone records that item id's target is handled for good and,
// when key is not empty, that key has been seen, for ttl, as FirstTime
// records it (see DedupStore); both in one transaction. It is how a delivery claims what it
// has posted: called the moment Slack accepted a post, it makes a restart
// skip that target, and the same happening arriving again (a webhook and a
// poll of one deployment) skip that channel, and neither happens for a post
// that was only queued when the process died. The key is recorded even
// when the item is gone (acknowledged or given up on meanwhile), since the
// post it stands for was made all the same. Marking a target twice is
// harmless.
func (s *OutboxStore) MarkDone(ctx context.Context, id uint64, target, key string, ttl time.Duration) error {
	if err := CheckMarkDone(id, target, key, ttl); err != nil {
		return err
	}
	itemKey := encodeUint64(id)
	exp := encodeTime(s.db.now().Add(ttl))
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		if key != "" {
			d, err := bucket(tx, bucketDedup)
			if err != nil {
				return err
			}
			if err := d.Put([]byte(key), exp); err != nil {
				return err
			}
		}
		b, err := bucket(tx, bucketOutbox)
		if err != nil {
			return err
		}
		v := b.Get(itemKey)
		if v == nil {
			return nil
		}
		it, err := decodeOutbox(id, v)
		if err != nil {
			return err
		}
		if slices.Contains(it.Done, target) {
			return nil
		}
		it.Done = append(it.Done, target)
		nv, err := encodeOutbox(it)
		if err != nil {
			return err
		}
		return b.Put(itemKey, nv)
	})
	if err != nil {
		return fmt.Errorf("storage: mark outbox item %d done: %w", id, err)
	}
	return nil
}

// Count returns how many items are in the outbox, due or not, for
// metrics and the startup log.
func (s *OutboxStore) Count(ctx context.Context) (int, error) {
	var n int
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketOutbox)
		if err != nil {
			return err
		}
		n = b.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: count outbox: %w", err)
	}
	return n, nil
}
