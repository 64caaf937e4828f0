package storage

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
)

// TestWatchStateFinal pins which states are final, and how each is spelt:
// the spelling is what watches hold on disk, so it must never change.
func TestWatchStateFinal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state WatchState
		spelt string
		final bool
	}{
		{"", "", false},
		{WatchStarting, "starting", false}, {WatchQueued, "queued", false}, {WatchDeploying, "deploying", false},
		{WatchSucceeded, "succeeded", true}, {WatchFailed, "failed", true}, {WatchCancelled, "cancelled", true}, {WatchUnknown, "unknown", true},
	}
	for _, tc := range tests {
		if string(tc.state) != tc.spelt {
			t.Errorf("state %q is spelt %q on disk, want %q", tc.state, string(tc.state), tc.spelt)
		}
		if got := tc.state.Final(); got != tc.final {
			t.Errorf("WatchState(%q).Final() = %v, want %v", tc.state, got, tc.final)
		}
		if got := (Watch{State: tc.state}).Done(); got != tc.final {
			t.Errorf("Watch{State: %q}.Done() = %v, want %v", tc.state, got, tc.final)
		}
	}
}

func TestWatchSecretsNeverReachTheFile(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	owner := Identity{"T0SECRET", "U0SECRET"}
	w := testWatch(owner, "s1")
	w.ResponseURL = "https://hooks.slack.com/actions/T0SECRET/c66-secret-watch-response-url"
	w = mustStartWatch(t, s, w)
	w.State = "deploying"
	mustSaveWatch(t, s, w)
	w.State = "succeeded"
	mustSaveWatch(t, s, w)
	deleted := testWatch(owner, "s2")
	deleted.ResponseURL = "https://hooks.slack.com/actions/T0SECRET/c66-secret-deleted-response-url"
	deleted = mustStartWatch(t, s, deleted)
	if err := s.Watches().Delete(t.Context(), deleted.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"response_url":         w.ResponseURL,
		"deleted response_url": deleted.ResponseURL,
		"any marked secret":    "c66-secret",
		"user reference":       w.UserReference,
	} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("database file contains the %s", name)
		}
	}
	// Sanity: watch ids are keys, stored in the clear, so the scan really
	// looked at the data pages.
	if !bytes.Contains(raw, []byte(w.ID)) {
		t.Error("database file does not contain the watch id; is the scan looking at the right file?")
	}
}

func TestSweepWatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"T1", "UALICE"}

	old := mustStartWatch(t, s, testWatch(alice, "s1"))
	old.State = "succeeded" // FinishedAt left zero: the save time counts
	mustSaveWatch(t, s, old)
	longRunning := mustStartWatch(t, s, testWatch(alice, "s2"))

	clock.Advance(20 * 24 * time.Hour)
	recent := mustStartWatch(t, s, testWatch(alice, "s3"))
	recent.State, recent.FinishedAt = "cancelled", clock.Now()
	mustSaveWatch(t, s, recent)
	// Re-saving the old one later must not restart its 30 days.
	old.Message = "late note"
	mustSaveWatch(t, s, old)

	clock.Advance(10 * 24 * time.Hour)
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Errorf("SweepExpired at 30 days = %d, %v; want 1", n, err)
	}
	if _, err := s.Watches().Get(ctx, old.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("30-day-old finished watch = %v, want swept", err)
	}
	if _, err := s.Watches().Get(ctx, recent.ID); err != nil {
		t.Errorf("10-day-old finished watch: %v", err)
	}
	// An unfinished watch is never swept for age.
	if ids := activeIDs(t, s); !reflect.DeepEqual(ids, []string{longRunning.ID}) {
		t.Errorf("ActiveWatches after the sweep = %v, want [%s]", ids, longRunning.ID)
	}
	if n, err := s.SweepExpired(ctx); err != nil || n != 0 {
		t.Errorf("second SweepExpired = %d, %v; want 0", n, err)
	}
}

func TestSweepDropsWatchesItCannotOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice := Identity{"T1", "UALICE"}
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	w := mustStartWatch(t, s, testWatch(alice, "s1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Its key retired, the watch cannot be resumed. (Open would refuse a key
	// that opens nothing at all; the sweep is what is under test here.)
	s = mustOpenWith(t, Options{Path: s.Path(), Keys: [][]byte{testKey("B")}, SkipKeyCheck: true})
	if ws, err := s.Watches().Active(ctx); err != nil || len(ws) != 0 {
		t.Errorf("ActiveWatches under a retired key = %+v, %v; want none", ws, err)
	}
	// The count is of the active set as stored, unreadable entries included,
	// until the sweep.
	if n, err := s.Watches().CountActive(ctx); err != nil || n != 1 {
		t.Errorf("CountActiveWatches before the sweep = %d, %v; want 1", n, err)
	}
	if _, err := s.Watches().Get(ctx, w.ID); !errors.Is(err, ErrSealed) {
		t.Errorf("GetWatch under a retired key = %v, want ErrSealed", err)
	}
	if _, err := s.Watches().ActiveForStack(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActiveWatchForStack under a retired key = %v, want ErrNotFound", err)
	}
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1", n, err)
	}
	if n, err := s.Watches().CountActive(ctx); err != nil || n != 0 {
		t.Errorf("CountActiveWatches after the sweep = %d, %v; want 0", n, err)
	}
	mustStartWatch(t, s, testWatch(alice, "s1"))
}

func TestStartWatchTakesOverStaleClaim(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	alice := Identity{"T1", "UALICE"}
	tests := []struct {
		name  string
		stale func(t *testing.T, s *DB)
	}{
		{"claim points nowhere", func(t *testing.T, s *DB) {
			rawPut(t, s, bucketWatchByStack, []byte("s1"), []byte("00000000000000000404"))
		}},
		{"claim's watch no longer opens", func(t *testing.T, s *DB) {
			w := mustStartWatch(t, s, testWatch(alice, "s1"))
			rawPut(t, s, bucketWatches, []byte(w.ID), []byte("not a sealed value"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustOpen(t)
			tc.stale(t, s)
			w := mustStartWatch(t, s, testWatch(alice, "s1"))
			if got, err := s.Watches().ActiveForStack(ctx, "s1"); err != nil || got.ID != w.ID {
				t.Errorf("ActiveWatchForStack = %+v, %v; want the new watch", got, err)
			}
			if ids := activeIDs(t, s); !reflect.DeepEqual(ids, []string{w.ID}) {
				t.Errorf("ActiveWatches = %v, want [%s]", ids, w.ID)
			}
		})
	}
}
