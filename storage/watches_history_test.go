package storage

import (
	"testing"
	"time"
)

func TestWatchesForStack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	ana := Identity{"T1", "U1"}

	old, err := s.StartWatch(ctx, testWatch(ana, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	old.State = "succeeded"
	if err := s.SaveWatch(ctx, old); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Hour)
	since := clock.Now()
	clock.Advance(time.Minute)
	recent, err := s.StartWatch(ctx, testWatch(ana, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartWatch(ctx, testWatch(ana, "api")); err != nil {
		t.Fatal(err)
	}

	got, err := s.WatchesForStack(ctx, "shop", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != recent.ID {
		t.Fatalf("WatchesForStack(shop, since) = %+v, want only the recent one", got)
	}
	all, err := s.WatchesForStack(ctx, "shop", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != old.ID || all[1].ID != recent.ID {
		t.Fatalf("WatchesForStack(shop, zero) = %d watches, want both, oldest first", len(all))
	}
}
