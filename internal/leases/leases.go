// Package leases is how a replica holds a lease (storage.Lease) on a piece
// of work and keeps it alive while it works: deploy on a followed Cloud 66
// action, notify on an outbox item and on a post's dedup key, bot on a
// channel's posting. It exists so those three hold leases the same way
// (take, renew before acting, renew in the background, release, notice a
// loss) without importing each other; the lease stores themselves are
// storage's.
package leases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// Store is the lease store; *storage.LocalLeases satisfies it, and so does
// the PostgreSQL backend's.
type Store interface {
	Acquire(ctx context.Context, key, owner string, ttl time.Duration) (l storage.Lease, held bool, err error)
	Renew(ctx context.Context, l storage.Lease, ttl time.Duration) (storage.Lease, error)
	Release(ctx context.Context, l storage.Lease, note string) error
}

// Owner is the owner name a replica takes leases under: name, or when it
// is empty a random one, so that a process nobody named is still one owner
// among others.
func Owner(name string) string {
	if name != "" {
		return name
	}
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "replica-" + hex.EncodeToString(b[:])
}

// Held is a lease the caller holds. Its methods are safe for concurrent
// use: a background Keep and the holder's own Renew before a write may
// race, and are serialised.
type Held struct {
	store Store
	ttl   time.Duration

	// ctx ends when the lease is released, dropped or lost.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	l    storage.Lease
	lost bool
}

// Take acquires key for owner for ttl. When someone else holds it, h is nil
// and other is their lease (its Expires says when it may be free).
func Take(ctx context.Context, store Store, key, owner string, ttl time.Duration) (h *Held, other storage.Lease, err error) {
	l, held, err := store.Acquire(ctx, key, owner, ttl)
	if err != nil {
		return nil, storage.Lease{}, fmt.Errorf("leases: take %s: %w", key, err)
	}
	if !held {
		return nil, l, nil
	}
	hctx, cancel := context.WithCancel(context.Background())
	return &Held{store: store, ttl: ttl, ctx: hctx, cancel: cancel, l: l}, storage.Lease{}, nil
}

// Lease is the lease as last acquired or renewed.
func (h *Held) Lease() storage.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.l
}

// Context is done once the lease is released, dropped or lost: work done
// under the lease stops with it.
func (h *Held) Context() context.Context { return h.ctx }

// Lost reports whether a renewal found the lease taken by another owner.
func (h *Held) Lost() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// Renew extends the lease by its ttl. It fails with an error matching
// storage.ErrLeaseLost once the lease is no longer the holder's (another
// owner took it after it expired, or it was released or dropped here);
// the holder must then stop acting on the work. Any other error is the
// store's: the lease may well still be the holder's until it expires.
func (h *Held) Renew(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		return fmt.Errorf("leases: renew %s: %w", h.l.Key, storage.ErrLeaseLost)
	}
	l, err := h.store.Renew(ctx, h.l, h.ttl)
	if errors.Is(err, storage.ErrLeaseLost) {
		h.lost = true
		h.cancel()
		return fmt.Errorf("leases: renew %s: %w", h.l.Key, err)
	}
	if err != nil {
		return fmt.Errorf("leases: renew %s: %w", h.l.Key, err)
	}
	h.l = l
	return nil
}

// Release gives the lease up at once, leaving note for the next owner.
// Releasing twice, or a lease already lost, does nothing.
func (h *Held) Release(ctx context.Context, note string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		return nil
	}
	h.cancel()
	err := h.store.Release(ctx, h.l, note)
	if err == nil || errors.Is(err, storage.ErrLeaseLost) {
		return nil
	}
	return fmt.Errorf("leases: release %s: %w", h.l.Key, err)
}

// giveUpTimeout bounds GiveUp.
const giveUpTimeout = 5 * time.Second

// GiveUp is Release on a context of its own, bounded by a few seconds: for
// work that ends while its caller shuts down, whose lease should go at
// once all the same. A failure only leaves the lease to expire.
func (h *Held) GiveUp(note string) error {
	ctx, cancel := context.WithTimeout(context.Background(), giveUpTimeout)
	defer cancel()
	return h.Release(ctx, note)
}

// Drop stops keeping the lease without giving it up: it expires within
// its ttl and then anyone may take it. For work abandoned in a state
// another owner should look at afresh, not at once.
func (h *Held) Drop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancel()
}

// Keep renews the lease every third of its ttl, waiting with sleep (which
// returns an error once its context ends), until ctx ends or the lease is
// released, dropped or lost. A renewal the store fails is tried again at
// the next tick: a third of the ttl leaves two more chances before the
// lease expires.
func (h *Held) Keep(ctx context.Context, sleep func(context.Context, time.Duration) error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	for sleep(ctx, h.ttl/3) == nil {
		if err := h.Renew(ctx); errors.Is(err, storage.ErrLeaseLost) {
			return
		}
	}
}

// KeepInBackground runs Keep on a goroutine counted in wg, so that whoever
// waits for wg waits for it too.
func (h *Held) KeepInBackground(ctx context.Context, wg *sync.WaitGroup, sleep func(context.Context, time.Duration) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.Keep(ctx, sleep)
	}()
}

// Keeper renews many leases of one ttl from a single goroutine, each every
// third of the ttl, as Keep does for one: a replica following hundreds of
// deployments holds hundreds of leases, and a goroutine (and stack) for
// each was a fifth of its memory. A lease added between two passes is
// renewed at the next one, sooner than Keep would.
type Keeper struct {
	ttl   time.Duration
	sleep func(context.Context, time.Duration) error

	mu   sync.Mutex
	held map[*Held]struct{}
}

// NewKeeper returns a Keeper for leases taken for ttl, waiting between its
// passes with sleep (which returns an error once its context ends).
func NewKeeper(ttl time.Duration, sleep func(context.Context, time.Duration) error) *Keeper {
	return &Keeper{ttl: ttl, sleep: sleep, held: map[*Held]struct{}{}}
}

// Add keeps h renewed until it is released, dropped or lost, or Run ends.
func (k *Keeper) Add(h *Held) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held[h] = struct{}{}
}

// Len is how many leases k keeps.
func (k *Keeper) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.live())
}

// live forgets the leases that ended and returns the others; k.mu is held.
func (k *Keeper) live() []*Held {
	hs := make([]*Held, 0, len(k.held))
	for h := range k.held {
		if h.ctx.Err() != nil {
			delete(k.held, h)
			continue
		}
		hs = append(hs, h)
	}
	return hs
}

// Run renews the kept leases every third of the ttl until ctx ends. A
// renewal the store fails is tried again at the next pass, as in Keep; a
// lost lease ends its holder's context (Renew) and is forgotten. A pass
// gets a third of the ttl: a store that hangs must not hold the renewals
// of the leases after it (they are tried at the next pass, still within
// their ttl).
func (k *Keeper) Run(ctx context.Context) {
	for k.sleep(ctx, k.ttl/3) == nil {
		k.mu.Lock()
		hs := k.live()
		k.mu.Unlock()
		k.pass(ctx, hs)
	}
}

func (k *Keeper) pass(ctx context.Context, hs []*Held) {
	ctx, cancel := context.WithTimeout(ctx, k.ttl/3)
	defer cancel()
	for _, h := range hs {
		if ctx.Err() != nil {
			return
		}
		_ = h.Renew(ctx)
	}
}
