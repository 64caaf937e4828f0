package postgres_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage/postgres"
	"github.com/c66bot/c66bot/storage/postgres/pgtest"
	"github.com/c66bot/c66bot/storage/storagetest"
)

// The contract suites of storage/storagetest, run against PostgreSQL:
// every database a suite opens is a fresh schema (see pgtest.URL), and a
// reopen closes the pool and opens the same schema again.

func TestLinks(t *testing.T)         { storagetest.TestLinks(t, opener(t)) }
func TestLogins(t *testing.T)        { storagetest.TestLogins(t, opener(t)) }
func TestIntents(t *testing.T)       { storagetest.TestIntents(t, opener(t)) }
func TestWatches(t *testing.T)       { storagetest.TestWatches(t, opener(t)) }
func TestLocks(t *testing.T)         { storagetest.TestLocks(t, opener(t)) }
func TestSubscriptions(t *testing.T) { storagetest.TestSubscriptions(t, opener(t)) }
func TestOutbox(t *testing.T)        { storagetest.TestOutbox(t, opener(t)) }
func TestDedup(t *testing.T)         { storagetest.TestDedup(t, opener(t)) }
func TestAudit(t *testing.T)         { storagetest.TestAudit(t, opener(t)) }
func TestAPITokens(t *testing.T)     { storagetest.TestAPITokens(t, opener(t)) }
func TestAuditedWrites(t *testing.T) { storagetest.TestAuditedWrites(t, opener(t)) }

func TestLeases(t *testing.T) {
	pgtest.ServerURL(t)
	storagetest.TestLeases(t, func(t *testing.T, now func() time.Time) storagetest.LeaseStore {
		return openDB(t, pgtest.URL(t), now).Leases()
	})
}

func TestBudgets(t *testing.T) {
	pgtest.ServerURL(t)
	storagetest.TestBudgets(t, func(t *testing.T, now func() time.Time) storagetest.BudgetStore {
		return openDB(t, pgtest.URL(t), now).Budgets()
	})
}

// testKey is the sealing key of the tests' databases.
func testKey() []byte {
	k := sha256.Sum256([]byte("c66bot postgres test key"))
	return k[:]
}

// opener is the suites' Opener: a fresh schema for every database. It
// skips t, once, when there is no PostgreSQL to test against.
func opener(t *testing.T) storagetest.Opener {
	pgtest.ServerURL(t)
	return func(t *testing.T, now func() time.Time) storagetest.Stores {
		t.Helper()
		return storesAt(t, pgtest.URL(t), now)
	}
}

func storesAt(t *testing.T, url string, now func() time.Time) storagetest.Stores {
	t.Helper()
	db := openDB(t, url, now)
	return storagetest.Stores{
		Links:         db.Links(),
		Logins:        db.Logins(),
		Intents:       db.Intents(),
		Watches:       db.Watches(),
		Locks:         db.Locks(),
		Subscriptions: db.Subscriptions(),
		Outbox:        db.Outbox(),
		Dedup:         db.Dedup(),
		Audit:         db.Audit(),
		APITokens:     db.APITokens(),
		Close:         db.Close,
		Reopen: func() storagetest.Stores {
			t.Helper()
			if err := db.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return storesAt(t, url, now)
		},
	}
}

// openDB opens the database at url with the test key, closed when the
// test ends.
func openDB(t *testing.T, url string, now func() time.Time) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url, Keys: [][]byte{testKey()}, Now: now, MaxConns: 4, Replica: t.Name()})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
