package storagetest

import (
	"testing"
	"time"
)

// TestDedup runs the contract of the DedupStore: a key is a first time once
// until its ttl runs out, or until forgotten.
func TestDedup(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"FirstTime", testFirstTime},
		{"FirstTimeInvalid", testFirstTimeInvalid},
		{"FirstTimeConcurrent", testFirstTimeConcurrent},
		{"Forget", testForget},
	})
}

func mustFirstTime(t *testing.T, s Stores, key string, ttl time.Duration, want bool) {
	t.Helper()
	got, err := s.Dedup.FirstTime(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("FirstTime(%q): %v", key, err)
	}
	if got != want {
		t.Errorf("FirstTime(%q) = %v, want %v", key, got, want)
	}
}

func testFirstTime(t *testing.T, open Opener) {
	s, clock := begin(t, open)

	mustFirstTime(t, s, "env-1", time.Minute, true)
	mustFirstTime(t, s, "env-1", time.Minute, false)
	mustFirstTime(t, s, "env-2", time.Minute, true)

	clock.Advance(59 * time.Second)
	mustFirstTime(t, s, "env-1", time.Minute, false)

	clock.Advance(time.Second)
	mustFirstTime(t, s, "env-1", time.Minute, true)
	mustFirstTime(t, s, "env-1", time.Minute, false)
}

func testFirstTimeInvalid(t *testing.T, open Opener) {
	s, _ := begin(t, open)
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
			if _, err := s.Dedup.FirstTime(t.Context(), tc.key, tc.ttl); err == nil {
				t.Error("FirstTime succeeded")
			}
		})
	}
}

func testFirstTimeConcurrent(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	firsts := winners(t, 32, func(int) (bool, error) {
		return s.Dedup.FirstTime(t.Context(), "click-1", time.Minute)
	})
	if firsts != 1 {
		t.Errorf("%d concurrent callers saw the key first, want exactly 1", firsts)
	}
}

func testForget(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()

	mustFirstTime(t, s, "announce-1", time.Hour, true)
	mustFirstTime(t, s, "announce-2", time.Hour, true)
	if err := s.Dedup.Forget(ctx, "announce-1"); err != nil {
		t.Fatal(err)
	}
	// Forgotten: the retry gets through; the other key is untouched.
	mustFirstTime(t, s, "announce-1", time.Hour, true)
	mustFirstTime(t, s, "announce-2", time.Hour, false)

	for _, key := range []string{"never-seen", "announce-3"} {
		if err := s.Dedup.Forget(ctx, key); err != nil {
			t.Errorf("Forget(%q) of an unknown key = %v, want nil", key, err)
		}
	}
	if err := s.Dedup.Forget(ctx, ""); err == nil {
		t.Error("Forget of an empty key succeeded")
	}
}
