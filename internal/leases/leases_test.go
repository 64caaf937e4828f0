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
