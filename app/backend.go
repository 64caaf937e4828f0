package app

import (
	"context"
	"fmt"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/bot"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
	"github.com/c66bot/c66bot/web"
)

// backend is the database as the parts see it: each kind's store, typed
// by every interface its consumers declare, and what the app does with the
// whole (health, sweeping, closing). It is made from the bbolt file or
// from PostgreSQL; past New nothing knows which.
type backend struct {
	// name is what the log and doctor call it: "bbolt" or "postgresql".
	name string

	links interface {
		accounts.LinkStore
		admin.LinkCounter
	}
	logins  accounts.LoginStore
	intents deploy.IntentStore
	locks   deploy.LockStore
	watches interface {
		deploy.WatchStore
		notify.WatchStore
		CountActive(ctx context.Context) (int, error)
	}
	audit interface {
		deploy.AuditStore
		web.Audit
		admin.AuditLog
	}
	subscriptions interface {
		notify.SubscriptionStore
		web.Subscriptions
		commands.Subscriptions
	}
	outbox notify.OutboxStore
	dedup  interface {
		notify.DedupStore
		web.Dedup
	}
	apiTokens interface {
		web.APITokens
		admin.TokenStore
	}
	// leases and budgets are what replicas share; nil on bbolt, where each
	// part keeps its own in memory (no other process can open the file).
	leases  deploy.LeaseStore
	budgets deploy.BudgetStore
	// envelopes remembers the Socket Mode envelopes handled, for Slack's
	// redeliveries that reach another replica; nil on bbolt, where the
	// bot's memory is enough (a redelivery comes back to the one socket).
	envelopes bot.DedupStore

	whole interface {
		web.DatabaseHealth
		admin.KeyStore
		SweepExpired(ctx context.Context) (int, error)
		Close() error
	}
	// bolt is the bbolt file, nil on PostgreSQL: only it has a backup of
	// its own and a lock that makes the admin socket necessary.
	bolt *storage.DB
}

// openBackend opens PostgreSQL when the settings name one, the bbolt file
// otherwise.
func openBackend(ctx context.Context, cfg Config, keys [][]byte) (*backend, error) {
	s := cfg.Settings
	if s.DatabaseURL == "" {
		db, err := storage.Open(storage.Options{Path: s.DB, Keys: keys, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", s.DB, err)
		}
		return boltBackend(db), nil
	}
	db, err := postgres.Open(ctx, postgres.Options{URL: s.DatabaseURL, Keys: keys, Now: cfg.Now, Replica: s.Replica})
	if err != nil {
		// The URL holds a password: the error names neither (pgx says
		// host, user and database at most).
		return nil, fmt.Errorf("open the PostgreSQL database of C66BOT_DATABASE_URL: %w", err)
	}
	return postgresBackend(db), nil
}

// boltBackend is one process on its own file.
func boltBackend(db *storage.DB) *backend {
	return &backend{
		name: "bbolt", links: db.Links(), logins: db.Logins(), intents: db.Intents(), locks: db.Locks(),
		watches: db.Watches(), audit: db.Audit(), subscriptions: db.Subscriptions(), outbox: db.Outbox(),
		dedup: db.Dedup(), apiTokens: db.APITokens(),
		whole: db, bolt: db,
	}
}

// postgresBackend is one of several replicas on one database: leases and
// budgets are in it, shared.
func postgresBackend(db *postgres.DB) *backend {
	return &backend{
		name: "postgresql", links: db.Links(), logins: db.Logins(), intents: db.Intents(), locks: db.Locks(),
		watches: db.Watches(), audit: db.Audit(), subscriptions: db.Subscriptions(), outbox: db.Outbox(),
		dedup: db.Dedup(), apiTokens: db.APITokens(),
		leases: db.Leases(), budgets: db.Budgets(), envelopes: db.Dedup(),
		whole: db,
	}
}
