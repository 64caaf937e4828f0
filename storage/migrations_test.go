package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// deployBuckets are the buckets schema v2 added.
func deployBuckets() [][]byte {
	return [][]byte{bucketIntents, bucketLocks, bucketWatches, bucketWatchesActive, bucketWatchByStack, bucketWatchesDone, bucketAudit}
}

// notifyBuckets are the buckets schema v3 added.
func notifyBuckets() [][]byte {
	return [][]byte{bucketSubscriptions, bucketSubscriptionIDs, bucketSubSecrets, bucketAPITokens, bucketAPITokenHashes, bucketOutbox}
}

// rollBack makes the file at path look as schema v(version) left it: the
// buckets of later versions dropped and the version put back.
func rollBack(t *testing.T, path string, version uint64, drop ...[]byte) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range drop {
			if err := tx.DeleteBucket(b); err != nil {
				return fmt.Errorf("drop %s: %w", b, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, encodeUint64(version))
	}); err != nil {
		t.Fatal(err)
	}
}

// fileVersion reads the schema version of the closed file at path.
func fileVersion(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return readVersion(t, db)
}

func openRawDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readVersion(t *testing.T, db *bbolt.DB) uint64 {
	t.Helper()
	var v uint64
	if err := db.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = storedSchemaVersion(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// runMigrations is Open's migration step against a raw bbolt file.
func runMigrations(db *bbolt.DB, ms []migration) error {
	err := db.Update(func(tx *bbolt.Tx) error { return migrate(tx, ms) })
	if errors.Is(err, errNoChanges) {
		return nil
	}
	return err
}

// TestMigrations has one case per migration, as containerd's does: seed
// writes data in the shape the previous schema had, check asserts the shape
// after. It fails when a migration is added without a case.
func TestMigrations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		seed  func(tx *bbolt.Tx) error
		check func(tx *bbolt.Tx) error
	}{
		{
			name: "create buckets",
			seed: func(*bbolt.Tx) error { return nil },
			check: func(tx *bbolt.Tx) error {
				for _, b := range [][]byte{bucketMeta, bucketLinks, bucketLoginStates, bucketLoginByIdentity, bucketDedup} {
					if tx.Bucket(b) == nil {
						return fmt.Errorf("bucket %s missing", b)
					}
				}
				return nil
			},
		},
		{
			name: "intents, locks, watches and audit",
			// A v1 file with a link in it: the migration must only add.
			seed: func(tx *bbolt.Tx) error {
				return tx.Bucket(bucketLinks).Put([]byte("T1:U1"), []byte("sealed link"))
			},
			check: func(tx *bbolt.Tx) error {
				for _, b := range deployBuckets() {
					if tx.Bucket(b) == nil {
						return fmt.Errorf("bucket %s missing", b)
					}
				}
				if v := tx.Bucket(bucketLinks).Get([]byte("T1:U1")); string(v) != "sealed link" {
					return fmt.Errorf("v1 link = %q after the migration", v)
				}
				return nil
			},
		},
		{
			name: "subscriptions, api tokens and outbox",
			// A v2 file with a lock and an audit entry: the migration must
			// only add.
			seed: func(tx *bbolt.Tx) error {
				if err := tx.Bucket(bucketLocks).Put([]byte("T1:s1"), []byte("lock")); err != nil {
					return err
				}
				return tx.Bucket(bucketAudit).Put(encodeUint64(1), []byte("audit entry"))
			},
			check: func(tx *bbolt.Tx) error {
				for _, b := range notifyBuckets() {
					if tx.Bucket(b) == nil {
						return fmt.Errorf("bucket %s missing", b)
					}
				}
				if v := tx.Bucket(bucketLocks).Get([]byte("T1:s1")); string(v) != "lock" {
					return fmt.Errorf("v2 lock = %q after the migration", v)
				}
				if v := tx.Bucket(bucketAudit).Get(encodeUint64(1)); string(v) != "audit entry" {
					return fmt.Errorf("v2 audit entry = %q after the migration", v)
				}
				return nil
			},
		},
	}

	ms := schemaMigrations()
	if len(tests) != len(ms) {
		t.Fatalf("%d migrations but %d test cases: add a case for every migration", len(ms), len(tests))
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("v%d %s", i+1, tc.name), func(t *testing.T) {
			t.Parallel()
			if tc.name != ms[i].name {
				t.Fatalf("case %d is %q but migration %d is %q", i, tc.name, i+1, ms[i].name)
			}
			db := openRawDB(t)
			if err := runMigrations(db, ms[:i]); err != nil {
				t.Fatalf("migrating to v%d: %v", i, err)
			}
			if err := db.Update(tc.seed); err != nil {
				t.Fatalf("seed: %v", err)
			}
			if err := runMigrations(db, ms[:i+1]); err != nil {
				t.Fatalf("migrating to v%d: %v", i+1, err)
			}
			if err := db.View(tc.check); err != nil {
				t.Errorf("check: %v", err)
			}
			if v := readVersion(t, db); v != uint64(i+1) {
				t.Errorf("schema version = %d, want %d", v, i+1)
			}
		})
	}
}

func TestOpenSchemaVersion(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening a current file works and changes nothing.
	s = mustOpenWith(t, Options{Path: path})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := readVersion(t, db); v != schemaVersion() {
		t.Errorf("fresh database at schema v%d, want v%d", v, schemaVersion())
	}
	// Pretend a newer c66bot wrote the file.
	newer := schemaVersion() + 1
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, encodeUint64(newer))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	for _, ro := range []bool{false, true} {
		_, err = Open(Options{Path: path, Keys: [][]byte{testKey("A")}, ReadOnly: ro})
		want := fmt.Sprintf("database schema v%d is newer than this c66bot (v%d); upgrade c66bot", newer, schemaVersion())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(ReadOnly=%v) of a newer file = %v, want %q", ro, err, want)
		}
	}

	// The refused file was left alone, and its lock released.
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked after a refused Open: %v", err)
	}
	defer db.Close()
	if v := readVersion(t, db); v != newer {
		t.Errorf("refused file now at v%d, want v%d untouched", v, newer)
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	t.Parallel()
	db := openRawDB(t)
	boom := errors.New("boom")
	ms := append(schemaMigrations(), migration{
		name:  "broken",
		apply: func(*bbolt.Tx) error { return boom },
	})
	err := runMigrations(db, ms)
	if !errors.Is(err, boom) {
		t.Fatalf("runMigrations = %v, want it to wrap the migration's error", err)
	}
	if want := fmt.Sprintf("migration to schema v%d (broken)", len(ms)); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	// All or nothing: even the earlier migrations were rolled back.
	if v := readVersion(t, db); v != 0 {
		t.Errorf("schema version after a failed migration = %d, want 0", v)
	}
	if err := db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketLinks) != nil {
			return errors.New("links bucket exists")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestOpenMigratesV1File opens a file as the v1 schema left it (made by
// rolling a current file back: version 1, no v2 or v3 buckets) and checks
// that Open brings it to the current version with the v1 data intact and the
// v2 features usable.
func TestOpenMigratesV1File(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id := Identity{Team: "T1", User: "U1"}
	if err := s.Links().Save(ctx, Link{Identity: id, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rollBack(t, path, 1, append(deployBuckets(), notifyBuckets()...)...)

	// A read-only open cannot migrate, so it refuses the v1 file.
	if _, err := Open(Options{Path: path, Keys: [][]byte{testKey("A")}, ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "schema v1 is older") {
		t.Errorf("read-only Open of a v1 file = %v, want an 'older' error", err)
	}

	s = mustOpenWith(t, Options{Path: path})
	if l, err := s.Links().Get(ctx, id); err != nil || l.AccessToken != "tok" {
		t.Errorf("v1 link after migration = %+v, %v", l, err)
	}
	if _, err := s.Intents().Create(ctx, Intent{Kind: "deploy", Requester: id}); err != nil {
		t.Errorf("CreateIntent after migration: %v", err)
	}
	if _, _, err := s.Locks().Acquire(ctx, Lock{Team: "T1", StackUID: "s1", Owner: id}); err != nil {
		t.Errorf("AcquireLock after migration: %v", err)
	}
	if _, err := s.Watches().Start(ctx, Watch{Owner: id, StackUID: "s1"}); err != nil {
		t.Errorf("StartWatch after migration: %v", err)
	}
	if _, err := s.Audit().Append(ctx, AuditEntry{Action: "deploy"}); err != nil {
		t.Errorf("AppendAudit after migration: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v := fileVersion(t, path); v != schemaVersion() {
		t.Errorf("schema version after migration = %d, want %d", v, schemaVersion())
	}
}

// TestOpenMigratesV2File is TestOpenMigratesV1File one version on: a file
// with v1 and v2 data, rolled back to version 2 without the v3 buckets.
func TestOpenMigratesV2File(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id := Identity{Team: "T1", User: "U1"}
	if err := s.Links().Save(ctx, Link{Identity: id, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Locks().Acquire(ctx, Lock{Team: "T1", StackUID: "s1", Owner: id, Reason: "v2 lock"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Audit().Append(ctx, AuditEntry{Action: "lock"}); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rollBack(t, path, 2, notifyBuckets()...)

	if _, err := Open(Options{Path: path, Keys: [][]byte{testKey("A")}, ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "schema v2 is older") {
		t.Errorf("read-only Open of a v2 file = %v, want an 'older' error", err)
	}

	s = mustOpenWith(t, Options{Path: path})
	if l, err := s.Links().Get(ctx, id); err != nil || l.AccessToken != "tok" {
		t.Errorf("v1 link after migration = %+v, %v", l, err)
	}
	if l, err := s.Locks().Get(ctx, "T1", "s1"); err != nil || l.Reason != "v2 lock" {
		t.Errorf("v2 lock after migration = %+v, %v", l, err)
	}
	var entries int
	if err := s.Audit().Scan(ctx, time.Time{}, func(AuditEntry) error { entries++; return nil }); err != nil || entries != 1 {
		t.Errorf("v2 audit after migration = %d entries, %v; want 1", entries, err)
	}
	if _, _, err := s.Subscriptions().Subscribe(ctx, Subscription{Team: "T1", Channel: "C1", Subscriber: id}); err != nil {
		t.Errorf("Subscribe after migration: %v", err)
	}
	if _, _, err := s.APITokens().Create(ctx, "ci", []string{"notify"}); err != nil {
		t.Errorf("CreateAPIToken after migration: %v", err)
	}
	if _, err := s.Outbox().Enqueue(ctx, "api.notify", []byte("{}")); err != nil {
		t.Errorf("EnqueueOutbox after migration: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if v := fileVersion(t, path); v != 3 {
		t.Errorf("schema version after migration = %d, want 3", v)
	}
}
