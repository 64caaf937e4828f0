package storage

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"
)

var watchIDFormat = regexp.MustCompile(`^[0-9]{20}$`)

func testWatch(owner Identity, stack string) Watch {
	return Watch{
		Owner:         owner,
		Channel:       "C1",
		ResponseURL:   "https://hooks.slack.com/actions/T1/" + stack,
		StackUID:      stack,
		StackName:     "Shop " + stack,
		Environment:   "production",
		Params:        map[string]string{"ref": "main", "services": "web", "profile": "fast", "strategy": "rolling"},
		UserReference: "c66bot-" + stack,
	}
}

func mustStartWatch(t *testing.T, s *Store, w Watch) Watch {
	t.Helper()
	got, err := s.StartWatch(t.Context(), w)
	if err != nil {
		t.Fatalf("StartWatch(%s): %v", w.StackUID, err)
	}
	return got
}

func mustSaveWatch(t *testing.T, s *Store, w Watch) {
	t.Helper()
	if err := s.SaveWatch(t.Context(), w); err != nil {
		t.Fatalf("SaveWatch(%s): %v", w.ID, err)
	}
}

func activeIDs(t *testing.T, s *Store) []string {
	t.Helper()
	ws, err := s.ActiveWatches(t.Context())
	if err != nil {
		t.Fatalf("ActiveWatches: %v", err)
	}
	ids := []string{}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	n, err := s.CountActiveWatches(t.Context())
	if err != nil || n != len(ids) {
		t.Errorf("CountActiveWatches = %d, %v; ActiveWatches has %d", n, err, len(ids))
	}
	return ids
}

// sameWatch compares watches field by field; times with Equal, since the
// store drops the monotonic reading and the location.
func sameWatch(a, b Watch) bool {
	ta := []time.Time{a.RequestedAt, a.StartedAt, a.FinishedAt, a.LastChange, a.LastPolled}
	tb := []time.Time{b.RequestedAt, b.StartedAt, b.FinishedAt, b.LastChange, b.LastPolled}
	for i := range ta {
		if !ta[i].Equal(tb[i]) {
			return false
		}
	}
	a.RequestedAt, a.StartedAt, a.FinishedAt, a.LastChange, a.LastPolled = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	b.RequestedAt, b.StartedAt, b.FinishedAt, b.LastChange, b.LastPolled = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !maps.Equal(a.Params, b.Params) {
		return false
	}
	a.Params, b.Params = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestWatchDone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state string
		done  bool
	}{
		{"", false}, {"starting", false}, {"queued", false}, {"deploying", false},
		{"succeeded", true}, {"failed", true}, {"cancelled", true}, {"unknown", true},
	}
	for _, tc := range tests {
		if got := (Watch{State: tc.state}).Done(); got != tc.done {
			t.Errorf("Watch{State: %q}.Done() = %v, want %v", tc.state, got, tc.done)
		}
	}
}

func TestStartWatchClaimsStack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice, bob := Identity{"T1", "UALICE"}, Identity{"T1", "UBOB"}

	first := mustStartWatch(t, s, testWatch(alice, "s1"))
	if !watchIDFormat.MatchString(first.ID) || first.State != "starting" ||
		!first.RequestedAt.Equal(clock.Now()) || !first.LastChange.Equal(clock.Now()) {
		t.Errorf("StartWatch = %+v, want a 20-digit id, state starting, times now", first)
	}

	// Bob deploys the same stack: refused, and told about alice's watch.
	got, err := s.StartWatch(ctx, testWatch(bob, "s1"))
	if !errors.Is(err, ErrStackBusy) {
		t.Fatalf("second StartWatch on s1 = %v, want ErrStackBusy", err)
	}
	if got.ID != first.ID || got.Owner != alice {
		t.Errorf("busy StartWatch returned %+v, want alice's watch %s", got, first.ID)
	}

	// Another stack is fine; ids follow creation order as strings.
	second := mustStartWatch(t, s, testWatch(bob, "s2"))
	if second.ID <= first.ID {
		t.Errorf("second id %s does not sort after first %s", second.ID, first.ID)
	}
	if ids := activeIDs(t, s); !reflect.DeepEqual(ids, []string{first.ID, second.ID}) {
		t.Errorf("ActiveWatches = %v, want [%s %s]", ids, first.ID, second.ID)
	}
	for stack, want := range map[string]Watch{"s1": first, "s2": second} {
		w, err := s.ActiveWatchForStack(ctx, stack)
		if err != nil || !sameWatch(w, want) {
			t.Errorf("ActiveWatchForStack(%s) = %+v, %v\nwant %+v", stack, w, err, want)
		}
	}
	if _, err := s.ActiveWatchForStack(ctx, "s3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActiveWatchForStack(free stack) = %v, want ErrNotFound", err)
	}
}

func TestSaveWatchFinishFreesStack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"T1", "UALICE"}
	w := mustStartWatch(t, s, testWatch(alice, "s1"))

	// Progress keeps the claim.
	clock.Advance(time.Minute)
	w.State, w.ActionID, w.DeploymentID, w.StartedAt, w.LastChange = "deploying", 42, 7, clock.Now(), clock.Now()
	mustSaveWatch(t, s, w)
	if _, err := s.StartWatch(ctx, testWatch(alice, "s1")); !errors.Is(err, ErrStackBusy) {
		t.Fatalf("StartWatch while deploying = %v, want ErrStackBusy", err)
	}
	if got, err := s.ActiveWatchForStack(ctx, "s1"); err != nil || got.State != "deploying" || got.ActionID != 42 {
		t.Errorf("ActiveWatchForStack = %+v, %v", got, err)
	}

	// Finishing frees the stack and leaves history.
	clock.Advance(time.Minute)
	w.State, w.GitHash, w.Message, w.FinishedAt = "succeeded", "abc123", "Deployed", clock.Now()
	mustSaveWatch(t, s, w)
	if ids := activeIDs(t, s); len(ids) != 0 {
		t.Errorf("ActiveWatches after success = %v, want none", ids)
	}
	if _, err := s.ActiveWatchForStack(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActiveWatchForStack after success = %v, want ErrNotFound", err)
	}
	if got, err := s.GetWatch(ctx, w.ID); err != nil || !sameWatch(got, w) {
		t.Errorf("GetWatch of the finished watch = %+v, %v\nwant %+v", got, err, w)
	}
	next := mustStartWatch(t, s, testWatch(alice, "s1"))
	if next.ID == w.ID {
		t.Error("a new watch reused the finished watch's id")
	}

	// A finished watch may be corrected, but not reopened or moved.
	w.Message = "Deployed (corrected)"
	mustSaveWatch(t, s, w)
	if got, _ := s.ActiveWatchForStack(ctx, "s1"); got.ID != next.ID {
		t.Errorf("re-saving the finished watch disturbed the new claim: %+v", got)
	}
	reopen := w
	reopen.State = "deploying"
	if err := s.SaveWatch(ctx, reopen); err == nil {
		t.Error("SaveWatch reopened a finished watch")
	}
	moved := next
	moved.StackUID = "s2"
	if err := s.SaveWatch(ctx, moved); err == nil {
		t.Error("SaveWatch moved a watch to another stack")
	}

	if err := s.SaveWatch(ctx, Watch{ID: "00000000000000009999", StackUID: "s9", State: "failed"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("SaveWatch of an unknown id = %v, want ErrNotFound", err)
	}
	if _, err := s.GetWatch(ctx, "00000000000000009999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetWatch of an unknown id = %v, want ErrNotFound", err)
	}
}

func TestDeleteWatchFreesStack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	alice := Identity{"T1", "UALICE"}
	w := mustStartWatch(t, s, testWatch(alice, "s1"))

	if err := s.DeleteWatch(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWatch(ctx, w.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetWatch after delete = %v, want ErrNotFound", err)
	}
	if ids := activeIDs(t, s); len(ids) != 0 {
		t.Errorf("ActiveWatches after delete = %v", ids)
	}
	if err := s.DeleteWatch(ctx, w.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteWatch = %v, want ErrNotFound", err)
	}
	mustStartWatch(t, s, testWatch(alice, "s1"))
}

func TestStartWatchConcurrent(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		holders = map[string]int{} // id returned with ErrStackBusy
	)
	for i := range n {
		wg.Go(func() {
			w, err := s.StartWatch(t.Context(), testWatch(Identity{"T1", "U" + string(rune('A'+i))}, "s1"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, w.ID)
			case errors.Is(err, ErrStackBusy):
				holders[w.ID]++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d concurrent StartWatch calls succeeded, want exactly 1", len(winners))
	}
	if holders[winners[0]] != n-1 || len(holders) != 1 {
		t.Errorf("busy callers were shown %v, want the winner %s %d times", holders, winners[0], n-1)
	}
	if ids := activeIDs(t, s); len(ids) != 1 {
		t.Errorf("ActiveWatches = %v, want one", ids)
	}
}

func TestWatchSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"E1", "WALICE"}

	// Every field set, to check the whole record round-trips.
	full := testWatch(alice, "s1")
	full.MessageTS = "1717243200.000100"
	full.ActionID, full.DeploymentID, full.Queued, full.State = 9001, 77, true, "queued"
	full.GitHash, full.Message = "deadbeef", "in queue"
	full.StartedAt = clock.Now().Add(time.Second)
	full.LastPolled = clock.Now().Add(2 * time.Second)
	full.Polls, full.WatchdogPosted, full.CancelRequestedBy = 3, true, "UBOB"
	running := mustStartWatch(t, s, full)
	done := mustStartWatch(t, s, testWatch(alice, "s2"))
	done.State = "failed"
	mustSaveWatch(t, s, done)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpenWith(t, Options{Path: s.Path(), Now: clock.Now})
	ws, err := s.ActiveWatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || !sameWatch(ws[0], running) {
		t.Fatalf("ActiveWatches after restart = %+v\nwant [%+v]", ws, running)
	}
	if _, err := s.StartWatch(ctx, testWatch(alice, "s1")); !errors.Is(err, ErrStackBusy) {
		t.Errorf("StartWatch on s1 after restart = %v, want ErrStackBusy", err)
	}
	if got, err := s.GetWatch(ctx, done.ID); err != nil || got.State != "failed" {
		t.Errorf("finished watch after restart = %+v, %v", got, err)
	}
	// Ids keep increasing across restarts.
	if next := mustStartWatch(t, s, testWatch(alice, "s2")); next.ID <= done.ID {
		t.Errorf("id after restart %s does not sort after %s", next.ID, done.ID)
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
	if err := s.DeleteWatch(t.Context(), deleted.ID); err != nil {
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
	clock := newTestClock()
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
	if _, err := s.GetWatch(ctx, old.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("30-day-old finished watch = %v, want swept", err)
	}
	if _, err := s.GetWatch(ctx, recent.ID); err != nil {
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
	if ws, err := s.ActiveWatches(ctx); err != nil || len(ws) != 0 {
		t.Errorf("ActiveWatches under a retired key = %+v, %v; want none", ws, err)
	}
	// The count is of the active set as stored, unreadable entries included,
	// until the sweep.
	if n, err := s.CountActiveWatches(ctx); err != nil || n != 1 {
		t.Errorf("CountActiveWatches before the sweep = %d, %v; want 1", n, err)
	}
	if _, err := s.GetWatch(ctx, w.ID); !errors.Is(err, ErrSealed) {
		t.Errorf("GetWatch under a retired key = %v, want ErrSealed", err)
	}
	if _, err := s.ActiveWatchForStack(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActiveWatchForStack under a retired key = %v, want ErrNotFound", err)
	}
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1", n, err)
	}
	if n, err := s.CountActiveWatches(ctx); err != nil || n != 0 {
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
		stale func(t *testing.T, s *Store)
	}{
		{"claim points nowhere", func(t *testing.T, s *Store) {
			rawPut(t, s, bucketWatchByStack, []byte("s1"), []byte("00000000000000000404"))
		}},
		{"claim's watch no longer opens", func(t *testing.T, s *Store) {
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
			if got, err := s.ActiveWatchForStack(ctx, "s1"); err != nil || got.ID != w.ID {
				t.Errorf("ActiveWatchForStack = %+v, %v; want the new watch", got, err)
			}
			if ids := activeIDs(t, s); !reflect.DeepEqual(ids, []string{w.ID}) {
				t.Errorf("ActiveWatches = %v, want [%s]", ids, w.ID)
			}
		})
	}
}

func TestStartWatchInvalid(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	alice := Identity{"T1", "UALICE"}
	tests := []struct {
		name string
		w    Watch
	}{
		{"no owner", Watch{StackUID: "s1"}},
		{"invalid owner", Watch{Owner: Identity{"T1", ""}, StackUID: "s1"}},
		{"no stack", Watch{Owner: alice}},
		{"already finished", Watch{Owner: alice, StackUID: "s1", State: "succeeded"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.StartWatch(t.Context(), tc.w); err == nil || errors.Is(err, ErrStackBusy) {
				t.Errorf("StartWatch = %v, want a validation error", err)
			}
		})
	}
	if err := s.SaveWatch(t.Context(), Watch{StackUID: "s1"}); err == nil {
		t.Error("SaveWatch without an id succeeded")
	}
}
