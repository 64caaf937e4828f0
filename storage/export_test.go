package storage

import (
	"errors"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// CheckConsistency runs bbolt's consistency check on d's file, for the
// tests of package storage_test, which cannot reach d's internals. A closed
// DB has nothing to check.
func CheckConsistency(d *DB) error {
	err := d.bolt.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil
	}
	return err
}
