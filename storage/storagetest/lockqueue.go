package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// testLockExpiry: a lock keeps the Expires it was given; the owner
// re-locking with one replaces it and without one keeps it; ReleaseExpired
// removes it only once it has passed.
func testLockExpiry(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	ana := storage.Identity{Team: "T1", User: "UANA"}
	start := clock.Now()
	until := start.Add(2 * time.Hour)

	held := mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana, Reason: "migrating", Expires: until}, true)
	if !held.Expires.Equal(until) {
		t.Fatalf("acquired lock expires %v, want %v", held.Expires, until)
	}
	held = mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana, Reason: "still"}, true)
	if !held.Expires.Equal(until) {
		t.Errorf("re-lock without an expiry: expires %v, want it kept at %v", held.Expires, until)
	}
	later := start.Add(3 * time.Hour)
	mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana, Reason: "still", Expires: later}, true)
	if got, err := s.Locks.Get(ctx, "T1", "s1"); err != nil || !got.Expires.Equal(later) {
		t.Fatalf("Get after re-lock for longer = %+v, %v; want expires %v", got, err, later)
	}

	if _, err := s.Locks.ReleaseExpired(ctx, "T1", "s1", until); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ReleaseExpired before its expiry = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Locks.Get(ctx, "T1", "s1"); err != nil {
		t.Fatalf("lock gone after an early ReleaseExpired: %v", err)
	}
	got, err := s.Locks.ReleaseExpired(ctx, "T1", "s1", later)
	if err != nil || got.Owner != ana || got.Reason != "still" {
		t.Fatalf("ReleaseExpired at its expiry = %+v, %v; want ana's lock", got, err)
	}
	if _, err := s.Locks.Get(ctx, "T1", "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get after ReleaseExpired = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Locks.ReleaseExpired(ctx, "T1", "s1", later); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second ReleaseExpired = %v, want storage.ErrNotFound", err)
	}

	// A lock without an expiry never expires.
	mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s2", Owner: ana}, true)
	if _, err := s.Locks.ReleaseExpired(ctx, "T1", "s2", start.Add(1000*time.Hour)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ReleaseExpired of a lock without expiry = %v, want storage.ErrNotFound", err)
	}
}

// testLockWaiters: waiters queue on a lock in order, waiting again the
// same way keeps one's place, and releasing the lock returns them; a new
// lock starts with none.
func testLockWaiters(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	ana, ben, cy := storage.Identity{Team: "T1", User: "UANA"}, storage.Identity{Team: "T1", User: "UBEN"}, storage.Identity{Team: "T1", User: "UCY"}

	if _, _, err := s.Locks.AddWaiter(ctx, "T1", "s1", storage.LockWaiter{Who: ben, Kind: storage.WaitNotify}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("AddWaiter on a free stack = %v, want storage.ErrNotFound", err)
	}
	// Waiters and a reminder passed to Acquire are not a new lock's.
	mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana,
		Waiters: []storage.LockWaiter{{Who: cy, Kind: storage.WaitNotify}}, RemindedAt: clock.Now()}, true)

	_, first, err := s.Locks.AddWaiter(ctx, "T1", "s1", storage.LockWaiter{Who: ben, Kind: storage.WaitNotify, Channel: "C1"})
	if err != nil || first.ID == "" || !first.Created.Equal(clock.Now()) {
		t.Fatalf("AddWaiter = %+v, %v; want an id and Created now", first, err)
	}
	clock.Advance(time.Minute)
	params := map[string]string{"ref": "main", "verb": "deploy"}
	if _, _, err := s.Locks.AddWaiter(ctx, "T1", "s1", storage.LockWaiter{Who: cy, Kind: storage.WaitDeploy, Channel: "C2", ResponseURL: "https://hooks/x", Params: params}); err != nil {
		t.Fatal(err)
	}
	params["ref"] = "changed by the caller" // the store keeps its own copy
	clock.Advance(time.Minute)
	// ben waits again the same way: one wait, first place kept.
	l, again, err := s.Locks.AddWaiter(ctx, "T1", "s1", storage.LockWaiter{Who: ben, Kind: storage.WaitNotify, Channel: "C3"})
	if err != nil || !again.Created.Equal(first.Created) || len(l.Waiters) != 2 || l.Waiters[0].Who != ben || l.Waiters[0].Channel != "C3" {
		t.Fatalf("AddWaiter again = %+v (lock %+v), %v; want ben's one wait, in first place", again, l.Waiters, err)
	}
	if _, _, err := s.Locks.AddWaiter(ctx, "T1", "s1", storage.LockWaiter{Who: ben, Kind: "later"}); err == nil {
		t.Error("AddWaiter of an unknown kind succeeded")
	}
	if _, _, err := s.Locks.AddWaiter(ctx, "T1", "s1", storage.LockWaiter{Kind: storage.WaitNotify}); err == nil {
		t.Error("AddWaiter without a person succeeded")
	}

	// The owner re-locking keeps the queue.
	mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana, Reason: "new reason"}, true)
	released, err := s.Locks.Release(ctx, "T1", "s1")
	if err != nil || len(released.Waiters) != 2 {
		t.Fatalf("Release = %+v, %v; want the two waiters", released, err)
	}
	w0, w1 := released.Waiters[0], released.Waiters[1]
	if w0.Who != ben || w0.Kind != storage.WaitNotify || w0.Channel != "C3" {
		t.Errorf("first waiter = %+v, want ben's notify from C3", w0)
	}
	if w1.Who != cy || w1.Kind != storage.WaitDeploy || w1.Channel != "C2" || w1.ResponseURL != "https://hooks/x" ||
		w1.Params["ref"] != "main" || w1.Params["verb"] != "deploy" || w1.ID == "" || w1.ID == w0.ID {
		t.Errorf("second waiter = %+v, want cy's deploy of main from C2", w1)
	}

	// The next lock on the stack has nobody waiting.
	held := mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ben}, true)
	if len(held.Waiters) != 0 {
		t.Errorf("new lock has waiters %+v", held.Waiters)
	}
}

// testLockRemindedOnce: of many callers, one marks a lock reminded; a lock
// taken again is a new one.
func testLockRemindedOnce(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	ana := storage.Identity{Team: "T1", User: "UANA"}

	if _, err := s.Locks.MarkReminded(ctx, "T1", "s1", clock.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("MarkReminded on a free stack = %v, want storage.ErrNotFound", err)
	}
	held := mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana}, true)
	if ok, err := s.Locks.MarkReminded(ctx, "T1", "s1", held.Since.Add(-time.Second)); ok || err != nil {
		t.Errorf("MarkReminded of another lock's Since = %v, %v; want false", ok, err)
	}
	clock.Advance(time.Hour)
	wins := winners(t, 8, func(int) (bool, error) { return s.Locks.MarkReminded(t.Context(), "T1", "s1", held.Since) })
	if wins != 1 {
		t.Errorf("%d of 8 callers marked the lock reminded, want 1", wins)
	}
	got, err := s.Locks.Get(ctx, "T1", "s1")
	if err != nil || !got.RemindedAt.Equal(clock.Now()) {
		t.Errorf("Get after MarkReminded = %+v, %v; want RemindedAt %v", got, err, clock.Now())
	}
	if _, err := s.Locks.Release(ctx, "T1", "s1"); err != nil {
		t.Fatal(err)
	}
	again := mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana}, true)
	if !again.RemindedAt.IsZero() {
		t.Errorf("a new lock is marked reminded at %v", again.RemindedAt)
	}
	if ok, err := s.Locks.MarkReminded(ctx, "T1", "s1", again.Since); !ok || err != nil {
		t.Errorf("MarkReminded of the new lock = %v, %v; want true", ok, err)
	}
}

// testLocksAll: every team's locks, oldest first.
func testLocksAll(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	ana := storage.Identity{Team: "E1", User: "UANA"}
	if locks, err := s.Locks.All(ctx); err != nil || len(locks) != 0 {
		t.Fatalf("All on an empty store = %v, %v", locks, err)
	}
	for _, l := range []storage.Lock{
		{Team: "T2", StackUID: "s9", Owner: ana},
		{Team: "T1", StackUID: "s1:x", Owner: ana},
		{Team: "T3", StackUID: "s0", Owner: ana},
	} {
		mustAcquire(t, s, l, true)
		clock.Advance(time.Second)
	}
	locks, err := s.Locks.All(ctx)
	if err != nil || len(locks) != 3 {
		t.Fatalf("All = %+v, %v; want 3 locks", locks, err)
	}
	for i, want := range []string{"T2/s9", "T1/s1:x", "T3/s0"} {
		if got := locks[i].Team + "/" + locks[i].StackUID; got != want {
			t.Errorf("All[%d] = %s, want %s", i, got, want)
		}
	}
}
