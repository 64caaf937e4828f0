package deploy

import (
	"context"
	"sync"
	"time"

	"github.com/c66bot/c66bot/internal/clock"
	"github.com/c66bot/c66bot/storage"
)

// budget is a token bucket per person, shared by all of that person's
// watches: Cloud 66 counts requests per user per hour, so ten deployments
// followed at once must not cost ten times the allowance.
//
// It runs on real time (not Config.Now) because Cloud 66's window is real
// time and so is the sleeping between polls.
type budget struct {
	mu      sync.Mutex
	perSec  float64 // refill rate
	burst   float64 // bucket size
	now     func() time.Time
	buckets map[storage.Identity]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// budgetBurstShare is the share of the hourly budget that may be spent at
// once: ten minutes' worth. A whole hour's worth as burst would let a busy
// person spend almost twice the budget in one clock hour.
const budgetBurstShare = 6

func newBudget(perHour int, now func() time.Time) *budget {
	burst := float64(perHour) / budgetBurstShare
	if burst < 1 {
		burst = 1
	}
	return &budget{
		perSec:  float64(perHour) / 3600,
		burst:   burst,
		now:     now,
		buckets: map[storage.Identity]*bucket{},
	}
}

// reserve takes one request from id's bucket and returns how long to wait
// before sending it. The token is taken even when the caller must wait
// (like rate.Limiter.Reserve), so concurrent watches queue up fairly
// instead of all waking at once.
func (b *budget) reserve(id storage.Identity) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	bk := b.buckets[id]
	if bk == nil {
		bk = &bucket{tokens: b.burst, last: now}
		b.buckets[id] = bk
	}
	if elapsed := now.Sub(bk.last).Seconds(); elapsed > 0 {
		bk.tokens = min(b.burst, bk.tokens+elapsed*b.perSec)
	}
	bk.last = now
	bk.tokens--
	if bk.tokens >= 0 {
		return 0
	}
	return time.Duration(-bk.tokens / b.perSec * float64(time.Second))
}

// wait blocks until id may send one more request, or ctx ends. It always
// sleeps in real time, like the bucket refills.
func (b *budget) wait(ctx context.Context, id storage.Identity) error {
	return clock.Sleep(ctx, b.reserve(id))
}
