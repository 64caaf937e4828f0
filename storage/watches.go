package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// WatchRetention is how long a finished watch is kept as history before
// SweepExpired deletes it.
const WatchRetention = 30 * 24 * time.Hour

// WatchStore holds the deployments being followed, and for 30 days those
// that finished; get it from [DB.Watches].
type WatchStore struct{ db *DB }

// WatchState is where a followed deployment stands. Its values are stored
// as they are spelt here, so they must never change.
type WatchState string

// The states of a watch. It starts in WatchStarting (the redeploy is being
// sent), may wait in WatchQueued behind another deployment, runs in
// WatchDeploying and ends in one of the final states.
const (
	WatchStarting  WatchState = "starting"
	WatchQueued    WatchState = "queued"
	WatchDeploying WatchState = "deploying"
	WatchSucceeded WatchState = "succeeded"
	WatchFailed    WatchState = "failed"
	WatchCancelled WatchState = "cancelled"
	// WatchUnknown is final too: the bot gave up finding out (no result,
	// the owner's link gone, the timeout).
	WatchUnknown WatchState = "unknown"
)

// Final reports whether st is a final state: succeeded, failed, cancelled
// or unknown. A watch in one no longer holds its stack.
func (st WatchState) Final() bool {
	switch st {
	case WatchSucceeded, WatchFailed, WatchCancelled, WatchUnknown:
		return true
	}
	return false
}

// Watch is a deployment c66bot follows until Cloud 66 says it is over, so it
// can post the outcome where it was asked for. Watches are stored, not held
// in memory, so a restart resumes them (see WatchStore.Active). The whole value
// is sealed because ResponseURL lets anyone post as the bot.
//
// At most one unfinished watch holds a stack at a time (the stack claim),
// which is what stops two people from redeploying the same stack at once
// through the bot.
type Watch struct {
	ID          string   // set by Start: 20-digit zero-padded decimal, so string order is creation order
	Owner       Identity // who asked; their token is used to poll
	Channel     string
	MessageTS   string // the deployment message in Channel; "" when posted through ResponseURL
	ResponseURL string // Slack response_url; sealed
	StackUID    string
	StackName   string
	Environment string
	// Verb is the kind of change followed: "deploy" (also when empty, as
	// in records from before there were others), "rollback", "restart",
	// "maintenance" or "reboot".
	Verb              string
	Params            map[string]string // the change's parameters: ref, services, profile, strategy, service, …
	UserReference     string            // sent to Cloud 66 with the redeploy, to find the deployment again
	ActionID          int64             // Cloud 66 async action id; 0 until known
	DeploymentID      int64
	Queued            bool
	State             WatchState
	GitHash           string
	Message           string // Cloud 66's finished_message
	RequestedAt       time.Time
	StartedAt         time.Time
	FinishedAt        time.Time
	LastChange        time.Time
	LastPolled        time.Time
	Polls             int
	WatchdogPosted    bool
	CancelRequestedBy string // Slack user id
}

// Done reports whether w is in a final state (see WatchState.Final).
func (w Watch) Done() bool {
	return w.State.Final()
}

// Start stores w as a new watch and claims its stack, in one write
// transaction. If an unfinished watch already holds w.StackUID, nothing is
// written and that watch is returned with an error wrapping ErrStackBusy,
// so of several people deploying one stack at once exactly one proceeds.
//
// Start sets ID, State (WatchStarting when empty) and, when zero,
// RequestedAt and LastChange (to the store's clock). It requires a valid
// Owner and a StackUID, and refuses a w that is already Done.
//
// The audit entries, if any, are appended in the same transaction when the
// watch is stored (see updateAudited): the record of a deployment is on
// disk before anything is sent to Cloud 66, or neither is, and the error
// wraps ErrNotAudited.
func (s *WatchStore) Start(ctx context.Context, w Watch, audit ...AuditEntry) (Watch, error) {
	w, err := NewWatch(w, s.db.now())
	if err != nil {
		return Watch{}, err
	}
	plain, err := encodeWatch(w)
	if err != nil {
		return Watch{}, fmt.Errorf("storage: start watch on %s: %w", w.StackUID, err)
	}
	stack := []byte(w.StackUID)

	var busy Watch
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		busy, w.ID = Watch{}, ""
		wb, err := openWatchBuckets(tx)
		if err != nil {
			return err
		}
		if v := wb.byStack.Get(stack); v != nil {
			holder := bytes.Clone(v)
			cur, err := wb.open(s.db, holder)
			// Anything but a readable, unfinished watch on this stack is a
			// stale claim that nothing would ever release, so this start
			// takes it over (the Put below overwrites it) after tidying up.
			switch {
			case err == nil && cur.StackUID != w.StackUID:
				// The claim points at another stack's watch; that watch's
				// own state is left alone.
			case err == nil && !cur.Done():
				busy = cur
				return ErrStackBusy
			case err == nil || errors.Is(err, ErrNotFound):
				// Finished or gone without its claim being released.
				if err := wb.release(holder); err != nil {
					return err
				}
			default:
				// No longer opens (its key was retired): it can never be
				// resumed or read, so it goes entirely.
				if err := wb.forget(holder); err != nil {
					return err
				}
			}
		}
		seq, err := wb.watches.NextSequence()
		if err != nil {
			return err
		}
		id := []byte(WatchID(seq))
		// Sealed inside the transaction, unlike elsewhere, because the
		// associated data is the key and the key is known only now.
		sealed, err := s.db.sealer.Seal(plain, id)
		if err != nil {
			return err
		}
		if err := wb.watches.Put(id, sealed); err != nil {
			return err
		}
		if err := wb.active.Put(id, stack); err != nil {
			return err
		}
		if err := wb.byStack.Put(stack, id); err != nil {
			return err
		}
		w.ID = string(id)
		return nil
	})
	if errors.Is(err, ErrStackBusy) {
		return busy, fmt.Errorf("storage: start watch on %s: %w (watch %s)", w.StackUID, ErrStackBusy, busy.ID)
	}
	if err != nil {
		return Watch{}, fmt.Errorf("storage: start watch on %s: %w", w.StackUID, err)
	}
	return w, nil
}

// Save replaces the stored watch w.ID with w (an error wrapping
// ErrNotFound if there is none). When w.Done(), the stack claim is released
// and the watch leaves the active set in the same transaction; the finished
// watch stays readable with Get, as history, until SweepExpired removes
// it 30 days after FinishedAt (or after the save that finished it, when
// FinishedAt is zero).
//
// A watch cannot move to another stack, and a finished watch cannot be
// made unfinished again: another deployment may hold the stack by then.
//
// The audit entries, if any, are appended in the same transaction (see
// updateAudited), so the save that finishes a watch can carry its outcome:
// a crash cannot leave a finished deployment without it, nor the outcome
// of one that will be resumed.
func (s *WatchStore) Save(ctx context.Context, w Watch, audit ...AuditEntry) error {
	if w.ID == "" {
		return errors.New("storage: save watch: empty id")
	}
	plain, err := encodeWatch(w)
	if err != nil {
		return fmt.Errorf("storage: save watch %s: %w", w.ID, err)
	}
	id := []byte(w.ID)
	sealed, err := s.db.sealer.Seal(plain, id)
	if err != nil {
		return fmt.Errorf("storage: save watch %s: %w", w.ID, err)
	}
	now := s.db.now()
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		wb, err := openWatchBuckets(tx)
		if err != nil {
			return err
		}
		if wb.watches.Get(id) == nil {
			return ErrNotFound
		}
		// The active set records which stack the watch holds, so the claim
		// is found without unsealing the old value.
		claimed := wb.active.Get(id)
		switch {
		case claimed == nil && !w.Done():
			return fmt.Errorf("it has already finished; state %q cannot reopen it", w.State)
		case claimed != nil && string(claimed) != w.StackUID:
			return fmt.Errorf("it is on stack %s, not %s", claimed, w.StackUID)
		}
		if err := wb.watches.Put(id, sealed); err != nil {
			return err
		}
		if !w.Done() {
			return nil
		}
		if err := wb.release(id); err != nil {
			return err
		}
		finished := w.FinishedAt
		if finished.IsZero() {
			if wb.done.Get(id) != nil {
				return nil // re-saving a finished watch keeps its sweep time
			}
			finished = now
		}
		return wb.done.Put(id, encodeTime(finished))
	})
	if err != nil {
		return fmt.Errorf("storage: save watch %s: %w", w.ID, err)
	}
	return nil
}

// Get returns the watch with id, finished or not, or an error wrapping
// ErrNotFound. An error wrapping ErrSealed means the stored value does not
// open with the configured keys.
func (s *WatchStore) Get(ctx context.Context, id string) (Watch, error) {
	if id == "" {
		return Watch{}, fmt.Errorf("storage: get watch: empty id: %w", ErrNotFound)
	}
	key := []byte(id)
	sealed, err := s.db.getCopy(ctx, bucketWatches, key)
	if err != nil {
		return Watch{}, fmt.Errorf("storage: get watch %s: %w", id, err)
	}
	w, err := s.db.openWatch(sealed, key)
	if err != nil {
		return Watch{}, fmt.Errorf("storage: get watch %s: %w", id, err)
	}
	return w, nil
}

// Active returns the unfinished watches in ID (creation) order, for
// resuming them after a restart. Watches whose value no longer opens (their
// key was retired) cannot be resumed and are left out; SweepExpired deletes
// them and frees their stacks.
func (s *WatchStore) Active(ctx context.Context) ([]Watch, error) {
	var ids, sealed [][]byte
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		ids, sealed = nil, nil
		wb, err := openWatchBuckets(tx)
		if err != nil {
			return err
		}
		c := wb.active.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			v := wb.watches.Get(k)
			if v == nil {
				continue
			}
			ids = append(ids, bytes.Clone(k))
			sealed = append(sealed, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: active watches: %w", err)
	}
	// Opened outside the transaction to keep the read short.
	watches := make([]Watch, 0, len(ids))
	for i, id := range ids {
		w, err := s.db.openWatch(sealed[i], id)
		if err != nil || w.Done() {
			continue
		}
		watches = append(watches, w)
	}
	return watches, nil
}

// ActiveForStack returns the unfinished watch holding stackUID, or an
// error wrapping ErrNotFound when the stack is free.
func (s *WatchStore) ActiveForStack(ctx context.Context, stackUID string) (Watch, error) {
	if stackUID == "" {
		return Watch{}, fmt.Errorf("storage: active watch: empty stack uid: %w", ErrNotFound)
	}
	var id, sealed []byte
	err := s.db.view(ctx, func(tx *bbolt.Tx) error {
		wb, err := openWatchBuckets(tx)
		if err != nil {
			return err
		}
		v := wb.byStack.Get([]byte(stackUID))
		if v == nil {
			return ErrNotFound
		}
		id = bytes.Clone(v)
		if v = wb.watches.Get(id); v == nil {
			return ErrNotFound
		}
		sealed = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return Watch{}, fmt.Errorf("storage: active watch on %s: %w", stackUID, err)
	}
	w, err := s.db.openWatch(sealed, id)
	// The seal binds the value to its id, not to the stack, so the stack is
	// checked too: a claim that points at another stack's watch is stale.
	if err != nil || w.Done() || w.StackUID != stackUID {
		return Watch{}, fmt.Errorf("storage: active watch on %s: %w", stackUID, ErrNotFound)
	}
	return w, nil
}

// Delete forgets the watch with id entirely and releases its stack
// claim, for a redeploy Cloud 66 refused: there is nothing to follow and
// nothing worth keeping as history. An error wrapping ErrNotFound means
// there was no such watch. The audit entries, if any, are appended in the
// same transaction (see updateAudited).
func (s *WatchStore) Delete(ctx context.Context, id string, audit ...AuditEntry) error {
	if id == "" {
		return fmt.Errorf("storage: delete watch: empty id: %w", ErrNotFound)
	}
	key := []byte(id)
	err := s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		wb, err := openWatchBuckets(tx)
		if err != nil {
			return err
		}
		if wb.watches.Get(key) == nil {
			return ErrNotFound
		}
		return wb.forget(key)
	})
	if err != nil {
		return fmt.Errorf("storage: delete watch %s: %w", id, err)
	}
	return nil
}

// CountActive returns the size of the active set, for metrics and
// the startup log, without unsealing anything. It can exceed
// len(Active) only while a watch sealed with a retired key waits for
// SweepExpired.
func (s *WatchStore) CountActive(ctx context.Context) (int, error) {
	n, err := s.db.countKeys(ctx, bucketWatchesActive)
	if err != nil {
		return 0, fmt.Errorf("storage: count active watches: %w", err)
	}
	return n, nil
}

// openWatch unseals a watches value stored under id.
func (d *DB) openWatch(sealed, id []byte) (Watch, error) {
	plain, err := d.sealer.Open(sealed, id)
	if err != nil {
		return Watch{}, err
	}
	return decodeWatch(string(id), plain)
}

// watchBuckets are the four buckets behind watches, which every write keeps
// in step: watches (the sealed values), active (id -> stack uid, the
// unfinished ones), byStack (stack uid -> id, the claims; the inverse of
// active) and done (id -> finish time, for the history sweep).
type watchBuckets struct {
	watches, active, byStack, done *bbolt.Bucket
}

func openWatchBuckets(tx *bbolt.Tx) (watchBuckets, error) {
	var (
		wb  watchBuckets
		err error
	)
	for _, b := range []struct {
		dst  **bbolt.Bucket
		name []byte
	}{
		{&wb.watches, bucketWatches},
		{&wb.active, bucketWatchesActive},
		{&wb.byStack, bucketWatchByStack},
		{&wb.done, bucketWatchesDone},
	} {
		if *b.dst, err = bucket(tx, b.name); err != nil {
			return watchBuckets{}, err
		}
	}
	return wb, nil
}

// open reads and unseals the watch stored under id within the transaction.
func (wb watchBuckets) open(d *DB, id []byte) (Watch, error) {
	v := wb.watches.Get(id)
	if v == nil {
		return Watch{}, ErrNotFound
	}
	return d.openWatch(v, id)
}

// release takes id out of the active set and frees its stack, unless the
// claim has already passed to another watch.
func (wb watchBuckets) release(id []byte) error {
	v := wb.active.Get(id)
	if v == nil {
		return nil
	}
	// Cloned because the deletes below may reuse the page v points into.
	stack := bytes.Clone(v)
	if bytes.Equal(wb.byStack.Get(stack), id) {
		if err := wb.byStack.Delete(stack); err != nil {
			return err
		}
	}
	return wb.active.Delete(id)
}

// forget removes every trace of id.
func (wb watchBuckets) forget(id []byte) error {
	if err := wb.release(id); err != nil {
		return err
	}
	if err := wb.done.Delete(id); err != nil {
		return err
	}
	return wb.watches.Delete(id)
}
