package storagetest

import (
	"errors"
	"maps"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestWatches runs the contract of the WatchStore: one unfinished watch per
// stack, finishing frees the stack, history by stack, survival over a
// restart.
func TestWatches(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"StartClaimsStack", testStartWatchClaimsStack},
		{"SaveFinishFreesStack", testSaveWatchFinishFreesStack},
		{"DeleteFreesStack", testDeleteWatchFreesStack},
		{"StartConcurrent", testStartWatchConcurrent},
		{"SurvivesRestart", testWatchSurvivesRestart},
		{"StartInvalid", testStartWatchInvalid},
		{"ForStack", testWatchesForStack},
	})
}

var watchIDFormat = regexp.MustCompile(`^[0-9]{20}$`)

func testWatch(owner storage.Identity, stack string) storage.Watch {
	return storage.Watch{
		Owner:         owner,
		Channel:       "C1",
		ResponseURL:   "https://hooks.slack.com/actions/T1/" + stack,
		StackUID:      stack,
		StackName:     "Shop " + stack,
		Environment:   "production",
		Verb:          "rollback",
		Params:        map[string]string{"ref": "main", "services": "web", "profile": "fast", "strategy": "rolling"},
		UserReference: "c66bot-" + stack,
	}
}

func mustStartWatch(t *testing.T, s Stores, w storage.Watch) storage.Watch {
	t.Helper()
	got, err := s.Watches.Start(t.Context(), w)
	if err != nil {
		t.Fatalf("Watches.Start(%s): %v", w.StackUID, err)
	}
	return got
}

func mustSaveWatch(t *testing.T, s Stores, w storage.Watch) {
	t.Helper()
	if err := s.Watches.Save(t.Context(), w); err != nil {
		t.Fatalf("Watches.Save(%s): %v", w.ID, err)
	}
}

func activeIDs(t *testing.T, s Stores) []string {
	t.Helper()
	ws, err := s.Watches.Active(t.Context())
	if err != nil {
		t.Fatalf("Watches.Active: %v", err)
	}
	ids := []string{}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	n, err := s.Watches.CountActive(t.Context())
	if err != nil || n != len(ids) {
		t.Errorf("Watches.CountActive = %d, %v; Watches.Active has %d", n, err, len(ids))
	}
	return ids
}

// sameWatch compares watches field by field; times with Equal, since the
// store drops the monotonic reading and the location.
func sameWatch(a, b storage.Watch) bool {
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

func testStartWatchClaimsStack(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice, bob := storage.Identity{Team: "T1", User: "UALICE"}, storage.Identity{Team: "T1", User: "UBOB"}

	first := mustStartWatch(t, s, testWatch(alice, "s1"))
	if !watchIDFormat.MatchString(first.ID) || first.State != "starting" ||
		!first.RequestedAt.Equal(clock.Now()) || !first.LastChange.Equal(clock.Now()) {
		t.Errorf("Watches.Start = %+v, want a 20-digit id, state starting, times now", first)
	}

	// Bob deploys the same stack: refused, and told about alice's watch.
	got, err := s.Watches.Start(ctx, testWatch(bob, "s1"))
	if !errors.Is(err, storage.ErrStackBusy) {
		t.Fatalf("second Watches.Start on s1 = %v, want storage.ErrStackBusy", err)
	}
	if got.ID != first.ID || got.Owner != alice {
		t.Errorf("busy Watches.Start returned %+v, want alice's watch %s", got, first.ID)
	}

	// Another stack is fine; ids follow creation order as strings.
	second := mustStartWatch(t, s, testWatch(bob, "s2"))
	if second.ID <= first.ID {
		t.Errorf("second id %s does not sort after first %s", second.ID, first.ID)
	}
	if ids := activeIDs(t, s); !reflect.DeepEqual(ids, []string{first.ID, second.ID}) {
		t.Errorf("Watches.Active = %v, want [%s %s]", ids, first.ID, second.ID)
	}
	for stack, want := range map[string]storage.Watch{"s1": first, "s2": second} {
		w, err := s.Watches.ActiveForStack(ctx, stack)
		if err != nil || !sameWatch(w, want) {
			t.Errorf("Watches.ActiveForStack(%s) = %+v, %v\nwant %+v", stack, w, err, want)
		}
	}
	if _, err := s.Watches.ActiveForStack(ctx, "s3"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Watches.ActiveForStack(free stack) = %v, want storage.ErrNotFound", err)
	}
}

func testSaveWatchFinishFreesStack(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "T1", User: "UALICE"}
	w := mustStartWatch(t, s, testWatch(alice, "s1"))

	// Progress keeps the claim.
	clock.Advance(time.Minute)
	w.State, w.ActionID, w.DeploymentID, w.StartedAt, w.LastChange = "deploying", 42, 7, clock.Now(), clock.Now()
	mustSaveWatch(t, s, w)
	if _, err := s.Watches.Start(ctx, testWatch(alice, "s1")); !errors.Is(err, storage.ErrStackBusy) {
		t.Fatalf("Watches.Start while deploying = %v, want storage.ErrStackBusy", err)
	}
	if got, err := s.Watches.ActiveForStack(ctx, "s1"); err != nil || got.State != "deploying" || got.ActionID != 42 {
		t.Errorf("Watches.ActiveForStack = %+v, %v", got, err)
	}

	// Finishing frees the stack and leaves history.
	clock.Advance(time.Minute)
	w.State, w.GitHash, w.Message, w.FinishedAt = "succeeded", "abc123", "Deployed", clock.Now()
	mustSaveWatch(t, s, w)
	if ids := activeIDs(t, s); len(ids) != 0 {
		t.Errorf("Watches.Active after success = %v, want none", ids)
	}
	if _, err := s.Watches.ActiveForStack(ctx, "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Watches.ActiveForStack after success = %v, want storage.ErrNotFound", err)
	}
	if got, err := s.Watches.Get(ctx, w.ID); err != nil || !sameWatch(got, w) {
		t.Errorf("Watches.Get of the finished watch = %+v, %v\nwant %+v", got, err, w)
	}
	next := mustStartWatch(t, s, testWatch(alice, "s1"))
	if next.ID == w.ID {
		t.Error("a new watch reused the finished watch's id")
	}

	// A finished watch may be corrected, but not reopened or moved.
	w.Message = "Deployed (corrected)"
	mustSaveWatch(t, s, w)
	if got, _ := s.Watches.ActiveForStack(ctx, "s1"); got.ID != next.ID {
		t.Errorf("re-saving the finished watch disturbed the new claim: %+v", got)
	}
	reopen := w
	reopen.State = "deploying"
	if err := s.Watches.Save(ctx, reopen); err == nil {
		t.Error("Watches.Save reopened a finished watch")
	}
	moved := next
	moved.StackUID = "s2"
	if err := s.Watches.Save(ctx, moved); err == nil {
		t.Error("Watches.Save moved a watch to another stack")
	}

	if err := s.Watches.Save(ctx, storage.Watch{ID: "00000000000000009999", StackUID: "s9", State: "failed"}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Watches.Save of an unknown id = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Watches.Get(ctx, "00000000000000009999"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Watches.Get of an unknown id = %v, want storage.ErrNotFound", err)
	}
}

func testDeleteWatchFreesStack(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "T1", User: "UALICE"}
	w := mustStartWatch(t, s, testWatch(alice, "s1"))

	if err := s.Watches.Delete(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watches.Get(ctx, w.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Watches.Get after delete = %v, want storage.ErrNotFound", err)
	}
	if ids := activeIDs(t, s); len(ids) != 0 {
		t.Errorf("Watches.Active after delete = %v", ids)
	}
	if err := s.Watches.Delete(ctx, w.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Watches.Delete = %v, want storage.ErrNotFound", err)
	}
	mustStartWatch(t, s, testWatch(alice, "s1"))
}

func testStartWatchConcurrent(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	const n = 16
	var (
		mu      sync.Mutex
		winners []string
		holders = map[string]int{} // id returned with storage.ErrStackBusy
	)
	atOnce(n, func(i int) {
		w, err := s.Watches.Start(t.Context(), testWatch(storage.Identity{Team: "T1", User: "U" + string(rune('A'+i))}, "s1"))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			winners = append(winners, w.ID)
		case errors.Is(err, storage.ErrStackBusy):
			holders[w.ID]++
		default:
			t.Error(err)
		}
	})
	if len(winners) != 1 {
		t.Fatalf("%d concurrent Watches.Start calls succeeded, want exactly 1", len(winners))
	}
	if holders[winners[0]] != n-1 || len(holders) != 1 {
		t.Errorf("busy callers were shown %v, want the winner %s %d times", holders, winners[0], n-1)
	}
	if ids := activeIDs(t, s); len(ids) != 1 {
		t.Errorf("Watches.Active = %v, want one", ids)
	}
}

func testWatchSurvivesRestart(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "E1", User: "WALICE"}

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
	s = s.Reopen()
	ws, err := s.Watches.Active(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || !sameWatch(ws[0], running) {
		t.Fatalf("Watches.Active after restart = %+v\nwant [%+v]", ws, running)
	}
	if _, err := s.Watches.Start(ctx, testWatch(alice, "s1")); !errors.Is(err, storage.ErrStackBusy) {
		t.Errorf("Watches.Start on s1 after restart = %v, want storage.ErrStackBusy", err)
	}
	if got, err := s.Watches.Get(ctx, done.ID); err != nil || got.State != "failed" {
		t.Errorf("finished watch after restart = %+v, %v", got, err)
	}
	// Ids keep increasing across restarts.
	if next := mustStartWatch(t, s, testWatch(alice, "s2")); next.ID <= done.ID {
		t.Errorf("id after restart %s does not sort after %s", next.ID, done.ID)
	}
}

func testStartWatchInvalid(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	alice := storage.Identity{Team: "T1", User: "UALICE"}
	tests := []struct {
		name string
		w    storage.Watch
	}{
		{"no owner", storage.Watch{StackUID: "s1"}},
		{"invalid owner", storage.Watch{Owner: storage.Identity{Team: "T1", User: ""}, StackUID: "s1"}},
		{"no stack", storage.Watch{Owner: alice}},
		{"already finished", storage.Watch{Owner: alice, StackUID: "s1", State: "succeeded"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.Watches.Start(t.Context(), tc.w); err == nil || errors.Is(err, storage.ErrStackBusy) {
				t.Errorf("Watches.Start = %v, want a validation error", err)
			}
		})
	}
	if err := s.Watches.Save(t.Context(), storage.Watch{StackUID: "s1"}); err == nil {
		t.Error("Watches.Save without an id succeeded")
	}
}

func testWatchesForStack(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	ana := storage.Identity{Team: "T1", User: "U1"}

	old, err := s.Watches.Start(ctx, testWatch(ana, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	old.State = "succeeded"
	if err := s.Watches.Save(ctx, old); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Hour)
	since := clock.Now()
	clock.Advance(time.Minute)
	recent, err := s.Watches.Start(ctx, testWatch(ana, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Watches.Start(ctx, testWatch(ana, "api")); err != nil {
		t.Fatal(err)
	}

	got, err := s.Watches.ForStack(ctx, "shop", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != recent.ID {
		t.Fatalf("Watches.ForStack(shop, since) = %+v, want only the recent one", got)
	}
	all, err := s.Watches.ForStack(ctx, "shop", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != old.ID || all[1].ID != recent.ID {
		t.Fatalf("Watches.ForStack(shop, zero) = %d watches, want both, oldest first", len(all))
	}
}
