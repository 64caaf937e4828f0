package storage

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustAcquire(t *testing.T, s *Store, l Lock, wantAcquired bool) Lock {
	t.Helper()
	held, acquired, err := s.AcquireLock(t.Context(), l)
	if err != nil {
		t.Fatalf("AcquireLock(%s/%s by %s): %v", l.Team, l.StackUID, l.Owner, err)
	}
	if acquired != wantAcquired {
		t.Fatalf("AcquireLock(%s/%s by %s) acquired = %v, want %v (held by %s)", l.Team, l.StackUID, l.Owner, acquired, wantAcquired, held.Owner)
	}
	return held
}

func TestLockLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice, bob := Identity{"T1", "UALICE"}, Identity{"T1", "UBOB"}
	start := clock.Now()

	if _, err := s.GetLock(ctx, "T1", "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetLock on a free stack = %v, want ErrNotFound", err)
	}

	// Free: acquired, Since from the store's clock whatever the caller says.
	held := mustAcquire(t, s, Lock{Team: "T1", StackUID: "s1", StackName: "Shop", Environment: "production",
		Owner: alice, Reason: "migrating", Since: start.Add(-time.Hour)}, true)
	if held.Owner != alice || held.Reason != "migrating" || !held.Since.Equal(start) {
		t.Errorf("first acquire = %+v, want alice's lock since %v", held, start)
	}

	// The owner re-locks with a new reason: reason updated, Since kept.
	clock.Advance(time.Minute)
	held = mustAcquire(t, s, Lock{Team: "T1", StackUID: "s1", Owner: alice, Reason: "still migrating"}, true)
	if held.Reason != "still migrating" || !held.Since.Equal(start) || held.StackName != "Shop" || held.Environment != "production" {
		t.Errorf("re-lock by owner = %+v, want new reason, Since %v and the old names", held, start)
	}

	// Someone else: refused, told who holds it, nothing changed.
	held = mustAcquire(t, s, Lock{Team: "T1", StackUID: "s1", Owner: bob, Reason: "hotfix"}, false)
	if held.Owner != alice || held.Reason != "still migrating" {
		t.Errorf("acquire by another owner returned %+v, want alice's lock", held)
	}
	got, err := s.GetLock(ctx, "T1", "s1")
	if err != nil || got.Owner != alice || got.Reason != "still migrating" || !got.Since.Equal(start) ||
		got.Team != "T1" || got.StackUID != "s1" || got.StackName != "Shop" {
		t.Errorf("GetLock = %+v, %v", got, err)
	}

	// Release returns what was there; the stack is then free for bob.
	released, err := s.ReleaseLock(ctx, "T1", "s1")
	if err != nil || released.Owner != alice || released.Reason != "still migrating" {
		t.Errorf("ReleaseLock = %+v, %v; want alice's lock", released, err)
	}
	if _, err := s.ReleaseLock(ctx, "T1", "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second ReleaseLock = %v, want ErrNotFound", err)
	}
	if _, err := s.GetLock(ctx, "T1", "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetLock after release = %v, want ErrNotFound", err)
	}
	held = mustAcquire(t, s, Lock{Team: "T1", StackUID: "s1", Owner: bob, Reason: "hotfix"}, true)
	if !held.Since.Equal(clock.Now()) {
		t.Errorf("bob's lock since %v, want %v", held.Since, clock.Now())
	}
}

func TestListLocksPerTeam(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"E1", "UALICE"}

	// Acquired newest stack uid first, so oldest-first is not key order.
	// "T1x" checks that team "T1" is not a prefix match for another team.
	for _, l := range []Lock{
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
			locks, err := s.ListLocks(ctx, tc.team)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, l := range locks {
				if l.Team != tc.team {
					t.Errorf("ListLocks(%s) includes team %s's lock", tc.team, l.Team)
				}
				if i > 0 && l.Since.Before(locks[i-1].Since) {
					t.Errorf("ListLocks(%s) not oldest first", tc.team)
				}
				got = append(got, l.StackUID)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ListLocks(%s) = %v, want %v", tc.team, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("ListLocks(%s) = %v, want %v", tc.team, got, tc.want)
				}
			}
		})
	}
}

func TestLockSameStackTwoTeams(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	a, b := Identity{"T1", "UA"}, Identity{"T2", "UB"}

	mustAcquire(t, s, Lock{Team: "T1", StackUID: "shared", Owner: a, Reason: "one"}, true)
	mustAcquire(t, s, Lock{Team: "T2", StackUID: "shared", Owner: b, Reason: "two"}, true)

	if _, err := s.ReleaseLock(ctx, "T1", "shared"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetLock(ctx, "T2", "shared")
	if err != nil || got.Owner != b || got.Reason != "two" {
		t.Errorf("T2's lock after T1 released = %+v, %v", got, err)
	}
}

func TestLockConcurrentAcquire(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	var (
		wg   sync.WaitGroup
		wins atomic.Int32
	)
	for i := range 16 {
		wg.Go(func() {
			owner := Identity{"T1", "U" + string(rune('A'+i))}
			_, acquired, err := s.AcquireLock(t.Context(), Lock{Team: "T1", StackUID: "s1", Owner: owner})
			if err != nil {
				t.Error(err)
			}
			if acquired {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of 16 people acquired the lock, want 1", n)
	}
}

func TestLockInvalid(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	owner := Identity{"T1", "U1"}
	tests := []struct {
		name string
		l    Lock
	}{
		{"no team", Lock{StackUID: "s1", Owner: owner}},
		{"colon in team", Lock{Team: "T:1", StackUID: "s1", Owner: owner}},
		{"no stack", Lock{Team: "T1", Owner: owner}},
		{"no owner", Lock{Team: "T1", StackUID: "s1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := s.AcquireLock(ctx, tc.l); err == nil {
				t.Error("AcquireLock succeeded")
			}
			if tc.l.Owner.Valid() {
				if _, err := s.GetLock(ctx, tc.l.Team, tc.l.StackUID); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("GetLock = %v, want a validation error", err)
				}
			}
		})
	}
	if _, err := s.ListLocks(ctx, "T:1"); err == nil {
		t.Error("ListLocks with a colon in the team succeeded")
	}
}
