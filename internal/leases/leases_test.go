package leases_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/storage"
)

const ttl = 20 * time.Second

func TestTakeRenewRelease(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	store := storage.NewLocalLeases(clock.Now)

	a, _, err := leases.Take(ctx, store, "watch:1", "a", ttl)
	if err != nil || a == nil {
		t.Fatalf("Take of a free lease = %v, %v", a, err)
	}
	b, other, err := leases.Take(ctx, store, "watch:1", "b", ttl)
	if err != nil || b != nil || other.Owner != "a" || !other.Expires.Equal(clock.Now().Add(ttl)) {
		t.Fatalf("Take of a's lease by b = %v, %+v, %v; want a's lease back", b, other, err)
	}
	clock.Advance(15 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * time.Second) // 30 s after the take: held thanks to the renewal
	if b, _, _ := leases.Take(ctx, store, "watch:1", "b", ttl); b != nil {
		t.Fatal("b took a lease a renewed")
	}
	if err := a.GiveUp("bye"); err != nil {
		t.Fatal(err)
	}
	if a.Context().Err() == nil {
		t.Error("a released lease's context is still live")
	}
	if err := a.Renew(ctx); !errors.Is(err, storage.ErrLeaseLost) {
		t.Errorf("Renew after Release: %v, want ErrLeaseLost", err)
	}
	if err := a.Release(ctx, "again"); err != nil {
		t.Errorf("second Release: %v", err)
	}
	b, _, err = leases.Take(ctx, store, "watch:1", "b", ttl)
	if err != nil || b == nil || b.Lease().Note != "bye" {
		t.Fatalf("Take after Release = %+v, %v; want b's, with a's note", b, err)
	}
}

// takenFromA returns a's lease on key, which expired and b took.
func takenFromA(t *testing.T, key string) *leases.Held {
	t.Helper()
	clock := fakeclock.New()
	store := storage.NewLocalLeases(clock.Now)
	a, _, _ := leases.Take(t.Context(), store, key, "a", ttl)
	clock.Advance(ttl + time.Second)
	if b, _, _ := leases.Take(t.Context(), store, key, "b", ttl); b == nil {
		t.Fatal("b could not take an expired lease")
	}
	return a
}

func TestLostLeaseEndsItsContext(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := takenFromA(t, "outbox:7")
	if err := a.Renew(ctx); !errors.Is(err, storage.ErrLeaseLost) {
		t.Fatalf("a's Renew: %v, want ErrLeaseLost", err)
	}
	if !a.Lost() || a.Context().Err() == nil {
		t.Errorf("a lost its lease: Lost %v, context %v", a.Lost(), a.Context().Err())
	}
}

// ticks is a sleep that returns when the test sends on it.
type ticks chan time.Duration

func (tk ticks) sleep(ctx context.Context, d time.Duration) error {
	select {
	case tk <- d:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestKeepRenewsEveryThirdOfTheTTL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	store := storage.NewLocalLeases(clock.Now)
	a, _, _ := leases.Take(ctx, store, "channel:C1", "a", ttl)
	tk := make(ticks)
	kept := make(chan struct{})
	go func() { defer close(kept); a.Keep(ctx, tk.sleep) }()

	for range 6 { // two TTLs
		if d := <-tk; d != ttl/3 {
			t.Fatalf("Keep waits %v, want a third of the ttl", d)
		}
		clock.Advance(ttl / 3)
	}
	<-tk // the sixth renewal has been made once Keep waits again
	if b, _, _ := leases.Take(ctx, store, "channel:C1", "b", ttl); b != nil {
		t.Fatal("the lease expired while kept")
	}
	if err := a.Release(ctx, ""); err != nil {
		t.Fatal(err)
	}
	<-kept // Keep returns once the lease is released
}

func TestKeepEndsWhenLost(t *testing.T) {
	t.Parallel()
	a := takenFromA(t, "watch:9")
	tk := make(ticks, 1)          // the first wait returns at once
	a.Keep(t.Context(), tk.sleep) // returns after the one renewal finds the lease lost
	if !a.Lost() {
		t.Error("Keep returned but the lease is not lost")
	}
}

// steps is a sleep a test drives: each wait announces itself on waits and
// returns when the test sends on pass, so between the two the sleeper is
// known to be waiting, its previous pass done.
type steps struct {
	waits chan time.Duration
	pass  chan struct{}
}

func newSteps() steps { return steps{waits: make(chan time.Duration), pass: make(chan struct{})} }

func (s steps) sleep(ctx context.Context, d time.Duration) error {
	select {
	case s.waits <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-s.pass:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestKeeperRenewsAllItsLeasesEveryThirdOfTheTTL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	store := storage.NewLocalLeases(clock.Now)
	st := newSteps()
	k := leases.NewKeeper(ttl, st.sleep)
	keys := []string{"watch:1", "watch:2", "watch:3"}
	var held []*leases.Held
	for _, key := range keys {
		h, _, err := leases.Take(ctx, store, key, "a", ttl)
		if err != nil || h == nil {
			t.Fatalf("Take %s = %v, %v", key, h, err)
		}
		k.Add(h)
		held = append(held, h)
	}
	go k.Run(ctx)

	for range 6 { // two TTLs, a pass every third
		if d := <-st.waits; d != ttl/3 {
			t.Fatalf("Keeper waits %v, want a third of the ttl", d)
		}
		clock.Advance(ttl / 3)
		st.pass <- struct{}{}
	}
	<-st.waits // the sixth pass is done
	for _, key := range keys {
		if b, _, _ := leases.Take(ctx, store, key, "b", ttl); b != nil {
			t.Fatalf("%s expired while kept", key)
		}
	}
	if err := held[1].Release(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if n := k.Len(); n != 2 {
		t.Errorf("Keeper keeps %d leases after one was released, want 2", n)
	}

	// A lease another owner took meanwhile is lost at the next pass: its
	// holder's context ends and the Keeper forgets it.
	clock.Advance(ttl + time.Second)
	if b, _, _ := leases.Take(ctx, store, "watch:3", "b", ttl); b == nil {
		t.Fatal("b could not take an expired lease")
	}
	st.pass <- struct{}{}
	<-st.waits
	if !held[2].Lost() || held[2].Context().Err() == nil {
		t.Error("the lease b took is not lost for a")
	}
	if held[0].Lost() {
		t.Error("watch:1, expired but taken by nobody, was lost")
	}
	if n := k.Len(); n != 1 {
		t.Errorf("Keeper keeps %d leases, want the one still held", n)
	}
}

// hangingLeases is a store whose renewals of key hang until their context
// ends; every other call is the wrapped store's.
type hangingLeases struct {
	leases.Store
	key string
}

func (s hangingLeases) Renew(ctx context.Context, l storage.Lease, ttl time.Duration) (storage.Lease, error) {
	if l.Key == s.key {
		<-ctx.Done()
		return storage.Lease{}, ctx.Err()
	}
	return s.Store.Renew(ctx, l, ttl)
}

// A renewal that hangs ends with its pass (a third of the ttl), so the
// Keeper goes on to its next pass rather than stopping every renewal.
func TestKeeperPassDoesNotWaitForeverOnAHangingStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	store := hangingLeases{Store: storage.NewLocalLeases(clock.Now), key: "watch:1"}
	const short = 30 * time.Millisecond // the pass's real-time bound is a third of it
	st := newSteps()
	k := leases.NewKeeper(short, st.sleep)
	h, _, err := leases.Take(ctx, store, "watch:1", "a", short)
	if err != nil || h == nil {
		t.Fatalf("Take = %v, %v", h, err)
	}
	k.Add(h)
	go k.Run(ctx)
	for range 3 {
		<-st.waits
		st.pass <- struct{}{} // this pass's renewal hangs until the pass times out
	}
	<-st.waits // the Keeper waits for a fourth pass: the hung ones ended
	if h.Lost() {
		t.Error("a renewal that timed out marked the lease lost")
	}
	if n := k.Len(); n != 1 {
		t.Errorf("Keeper keeps %d leases, want the one whose renewal hung", n)
	}
}

func TestOwner(t *testing.T) {
	t.Parallel()
	if got := leases.Owner("pod-1"); got != "pod-1" {
		t.Errorf("Owner(pod-1) = %q", got)
	}
	a, b := leases.Owner(""), leases.Owner("")
	if a == b || !strings.HasPrefix(a, "replica-") {
		t.Errorf("random owners %q and %q", a, b)
	}
}
