package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestOutbox runs the contract of the OutboxStore: items in arrival order,
// due times, retries, targets marked done with their dedup key, survival
// over a restart.
func TestOutbox(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"Lifecycle", testOutbox},
		{"PayloadIsCopied", testOutboxPayloadIsCopied},
		{"SurvivesReopen", testOutboxSurvivesReopen},
		{"Thousand", testOutboxThousand},
		{"MarkDone", testMarkOutboxDone},
		{"MarkDoneInvalid", testMarkOutboxDoneInvalid},
	})
}

func mustEnqueue(t *testing.T, s Stores, kind, payload string) storage.OutboxItem {
	t.Helper()
	it, err := s.Outbox.Enqueue(t.Context(), kind, []byte(payload))
	if err != nil {
		t.Fatalf("Outbox.Enqueue: %v", err)
	}
	return it
}

func mustPending(t *testing.T, s Stores, limit int) []storage.OutboxItem {
	t.Helper()
	items, err := s.Outbox.Pending(t.Context(), limit)
	if err != nil {
		t.Fatalf("Outbox.Pending: %v", err)
	}
	return items
}

func outboxIDs(items []storage.OutboxItem) []uint64 {
	ids := make([]uint64, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func testOutbox(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()

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
		t.Fatalf("Outbox.Pending = %v, want oldest first", outboxIDs(items))
	}
	if items[0].Kind != "cloud66.webhook" || string(items[0].Payload) != `{"event":"deploy.succeeded"}` || !bytes.Equal(items[1].Payload, []byte("\xff\x00binary")) {
		t.Errorf("payloads did not round-trip: %+v", items)
	}
	if got := mustPending(t, s, 2); !slices.Equal(outboxIDs(got), []uint64{a.ID, b.ID}) {
		t.Errorf("Outbox.Pending(2) = %v", outboxIDs(got))
	}
	// Reading does not claim.
	if got := mustPending(t, s, 0); len(got) != 3 {
		t.Errorf("second Outbox.Pending = %v, want all 3 again", outboxIDs(got))
	}

	if err := s.Outbox.Ack(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	retried, err := s.Outbox.Retry(ctx, b.ID, clock.Now().Add(time.Minute))
	if err != nil || retried.Attempts != 1 || !retried.NextAttempt.Equal(clock.Now().Add(time.Minute)) || !bytes.Equal(retried.Payload, b.Payload) {
		t.Fatalf("Outbox.Retry = %+v, %v", retried, err)
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
			t.Errorf("step %d: Outbox.Pending = %v, want %v", i, got, st.want)
		}
	}
	if again, err := s.Outbox.Retry(ctx, b.ID, clock.Now()); err != nil || again.Attempts != 2 {
		t.Errorf("second Outbox.Retry = %+v, %v; want 2 attempts", again, err)
	}

	if n, err := s.Outbox.Count(ctx); err != nil || n != 2 {
		t.Errorf("Outbox.Count = %d, %v; want 2", n, err)
	}
	for _, id := range []uint64{a.ID, 999} {
		if err := s.Outbox.Ack(ctx, id); err != nil {
			t.Errorf("Outbox.Ack(%d) of an unknown item = %v, want nil", id, err)
		}
	}
	if _, err := s.Outbox.Retry(ctx, a.ID, clock.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Outbox.Retry of an acked item = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Outbox.Enqueue(ctx, "", []byte("x")); err == nil {
		t.Error("Outbox.Enqueue with an empty kind succeeded")
	}
}

func testOutboxPayloadIsCopied(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	buf := []byte("original")
	it, err := s.Outbox.Enqueue(t.Context(), "api.notify", buf)
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

func testOutboxSurvivesReopen(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	done := mustEnqueue(t, s, "cloud66.webhook", "done")
	kept := mustEnqueue(t, s, "cloud66.webhook", "kept")
	if err := s.Outbox.Ack(ctx, done.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Outbox.Retry(ctx, kept.ID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	s = s.Reopen()
	items := mustPending(t, s, 0)
	if len(items) != 1 || items[0].ID != kept.ID || string(items[0].Payload) != "kept" || items[0].Attempts != 1 || !items[0].At.Equal(kept.At) {
		t.Fatalf("Outbox.Pending after reopen = %+v, want the one kept item", items)
	}
	// Ids keep increasing across restarts, so order stays arrival order.
	if next := mustEnqueue(t, s, "api.notify", "next"); next.ID <= kept.ID {
		t.Errorf("id after reopen = %d, want > %d", next.ID, kept.ID)
	}
}

func testOutboxThousand(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	const n = 1000
	for i := range n {
		mustEnqueue(t, s, "api.notify", fmt.Sprintf(`{"n":%d}`, i))
	}
	if got, err := s.Outbox.Count(ctx); err != nil || got != n {
		t.Fatalf("Outbox.Count = %d, %v; want %d", got, err, n)
	}
	all := mustPending(t, s, 0)
	if len(all) != n {
		t.Fatalf("Outbox.Pending = %d items, want %d", len(all), n)
	}
	for i, it := range all {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(it.Payload) != want {
			t.Fatalf("item %d = %s, want %s (oldest first)", i, it.Payload, want)
		}
	}
	// Big-endian keys: item 256 sorts after 255, not after 1.
	if got := mustPending(t, s, 300); len(got) != 300 || string(got[299].Payload) != `{"n":299}` {
		t.Errorf("Outbox.Pending(300) ends at %s", got[len(got)-1].Payload)
	}

	// Postpone the first half; the limit then counts only due items.
	for _, it := range all[:n/2] {
		if _, err := s.Outbox.Retry(ctx, it.ID, clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustPending(t, s, 10); len(got) != 10 || string(got[0].Payload) != fmt.Sprintf(`{"n":%d}`, n/2) {
		t.Errorf("Outbox.Pending(10) with the first half postponed starts at %s", got[0].Payload)
	}
	for _, it := range all {
		if err := s.Outbox.Ack(ctx, it.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Outbox.Count(ctx); err != nil || got != 0 {
		t.Errorf("Outbox.Count after acking all = %d, %v", got, err)
	}
}

// Outbox.MarkDone records a target of an item and its dedup key in one
// write: the item keeps its targets through Outbox.Pending, Outbox.Retry and
// a reopen, and Seen finds the key, until its ttl runs out.
func testMarkOutboxDone(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	it := mustEnqueue(t, s, "notify.event", `{}`)

	if seen, err := s.Dedup.Seen(ctx, "notify:T1:C1:deploy:x"); err != nil || seen {
		t.Fatalf("Seen before the post = %v, %v; want false", seen, err)
	}
	for _, target := range []string{"T1:C1", "T1:C2", "T1:C1"} {
		if err := s.Outbox.MarkDone(ctx, it.ID, target, "notify:"+target+":deploy:x", time.Hour); err != nil {
			t.Fatalf("Outbox.MarkDone(%s): %v", target, err)
		}
	}
	// An unpostable channel is done without a dedup key.
	if err := s.Outbox.MarkDone(ctx, it.ID, "T1:CGONE", "", 0); err != nil {
		t.Fatal(err)
	}
	want := []string{"T1:C1", "T1:C2", "T1:CGONE"}
	if got := mustPending(t, s, 0); len(got) != 1 || !slices.Equal(got[0].Done, want) {
		t.Fatalf("Outbox.Pending = %+v, want the item with Done %v (each once)", got, want)
	}
	retried, err := s.Outbox.Retry(ctx, it.ID, clock.Now())
	if err != nil || !slices.Equal(retried.Done, want) {
		t.Fatalf("Outbox.Retry = %+v, %v; want Done kept", retried, err)
	}
	for key, want := range map[string]bool{
		"notify:T1:C1:deploy:x":    true,
		"notify:T1:C2:deploy:x":    true,
		"notify:T1:CGONE:deploy:x": false,
	} {
		if seen, err := s.Dedup.Seen(ctx, key); err != nil || seen != want {
			t.Errorf("Seen(%s) = %v, %v; want %v", key, seen, err, want)
		}
	}
	// Seen only reads: FirstTime of a recorded key is not a first time.
	mustFirstTime(t, s, "notify:T1:C1:deploy:x", time.Hour, false)

	// Everything was committed.
	s = s.Reopen()
	if got := mustPending(t, s, 0); len(got) != 1 || !slices.Equal(got[0].Done, want) {
		t.Fatalf("after reopening, Outbox.Pending = %+v, want Done %v", got, want)
	}

	// The key outlives the item, and expires with its ttl.
	if err := s.Outbox.Ack(ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Outbox.MarkDone(ctx, it.ID, "T1:C3", "notify:T1:C3:deploy:x", time.Hour); err != nil {
		t.Fatalf("Outbox.MarkDone on an acked item: %v", err)
	}
	if seen, _ := s.Dedup.Seen(ctx, "notify:T1:C3:deploy:x"); !seen {
		t.Error("the key of a post made for an acked item was not recorded")
	}
	if n, _ := s.Outbox.Count(ctx); n != 0 {
		t.Errorf("marking an acked item brought it back: %d items", n)
	}
	clock.Advance(time.Hour)
	if seen, err := s.Dedup.Seen(ctx, "notify:T1:C1:deploy:x"); err != nil || seen {
		t.Errorf("Seen after the ttl = %v, %v; want false", seen, err)
	}
}

func testMarkOutboxDoneInvalid(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	it := mustEnqueue(t, s, "notify.event", `{}`)
	tests := []struct {
		name, target, key string
		ttl               time.Duration
	}{
		{"empty target", "", "k", time.Hour},
		{"key without ttl", "T1:C1", "k", 0},
	}
	for _, tc := range tests {
		if err := s.Outbox.MarkDone(t.Context(), it.ID, tc.target, tc.key, tc.ttl); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if got := mustPending(t, s, 0); len(got) != 1 || len(got[0].Done) != 0 {
		t.Errorf("a refused mark changed the item: %+v", got)
	}
	if _, err := s.Dedup.Seen(t.Context(), ""); err == nil {
		t.Error("Seen of an empty key: no error")
	}
}
