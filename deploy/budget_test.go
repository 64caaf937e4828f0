package deploy

import (
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

func TestBudgetIsPerPersonTokenBucket(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	b := newBudget(storage.NewLocalBudgets(func() time.Time { return now }), 3600) // 1 a second, burst 600
	ana := storage.Identity{Team: "T1", User: "UANA"}
	ben := storage.Identity{Team: "T1", User: "UBEN"}
	reserve := func(id storage.Identity) time.Duration {
		t.Helper()
		d, err := b.reserve(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	for i := range 600 {
		if d := reserve(ana); d != 0 {
			t.Fatalf("request %d of the burst waits %v", i+1, d)
		}
	}
	if d := reserve(ana); d != time.Second {
		t.Fatalf("first request past the burst waits %v, want 1s", d)
	}
	if d := reserve(ana); d != 2*time.Second {
		t.Fatalf("second request past the burst waits %v, want 2s (reservations queue)", d)
	}
	// Another person's bucket is untouched.
	if d := reserve(ben); d != 0 {
		t.Fatalf("ben waits %v for ana's spending", d)
	}
	// Refill: after 12 s ana has 10 tokens again (2 were borrowed).
	now = now.Add(12 * time.Second)
	for i := range 10 {
		if d := reserve(ana); d != 0 {
			t.Fatalf("refilled request %d waits %v", i+1, d)
		}
	}
	if d := reserve(ana); d <= 0 {
		t.Fatal("refill went past the rate")
	}
	// The bucket never holds more than the burst.
	now = now.Add(24 * time.Hour)
	for range 600 {
		reserve(ana)
	}
	if d := reserve(ana); d <= 0 {
		t.Fatal("bucket grew past its burst")
	}
}

// TestBudgetIsSharedByReplicas: two services' budgets on one store count a
// person's requests once, whichever replica makes them.
func TestBudgetIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	store := storage.NewLocalBudgets(func() time.Time { return now })
	a, b := newBudget(store, 3600), newBudget(store, 3600)
	ana := storage.Identity{Team: "T1", User: "UANA"}
	for i := range 600 {
		r := a
		if i%2 == 1 {
			r = b
		}
		if d, err := r.reserve(ctx, ana); err != nil || d != 0 {
			t.Fatalf("request %d of the shared burst: %v, %v", i+1, d, err)
		}
	}
	if d, _ := b.reserve(ctx, ana); d != time.Second {
		t.Fatalf("the first request past the burst, on either replica, waits %v; want 1s", d)
	}
}

func TestPollDefaults(t *testing.T) {
	t.Parallel()
	p := PollConfig{}.withDefaults()
	want := PollConfig{Initial: 5 * time.Second, Max: 30 * time.Second, Timeout: 2 * time.Hour, Watchdog: 20 * time.Minute, BudgetPerHour: 1000}
	if p != want {
		t.Fatalf("defaults = %+v, want %+v", p, want)
	}
}
