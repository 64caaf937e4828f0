package deploy

import (
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

func TestBudgetIsPerPersonTokenBucket(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	b := newBudget(3600, func() time.Time { return now }) // 1 a second, burst 600
	ana := storage.Identity{Team: "T1", User: "UANA"}
	ben := storage.Identity{Team: "T1", User: "UBEN"}

	for i := range 600 {
		if d := b.reserve(ana); d != 0 {
			t.Fatalf("request %d of the burst waits %v", i+1, d)
		}
	}
	if d := b.reserve(ana); d != time.Second {
		t.Fatalf("first request past the burst waits %v, want 1s", d)
	}
	if d := b.reserve(ana); d != 2*time.Second {
		t.Fatalf("second request past the burst waits %v, want 2s (reservations queue)", d)
	}
	// Another person's bucket is untouched.
	if d := b.reserve(ben); d != 0 {
		t.Fatalf("ben waits %v for ana's spending", d)
	}
	// Refill: after 12 s ana has 10 tokens again (2 were borrowed).
	now = now.Add(12 * time.Second)
	for i := range 10 {
		if d := b.reserve(ana); d != 0 {
			t.Fatalf("refilled request %d waits %v", i+1, d)
		}
	}
	if d := b.reserve(ana); d <= 0 {
		t.Fatal("refill went past the rate")
	}
	// The bucket never holds more than the burst.
	now = now.Add(24 * time.Hour)
	for range 600 {
		b.reserve(ana)
	}
	if d := b.reserve(ana); d <= 0 {
		t.Fatal("bucket grew past its burst")
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
