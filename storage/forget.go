package storage

import (
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// ForgetUnopenableLinks deletes the links that none of the configured keys
// opens and returns how many there were. It is the way out when the key
// that sealed them is lost for good, since Open refuses keys that open no
// link at all: open the file with SkipKeyCheck and the new key, forget what
// the lost key sealed, and the people concerned log in again. Pending
// logins, intents and watches that do not open are dropped by SweepExpired.
// Links that do open are left alone.
func (d *DB) ForgetUnopenableLinks(ctx context.Context) (int, error) {
	var n int
	err := d.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		dead, err := collect(ctx, b, func(k, v []byte) bool {
			plain, err := d.sealer.Open(v, k)
			clear(plain)
			return err != nil
		})
		if err != nil {
			return err
		}
		if n = len(dead); n == 0 {
			return errNoChanges
		}
		return deleteAll(b, dead)
	})
	if errors.Is(err, errNoChanges) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: forget unopenable links: %w", err)
	}
	return n, nil
}
