package storage

import (
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
