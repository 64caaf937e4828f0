// Package storagetest is the contract of c66bot's per-kind stores: one
// test suite per kind (TestLinks, TestLogins, TestIntents, TestWatches,
// TestLocks, TestSubscriptions, TestOutbox, TestDedup, TestAudit,
// TestAPITokens) and one for the writes that carry their audit entry
// (TestAuditedWrites). A suite knows a database only through an [Opener]
// and the interfaces below, so it runs unchanged against any
// implementation: package storage runs every suite against bbolt, and a
// PostgreSQL backend runs the same suites against itself.
//
// What a suite asserts is what callers rely on: the method sets, the
// sentinel errors of package storage, the formats of the ids and secrets
// handed out, and expiries stepped with the clock the Opener is given.
// Anything that depends on how one backend lays out its data (raw bytes on
// disk, index buckets, fault injection, migrations) stays in that
// backend's own tests.
package storagetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
	"github.com/c66bot/c66bot/storage"
)

// Opener opens a fresh, empty database whose clock is now and returns its
// stores. It fails t when it cannot, and registers with t.Cleanup whatever
// closes the database. Suites call it in parallel tests, once or more per
// test.
type Opener func(t *testing.T, now func() time.Time) Stores

// Stores are the per-kind stores of one database, and the two things a
// suite does to the database as a whole.
type Stores struct {
	Links         LinkStore
	Logins        LoginStore
	Intents       IntentStore
	Watches       WatchStore
	Locks         LockStore
	Subscriptions SubscriptionStore
	Outbox        OutboxStore
	Dedup         DedupStore
	Audit         AuditStore
	APITokens     APITokenStore

	// Close closes the database. Every call on its stores fails after,
	// with an error wrapping storage.ErrClosed; the cleanup the Opener
	// registered must not fail because the test closed it first.
	Close func() error
	// Reopen closes the database and opens it again, as a restart does,
	// with the same clock: everything committed is there.
	Reopen func() Stores
}

// The interfaces the suites exercise. Package storage's concrete stores
// (*storage.LinkStore, …) satisfy them, and so must another backend's.
// The writes that take trailing audit entries append them in the same
// transaction as the change, or make no change and fail with an error
// wrapping storage.ErrNotAudited.
type (
	// LinkStore holds each Slack person's Cloud 66 link.
	LinkStore interface {
		Save(ctx context.Context, l storage.Link, audit ...storage.AuditEntry) error
		Get(ctx context.Context, id storage.Identity) (storage.Link, error)
		Delete(ctx context.Context, id storage.Identity, audit ...storage.AuditEntry) (existed bool, err error)
		Count(ctx context.Context) (int, error)
		SetEmail(ctx context.Context, id storage.Identity, email string) error
	}

	// LoginStore holds the pending OAuth logins (the login states).
	LoginStore interface {
		Create(ctx context.Context, p storage.PendingLogin) (state string, err error)
		Peek(ctx context.Context, state string) (storage.PendingLogin, error)
		Consume(ctx context.Context, state string) (storage.PendingLogin, error)
		ConsumeFor(ctx context.Context, id storage.Identity) (storage.PendingLogin, error)
	}

	// IntentStore holds the pending confirmations.
	IntentStore interface {
		Create(ctx context.Context, in storage.Intent) (storage.Intent, error)
		Get(ctx context.Context, id string) (storage.Intent, error)
		Consume(ctx context.Context, id string, check func(storage.Intent) error) (storage.Intent, error)
		Update(ctx context.Context, id string, fn func(*storage.Intent) error) (storage.Intent, error)
	}

	// WatchStore holds the deployments being followed.
	WatchStore interface {
		Start(ctx context.Context, w storage.Watch, audit ...storage.AuditEntry) (storage.Watch, error)
		Save(ctx context.Context, w storage.Watch, audit ...storage.AuditEntry) error
		Get(ctx context.Context, id string) (storage.Watch, error)
		Active(ctx context.Context) ([]storage.Watch, error)
		ActiveForStack(ctx context.Context, stackUID string) (storage.Watch, error)
		Delete(ctx context.Context, id string, audit ...storage.AuditEntry) error
		CountActive(ctx context.Context) (int, error)
		ForStack(ctx context.Context, stackUID string, since time.Time) ([]storage.Watch, error)
	}

	// LockStore holds the stack locks.
	LockStore interface {
		Acquire(ctx context.Context, l storage.Lock, audit ...storage.AuditEntry) (held storage.Lock, acquired bool, err error)
		Get(ctx context.Context, team, stackUID string) (storage.Lock, error)
		Release(ctx context.Context, team, stackUID string, audit ...storage.AuditEntry) (storage.Lock, error)
		List(ctx context.Context, team string) ([]storage.Lock, error)
		// The lock queue: waiters, expiry, the reminder.
		AddWaiter(ctx context.Context, team, stackUID string, w storage.LockWaiter) (storage.Lock, storage.LockWaiter, error)
		MarkReminded(ctx context.Context, team, stackUID string, since time.Time) (bool, error)
		ReleaseExpired(ctx context.Context, team, stackUID string, now time.Time, audit ...storage.AuditEntry) (storage.Lock, error)
		All(ctx context.Context) ([]storage.Lock, error)
	}

	// SubscriptionStore holds the channels following stacks' events.
	SubscriptionStore interface {
		Subscribe(ctx context.Context, sub storage.Subscription, audit ...storage.AuditEntry) (saved storage.Subscription, webhookSecret string, err error)
		Unsubscribe(ctx context.Context, team, channel, stackUID string, audit ...storage.AuditEntry) (storage.Subscription, error)
		ForChannel(ctx context.Context, team, channel string) ([]storage.Subscription, error)
		All(ctx context.Context) ([]storage.Subscription, error)
		BySecret(ctx context.Context, secret string) (storage.Subscription, error)
		PauseChannel(ctx context.Context, team, channel, reason string) ([]storage.Subscription, error)
		ResumeChannel(ctx context.Context, team, channel string) (int, error)
		MarkWebhookSeen(ctx context.Context, id string, at time.Time) error
	}

	// OutboxStore holds the events accepted but not yet posted. MarkDone
	// records its dedup key in the DedupStore of the same database, in
	// the same transaction.
	OutboxStore interface {
		Enqueue(ctx context.Context, kind string, payload []byte) (storage.OutboxItem, error)
		Pending(ctx context.Context, limit int) ([]storage.OutboxItem, error)
		Ack(ctx context.Context, id uint64) error
		Retry(ctx context.Context, id uint64, next time.Time) (storage.OutboxItem, error)
		MarkDone(ctx context.Context, id uint64, target, key string, ttl time.Duration) error
		Count(ctx context.Context) (int, error)
	}

	// DedupStore holds the "already handled" marks.
	DedupStore interface {
		FirstTime(ctx context.Context, key string, ttl time.Duration) (bool, error)
		Seen(ctx context.Context, key string) (bool, error)
		Forget(ctx context.Context, key string) error
	}

	// AuditStore is the audit log. An entry whose At cannot be written as
	// RFC 3339 (a year past 9999) is refused with storage.ErrNotAudited,
	// which is how the suites make an audit entry fail to write.
	AuditStore interface {
		Append(ctx context.Context, e storage.AuditEntry) (storage.AuditEntry, error)
		Scan(ctx context.Context, since time.Time, fn func(storage.AuditEntry) error) error
	}

	// APITokenStore holds the bearer tokens of the bot's HTTP API.
	APITokenStore interface {
		Create(ctx context.Context, name string, scopes []string, audit ...storage.AuditEntry) (token string, t storage.APIToken, err error)
		List(ctx context.Context) ([]storage.APIToken, error)
		Revoke(ctx context.Context, name string, audit ...storage.AuditEntry) (storage.APIToken, error)
		Check(ctx context.Context, token string) (storage.APIToken, error)
	}
)

// begin starts a test of a suite: it marks t parallel and opens a fresh
// database on a clock of its own, which it returns for stepping past
// expiries.
func begin(t *testing.T, open Opener) (Stores, *fakeclock.Clock) {
	t.Helper()
	t.Parallel()
	clock := fakeclock.New()
	return open(t, clock.Now), clock
}

// atOnce calls call(0) … call(n-1) concurrently and returns once all have
// returned: the races a store must settle in one transaction.
func atOnce(n int, call func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { call(i) })
	}
	wg.Wait()
}

// winners calls try(0) … try(n-1) concurrently and returns how many
// reported a win; an error from try fails t.
func winners(t *testing.T, n int, try func(i int) (bool, error)) int {
	var wins atomic.Int32
	atOnce(n, func(i int) {
		won, err := try(i)
		if err != nil {
			t.Error(err)
		}
		if won {
			wins.Add(1)
		}
	})
	return int(wins.Load())
}

// subtest is one named test of a suite.
type subtest struct {
	name string
	fn   func(t *testing.T, open Opener)
}

// run runs a suite's tests as subtests of t; each runs in parallel with
// the others.
func run(t *testing.T, open Opener, tests []subtest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}
