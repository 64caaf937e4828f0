package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Leases and budgets: what several replicas of c66bot on one database
// share so that each piece of work has exactly one owner (a followed Cloud
// 66 action, a channel's posting, an outbox item) and a person's Cloud 66
// requests are counted once, whoever makes them. With the bbolt file only
// one process can run, so LocalLeases and LocalBudgets keep them in that
// process's memory; the PostgreSQL backend keeps them in the database.

// Lease is one owner's hold on the piece of work Key names, until Expires.
// Epoch grows each time the lease changes hands, so an owner that lost it
// (paused past its expiry, say) can tell. Note is what the last owner left
// for the next one (the time of a channel's last post).
type Lease struct {
	Key     string
	Owner   string
	Epoch   int64
	Expires time.Time
	Note    string
}

// ErrLeaseLost: the lease is no longer the caller's (it expired and
// another owner took it, or it was released).
var ErrLeaseLost = errors.New("storage: lease lost")

// LocalLeases are leases within one process; they satisfy the lease store
// every consumer declares. Safe for concurrent use.
type LocalLeases struct {
	mu     sync.Mutex
	now    func() time.Time
	leases map[string]Lease
}

// NewLocalLeases returns leases on the clock now (nil: time.Now).
func NewLocalLeases(now func() time.Time) *LocalLeases {
	if now == nil {
		now = time.Now
	}
	return &LocalLeases{now: now, leases: map[string]Lease{}}
}

// Acquire takes key for owner for ttl. A free or expired lease is taken
// with a new epoch; owner's own is renewed, same epoch. When another owner
// holds it, held is false and l is their lease.
func (s *LocalLeases) Acquire(_ context.Context, key, owner string, ttl time.Duration) (l Lease, held bool, err error) {
	if key == "" || owner == "" || ttl <= 0 {
		return Lease{}, false, fmt.Errorf("storage: acquire lease: key, owner and a positive ttl are needed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	cur, ok := s.leases[key]
	switch {
	case ok && cur.Owner == owner && now.Before(cur.Expires):
		cur.Expires = now.Add(ttl)
	case ok && cur.Owner != "" && now.Before(cur.Expires):
		return cur, false, nil
	default:
		cur = Lease{Key: key, Owner: owner, Epoch: cur.Epoch + 1, Expires: now.Add(ttl), Note: cur.Note}
	}
	s.leases[key] = cur
	return cur, true, nil
}

// Renew extends l by ttl while it is still l: same owner and epoch, and
// not taken by anyone since (an expired lease nobody took is renewed).
// ErrLeaseLost otherwise.
func (s *LocalLeases) Renew(_ context.Context, l Lease, ttl time.Duration) (Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok || cur.Owner != l.Owner || cur.Epoch != l.Epoch || cur.Owner == "" {
		return Lease{}, ErrLeaseLost
	}
	cur.Expires = s.now().Add(ttl)
	s.leases[l.Key] = cur
	return cur, nil
}

// Release gives l up at once, leaving note for the next owner. A lease no
// longer l's is left alone (ErrLeaseLost).
func (s *LocalLeases) Release(_ context.Context, l Lease, note string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok || cur.Owner != l.Owner || cur.Epoch != l.Epoch || cur.Owner == "" {
		return ErrLeaseLost
	}
	s.leases[l.Key] = Lease{Key: l.Key, Epoch: cur.Epoch, Note: note}
	return nil
}

// LocalBudgets are per-key token buckets within one process (a person's
// Cloud 66 requests); they satisfy the budget store deploy declares.
type LocalBudgets struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

// NewLocalBudgets returns budgets on the clock now (nil: time.Now).
func NewLocalBudgets(now func() time.Time) *LocalBudgets {
	if now == nil {
		now = time.Now
	}
	return &LocalBudgets{now: now, buckets: map[string]*tokenBucket{}}
}

// Reserve takes one token from key's bucket (perHour refilled evenly,
// holding at most burst) and says how long to wait before using it. The
// token is taken even when the caller must wait (like rate.Limiter's
// Reserve), so concurrent takers queue up fairly instead of all waking at
// once.
func (s *LocalBudgets) Reserve(_ context.Context, key string, perHour, burst float64) (time.Duration, error) {
	if perHour <= 0 || burst < 1 {
		return 0, fmt.Errorf("storage: reserve budget: perHour > 0 and burst >= 1 are needed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	b := s.buckets[key]
	if b == nil {
		b = &tokenBucket{tokens: burst, last: now}
		s.buckets[key] = b
	}
	return reserveToken(&b.tokens, &b.last, now, perHour, burst), nil
}

// reserveToken is the token bucket's arithmetic, shared by every backend:
// refill since last, take one, and return the wait for it.
func reserveToken(tokens *float64, last *time.Time, now time.Time, perHour, burst float64) time.Duration {
	perSec := perHour / 3600
	if elapsed := now.Sub(*last).Seconds(); elapsed > 0 {
		*tokens = min(burst, *tokens+elapsed*perSec)
	}
	*last = now
	*tokens--
	if *tokens >= 0 {
		return 0
	}
	return time.Duration(-*tokens / perSec * float64(time.Second))
}

// ReserveToken is reserveToken for other backends (storage/postgres):
// given a bucket's tokens and last refill, it returns them updated and the
// wait for the token taken.
func ReserveToken(tokens float64, last, now time.Time, perHour, burst float64) (float64, time.Time, time.Duration) {
	wait := reserveToken(&tokens, &last, now, perHour, burst)
	return tokens, last, wait
}
