package storage

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// WaitKind is what a LockWaiter wants when the lock goes.
type WaitKind string

// The kinds of LockWaiter.
const (
	// WaitNotify: a DM saying the stack is free.
	WaitNotify WaitKind = "notify"
	// WaitDeploy: the change they were refused, run for them.
	WaitDeploy WaitKind = "deploy"
)

// LockWaiter is someone waiting for a lock to go: "tell me when it's
// free" (WaitNotify) or "deploy when it's free" (WaitDeploy, with the
// change that was refused in Params). Its team and stack are its lock's.
type LockWaiter struct {
	ID   string // set by AddWaiter
	Who  Identity
	Kind WaitKind
	// Channel and ResponseURL are where the refused change was asked for:
	// a queued deploy posts its card there.
	Channel     string
	ResponseURL string
	// Params is the parked change of a WaitDeploy waiter, as deploy's
	// intents keep it.
	Params  map[string]string
	Created time.Time // set by AddWaiter from the store's clock
}

// maxLockWaiters bounds one lock's waiters, so its record stays small.
const maxLockWaiters = 50

// ErrTooManyWaiters: a lock already has as many waiters as it may.
var ErrTooManyWaiters = errors.New("storage: too many people are waiting for this lock")

// AddWaiter is what LockStore.AddWaiter makes of cur when w waits for it:
// w joins the end of the queue with a fresh id and Created now, except
// that someone waiting again the same way (Who and Kind) replaces their
// earlier wait and keeps its place, so a double click never queues twice.
func AddWaiter(cur Lock, w LockWaiter, now time.Time) (Lock, LockWaiter, error) {
	if !w.Who.Valid() {
		return Lock{}, LockWaiter{}, fmt.Errorf("storage: wait for lock on %s: %w", cur.StackUID, invalidIdentity(w.Who))
	}
	if w.Kind != WaitNotify && w.Kind != WaitDeploy {
		return Lock{}, LockWaiter{}, fmt.Errorf("storage: wait for lock on %s: unknown kind %q", cur.StackUID, w.Kind)
	}
	w.ID, w.Created = newWaiterID(), now
	w.Params = cloneParams(w.Params)
	next := cur
	next.Waiters = slices.Clone(cur.Waiters)
	if i := slices.IndexFunc(next.Waiters, func(x LockWaiter) bool { return x.Who == w.Who && x.Kind == w.Kind }); i >= 0 {
		w.Created = next.Waiters[i].Created
		next.Waiters[i] = w
		return next, w, nil
	}
	if len(next.Waiters) >= maxLockWaiters {
		return Lock{}, LockWaiter{}, fmt.Errorf("storage: wait for lock on %s: %w", cur.StackUID, ErrTooManyWaiters)
	}
	next.Waiters = append(next.Waiters, w)
	return next, w, nil
}

// MarkReminded is what LockStore.MarkReminded makes of cur: RemindedAt
// set to now when cur is the lock taken at since and was not reminded
// yet (ok true); otherwise cur as it is and ok false.
func MarkReminded(cur Lock, since, now time.Time) (next Lock, ok bool) {
	if !cur.Since.Equal(since) || !cur.RemindedAt.IsZero() {
		return cur, false
	}
	cur.RemindedAt = now
	return cur, true
}

// Expired reports whether l has an expiry and it has passed at now.
func (l Lock) Expired(now time.Time) bool { return !l.Expires.IsZero() && !l.Expires.After(now) }

// SortLocks orders locks oldest first, as List returns them.
func SortLocks(locks []Lock) {
	slices.SortFunc(locks, func(a, b Lock) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Team, b.Team), strings.Compare(a.StackUID, b.StackUID))
	})
}

func newWaiterID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "w" + hex.EncodeToString(b[:])
}

func cloneParams(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// AddWaiter queues w on the lock on stackUID in team (see the function
// AddWaiter for the rules) and returns the lock and the waiter as stored;
// an error wrapping ErrNotFound when the stack is not locked.
func (s *LockStore) AddWaiter(ctx context.Context, team, stackUID string, w LockWaiter) (Lock, LockWaiter, error) {
	var added LockWaiter
	l, err := s.modify(ctx, team, stackUID, func(cur Lock) (Lock, error) {
		next, nw, err := AddWaiter(cur, w, s.db.now())
		added = nw
		return next, err
	})
	if err != nil {
		return Lock{}, LockWaiter{}, fmt.Errorf("storage: wait for lock on %s in %s: %w", stackUID, team, err)
	}
	return l, added, nil
}

// MarkReminded notes that the owner of the lock taken at since on
// stackUID in team was reminded, and reports whether this call did it:
// of any number of callers (replicas, restarts) exactly one gets true for
// a lock. False, nil when the lock is another one or already reminded; an
// error wrapping ErrNotFound when there is no lock.
func (s *LockStore) MarkReminded(ctx context.Context, team, stackUID string, since time.Time) (bool, error) {
	marked := false
	_, err := s.modify(ctx, team, stackUID, func(cur Lock) (Lock, error) {
		next, ok := MarkReminded(cur, since, s.db.now())
		if !ok {
			return cur, errNoChanges
		}
		marked = true
		return next, nil
	})
	if errors.Is(err, errNoChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: mark lock on %s in %s reminded: %w", stackUID, team, err)
	}
	return marked, nil
}

// ReleaseExpired removes the lock on stackUID in team if it has expired at
// now, and returns it with its waiters, as Release does; an error wrapping
// ErrNotFound when there is no lock or it has not expired (its owner
// re-locked it for longer meanwhile). The audit entries commit with the
// removal.
func (s *LockStore) ReleaseExpired(ctx context.Context, team, stackUID string, now time.Time, audit ...AuditEntry) (Lock, error) {
	key, err := lockKey(team, stackUID)
	if err != nil {
		return Lock{}, err
	}
	var l Lock
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketLocks)
		if err != nil {
			return err
		}
		v := b.Get(key)
		if v == nil {
			return ErrNotFound
		}
		cur, err := decodeLock(team, stackUID, v)
		if err != nil {
			return err
		}
		if !cur.Expired(now) {
			return ErrNotFound
		}
		l = cur
		return b.Delete(key)
	})
	if err != nil {
		return Lock{}, fmt.Errorf("storage: release expired lock on %s in %s: %w", stackUID, team, err)
	}
	return l, nil
}

// All returns every workspace's locks, oldest first, for the sweep that
// expires them and reminds their owners.
func (s *LockStore) All(ctx context.Context) ([]Lock, error) {
	var locks []Lock
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		locks = nil
		b, err := bucket(tx, bucketLocks)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			team, stackUID, ok := strings.Cut(string(k), ":")
			if !ok {
				return nil
			}
			l, err := decodeLock(team, stackUID, v)
			if err != nil {
				return err
			}
			locks = append(locks, l)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list all locks: %w", err)
	}
	SortLocks(locks)
	return locks, nil
}

// modify rewrites the lock on stackUID in team with fn in one
// transaction; ErrNotFound when there is none. fn returning errNoChanges
// writes nothing.
func (s *LockStore) modify(ctx context.Context, team, stackUID string, fn func(Lock) (Lock, error)) (Lock, error) {
	key, err := lockKey(team, stackUID)
	if err != nil {
		return Lock{}, err
	}
	var l Lock
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketLocks)
		if err != nil {
			return err
		}
		v := b.Get(key)
		if v == nil {
			return ErrNotFound
		}
		cur, err := decodeLock(team, stackUID, v)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		enc, err := encodeLock(next)
		if err != nil {
			return err
		}
		l = next
		return b.Put(key, enc)
	})
	return l, err
}
