package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// LockStore holds the stack locks, plain records; get it from [DB.Locks].
// It behaves as storage.LockStore does.
type LockStore struct{ db *DB }

// Acquire takes the lock on l.StackUID in l.Team for l.Owner: a free stack
// is locked since now; the owner's own lock takes l's Reason (and names,
// when given) and keeps its Since; someone else's is returned, unchanged,
// with acquired false. Of concurrent callers exactly one gets a free lock.
// The audit entries, if any, commit with a lock taken or updated.
func (s *LockStore) Acquire(ctx context.Context, l storage.Lock, audit ...storage.AuditEntry) (held storage.Lock, acquired bool, err error) {
	fresh, err := storage.NewLock(l, s.db.now())
	if err != nil {
		return storage.Lock{}, false, err
	}
	err = s.db.update(ctx, audit, func(tx pgx.Tx) error {
		held, acquired = storage.Lock{}, false
		next := fresh
		cur, found, err := s.lockedRow(ctx, tx, l.Team, l.StackUID, fresh)
		if err != nil {
			return err
		}
		if found {
			var ok bool
			if next, ok = storage.Relock(cur, l); !ok {
				held = cur
				return errNoChanges
			}
			v, err := storage.EncodeLock(next)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE locks SET record = $3 WHERE team = $1 AND stack_uid = $2`, l.Team, l.StackUID, v); err != nil {
				return err
			}
		}
		held, acquired = next, true
		return nil
	})
	if errors.Is(err, errNoChanges) {
		return held, false, nil
	}
	if err != nil {
		return storage.Lock{}, false, fmt.Errorf("postgres: acquire lock on %s in %s: %w", l.StackUID, l.Team, err)
	}
	return held, acquired, nil
}

// lockedRow inserts fresh as the lock on stackUID in team when there is
// none (found false), or else locks the row there and returns its lock.
func (s *LockStore) lockedRow(ctx context.Context, tx pgx.Tx, team, stackUID string, fresh storage.Lock) (cur storage.Lock, found bool, err error) {
	v, err := storage.EncodeLock(fresh)
	if err != nil {
		return storage.Lock{}, false, err
	}
	var rec []byte
	found, err = insertOrLock(ctx, tx,
		`INSERT INTO locks (team, stack_uid, record) VALUES ($1, $2, $3) ON CONFLICT (team, stack_uid) DO NOTHING`, []any{team, stackUID, v},
		`SELECT record FROM locks WHERE team = $1 AND stack_uid = $2 FOR UPDATE`, []any{team, stackUID}, &rec)
	if err != nil || !found {
		return storage.Lock{}, false, err
	}
	cur, err = storage.DecodeLock(team, stackUID, rec)
	return cur, true, err
}

// Get returns the lock on stackUID in team, or an error wrapping
// storage.ErrNotFound when there is none.
func (s *LockStore) Get(ctx context.Context, team, stackUID string) (storage.Lock, error) {
	if err := storage.CheckLock(team, stackUID); err != nil {
		return storage.Lock{}, err
	}
	var rec []byte
	err := s.db.view(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT record FROM locks WHERE team = $1 AND stack_uid = $2`, team, stackUID).Scan(&rec))
	})
	if err != nil {
		return storage.Lock{}, fmt.Errorf("postgres: lock on %s in %s: %w", stackUID, team, err)
	}
	return storage.DecodeLock(team, stackUID, rec)
}

// Release removes the lock on stackUID in team, whoever holds it, and
// returns what was there; storage.ErrNotFound means there was none. The
// audit entries, if any, commit with a lock removed.
func (s *LockStore) Release(ctx context.Context, team, stackUID string, audit ...storage.AuditEntry) (storage.Lock, error) {
	if err := storage.CheckLock(team, stackUID); err != nil {
		return storage.Lock{}, err
	}
	var rec []byte
	err := s.db.write(ctx, audit, func(q querier) error {
		return noRows(q.QueryRow(ctx, `DELETE FROM locks WHERE team = $1 AND stack_uid = $2 RETURNING record`, team, stackUID).Scan(&rec))
	})
	if err != nil {
		return storage.Lock{}, fmt.Errorf("postgres: release lock on %s in %s: %w", stackUID, team, err)
	}
	// A record this build cannot decode is removed all the same.
	l, _ := storage.DecodeLock(team, stackUID, rec)
	l.Team, l.StackUID = team, stackUID
	return l, nil
}

// List returns team's locks, oldest first.
func (s *LockStore) List(ctx context.Context, team string) ([]storage.Lock, error) {
	if err := storage.CheckLockTeam(team); err != nil {
		return nil, err
	}
	var locks []storage.Lock
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT stack_uid, record FROM locks WHERE team = $1`, team)
		if err != nil {
			return err
		}
		locks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Lock, error) {
			var (
				stack string
				rec   []byte
			)
			if err := r.Scan(&stack, &rec); err != nil {
				return storage.Lock{}, err
			}
			return storage.DecodeLock(team, stack, rec)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list locks in %s: %w", team, err)
	}
	slices.SortFunc(locks, func(a, b storage.Lock) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.StackUID, b.StackUID))
	})
	return locks, nil
}

// AddWaiter queues w on the lock on stackUID in team, as
// storage.LockStore.AddWaiter does; storage.ErrNotFound when there is no
// lock.
func (s *LockStore) AddWaiter(ctx context.Context, team, stackUID string, w storage.LockWaiter) (storage.Lock, storage.LockWaiter, error) {
	var added storage.LockWaiter
	l, err := s.modify(ctx, team, stackUID, func(cur storage.Lock) (storage.Lock, error) {
		next, nw, err := storage.AddWaiter(cur, w, s.db.now())
		added = nw
		return next, err
	})
	if err != nil {
		return storage.Lock{}, storage.LockWaiter{}, fmt.Errorf("postgres: wait for lock on %s in %s: %w", stackUID, team, err)
	}
	return l, added, nil
}

// MarkReminded notes the reminder of the lock taken at since, as
// storage.LockStore.MarkReminded does: true for exactly one caller.
func (s *LockStore) MarkReminded(ctx context.Context, team, stackUID string, since time.Time) (bool, error) {
	_, err := s.modify(ctx, team, stackUID, func(cur storage.Lock) (storage.Lock, error) {
		next, ok := storage.MarkReminded(cur, since, s.db.now())
		if !ok {
			return cur, errNoChanges
		}
		return next, nil
	})
	if errors.Is(err, errNoChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: mark lock on %s in %s reminded: %w", stackUID, team, err)
	}
	return true, nil
}

// ReleaseExpired removes the lock on stackUID in team if it has expired at
// now, as storage.LockStore.ReleaseExpired does.
func (s *LockStore) ReleaseExpired(ctx context.Context, team, stackUID string, now time.Time, audit ...storage.AuditEntry) (storage.Lock, error) {
	if err := storage.CheckLock(team, stackUID); err != nil {
		return storage.Lock{}, err
	}
	var l storage.Lock
	err := s.db.update(ctx, audit, func(tx pgx.Tx) error {
		var rec []byte
		if err := noRows(tx.QueryRow(ctx, `SELECT record FROM locks WHERE team = $1 AND stack_uid = $2 FOR UPDATE`, team, stackUID).Scan(&rec)); err != nil {
			return err
		}
		cur, err := storage.DecodeLock(team, stackUID, rec)
		if err != nil {
			return err
		}
		if !cur.Expired(now) {
			return storage.ErrNotFound
		}
		l = cur
		_, err = tx.Exec(ctx, `DELETE FROM locks WHERE team = $1 AND stack_uid = $2`, team, stackUID)
		return err
	})
	if err != nil {
		return storage.Lock{}, fmt.Errorf("postgres: release expired lock on %s in %s: %w", stackUID, team, err)
	}
	return l, nil
}

// All returns every workspace's locks, oldest first.
func (s *LockStore) All(ctx context.Context) ([]storage.Lock, error) {
	var locks []storage.Lock
	err := s.db.view(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT team, stack_uid, record FROM locks`)
		if err != nil {
			return err
		}
		locks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Lock, error) {
			var (
				team, stack string
				rec         []byte
			)
			if err := r.Scan(&team, &stack, &rec); err != nil {
				return storage.Lock{}, err
			}
			return storage.DecodeLock(team, stack, rec)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list all locks: %w", err)
	}
	storage.SortLocks(locks)
	return locks, nil
}

// modify rewrites the lock on stackUID in team with fn, its row locked
// for the transaction; storage.ErrNotFound when there is none. fn
// returning errNoChanges writes nothing.
func (s *LockStore) modify(ctx context.Context, team, stackUID string, fn func(storage.Lock) (storage.Lock, error)) (storage.Lock, error) {
	if err := storage.CheckLock(team, stackUID); err != nil {
		return storage.Lock{}, err
	}
	var l storage.Lock
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		var rec []byte
		if err := noRows(tx.QueryRow(ctx, `SELECT record FROM locks WHERE team = $1 AND stack_uid = $2 FOR UPDATE`, team, stackUID).Scan(&rec)); err != nil {
			return err
		}
		cur, err := storage.DecodeLock(team, stackUID, rec)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		v, err := storage.EncodeLock(next)
		if err != nil {
			return err
		}
		l = next
		_, err = tx.Exec(ctx, `UPDATE locks SET record = $3 WHERE team = $1 AND stack_uid = $2`, team, stackUID, v)
		return err
	})
	return l, err
}
