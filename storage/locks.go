package storage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// LockStore holds the stack locks; get it from [DB.Locks].
type LockStore struct{ db *DB }

// Lock is a person's hold on a stack in one workspace: "don't deploy this,
// I'm on it". It stays until released (by its owner, or forced by someone
// else), or until Expires when its owner gave it a duration: a lock never
// lapses unless its owner said when. Locks are not secret and are stored
// as plain JSON.
type Lock struct {
	Team        string // workspace (or enterprise) the lock belongs to; no ':'
	StackUID    string
	StackName   string
	Environment string
	Owner       Identity
	Reason      string
	Since       time.Time // set on first acquire from the store's clock; kept when the owner re-locks
	// Expires is when the lock lets go by itself (`lock … for=2h`); zero
	// means never. The owner re-locking with an Expires replaces it, and
	// without one keeps it.
	Expires time.Time
	// RemindedAt is when its owner was reminded they hold it (once per
	// lock; see MarkReminded); zero until then.
	RemindedAt time.Time
	// Waiters are the people waiting for the lock to go, oldest first (see
	// AddWaiter). They live in the lock's record, so releasing the lock
	// hands them, once, to whoever released it.
	Waiters []LockWaiter
}

// Acquire takes the lock on l.StackUID in l.Team for l.Owner.
//
//   - free: l is stored with Since set to now and returned with acquired true;
//   - already held by l.Owner: the stored lock gets l's Reason (and l's
//     StackName and Environment when they are non-empty, in case the stack
//     was renamed), keeps its Since, and is returned with acquired true;
//   - held by someone else: nothing changes; the existing lock is returned
//     with acquired false and a nil error.
//
// The check and the write are one transaction, so of two people locking the
// same stack at once exactly one gets it.
//
// The audit entries, if any, are appended in the same transaction when the
// lock is taken or updated (see updateAudited): a change whose entry cannot be written
// is not made, and the error wraps ErrNotAudited.
func (s *LockStore) Acquire(ctx context.Context, l Lock, audit ...AuditEntry) (held Lock, acquired bool, err error) {
	fresh, err := NewLock(l, s.db.now())
	if err != nil {
		return Lock{}, false, err
	}
	key, _ := lockKey(l.Team, l.StackUID)
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		held, acquired = Lock{}, false
		b, err := bucket(tx, bucketLocks)
		if err != nil {
			return err
		}
		next := fresh
		if v := b.Get(key); v != nil {
			cur, err := decodeLock(l.Team, l.StackUID, v)
			if err != nil {
				return err
			}
			var ok bool
			if next, ok = Relock(cur, l); !ok {
				held = cur
				return errNoChanges
			}
		}
		v, err := encodeLock(next)
		if err != nil {
			return err
		}
		if err := b.Put(key, v); err != nil {
			return err
		}
		held, acquired = next, true
		return nil
	})
	if errors.Is(err, errNoChanges) {
		return held, false, nil
	}
	if err != nil {
		return Lock{}, false, fmt.Errorf("storage: acquire lock on %s in %s: %w", l.StackUID, l.Team, err)
	}
	return held, acquired, nil
}

// Get returns the lock on stackUID in team, or an error wrapping
// ErrNotFound when the stack is not locked there.
func (s *LockStore) Get(ctx context.Context, team, stackUID string) (Lock, error) {
	key, err := lockKey(team, stackUID)
	if err != nil {
		return Lock{}, err
	}
	var l Lock
	err = s.db.view(ctx, func(tx *bbolt.Tx) error {
		_, v, err := getTx(tx, bucketLocks, key)
		if err != nil {
			return err
		}
		// Decoding copies everything out of bbolt's memory map.
		l, err = decodeLock(team, stackUID, v)
		return err
	})
	if err != nil {
		return Lock{}, fmt.Errorf("storage: lock on %s in %s: %w", stackUID, team, err)
	}
	return l, nil
}

// Release removes the lock on stackUID in team, whoever holds it, and
// returns what was there, so the caller can name the previous owner; an
// error wrapping ErrNotFound means there was no lock. Deciding who may
// release (the owner, or anyone with force) is the caller's job.
//
// The audit entries, if any, are appended in the same transaction when a
// lock is removed (see updateAudited): a change whose entry cannot be written
// is not made, and the error wraps ErrNotAudited.
func (s *LockStore) Release(ctx context.Context, team, stackUID string, audit ...AuditEntry) (Lock, error) {
	key, err := lockKey(team, stackUID)
	if err != nil {
		return Lock{}, err
	}
	var l Lock
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		v, err := takeTx(tx, bucketLocks, key)
		if err != nil {
			return err
		}
		// A record this build cannot decode is still removed: releasing is
		// how an operator gets rid of it.
		l, _ = decodeLock(team, stackUID, v)
		l.Team, l.StackUID = team, stackUID
		return nil
	})
	if err != nil {
		return Lock{}, fmt.Errorf("storage: release lock on %s in %s: %w", stackUID, team, err)
	}
	return l, nil
}

// List returns team's locks, oldest first. Other workspaces' locks are
// never included.
func (s *LockStore) List(ctx context.Context, team string) ([]Lock, error) {
	if err := validLockTeam(team); err != nil {
		return nil, err
	}
	prefix := []byte(team + ":")
	var locks []Lock
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		locks = nil
		b, err := bucket(tx, bucketLocks)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			l, err := decodeLock(team, string(k[len(prefix):]), v)
			if err != nil {
				return err
			}
			locks = append(locks, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list locks in %s: %w", team, err)
	}
	slices.SortFunc(locks, func(a, b Lock) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.StackUID, b.StackUID))
	})
	return locks, nil
}

// lockKey returns "team:stackUID". Refusing ':' in team keeps the key
// unambiguous and makes "team:" a prefix of that team's locks only; a stack
// uid may contain anything, since it comes after the first ':'.
func lockKey(team, stackUID string) ([]byte, error) {
	if err := validLockTeam(team); err != nil {
		return nil, err
	}
	if stackUID == "" {
		return nil, fmt.Errorf("storage: lock in %s: empty stack uid", team)
	}
	return []byte(team + ":" + stackUID), nil
}

func validLockTeam(team string) error {
	if team == "" || strings.Contains(team, ":") {
		return fmt.Errorf("storage: invalid lock team %q: want a non-empty id without ':'", team)
	}
	return nil
}
