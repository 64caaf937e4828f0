package storage_test

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/storagetest"
)

// The contract suites of storage/storagetest, run against bbolt. Each
// opens its databases through openBolt, so every test gets a fresh file,
// checked for consistency when it ends.

func TestLinks(t *testing.T)         { storagetest.TestLinks(t, openBolt) }
func TestLogins(t *testing.T)        { storagetest.TestLogins(t, openBolt) }
func TestIntents(t *testing.T)       { storagetest.TestIntents(t, openBolt) }
func TestWatches(t *testing.T)       { storagetest.TestWatches(t, openBolt) }
func TestLocks(t *testing.T)         { storagetest.TestLocks(t, openBolt) }
func TestSubscriptions(t *testing.T) { storagetest.TestSubscriptions(t, openBolt) }
func TestOutbox(t *testing.T)        { storagetest.TestOutbox(t, openBolt) }
func TestDedup(t *testing.T)         { storagetest.TestDedup(t, openBolt) }
func TestAudit(t *testing.T)         { storagetest.TestAudit(t, openBolt) }
func TestAPITokens(t *testing.T)     { storagetest.TestAPITokens(t, openBolt) }
func TestAuditedWrites(t *testing.T) { storagetest.TestAuditedWrites(t, openBolt) }

// openBolt is the suites' Opener for bbolt: a new file in t.TempDir.
func openBolt(t *testing.T, now func() time.Time) storagetest.Stores {
	t.Helper()
	return openBoltAt(t, filepath.Join(t.TempDir(), "c66bot.db"), now)
}

func openBoltAt(t *testing.T, path string, now func() time.Time) storagetest.Stores {
	t.Helper()
	key := sha256.Sum256([]byte("c66bot contract test key"))
	db, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{key[:]}, Now: now})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := storage.CheckConsistency(db); err != nil {
			t.Errorf("consistency check: %v", err)
		}
		// A test that closed the database itself has had its error.
		_ = db.Close()
	})
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
				t.Fatalf("close %s: %v", path, err)
			}
			return openBoltAt(t, path, now)
		},
	}
}

// The coordination suites against the in-process leases and budgets the
// bbolt mode uses (one process holds the file).
func TestLocalLeases(t *testing.T) {
	storagetest.TestLeases(t, func(_ *testing.T, now func() time.Time) storagetest.LeaseStore { return storage.NewLocalLeases(now) })
}

func TestLocalBudgets(t *testing.T) {
	storagetest.TestBudgets(t, func(_ *testing.T, now func() time.Time) storagetest.BudgetStore { return storage.NewLocalBudgets(now) })
}
