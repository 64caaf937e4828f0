package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/c66bot/c66bot/internal/clock"
	"github.com/c66bot/c66bot/storage"
)

// BudgetStore keeps the per-person token buckets of Cloud 66 requests,
// shared by every replica so that a person's requests are counted once
// whoever makes them; *storage.LocalBudgets satisfies it (one process), and
// so does the PostgreSQL backend's.
type BudgetStore interface {
	// Reserve takes one token from key's bucket (perHour refilled evenly,
	// holding at most burst) and says how long to wait before using it.
	Reserve(ctx context.Context, key string, perHour, burst float64) (time.Duration, error)
}

// budget is a token bucket per person, shared by all of that person's
// watches on every replica: Cloud 66 counts requests per user per hour, so
// ten deployments followed at once must not cost ten times the allowance.
//
// Its buckets run on real time (the store's clock, not Config.Now) because
// Cloud 66's window is real time and so is the sleeping between polls.
type budget struct {
	store   BudgetStore
	perHour float64
	burst   float64
}

// budgetBurstShare is the share of the hourly budget that may be spent at
// once: ten minutes' worth. A whole hour's worth as burst would let a busy
// person spend almost twice the budget in one clock hour.
const budgetBurstShare = 6

func newBudget(store BudgetStore, perHour int) *budget {
	return &budget{store: store, perHour: float64(perHour), burst: max(1, float64(perHour)/budgetBurstShare)}
}

// budgetKey is the bucket of id's watches in the shared store.
func budgetKey(id storage.Identity) string { return "deploy:" + id.String() }

// reserve takes one request from id's bucket and returns how long to wait
// before sending it. The token is taken even when the caller must wait
// (like rate.Limiter.Reserve), so concurrent watches queue up fairly
// instead of all waking at once.
func (b *budget) reserve(ctx context.Context, id storage.Identity) (time.Duration, error) {
	d, err := b.store.Reserve(ctx, budgetKey(id), b.perHour, b.burst)
	if err != nil {
		return 0, fmt.Errorf("deploy: reserve a Cloud 66 request for %s: %w", id, err)
	}
	return d, nil
}

// wait blocks until id may send one more request, or ctx ends. It always
// sleeps in real time, like the bucket refills.
func (b *budget) wait(ctx context.Context, id storage.Identity) error {
	d, err := b.reserve(ctx, id)
	if err != nil {
		return err
	}
	return clock.Sleep(ctx, d)
}
