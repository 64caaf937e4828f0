package storage

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustFirstTime(t *testing.T, s *Store, key string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.FirstTime(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("FirstTime(%q): %v", key, err)
	}
	if got != want {
		t.Errorf("FirstTime(%q) = %v, want %v", key, got, want)
	}
}

func TestFirstTime(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})

	mustFirstTime(t, s, "env-1", time.Minute, true)
	mustFirstTime(t, s, "env-1", time.Minute, false)
	mustFirstTime(t, s, "env-2", time.Minute, true)

	clock.Advance(59 * time.Second)
	mustFirstTime(t, s, "env-1", time.Minute, false)

	clock.Advance(time.Second)
	mustFirstTime(t, s, "env-1", time.Minute, true)
	mustFirstTime(t, s, "env-1", time.Minute, false)
}

func TestFirstTimeInvalid(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	tests := []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"empty key", "", time.Minute},
		{"zero ttl", "k", 0},
		{"negative ttl", "k", -time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.FirstTime(t.Context(), tc.key, tc.ttl); err == nil {
				t.Error("FirstTime succeeded")
			}
		})
	}
}

func TestFirstTimeConcurrent(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	var (
		wg     sync.WaitGroup
		firsts atomic.Int32
	)
	for range 32 {
		wg.Go(func() {
			ok, err := s.FirstTime(t.Context(), "click-1", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if n := firsts.Load(); n != 1 {
		t.Errorf("%d concurrent callers saw the key first, want exactly 1", n)
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)

	mustFirstTime(t, s, "announce-1", time.Hour, true)
	mustFirstTime(t, s, "announce-2", time.Hour, true)
	if err := s.Forget(ctx, "announce-1"); err != nil {
		t.Fatal(err)
	}
	// Forgotten: the retry gets through; the other key is untouched.
	mustFirstTime(t, s, "announce-1", time.Hour, true)
	mustFirstTime(t, s, "announce-2", time.Hour, false)

	for _, key := range []string{"never-seen", "announce-3"} {
		if err := s.Forget(ctx, key); err != nil {
			t.Errorf("Forget(%q) of an unknown key = %v, want nil", key, err)
		}
	}
	if err := s.Forget(ctx, ""); err == nil {
		t.Error("Forget of an empty key succeeded")
	}
}
