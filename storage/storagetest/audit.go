package storagetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
	"github.com/c66bot/c66bot/storage"
)

// TestAudit runs the contract of the AuditStore: entries numbered in order,
// scanned from a time, fn free to call the stores.
func TestAudit(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"Append", testAppendAudit},
		{"ScanSince", testScanAuditSince},
		{"ScanStopsAtError", testScanAuditStopsAtError},
		{"ScanManyEntries", testScanAuditManyEntries},
		{"ScanCallsStores", testScanAuditCallsStore},
		{"AppendFailureIsErrNotAudited", testAppendAuditFailureIsErrNotAudited},
	})
}

// scanAll collects what Audit.Scan passes to fn.
func scanAll(t *testing.T, s Stores, since time.Time) []storage.AuditEntry {
	t.Helper()
	var got []storage.AuditEntry
	if err := s.Audit.Scan(t.Context(), since, func(e storage.AuditEntry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatalf("Audit.Scan: %v", err)
	}
	return got
}

func testAppendAudit(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()

	want := storage.AuditEntry{
		Team: "T1", User: "U1", Channel: "C1", Action: "deploy",
		StackUID: "s1", StackName: "Shop",
		Args:   map[string]string{"ref": "main"},
		Result: "ok", Cloud66ActionID: 9001, Detail: "redeploy queued",
	}
	first, err := s.Audit.Append(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq == 0 || !first.At.Equal(clock.Now()) {
		t.Errorf("Audit.Append = seq %d at %v, want a non-zero seq at %v", first.Seq, first.At, clock.Now())
	}
	given := clock.Now().Add(-time.Hour)
	second, err := s.Audit.Append(ctx, storage.AuditEntry{Action: "lock", At: given, Seq: 12345})
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq <= first.Seq || !second.At.Equal(given) {
		t.Errorf("second entry = seq %d at %v, want seq > %d (caller's ignored) at %v", second.Seq, second.At, first.Seq, given)
	}

	got := scanAll(t, s, time.Time{})
	if len(got) != 2 {
		t.Fatalf("Audit.Scan returned %d entries, want 2", len(got))
	}
	e := got[0]
	if e.Seq != first.Seq || !e.At.Equal(first.At) || e.Team != want.Team || e.User != want.User ||
		e.Channel != want.Channel || e.Action != want.Action || e.StackUID != want.StackUID ||
		e.StackName != want.StackName || !maps.Equal(e.Args, want.Args) || e.Result != want.Result ||
		e.Cloud66ActionID != want.Cloud66ActionID || e.Detail != want.Detail {
		t.Errorf("scanned entry = %+v\nwant %+v", e, first)
	}

	if _, err := s.Audit.Append(ctx, storage.AuditEntry{User: "U1"}); err == nil {
		t.Error("Audit.Append without an Action succeeded")
	}
}

func testScanAuditSince(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	start := clock.Now()
	for i := range 5 {
		if _, err := s.Audit.Append(t.Context(), storage.AuditEntry{Action: fmt.Sprintf("a%d", i)}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}

	tests := []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"zero means all", time.Time{}, []string{"a0", "a1", "a2", "a3", "a4"}},
		{"inclusive", start.Add(2 * time.Minute), []string{"a2", "a3", "a4"}},
		{"between entries", start.Add(150 * time.Second), []string{"a3", "a4"}},
		{"after the last", start.Add(time.Hour), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, e := range scanAll(t, s, tc.since) {
				got = append(got, e.Action)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Audit.Scan since %v = %v, want %v", tc.since, got, tc.want)
			}
		})
	}
}

func testScanAuditStopsAtError(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	// More than one batch, so the stop is checked across batches too.
	// More than 500 (a batch of the bbolt backend), so the stop is checked
	// across batches in a backend that reads the log in batches.
	const n = 510
	for i := range n {
		if _, err := s.Audit.Append(t.Context(), storage.AuditEntry{Action: "deploy", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	for _, at := range []int{0, 499, 503} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := s.Audit.Scan(t.Context(), time.Time{}, func(storage.AuditEntry) error {
				calls++
				if calls == at+1 {
					return stop
				}
				return nil
			})
			// == rather than errors.Is: fn's error is returned unwrapped.
			if err != stop {
				t.Errorf("Audit.Scan = %v, want fn's error unwrapped", err)
			}
			if calls != at+1 {
				t.Errorf("fn called %d times, want %d", calls, at+1)
			}
		})
	}
}

func testScanAuditManyEntries(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	const n = 1200 // two full batches and part of a third
	for i := range n {
		if _, err := s.Audit.Append(t.Context(), storage.AuditEntry{Action: "deploy", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := scanAll(t, s, time.Time{})
	if len(got) != n {
		t.Fatalf("Audit.Scan returned %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Detail != fmt.Sprint(i) || (i > 0 && e.Seq <= got[i-1].Seq) {
			t.Fatalf("entry %d = seq %d detail %q; want detail %d in increasing seq", i, e.Seq, e.Detail, i)
		}
	}
}

// testScanAuditCallsStore checks the promise that fn runs outside any
// transaction, so it may call the stores, here to write.
func testScanAuditCallsStore(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	for range 3 {
		if _, err := s.Audit.Append(t.Context(), storage.AuditEntry{Action: "deploy"}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Audit.Scan(t.Context(), time.Time{}, func(e storage.AuditEntry) error {
		_, err := s.Audit.Append(t.Context(), storage.AuditEntry{Action: "audit.read", Detail: fmt.Sprint(e.Seq)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuditedWrites runs the contract of the writes that take their audit
// entries: the change and its entries commit together or not at all, and a
// write that changes nothing appends nothing. It spans the stores, since
// the entries land in the AuditStore of the same database.
func TestAuditedWrites(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"CommitWithTheirEntryOrNotAtAll", testAuditedWritesCommitWithTheirEntryOrNotAtAll},
		{"WithoutChangeAppendNothing", testAuditedWriteWithoutChangeAppendsNothing},
	})
}

// unwritable is an entry the audit log cannot take: JSON has no year 10000.
var unwritable = storage.AuditEntry{Action: "x", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}

// Every audited write commits its change and its entry together, or
// neither: with an entry that cannot be written the change is refused with
// storage.ErrNotAudited and the store is as it was.
func testAuditedWritesCommitWithTheirEntryOrNotAtAll(t *testing.T, open Opener) {
	t.Parallel()
	ctx := context.Background()
	ana := storage.Identity{Team: "T1", User: "UANA"}
	sub := storage.Subscription{Team: "T1", Channel: "C1", StackUID: "s1", StackName: "shop", Subscriber: ana, Events: []string{"deploy.failed"}}
	startWatch := func(t *testing.T, s Stores) {
		if _, err := s.Watches.Start(ctx, storage.Watch{Owner: ana, StackUID: "s1"}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, s Stores)
		write   func(s Stores, e storage.AuditEntry) error
		changed func(t *testing.T, s Stores) bool
	}{
		{
			name: "Watches.Start",
			write: func(s Stores, e storage.AuditEntry) error {
				_, err := s.Watches.Start(ctx, storage.Watch{Owner: ana, StackUID: "s1"}, e)
				return err
			},
			changed: func(t *testing.T, s Stores) bool {
				_, err := s.Watches.ActiveForStack(ctx, "s1")
				return err == nil
			},
		},
		{
			name:    "Watches.Save",
			prepare: startWatch,
			write: func(s Stores, e storage.AuditEntry) error {
				w, err := s.Watches.ActiveForStack(ctx, "s1")
				if err != nil {
					return err
				}
				w.State = "succeeded"
				return s.Watches.Save(ctx, w, e)
			},
			changed: func(t *testing.T, s Stores) bool {
				_, err := s.Watches.ActiveForStack(ctx, "s1")
				return errors.Is(err, storage.ErrNotFound)
			},
		},
		{
			name:    "Watches.Delete",
			prepare: startWatch,
			write: func(s Stores, e storage.AuditEntry) error {
				w, err := s.Watches.ActiveForStack(ctx, "s1")
				if err != nil {
					return err
				}
				return s.Watches.Delete(ctx, w.ID, e)
			},
			changed: func(t *testing.T, s Stores) bool {
				_, err := s.Watches.ActiveForStack(ctx, "s1")
				return errors.Is(err, storage.ErrNotFound)
			},
		},
		{
			name: "Locks.Acquire",
			write: func(s Stores, e storage.AuditEntry) error {
				_, _, err := s.Locks.Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana}, e)
				return err
			},
			changed: func(t *testing.T, s Stores) bool { _, err := s.Locks.Get(ctx, "T1", "s1"); return err == nil },
		},
		{
			name: "Locks.Release",
			prepare: func(t *testing.T, s Stores) {
				if _, _, err := s.Locks.Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s Stores, e storage.AuditEntry) error { _, err := s.Locks.Release(ctx, "T1", "s1", e); return err },
			changed: func(t *testing.T, s Stores) bool {
				_, err := s.Locks.Get(ctx, "T1", "s1")
				return errors.Is(err, storage.ErrNotFound)
			},
		},
		{
			name: "Links.Save",
			write: func(s Stores, e storage.AuditEntry) error {
				return s.Links.Save(ctx, storage.Link{Identity: ana, AccessToken: "tok"}, e)
			},
			changed: func(t *testing.T, s Stores) bool { _, err := s.Links.Get(ctx, ana); return err == nil },
		},
		{
			name: "Links.Delete",
			prepare: func(t *testing.T, s Stores) {
				if err := s.Links.Save(ctx, storage.Link{Identity: ana, AccessToken: "tok"}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s Stores, e storage.AuditEntry) error { _, err := s.Links.Delete(ctx, ana, e); return err },
			changed: func(t *testing.T, s Stores) bool {
				_, err := s.Links.Get(ctx, ana)
				return errors.Is(err, storage.ErrNotFound)
			},
		},
		{
			name: "Subscribe",
			write: func(s Stores, e storage.AuditEntry) error {
				_, _, err := s.Subscriptions.Subscribe(ctx, sub, e)
				return err
			},
			changed: func(t *testing.T, s Stores) bool {
				subs, err := s.Subscriptions.ForChannel(ctx, "T1", "C1")
				return err == nil && len(subs) == 1
			},
		},
		{
			name: "Unsubscribe",
			prepare: func(t *testing.T, s Stores) {
				if _, _, err := s.Subscriptions.Subscribe(ctx, sub); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s Stores, e storage.AuditEntry) error {
				_, err := s.Subscriptions.Unsubscribe(ctx, "T1", "C1", "s1", e)
				return err
			},
			changed: func(t *testing.T, s Stores) bool {
				subs, err := s.Subscriptions.ForChannel(ctx, "T1", "C1")
				return err == nil && len(subs) == 0
			},
		},
		{
			name: "APITokens.Create",
			write: func(s Stores, e storage.AuditEntry) error {
				_, _, err := s.APITokens.Create(ctx, "ci", []string{"notify"}, e)
				return err
			},
			changed: func(t *testing.T, s Stores) bool {
				ts, err := s.APITokens.List(ctx)
				return err == nil && len(ts) == 1
			},
		},
		{
			name: "APITokens.Revoke",
			prepare: func(t *testing.T, s Stores) {
				if _, _, err := s.APITokens.Create(ctx, "ci", []string{"notify"}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s Stores, e storage.AuditEntry) error { _, err := s.APITokens.Revoke(ctx, "ci", e); return err },
			changed: func(t *testing.T, s Stores) bool {
				ts, err := s.APITokens.List(ctx)
				return err == nil && len(ts) == 1 && ts[0].Revoked
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, audited := range []bool{true, false} {
				s := open(t, fakeclock.New().Now)
				if tt.prepare != nil {
					tt.prepare(t, s)
				}
				e := storage.AuditEntry{Team: "T1", User: "UANA", Action: "test." + tt.name, Result: "ok"}
				if !audited {
					e = unwritable
				}
				err := tt.write(s, e)
				entries := scanAll(t, s, time.Time{})
				changed := tt.changed(t, s)
				switch {
				case audited && (err != nil || !changed || len(entries) != 1 || entries[0].Action != e.Action):
					t.Errorf("with its entry: %v; changed %v; audit %+v", err, changed, entries)
				case !audited && (!errors.Is(err, storage.ErrNotAudited) || changed || len(entries) != 0):
					t.Errorf("with an entry that cannot be written: %v (want storage.ErrNotAudited); changed %v; audit %+v", err, changed, entries)
				}
			}
		})
	}
}

// A write that turns out not to change anything appends no entry: the
// entry records the change, and there was none.
func testAuditedWriteWithoutChangeAppendsNothing(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	ana, ben := storage.Identity{Team: "T1", User: "UANA"}, storage.Identity{Team: "T1", User: "UBEN"}
	if _, err := s.Watches.Start(ctx, storage.Watch{Owner: ana, StackUID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Locks.Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s1", Owner: ana}); err != nil {
		t.Fatal(err)
	}
	e := storage.AuditEntry{Action: "nothing"}
	if _, err := s.Watches.Start(ctx, storage.Watch{Owner: ben, StackUID: "s1"}, e); !errors.Is(err, storage.ErrStackBusy) {
		t.Errorf("Watches.Start on a busy stack: %v, want storage.ErrStackBusy", err)
	}
	if _, acquired, err := s.Locks.Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s1", Owner: ben}, e); acquired || err != nil {
		t.Errorf("Locks.Acquire of a held lock = %v, %v", acquired, err)
	}
	if _, err := s.Locks.Release(ctx, "T1", "s2", e); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Locks.Release of no lock: %v, want storage.ErrNotFound", err)
	}
	if existed, err := s.Links.Delete(ctx, ben, e); existed || err != nil {
		t.Errorf("Links.Delete of no link = %v, %v", existed, err)
	}
	if _, err := s.Subscriptions.Unsubscribe(ctx, "T1", "C1", "s1", e); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Unsubscribe of nothing: %v, want storage.ErrNotFound", err)
	}
	if got := scanAll(t, s, time.Time{}); len(got) != 0 {
		t.Errorf("audit = %+v, want nothing", got)
	}
}

// Audit.Append's failures wrap storage.ErrNotAudited, so callers that audit a Cloud
// 66 call before making it can tell the cause.
func testAppendAuditFailureIsErrNotAudited(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	for _, e := range []storage.AuditEntry{unwritable, {}} {
		if _, err := s.Audit.Append(t.Context(), e); !errors.Is(err, storage.ErrNotAudited) {
			t.Errorf("Audit.Append(%+v): %v, want storage.ErrNotAudited", e, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Audit.Append(t.Context(), storage.AuditEntry{Action: "x"}); !errors.Is(err, storage.ErrNotAudited) || !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Audit.Append on a closed store: %v, want storage.ErrNotAudited and storage.ErrClosed", err)
	}
}
