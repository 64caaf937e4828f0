package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
	"github.com/c66bot/c66bot/storage"
)

// LeaseStore is what several replicas share so each piece of work has one
// owner at a time; *storage.LocalLeases satisfies it, and so must a
// database's.
type LeaseStore interface {
	Acquire(ctx context.Context, key, owner string, ttl time.Duration) (l storage.Lease, held bool, err error)
	Renew(ctx context.Context, l storage.Lease, ttl time.Duration) (storage.Lease, error)
	Release(ctx context.Context, l storage.Lease, note string) error
}

// BudgetStore is the shared token buckets (a person's Cloud 66 requests);
// *storage.LocalBudgets satisfies it.
type BudgetStore interface {
	Reserve(ctx context.Context, key string, perHour, burst float64) (time.Duration, error)
}

// LeaseOpener returns the leases of a fresh, empty store on the clock now.
// Every call in one test may return the same store: what is tested is
// what its callers share.
type LeaseOpener func(t *testing.T, now func() time.Time) LeaseStore

// BudgetOpener returns the budgets of a fresh, empty store on the clock now.
type BudgetOpener func(t *testing.T, now func() time.Time) BudgetStore

// TestLeases is the contract of a lease store.
func TestLeases(t *testing.T, open LeaseOpener) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s LeaseStore, clock *fakeclock.Clock)
	}{
		{"AcquireRenewRelease", testLeaseLifecycle},
		{"Expiry", testLeaseExpiry},
		{"OneWinner", testLeaseOneWinner},
		{"Invalid", testLeaseInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := fakeclock.New()
			tc.fn(t, open(t, clock.Now), clock)
		})
	}
}

func testLeaseLifecycle(t *testing.T, s LeaseStore, clock *fakeclock.Clock) {
	ctx := t.Context()
	l, held, err := s.Acquire(ctx, "watch:1", "a", 20*time.Second)
	if err != nil || !held || l.Owner != "a" || l.Epoch < 1 || !l.Expires.Equal(clock.Now().Add(20*time.Second)) {
		t.Fatalf("Acquire of a free lease = %+v, %v, %v", l, held, err)
	}
	other, held, err := s.Acquire(ctx, "watch:1", "b", 20*time.Second)
	if err != nil || held || other.Owner != "a" || other.Epoch != l.Epoch {
		t.Fatalf("Acquire of a's lease by b = %+v, %v, %v; want a's lease, not held", other, held, err)
	}
	clock.Advance(5 * time.Second)
	again, held, err := s.Acquire(ctx, "watch:1", "a", 20*time.Second)
	if err != nil || !held || again.Epoch != l.Epoch || !again.Expires.Equal(clock.Now().Add(20*time.Second)) {
		t.Fatalf("Acquire of its own lease = %+v, %v, %v; want it renewed, same epoch", again, held, err)
	}
	renewed, err := s.Renew(ctx, again, 30*time.Second)
	if err != nil || renewed.Epoch != l.Epoch || !renewed.Expires.Equal(clock.Now().Add(30*time.Second)) {
		t.Fatalf("Renew = %+v, %v", renewed, err)
	}
	if err := s.Release(ctx, renewed, "last post 12:00"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := s.Renew(ctx, renewed, time.Second); !errors.Is(err, storage.ErrLeaseLost) {
		t.Errorf("Renew after Release: %v, want ErrLeaseLost", err)
	}
	next, held, err := s.Acquire(ctx, "watch:1", "b", time.Minute)
	if err != nil || !held || next.Owner != "b" || next.Epoch <= l.Epoch || next.Note != "last post 12:00" {
		t.Fatalf("Acquire after Release = %+v, %v, %v; want b's, a later epoch, the note left", next, held, err)
	}
	if _, _, err := s.Acquire(ctx, "watch:2", "a", time.Minute); err != nil {
		t.Errorf("another key: %v", err)
	}
}

func testLeaseExpiry(t *testing.T, s LeaseStore, clock *fakeclock.Clock) {
	ctx := t.Context()
	l, _, err := s.Acquire(ctx, "channel:T1:C1", "a", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(21 * time.Second)
	// Expired, but nobody took it: its owner may still renew it.
	l, err = s.Renew(ctx, l, 20*time.Second)
	if err != nil {
		t.Fatalf("Renew of an expired lease nobody took: %v", err)
	}
	clock.Advance(21 * time.Second)
	taken, held, err := s.Acquire(ctx, "channel:T1:C1", "b", 20*time.Second)
	if err != nil || !held || taken.Owner != "b" || taken.Epoch <= l.Epoch {
		t.Fatalf("Acquire of an expired lease = %+v, %v, %v", taken, held, err)
	}
	if _, err := s.Renew(ctx, l, 20*time.Second); !errors.Is(err, storage.ErrLeaseLost) {
		t.Errorf("the old owner's Renew: %v, want ErrLeaseLost", err)
	}
	if err := s.Release(ctx, l, "x"); !errors.Is(err, storage.ErrLeaseLost) {
		t.Errorf("the old owner's Release: %v, want ErrLeaseLost", err)
	}
	if cur, held, _ := s.Acquire(ctx, "channel:T1:C1", "c", time.Second); held || cur.Owner != "b" {
		t.Errorf("the old owner's Release gave the lease away: %+v, %v", cur, held)
	}
}

func testLeaseOneWinner(t *testing.T, s LeaseStore, _ *fakeclock.Clock) {
	const n = 8
	got := winners(t, n, func(i int) (bool, error) {
		_, held, err := s.Acquire(context.Background(), "outbox:7", fmt.Sprintf("replica-%d", i), time.Minute)
		return held, err
	})
	if got != 1 {
		t.Errorf("%d of %d owners hold the lease, want exactly 1", got, n)
	}
}

func testLeaseInvalid(t *testing.T, s LeaseStore, _ *fakeclock.Clock) {
	ctx := t.Context()
	for _, tc := range []struct {
		key, owner string
		ttl        time.Duration
	}{{"", "a", time.Second}, {"k", "", time.Second}, {"k", "a", 0}} {
		if _, _, err := s.Acquire(ctx, tc.key, tc.owner, tc.ttl); err == nil {
			t.Errorf("Acquire(%q, %q, %v) succeeded", tc.key, tc.owner, tc.ttl)
		}
	}
	if _, err := s.Renew(ctx, storage.Lease{Key: "never", Owner: "a", Epoch: 1}, time.Second); !errors.Is(err, storage.ErrLeaseLost) {
		t.Errorf("Renew of a lease never taken: %v, want ErrLeaseLost", err)
	}
}

// TestBudgets is the contract of a budget store.
func TestBudgets(t *testing.T, open BudgetOpener) {
	t.Run("BurstThenWait", func(t *testing.T) {
		t.Parallel()
		clock := fakeclock.New()
		s := open(t, clock.Now)
		ctx := t.Context()
		// 3,600 an hour is one a second; a burst of 3.
		for i := range 3 {
			if wait, err := s.Reserve(ctx, "T1:U1", 3600, 3); err != nil || wait != 0 {
				t.Fatalf("reserve %d of the burst: %v, %v", i, wait, err)
			}
		}
		if wait, err := s.Reserve(ctx, "T1:U1", 3600, 3); err != nil || wait != time.Second {
			t.Fatalf("first reserve past the burst: %v, %v; want 1s", wait, err)
		}
		if wait, _ := s.Reserve(ctx, "T1:U1", 3600, 3); wait != 2*time.Second {
			t.Errorf("second reserve past the burst: %v, want 2s (reserved tokens queue up)", wait)
		}
		if wait, _ := s.Reserve(ctx, "T1:U2", 3600, 3); wait != 0 {
			t.Errorf("another key waits %v, want 0", wait)
		}
		clock.Advance(time.Hour)
		if wait, _ := s.Reserve(ctx, "T1:U1", 3600, 3); wait != 0 {
			t.Errorf("after an hour: wait %v, want 0 (refilled to the burst)", wait)
		}
	})
	t.Run("SharedByConcurrentTakers", func(t *testing.T) {
		t.Parallel()
		clock := fakeclock.New()
		s := open(t, clock.Now)
		const n = 10
		waits := make([]time.Duration, n)
		atOnce(n, func(i int) {
			w, err := s.Reserve(context.Background(), "T1:U1", 3600, 2)
			if err != nil {
				t.Error(err)
			}
			waits[i] = w
		})
		free := 0
		var longest time.Duration
		for _, w := range waits {
			if w == 0 {
				free++
			}
			longest = max(longest, w)
		}
		if free != 2 || longest != 8*time.Second {
			t.Errorf("%d reserves free and the longest wait %v; want 2 free and 8s: every taker counts once", free, longest)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t, fakeclock.New().Now)
		if _, err := s.Reserve(t.Context(), "k", 0, 1); err == nil {
			t.Error("Reserve with perHour 0 succeeded")
		}
	})
}
