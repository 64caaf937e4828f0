package storage

import (
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// migration moves the schema from version N-1 to N, where N is its position
// in schemaMigrations plus one. It runs inside Open's single write
// transaction, so a failure leaves the file as it was.
type migration struct {
	name  string
	apply func(tx *bbolt.Tx) error
}

// schemaMigrations returns every migration in order. Never reorder or edit a
// released migration: databases in the field have already run it. Append a
// new one, update the tree in doc.go, and add a case to TestMigrations, which
// fails when a migration has no test.
//
// It is a function rather than a package variable so nothing can change the
// list at run time.
func schemaMigrations() []migration {
	return []migration{
		{name: "create buckets", apply: migrateCreateBuckets},
		{name: "intents, locks, watches and audit", apply: migrateDeployBuckets},
		{name: "subscriptions, api tokens and outbox", apply: migrateNotifyBuckets},
	}
}

// schemaVersion is the version this build writes and expects.
func schemaVersion() uint64 {
	return uint64(len(schemaMigrations()))
}

// migrateCreateBuckets is migration 1: the initial bucket tree.
func migrateCreateBuckets(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketLinks, bucketLoginStates, bucketLoginByIdentity, bucketDedup} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateDeployBuckets is migration 2: the buckets behind deploy, cancel and
// lock (confirmations, locks, watched deployments, audit log). It only adds
// buckets, so a v1 file's links and login states are untouched.
func migrateDeployBuckets(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketIntents, bucketLocks, bucketWatches, bucketWatchesActive, bucketWatchByStack, bucketWatchesDone, bucketAudit} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateNotifyBuckets is migration 3: the buckets behind channel
// subscriptions, the HTTP API's tokens and the outbox of accepted events.
// Like migration 2 it only adds buckets.
func migrateNotifyBuckets(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketSubscriptions, bucketSubscriptionIDs, bucketSubSecrets, bucketAPITokens, bucketAPITokenHashes, bucketOutbox} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrate runs the migrations in ms that the database has not seen yet and
// records the new version. It returns errNoChanges when the database is
// already current so the caller's Update rolls back instead of committing.
func migrate(tx *bbolt.Tx, ms []migration) error {
	target := uint64(len(ms))
	current, err := storedSchemaVersion(tx)
	if err != nil {
		return err
	}
	if current > target {
		// Running older code on a newer file could misread or drop data it
		// does not know about, so refuse instead of guessing.
		return fmt.Errorf("storage: database schema v%d is newer than this c66bot (v%d); upgrade c66bot", current, target)
	}
	if current == target {
		return errNoChanges
	}
	for v := current + 1; v <= target; v++ {
		if err := ms[v-1].apply(tx); err != nil {
			return fmt.Errorf("storage: migration to schema v%d (%s): %w", v, ms[v-1].name, err)
		}
	}
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("storage: record schema version: %w", err)
	}
	if err := meta.Put(keySchemaVersion, encodeUint64(target)); err != nil {
		return fmt.Errorf("storage: record schema version: %w", err)
	}
	return nil
}

// checkSchema is migrate for a read-only open: it cannot write, so any
// difference from the version this build knows is an error.
func checkSchema(tx *bbolt.Tx, target uint64) error {
	current, err := storedSchemaVersion(tx)
	if err != nil {
		return err
	}
	switch {
	case current > target:
		return fmt.Errorf("storage: database schema v%d is newer than this c66bot (v%d); upgrade c66bot", current, target)
	case current < target:
		return fmt.Errorf("storage: database schema v%d is older than this c66bot (v%d); open it read-write once to migrate", current, target)
	}
	return nil
}

// storedSchemaVersion reads meta/schema_version; a file without it (a new
// file) is version 0, so migration 1 runs.
func storedSchemaVersion(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return 0, nil
	}
	n, err := decodeUint64(v)
	if err != nil {
		return 0, fmt.Errorf("storage: corrupt schema version: %w", err)
	}
	return n, nil
}
