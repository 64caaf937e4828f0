package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"
)

// scanAll collects what ScanAudit passes to fn.
func scanAll(t *testing.T, s *Store, since time.Time) []AuditEntry {
	t.Helper()
	var got []AuditEntry
	if err := s.ScanAudit(t.Context(), since, func(e AuditEntry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatalf("ScanAudit: %v", err)
	}
	return got
}

func TestAppendAudit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})

	want := AuditEntry{
		Team: "T1", User: "U1", Channel: "C1", Action: "deploy",
		StackUID: "s1", StackName: "Shop",
		Args:   map[string]string{"ref": "main"},
		Result: "ok", Cloud66ActionID: 9001, Detail: "redeploy queued",
	}
	first, err := s.AppendAudit(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if first.Seq == 0 || !first.At.Equal(clock.Now()) {
		t.Errorf("AppendAudit = seq %d at %v, want a non-zero seq at %v", first.Seq, first.At, clock.Now())
	}
	given := clock.Now().Add(-time.Hour)
	second, err := s.AppendAudit(ctx, AuditEntry{Action: "lock", At: given, Seq: 12345})
	if err != nil {
		t.Fatal(err)
	}
	if second.Seq <= first.Seq || !second.At.Equal(given) {
		t.Errorf("second entry = seq %d at %v, want seq > %d (caller's ignored) at %v", second.Seq, second.At, first.Seq, given)
	}

	got := scanAll(t, s, time.Time{})
	if len(got) != 2 {
		t.Fatalf("ScanAudit returned %d entries, want 2", len(got))
	}
	e := got[0]
	if e.Seq != first.Seq || !e.At.Equal(first.At) || e.Team != want.Team || e.User != want.User ||
		e.Channel != want.Channel || e.Action != want.Action || e.StackUID != want.StackUID ||
		e.StackName != want.StackName || !maps.Equal(e.Args, want.Args) || e.Result != want.Result ||
		e.Cloud66ActionID != want.Cloud66ActionID || e.Detail != want.Detail {
		t.Errorf("scanned entry = %+v\nwant %+v", e, first)
	}

	if _, err := s.AppendAudit(ctx, AuditEntry{User: "U1"}); err == nil {
		t.Error("AppendAudit without an Action succeeded")
	}
}

func TestScanAuditSince(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	start := clock.Now()
	for i := range 5 {
		if _, err := s.AppendAudit(t.Context(), AuditEntry{Action: fmt.Sprintf("a%d", i)}); err != nil {
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
				t.Errorf("ScanAudit since %v = %v, want %v", tc.since, got, tc.want)
			}
		})
	}
}

func TestScanAuditStopsAtError(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	// More than one batch, so the stop is checked across batches too.
	const n = auditScanBatch + 10
	for i := range n {
		if _, err := s.AppendAudit(t.Context(), AuditEntry{Action: "deploy", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	for _, at := range []int{0, auditScanBatch - 1, auditScanBatch + 3} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := s.ScanAudit(t.Context(), time.Time{}, func(AuditEntry) error {
				calls++
				if calls == at+1 {
					return stop
				}
				return nil
			})
			// == rather than errors.Is: fn's error is returned unwrapped.
			if err != stop {
				t.Errorf("ScanAudit = %v, want fn's error unwrapped", err)
			}
			if calls != at+1 {
				t.Errorf("fn called %d times, want %d", calls, at+1)
			}
		})
	}
}

func TestScanAuditManyEntries(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	const n = 1200 // two full batches and part of a third
	for i := range n {
		if _, err := s.AppendAudit(t.Context(), AuditEntry{Action: "deploy", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	got := scanAll(t, s, time.Time{})
	if len(got) != n {
		t.Fatalf("ScanAudit returned %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Detail != fmt.Sprint(i) || (i > 0 && e.Seq <= got[i-1].Seq) {
			t.Fatalf("entry %d = seq %d detail %q; want detail %d in increasing seq", i, e.Seq, e.Detail, i)
		}
	}
}

// TestScanAuditCallsStore checks the promise that fn runs outside any
// transaction, so it may call the Store, here to write.
func TestScanAuditCallsStore(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	for range 3 {
		if _, err := s.AppendAudit(t.Context(), AuditEntry{Action: "deploy"}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.ScanAudit(t.Context(), time.Time{}, func(e AuditEntry) error {
		_, err := s.AppendAudit(t.Context(), AuditEntry{Action: "audit.read", Detail: fmt.Sprint(e.Seq)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// unwritable is an entry the audit log cannot take: JSON has no year 10000.
var unwritable = AuditEntry{Action: "x", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}

// Every audited write commits its change and its entry together, or
// neither: with an entry that cannot be written the change is refused with
// ErrNotAudited and the store is as it was.
func TestAuditedWritesCommitWithTheirEntryOrNotAtAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ana := Identity{Team: "T1", User: "UANA"}
	sub := Subscription{Team: "T1", Channel: "C1", StackUID: "s1", StackName: "shop", Subscriber: ana, Events: []string{"deploy.failed"}}
	tests := []struct {
		name    string
		prepare func(t *testing.T, s *Store)
		write   func(s *Store, e AuditEntry) error
		changed func(t *testing.T, s *Store) bool
	}{
		{
			name: "StartWatch",
			write: func(s *Store, e AuditEntry) error {
				_, err := s.StartWatch(ctx, Watch{Owner: ana, StackUID: "s1"}, e)
				return err
			},
			changed: func(t *testing.T, s *Store) bool {
				_, err := s.ActiveWatchForStack(ctx, "s1")
				return err == nil
			},
		},
		{
			name: "SaveWatch",
			prepare: func(t *testing.T, s *Store) {
				if _, err := s.StartWatch(ctx, Watch{Owner: ana, StackUID: "s1"}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s *Store, e AuditEntry) error {
				w, err := s.ActiveWatchForStack(ctx, "s1")
				if err != nil {
					return err
				}
				w.State = "succeeded"
				return s.SaveWatch(ctx, w, e)
			},
			changed: func(t *testing.T, s *Store) bool {
				_, err := s.ActiveWatchForStack(ctx, "s1")
				return errors.Is(err, ErrNotFound)
			},
		},
		{
			name: "DeleteWatch",
			prepare: func(t *testing.T, s *Store) {
				if _, err := s.StartWatch(ctx, Watch{Owner: ana, StackUID: "s1"}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s *Store, e AuditEntry) error {
				w, err := s.ActiveWatchForStack(ctx, "s1")
				if err != nil {
					return err
				}
				return s.DeleteWatch(ctx, w.ID, e)
			},
			changed: func(t *testing.T, s *Store) bool {
				_, err := s.ActiveWatchForStack(ctx, "s1")
				return errors.Is(err, ErrNotFound)
			},
		},
		{
			name: "AcquireLock",
			write: func(s *Store, e AuditEntry) error {
				_, _, err := s.AcquireLock(ctx, Lock{Team: "T1", StackUID: "s1", Owner: ana}, e)
				return err
			},
			changed: func(t *testing.T, s *Store) bool { _, err := s.GetLock(ctx, "T1", "s1"); return err == nil },
		},
		{
			name: "ReleaseLock",
			prepare: func(t *testing.T, s *Store) {
				if _, _, err := s.AcquireLock(ctx, Lock{Team: "T1", StackUID: "s1", Owner: ana}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s *Store, e AuditEntry) error { _, err := s.ReleaseLock(ctx, "T1", "s1", e); return err },
			changed: func(t *testing.T, s *Store) bool {
				_, err := s.GetLock(ctx, "T1", "s1")
				return errors.Is(err, ErrNotFound)
			},
		},
		{
			name:    "SaveLink",
			write:   func(s *Store, e AuditEntry) error { return s.SaveLink(ctx, Link{Identity: ana, AccessToken: "tok"}, e) },
			changed: func(t *testing.T, s *Store) bool { _, err := s.GetLink(ctx, ana); return err == nil },
		},
		{
			name: "DeleteLink",
			prepare: func(t *testing.T, s *Store) {
				if err := s.SaveLink(ctx, Link{Identity: ana, AccessToken: "tok"}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s *Store, e AuditEntry) error { _, err := s.DeleteLink(ctx, ana, e); return err },
			changed: func(t *testing.T, s *Store) bool {
				_, err := s.GetLink(ctx, ana)
				return errors.Is(err, ErrNotFound)
			},
		},
		{
			name:  "Subscribe",
			write: func(s *Store, e AuditEntry) error { _, _, err := s.Subscribe(ctx, sub, e); return err },
			changed: func(t *testing.T, s *Store) bool {
				subs, err := s.ChannelSubscriptions(ctx, "T1", "C1")
				return err == nil && len(subs) == 1
			},
		},
		{
			name: "Unsubscribe",
			prepare: func(t *testing.T, s *Store) {
				if _, _, err := s.Subscribe(ctx, sub); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s *Store, e AuditEntry) error { _, err := s.Unsubscribe(ctx, "T1", "C1", "s1", e); return err },
			changed: func(t *testing.T, s *Store) bool {
				subs, err := s.ChannelSubscriptions(ctx, "T1", "C1")
				return err == nil && len(subs) == 0
			},
		},
		{
			name: "CreateAPIToken",
			write: func(s *Store, e AuditEntry) error {
				_, _, err := s.CreateAPIToken(ctx, "ci", []string{"notify"}, e)
				return err
			},
			changed: func(t *testing.T, s *Store) bool {
				ts, err := s.APITokens(ctx)
				return err == nil && len(ts) == 1
			},
		},
		{
			name: "RevokeAPIToken",
			prepare: func(t *testing.T, s *Store) {
				if _, _, err := s.CreateAPIToken(ctx, "ci", []string{"notify"}); err != nil {
					t.Fatal(err)
				}
			},
			write: func(s *Store, e AuditEntry) error { _, err := s.RevokeAPIToken(ctx, "ci", e); return err },
			changed: func(t *testing.T, s *Store) bool {
				ts, err := s.APITokens(ctx)
				return err == nil && len(ts) == 1 && ts[0].Revoked
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, audited := range []bool{true, false} {
				s := mustOpen(t)
				if tt.prepare != nil {
					tt.prepare(t, s)
				}
				e := AuditEntry{Team: "T1", User: "UANA", Action: "test." + tt.name, Result: "ok"}
				if !audited {
					e = unwritable
				}
				err := tt.write(s, e)
				entries := scanAll(t, s, time.Time{})
				changed := tt.changed(t, s)
				switch {
				case audited && (err != nil || !changed || len(entries) != 1 || entries[0].Action != e.Action):
					t.Errorf("with its entry: %v; changed %v; audit %+v", err, changed, entries)
				case !audited && (!errors.Is(err, ErrNotAudited) || changed || len(entries) != 0):
					t.Errorf("with an entry that cannot be written: %v (want ErrNotAudited); changed %v; audit %+v", err, changed, entries)
				}
			}
		})
	}
}

// A write that turns out not to change anything appends no entry: the
// entry records the change, and there was none.
func TestAuditedWriteWithoutChangeAppendsNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	ana, ben := Identity{Team: "T1", User: "UANA"}, Identity{Team: "T1", User: "UBEN"}
	if _, err := s.StartWatch(ctx, Watch{Owner: ana, StackUID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AcquireLock(ctx, Lock{Team: "T1", StackUID: "s1", Owner: ana}); err != nil {
		t.Fatal(err)
	}
	e := AuditEntry{Action: "nothing"}
	if _, err := s.StartWatch(ctx, Watch{Owner: ben, StackUID: "s1"}, e); !errors.Is(err, ErrStackBusy) {
		t.Errorf("StartWatch on a busy stack: %v, want ErrStackBusy", err)
	}
	if _, acquired, err := s.AcquireLock(ctx, Lock{Team: "T1", StackUID: "s1", Owner: ben}, e); acquired || err != nil {
		t.Errorf("AcquireLock of a held lock = %v, %v", acquired, err)
	}
	if _, err := s.ReleaseLock(ctx, "T1", "s2", e); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReleaseLock of no lock: %v, want ErrNotFound", err)
	}
	if existed, err := s.DeleteLink(ctx, ben, e); existed || err != nil {
		t.Errorf("DeleteLink of no link = %v, %v", existed, err)
	}
	if _, err := s.Unsubscribe(ctx, "T1", "C1", "s1", e); !errors.Is(err, ErrNotFound) {
		t.Errorf("Unsubscribe of nothing: %v, want ErrNotFound", err)
	}
	if got := scanAll(t, s, time.Time{}); len(got) != 0 {
		t.Errorf("audit = %+v, want nothing", got)
	}
}

// AppendAudit's failures wrap ErrNotAudited, so callers that audit a Cloud
// 66 call before making it can tell the cause.
func TestAppendAuditFailureIsErrNotAudited(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	for _, e := range []AuditEntry{unwritable, {}} {
		if _, err := s.AppendAudit(t.Context(), e); !errors.Is(err, ErrNotAudited) {
			t.Errorf("AppendAudit(%+v): %v, want ErrNotAudited", e, err)
		}
	}
	s.Close()
	if _, err := s.AppendAudit(t.Context(), AuditEntry{Action: "x"}); !errors.Is(err, ErrNotAudited) || !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAudit on a closed store: %v, want ErrNotAudited and ErrClosed", err)
	}
}
