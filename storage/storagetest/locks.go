package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestLocks runs the contract of the LockStore: one holder per stack and
// team, re-locking by the owner, release by anyone, listing per team.
func TestLocks(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"Lifecycle", testLockLifecycle},
		{"ListPerTeam", testListLocksPerTeam},
		{"SameStackTwoTeams", testLockSameStackTwoTeams},
		{"ConcurrentAcquire", testLockConcurrentAcquire},
		{"Invalid", testLockInvalid},
		{"Expiry", testLockExpiry},
		{"Waiters", testLockWaiters},
		{"RemindedOnce", testLockRemindedOnce},
		{"All", testLocksAll},
	})
}

func mustAcquire(t *testing.T, s Stores, l storage.Lock, wantAcquired bool) storage.Lock {
	t.Helper()
	held, acquired, err := s.Locks.Acquire(t.Context(), l)
	if err != nil {
		t.Fatalf("Locks.Acquire(%s/%s by %s): %v", l.Team, l.StackUID, l.Owner, err)
	}
	if acquired != wantAcquired {
		t.Fatalf("Locks.Acquire(%s/%s by %s) acquired = %v, want %v (held by %s)", l.Team, l.StackUID, l.Owner, acquired, wantAcquired, held.Owner)
	}
	return held
}

func testLockLifecycle(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice, bob := storage.Identity{Team: "T1", User: "UALICE"}, storage.Identity{Team: "T1", User: "UBOB"}
	start := clock.Now()

	if _, err := s.Locks.Get(ctx, "T1", "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Locks.Get on a free stack = %v, want storage.ErrNotFound", err)
	}

	// Free: acquired, Since from the store's clock whatever the caller says.
	held := mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", StackName: "Shop", Environment: "production",
		Owner: alice, Reason: "migrating", Since: start.Add(-time.Hour)}, true)
	if held.Owner != alice || held.Reason != "migrating" || !held.Since.Equal(start) {
		t.Errorf("first acquire = %+v, want alice's lock since %v", held, start)
	}

	// The owner re-locks with a new reason: reason updated, Since kept.
	clock.Advance(time.Minute)
	held = mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: alice, Reason: "still migrating"}, true)
	if held.Reason != "still migrating" || !held.Since.Equal(start) || held.StackName != "Shop" || held.Environment != "production" {
		t.Errorf("re-lock by owner = %+v, want new reason, Since %v and the old names", held, start)
	}

	// Someone else: refused, told who holds it, nothing changed.
	held = mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: bob, Reason: "hotfix"}, false)
	if held.Owner != alice || held.Reason != "still migrating" {
		t.Errorf("acquire by another owner returned %+v, want alice's lock", held)
	}
	got, err := s.Locks.Get(ctx, "T1", "s1")
	if err != nil || got.Owner != alice || got.Reason != "still migrating" || !got.Since.Equal(start) ||
		got.Team != "T1" || got.StackUID != "s1" || got.StackName != "Shop" {
		t.Errorf("Locks.Get = %+v, %v", got, err)
	}

	// Release returns what was there; the stack is then free for bob.
	released, err := s.Locks.Release(ctx, "T1", "s1")
	if err != nil || released.Owner != alice || released.Reason != "still migrating" {
		t.Errorf("Locks.Release = %+v, %v; want alice's lock", released, err)
	}
	if _, err := s.Locks.Release(ctx, "T1", "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Locks.Release = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Locks.Get(ctx, "T1", "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Locks.Get after release = %v, want storage.ErrNotFound", err)
	}
	held = mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "s1", Owner: bob, Reason: "hotfix"}, true)
	if !held.Since.Equal(clock.Now()) {
		t.Errorf("bob's lock since %v, want %v", held.Since, clock.Now())
	}
}

func testListLocksPerTeam(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "E1", User: "UALICE"}

	// Acquired newest stack uid first, so oldest-first is not key order.
	// "T1x" checks that team "T1" is not a prefix match for another team.
	for _, l := range []storage.Lock{
		{Team: "T1", StackUID: "s3", Owner: alice},
		{Team: "T2", StackUID: "s1", Owner: alice},
		{Team: "T1", StackUID: "s2", Owner: alice},
		{Team: "T1x", StackUID: "s0", Owner: alice},
		{Team: "T1", StackUID: "s1:with:colons", Owner: alice},
	} {
		mustAcquire(t, s, l, true)
		clock.Advance(time.Second)
	}

	tests := []struct {
		team string
		want []string
	}{
		{"T1", []string{"s3", "s2", "s1:with:colons"}},
		{"T2", []string{"s1"}},
		{"T1x", []string{"s0"}},
		{"T3", nil},
	}
	for _, tc := range tests {
		t.Run(tc.team, func(t *testing.T) {
			t.Parallel()
			locks, err := s.Locks.List(ctx, tc.team)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, l := range locks {
				if l.Team != tc.team {
					t.Errorf("Locks.List(%s) includes team %s's lock", tc.team, l.Team)
				}
				if i > 0 && l.Since.Before(locks[i-1].Since) {
					t.Errorf("Locks.List(%s) not oldest first", tc.team)
				}
				got = append(got, l.StackUID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Locks.List(%s) = %v, want %v", tc.team, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Locks.List(%s) = %v, want %v", tc.team, got, tc.want)
				}
			}
		})
	}
}

func testLockSameStackTwoTeams(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	a, b := storage.Identity{Team: "T1", User: "UA"}, storage.Identity{Team: "T2", User: "UB"}

	mustAcquire(t, s, storage.Lock{Team: "T1", StackUID: "shared", Owner: a, Reason: "one"}, true)
	mustAcquire(t, s, storage.Lock{Team: "T2", StackUID: "shared", Owner: b, Reason: "two"}, true)

	if _, err := s.Locks.Release(ctx, "T1", "shared"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Locks.Get(ctx, "T2", "shared")
	if err != nil || got.Owner != b || got.Reason != "two" {
		t.Errorf("T2's lock after T1 released = %+v, %v", got, err)
	}
}

func testLockConcurrentAcquire(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	wins := winners(t, 16, func(i int) (bool, error) {
		owner := storage.Identity{Team: "T1", User: "U" + string(rune('A'+i))}
		_, acquired, err := s.Locks.Acquire(t.Context(), storage.Lock{Team: "T1", StackUID: "s1", Owner: owner})
		return acquired, err
	})
	if wins != 1 {
		t.Errorf("%d of 16 people acquired the lock, want 1", wins)
	}
}

func testLockInvalid(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	owner := storage.Identity{Team: "T1", User: "U1"}
	tests := []struct {
		name string
		l    storage.Lock
	}{
		{"no team", storage.Lock{StackUID: "s1", Owner: owner}},
		{"colon in team", storage.Lock{Team: "T:1", StackUID: "s1", Owner: owner}},
		{"no stack", storage.Lock{Team: "T1", Owner: owner}},
		{"no owner", storage.Lock{Team: "T1", StackUID: "s1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := s.Locks.Acquire(ctx, tc.l); err == nil {
				t.Error("Locks.Acquire succeeded")
			}
			if tc.l.Owner.Valid() {
				if _, err := s.Locks.Get(ctx, tc.l.Team, tc.l.StackUID); err == nil || errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Locks.Get = %v, want a validation error", err)
				}
			}
		})
	}
	if _, err := s.Locks.List(ctx, "T:1"); err == nil {
		t.Error("Locks.List with a colon in the team succeeded")
	}
}
