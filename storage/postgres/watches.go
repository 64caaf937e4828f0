package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// maxRecentWatches bounds how far back ForStack reads, as in bbolt.
const maxRecentWatches = 500

// WatchStore holds the deployments being followed, and for 30 days those
// that finished, each sealed with its id as associated data; get it from
// [DB.Watches]. It behaves as storage.WatchStore does. The stack claim is
// the unique index on the stack of the unfinished watches.
type WatchStore struct{ db *DB }

// Start stores w as a new watch and claims its stack, in one transaction.
// If an unfinished watch holds w.StackUID, nothing is written and that
// watch is returned with an error wrapping storage.ErrStackBusy. A holder
// that no longer opens (its key was retired) can never be resumed, so it
// is deleted and the stack taken. Start sets ID, State (starting when
// empty) and, when zero, RequestedAt and LastChange. The audit entries, if
// any, commit with the watch.
func (s *WatchStore) Start(ctx context.Context, w storage.Watch, audit ...storage.AuditEntry) (storage.Watch, error) {
	w, err := storage.NewWatch(w, s.db.now())
	if err != nil {
		return storage.Watch{}, err
	}
	var busy storage.Watch
	err = s.db.update(ctx, audit, func(tx pgx.Tx) error {
		busy = storage.Watch{}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT nextval('watch_ids')`).Scan(&n); err != nil {
			return err
		}
		w.ID = storage.WatchID(uint64(n))
		sealed, err := sealRecord(s.db.sealer, storage.EncodeWatch, w, []byte(w.ID))
		if err != nil {
			return err
		}
		// Twice at most: a holder that does not open is deleted, once.
		for range 2 {
			var (
				holder int64
				hs     []byte
			)
			found, err := insertOrLock(ctx, tx,
				`INSERT INTO watches (id, stack_uid, sealed) VALUES ($1, $2, $3) ON CONFLICT (stack_uid) WHERE done_at IS NULL DO NOTHING`, []any{n, w.StackUID, sealed},
				`SELECT id, sealed FROM watches WHERE stack_uid = $1 AND done_at IS NULL FOR UPDATE`, []any{w.StackUID}, &holder, &hs)
			if err != nil || !found {
				return err
			}
			cur, err := s.db.openWatch(hs, storage.WatchID(uint64(holder)))
			if err == nil {
				busy = cur
				return storage.ErrStackBusy
			}
			if _, err := tx.Exec(ctx, `DELETE FROM watches WHERE id = $1`, holder); err != nil {
				return err
			}
		}
		return errors.New("the stack's claim is held by watches that do not open")
	})
	if errors.Is(err, storage.ErrStackBusy) {
		return busy, fmt.Errorf("postgres: start watch on %s: %w (watch %s)", w.StackUID, storage.ErrStackBusy, busy.ID)
	}
	if err != nil {
		return storage.Watch{}, fmt.Errorf("postgres: start watch on %s: %w", w.StackUID, err)
	}
	return w, nil
}

// Save replaces the stored watch w.ID with w (an error wrapping
// storage.ErrNotFound if there is none). When w.Done(), the stack claim is
// released in the same transaction and the watch stays readable as
// history until SweepExpired removes it 30 days after FinishedAt (or after
// the save that finished it). A watch cannot move to another stack, and a
// finished watch cannot be made unfinished again. The audit entries, if
// any, commit with the save.
func (s *WatchStore) Save(ctx context.Context, w storage.Watch, audit ...storage.AuditEntry) error {
	if w.ID == "" {
		return errors.New("postgres: save watch: empty id")
	}
	n, ok := parseWatchID(w.ID)
	if !ok {
		return fmt.Errorf("postgres: save watch %q: %w", w.ID, storage.ErrNotFound)
	}
	sealed, err := sealRecord(s.db.sealer, storage.EncodeWatch, w, []byte(w.ID))
	if err != nil {
		return fmt.Errorf("postgres: save watch %s: %w", w.ID, err)
	}
	var finished *time.Time // nil: unfinished; else the history sweep's clock
	if w.Done() {
		t := micro(w.FinishedAt)
		if t.IsZero() {
			t = s.db.now()
		}
		finished = &t
	}
	err = s.db.update(ctx, audit, func(tx pgx.Tx) error {
		var (
			stack  string
			doneAt *time.Time
		)
		if err := tx.QueryRow(ctx, `SELECT stack_uid, done_at FROM watches WHERE id = $1 FOR UPDATE`, n).Scan(&stack, &doneAt); err != nil {
			return noRows(err)
		}
		switch {
		case doneAt != nil && !w.Done():
			return fmt.Errorf("it has already finished; state %q cannot reopen it", w.State)
		case doneAt == nil && stack != w.StackUID:
			return fmt.Errorf("it is on stack %s, not %s", stack, w.StackUID)
		}
		if doneAt != nil && w.FinishedAt.IsZero() {
			finished = doneAt // re-saving a finished watch keeps its sweep time
		}
		_, err := tx.Exec(ctx, `UPDATE watches SET stack_uid = $2, done_at = $3, sealed = $4 WHERE id = $1`, n, w.StackUID, finished, sealed)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: save watch %s: %w", w.ID, err)
	}
	return nil
}

// Get returns the watch with id, finished or not, or an error wrapping
// storage.ErrNotFound; storage.ErrSealed means it does not open.
func (s *WatchStore) Get(ctx context.Context, id string) (storage.Watch, error) {
	n, ok := parseWatchID(id)
	if !ok {
		return storage.Watch{}, fmt.Errorf("postgres: get watch %q: %w", id, storage.ErrNotFound)
	}
	var sealed []byte
	err := s.db.view(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT sealed FROM watches WHERE id = $1`, n).Scan(&sealed))
	})
	if err != nil {
		return storage.Watch{}, fmt.Errorf("postgres: get watch %s: %w", id, err)
	}
	w, err := s.db.openWatch(sealed, id)
	if err != nil {
		return storage.Watch{}, fmt.Errorf("postgres: get watch %s: %w", id, err)
	}
	return w, nil
}

// Active returns the unfinished watches in ID (creation) order, leaving
// out those that no longer open; SweepExpired deletes them.
func (s *WatchStore) Active(ctx context.Context) ([]storage.Watch, error) {
	ws, err := s.list(ctx, `SELECT id, sealed FROM watches WHERE done_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: active watches: %w", err)
	}
	return slices.DeleteFunc(ws, storage.Watch.Done), nil
}

// ActiveForStack returns the unfinished watch holding stackUID, or an
// error wrapping storage.ErrNotFound when the stack is free.
func (s *WatchStore) ActiveForStack(ctx context.Context, stackUID string) (storage.Watch, error) {
	ws, err := s.list(ctx, `SELECT id, sealed FROM watches WHERE stack_uid = $1 AND done_at IS NULL`, stackUID)
	if err != nil {
		return storage.Watch{}, fmt.Errorf("postgres: active watch on %s: %w", stackUID, err)
	}
	if len(ws) == 0 || ws[0].Done() || ws[0].StackUID != stackUID {
		return storage.Watch{}, fmt.Errorf("postgres: active watch on %s: %w", stackUID, storage.ErrNotFound)
	}
	return ws[0], nil
}

// Delete forgets the watch with id entirely, which frees its stack, for a
// change Cloud 66 refused. An error wrapping storage.ErrNotFound means there
// was none. The audit entries, if any, commit with it.
func (s *WatchStore) Delete(ctx context.Context, id string, audit ...storage.AuditEntry) error {
	n, ok := parseWatchID(id)
	if !ok {
		return fmt.Errorf("postgres: delete watch %q: %w", id, storage.ErrNotFound)
	}
	err := s.db.write(ctx, audit, func(q querier) error {
		err := changed(q.Exec(ctx, `DELETE FROM watches WHERE id = $1`, n))
		if errors.Is(err, errNoChanges) {
			return storage.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete watch %q: %w", id, err)
	}
	return nil
}

// CountActive returns how many watches are unfinished, without unsealing
// any.
func (s *WatchStore) CountActive(ctx context.Context) (int, error) {
	n, err := s.db.count(ctx, `SELECT count(*) FROM watches WHERE done_at IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("postgres: count active watches: %w", err)
	}
	return n, nil
}

// ForStack returns the bot's own deployments of stackUID requested at or
// after since, finished or not, oldest first, from the newest 500 of that
// stack.
func (s *WatchStore) ForStack(ctx context.Context, stackUID string, since time.Time) ([]storage.Watch, error) {
	ws, err := s.list(ctx, `SELECT id, sealed FROM watches WHERE stack_uid = $1 ORDER BY id DESC LIMIT $2`, stackUID, maxRecentWatches)
	if err != nil {
		return nil, fmt.Errorf("postgres: watches for stack: %w", err)
	}
	ws = slices.DeleteFunc(ws, func(w storage.Watch) bool { return w.StackUID != stackUID || w.RequestedAt.Before(since) })
	slices.Reverse(ws)
	return ws, nil
}

// list returns the watches of a query of id and sealed, in its order,
// leaving out those that do not open.
func (s *WatchStore) list(ctx context.Context, sql string, args ...any) ([]storage.Watch, error) {
	type row struct {
		id     int64
		sealed []byte
	}
	var rows []row
	err := s.db.view(ctx, func(q querier) error {
		rs, err := q.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		rows, err = pgx.CollectRows(rs, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.id, &x.sealed)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	ws := make([]storage.Watch, 0, len(rows))
	for _, r := range rows {
		if w, err := s.db.openWatch(r.sealed, storage.WatchID(uint64(r.id))); err == nil {
			ws = append(ws, w)
		}
	}
	return ws, nil
}

// openWatch unseals a watch stored under id.
func (d *DB) openWatch(sealed []byte, id string) (storage.Watch, error) {
	return openRecord(d.sealer, sealed, []byte(id), func(b []byte) (storage.Watch, error) { return storage.DecodeWatch(id, b) })
}

// parseWatchID returns the number of a watch id, which must be spelt as
// storage.WatchID spells it: "42" is not watch 00000000000000000042.
func parseWatchID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0 && storage.WatchID(uint64(n)) == id
}
