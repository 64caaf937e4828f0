package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func mustEnqueue(t *testing.T, s *Store, kind, payload string) OutboxItem {
	t.Helper()
	it, err := s.EnqueueOutbox(t.Context(), kind, []byte(payload))
	if err != nil {
		t.Fatalf("EnqueueOutbox: %v", err)
	}
	return it
}

func mustPending(t *testing.T, s *Store, limit int) []OutboxItem {
	t.Helper()
	items, err := s.PendingOutbox(t.Context(), limit)
	if err != nil {
		t.Fatalf("PendingOutbox: %v", err)
	}
	return items
}

func outboxIDs(items []OutboxItem) []uint64 {
	ids := make([]uint64, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})

	// Payloads are bytes, not text: a webhook body need not be UTF-8.
	a := mustEnqueue(t, s, "cloud66.webhook", `{"event":"deploy.succeeded"}`)
	b := mustEnqueue(t, s, "api.notify", "\xff\x00binary")
	c := mustEnqueue(t, s, "api.notify", "")
	if !(a.ID < b.ID && b.ID < c.ID) {
		t.Fatalf("ids %d, %d, %d do not increase", a.ID, b.ID, c.ID)
	}
	if !a.At.Equal(clock.Now()) || !a.NextAttempt.Equal(a.At) || a.Attempts != 0 {
		t.Errorf("enqueued item = %+v, want At = NextAttempt = now and no attempts", a)
	}

	items := mustPending(t, s, 0)
	if !slices.Equal(outboxIDs(items), []uint64{a.ID, b.ID, c.ID}) {
		t.Fatalf("PendingOutbox = %v, want oldest first", outboxIDs(items))
	}
	if items[0].Kind != "cloud66.webhook" || string(items[0].Payload) != `{"event":"deploy.succeeded"}` || !bytes.Equal(items[1].Payload, []byte("\xff\x00binary")) {
		t.Errorf("payloads did not round-trip: %+v", items)
	}
	if got := mustPending(t, s, 2); !slices.Equal(outboxIDs(got), []uint64{a.ID, b.ID}) {
		t.Errorf("PendingOutbox(2) = %v", outboxIDs(got))
	}
	// Reading does not claim.
	if got := mustPending(t, s, 0); len(got) != 3 {
		t.Errorf("second PendingOutbox = %v, want all 3 again", outboxIDs(got))
	}

	if err := s.AckOutbox(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	retried, err := s.RetryOutbox(ctx, b.ID, clock.Now().Add(time.Minute))
	if err != nil || retried.Attempts != 1 || !retried.NextAttempt.Equal(clock.Now().Add(time.Minute)) || !bytes.Equal(retried.Payload, b.Payload) {
		t.Fatalf("RetryOutbox = %+v, %v", retried, err)
	}

	steps := []struct {
		advance time.Duration
		want    []uint64
	}{
		{0, []uint64{c.ID}},
		{59 * time.Second, []uint64{c.ID}},
		{time.Second, []uint64{b.ID, c.ID}}, // NextAttempt <= now: due again, in id order
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if got := outboxIDs(mustPending(t, s, 0)); !slices.Equal(got, st.want) {
			t.Errorf("step %d: PendingOutbox = %v, want %v", i, got, st.want)
		}
	}
	if again, err := s.RetryOutbox(ctx, b.ID, clock.Now()); err != nil || again.Attempts != 2 {
		t.Errorf("second RetryOutbox = %+v, %v; want 2 attempts", again, err)
	}

	if n, err := s.CountOutbox(ctx); err != nil || n != 2 {
		t.Errorf("CountOutbox = %d, %v; want 2", n, err)
	}
	for _, id := range []uint64{a.ID, 999} {
		if err := s.AckOutbox(ctx, id); err != nil {
			t.Errorf("AckOutbox(%d) of an unknown item = %v, want nil", id, err)
		}
	}
	if _, err := s.RetryOutbox(ctx, a.ID, clock.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("RetryOutbox of an acked item = %v, want ErrNotFound", err)
	}
	if _, err := s.EnqueueOutbox(ctx, "", []byte("x")); err == nil {
		t.Error("EnqueueOutbox with an empty kind succeeded")
	}
}

func TestOutboxPayloadIsCopied(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	buf := []byte("original")
	it, err := s.EnqueueOutbox(t.Context(), "api.notify", buf)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, "mutated!")
	if string(it.Payload) != "original" {
		t.Errorf("returned Payload = %q after the caller reused its buffer", it.Payload)
	}
	if got := mustPending(t, s, 1); string(got[0].Payload) != "original" {
		t.Errorf("stored Payload = %q after the caller reused its buffer", got[0].Payload)
	}
}

func TestOutboxSurvivesReopen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	done := mustEnqueue(t, s, "cloud66.webhook", "done")
	kept := mustEnqueue(t, s, "cloud66.webhook", "kept")
	if err := s.AckOutbox(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RetryOutbox(ctx, kept.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpenWith(t, Options{Path: s.Path(), Now: clock.Now})
	items := mustPending(t, s, 0)
	if len(items) != 1 || items[0].ID != kept.ID || string(items[0].Payload) != "kept" || items[0].Attempts != 1 || !items[0].At.Equal(kept.At) {
		t.Fatalf("PendingOutbox after reopen = %+v, want the one kept item", items)
	}
	// Ids keep increasing across restarts, so order stays arrival order.
	if next := mustEnqueue(t, s, "api.notify", "next"); next.ID <= kept.ID {
		t.Errorf("id after reopen = %d, want > %d", next.ID, kept.ID)
	}
}

func TestOutboxThousand(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	const n = 1000
	for i := range n {
		mustEnqueue(t, s, "api.notify", fmt.Sprintf(`{"n":%d}`, i))
	}
	if got, err := s.CountOutbox(ctx); err != nil || got != n {
		t.Fatalf("CountOutbox = %d, %v; want %d", got, err, n)
	}
	all := mustPending(t, s, 0)
	if len(all) != n {
		t.Fatalf("PendingOutbox = %d items, want %d", len(all), n)
	}
	for i, it := range all {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(it.Payload) != want {
			t.Fatalf("item %d = %s, want %s (oldest first)", i, it.Payload, want)
		}
	}
	// Big-endian keys: item 256 sorts after 255, not after 1.
	if got := mustPending(t, s, 300); len(got) != 300 || string(got[299].Payload) != `{"n":299}` {
		t.Errorf("PendingOutbox(300) ends at %s", got[len(got)-1].Payload)
	}

	// Postpone the first half; the limit then counts only due items.
	for _, it := range all[:n/2] {
		if _, err := s.RetryOutbox(ctx, it.ID, clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustPending(t, s, 10); len(got) != 10 || string(got[0].Payload) != fmt.Sprintf(`{"n":%d}`, n/2) {
		t.Errorf("PendingOutbox(10) with the first half postponed starts at %s", got[0].Payload)
	}
	for _, it := range all {
		if err := s.AckOutbox(ctx, it.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.CountOutbox(ctx); err != nil || got != 0 {
		t.Errorf("CountOutbox after acking all = %d, %v", got, err)
	}
}

// MarkOutboxDone records a target of an item and its dedup key in one
// write: the item keeps its targets through PendingOutbox, RetryOutbox and
// a reopen, and Seen finds the key, until its ttl runs out.
func TestMarkOutboxDone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	path := t.TempDir() + "/c66bot.db"
	s := mustOpenWith(t, Options{Path: path, Now: clock.Now})
	it := mustEnqueue(t, s, "notify.event", `{}`)

	if seen, err := s.Seen(ctx, "notify:T1:C1:deploy:x"); err != nil || seen {
		t.Fatalf("Seen before the post = %v, %v; want false", seen, err)
	}
	for _, target := range []string{"T1:C1", "T1:C2", "T1:C1"} {
		if err := s.MarkOutboxDone(ctx, it.ID, target, "notify:"+target+":deploy:x", time.Hour); err != nil {
			t.Fatalf("MarkOutboxDone(%s): %v", target, err)
		}
	}
	// An unpostable channel is done without a dedup key.
	if err := s.MarkOutboxDone(ctx, it.ID, "T1:CGONE", "", 0); err != nil {
		t.Fatal(err)
	}
	want := []string{"T1:C1", "T1:C2", "T1:CGONE"}
	if got := mustPending(t, s, 0); len(got) != 1 || !slices.Equal(got[0].Done, want) {
		t.Fatalf("PendingOutbox = %+v, want the item with Done %v (each once)", got, want)
	}
	retried, err := s.RetryOutbox(ctx, it.ID, clock.Now())
	if err != nil || !slices.Equal(retried.Done, want) {
		t.Fatalf("RetryOutbox = %+v, %v; want Done kept", retried, err)
	}
	for key, want := range map[string]bool{
		"notify:T1:C1:deploy:x":    true,
		"notify:T1:C2:deploy:x":    true,
		"notify:T1:CGONE:deploy:x": false,
	} {
		if seen, err := s.Seen(ctx, key); err != nil || seen != want {
			t.Errorf("Seen(%s) = %v, %v; want %v", key, seen, err, want)
		}
	}
	// Seen only reads: FirstTime of a recorded key is not a first time.
	mustFirstTime(t, s, "notify:T1:C1:deploy:x", time.Hour, false)

	// Everything is on disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenWith(t, Options{Path: path, Now: clock.Now})
	if got := mustPending(t, s, 0); len(got) != 1 || !slices.Equal(got[0].Done, want) {
		t.Fatalf("after reopening, PendingOutbox = %+v, want Done %v", got, want)
	}

	// The key outlives the item, and expires with its ttl.
	if err := s.AckOutbox(ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkOutboxDone(ctx, it.ID, "T1:C3", "notify:T1:C3:deploy:x", time.Hour); err != nil {
		t.Fatalf("MarkOutboxDone on an acked item: %v", err)
	}
	if seen, _ := s.Seen(ctx, "notify:T1:C3:deploy:x"); !seen {
		t.Error("the key of a post made for an acked item was not recorded")
	}
	if n, _ := s.CountOutbox(ctx); n != 0 {
		t.Errorf("marking an acked item brought it back: %d items", n)
	}
	clock.Advance(time.Hour)
	if seen, err := s.Seen(ctx, "notify:T1:C1:deploy:x"); err != nil || seen {
		t.Errorf("Seen after the ttl = %v, %v; want false", seen, err)
	}
}

func TestMarkOutboxDoneInvalid(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	it := mustEnqueue(t, s, "notify.event", `{}`)
	tests := []struct {
		name, target, key string
		ttl               time.Duration
	}{
		{"empty target", "", "k", time.Hour},
		{"key without ttl", "T1:C1", "k", 0},
	}
	for _, tc := range tests {
		if err := s.MarkOutboxDone(t.Context(), it.ID, tc.target, tc.key, tc.ttl); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if got := mustPending(t, s, 0); len(got) != 1 || len(got[0].Done) != 0 {
		t.Errorf("a refused mark changed the item: %+v", got)
	}
	if _, err := s.Seen(t.Context(), ""); err == nil {
		t.Error("Seen of an empty key: no error")
	}
}
