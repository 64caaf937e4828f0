package storage

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// rekeyBatch is how many values one rekey write transaction looks at.
// bbolt has a single writer, so a running bot's own writes wait while a
// batch commits; a few hundred small values keep that wait to milliseconds,
// where one transaction over every value could stall the bot for seconds.
const rekeyBatch = 256

// sealedBuckets lists every bucket whose values are sealed, each under its
// own bbolt key as associated data (see the tree in doc.go). Rekey and
// CheckKeys walk exactly these, so a new sealed bucket must be added here;
// TestEveryBucketIsClassified fails until it is.
func sealedBuckets() [][]byte {
	return [][]byte{bucketLinks, bucketLoginStates, bucketIntents, bucketWatches}
}

// RekeyReport counts what Rekey did with each sealed value.
type RekeyReport struct {
	// Resealed values were under an older configured key and are now under
	// the primary key.
	Resealed int `json:"resealed"`
	// AlreadyPrimary values were under the primary key and were left alone.
	AlreadyPrimary int `json:"already_primary"`
	// Failed values open with no configured key (or were damaged). They are
	// kept as they are: putting the missing key back in the key list makes
	// them readable again, which deleting them would rule out.
	Failed int `json:"failed"`
	// UnknownKeyIDs are the key ids (see KeyID) of the keys, none of them
	// configured, that sealed Failed values, so an operator can tell which
	// retired key is needed.
	UnknownKeyIDs []string `json:"unknown_key_ids,omitempty"`
}

// Rekey reseals every sealed value (links, pending logins, intents, watches)
// under the primary key, Options.Keys[0]. Run it after putting a new key in
// front of the key list; once it reports no Failed values, the old keys can
// be dropped from the list.
//
// It works in batches of short write transactions, so it is safe while the
// bot runs on the same DB. Each value is read, opened and resealed in
// the same transaction that writes it back, so a concurrent update is never
// overwritten with a stale copy. Values already under the primary key are
// skipped, which makes a second run a no-op that writes nothing.
func (d *DB) Rekey(ctx context.Context) (RekeyReport, error) {
	var rep RekeyReport
	for _, name := range sealedBuckets() {
		var after []byte // the last key handled; the next batch starts past it
		for {
			if err := ctx.Err(); err != nil {
				return rep, fmt.Errorf("storage: rekey: %w", err)
			}
			var (
				batch RekeyReport
				last  []byte
				done  bool
			)
			err := d.update(ctx, func(tx *bbolt.Tx) error {
				batch, last, done = RekeyReport{}, nil, false
				b, err := bucket(tx, name)
				if err != nil {
					return err
				}
				// Collect first, write after: bbolt cursors may skip or
				// repeat keys when the bucket changes under them.
				type item struct{ k, v []byte }
				var todo []item
				c := b.Cursor()
				k, v := seekPast(c, after)
				for n := 0; k != nil && n < rekeyBatch; k, v = c.Next() {
					n++
					last = bytes.Clone(k)
					if v == nil {
						continue // a nested bucket; none are expected here
					}
					sealed, err := batch.Reseal(d.sealer, v, k)
					if err != nil {
						return err
					}
					if sealed != nil {
						todo = append(todo, item{bytes.Clone(k), sealed})
					}
				}
				done = k == nil
				for _, it := range todo {
					if err := b.Put(it.k, it.v); err != nil {
						return err
					}
				}
				if len(todo) == 0 {
					// Nothing written: roll back rather than pay for a
					// commit and fsync.
					return errNoChanges
				}
				return nil
			})
			if err != nil && !errors.Is(err, errNoChanges) {
				return rep, fmt.Errorf("storage: rekey %s: %w", name, err)
			}
			rep.Add(batch)
			if done {
				break
			}
			after = last
		}
	}
	return rep, nil
}

// seekPast positions c on the first key after after, or on the first key
// when after is nil.
func seekPast(c *bbolt.Cursor, after []byte) (k, v []byte) {
	if after == nil {
		return c.First()
	}
	k, v = c.Seek(after)
	if k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v
}

// KeyReport says how the configured keys fare against the sealed values in
// the file, without changing anything.
type KeyReport struct {
	// Primary values are under the primary key and open.
	Primary int `json:"primary"`
	// Older values open, but with a key other than the primary; Rekey
	// would move them.
	Older int `json:"older"`
	// Unopenable values open with no configured key, or were damaged.
	Unopenable int `json:"unopenable"`
	// UnknownKeyIDs are the key ids of the keys, none of them configured,
	// that sealed Unopenable values.
	UnknownKeyIDs []string `json:"unknown_key_ids,omitempty"`
}

// Total is the number of sealed values looked at.
func (r KeyReport) Total() int { return r.Primary + r.Older + r.Unopenable }

// CheckKeys tries to open every sealed value with the configured keys, for
// `c66bot doctor`: a wrong C66BOT_SECRET_KEY shows up here as Unopenable
// values before any person's command fails. It only reads, so it works on
// a read-only DB.
func (d *DB) CheckKeys(ctx context.Context) (KeyReport, error) {
	var rep KeyReport
	err := d.view(ctx, func(tx *bbolt.Tx) error {
		for _, name := range sealedBuckets() {
			b, err := bucket(tx, name)
			if err != nil {
				return err
			}
			err = b.ForEach(func(k, v []byte) error {
				if v != nil {
					rep.Tally(d.sealer, v, k)
				}
				return ctx.Err()
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return KeyReport{}, fmt.Errorf("storage: check keys: %w", err)
	}
	return rep, nil
}

// KeyID returns the id a sealed value records for key: the hex of the first
// four bytes of its SHA-256. It is not secret, and it is how reports name
// a key without showing it.
func KeyID(key []byte) string {
	id := keyIDOf(key)
	return hex.EncodeToString(id[:])
}

// unknownKeyID returns the key id a sealed value names when no configured
// key has that id. A value that names a configured key but does not open
// was damaged; reporting that key as missing would send the operator
// hunting for a key they already have.
func (s *Sealer) unknownKeyID(sealed []byte) (string, bool) {
	if len(sealed) < sealHeaderSize || sealed[0] != sealVersion {
		return "", false
	}
	id := keyID(sealed[1:sealHeaderSize])
	for _, k := range s.keys {
		if k.id == id {
			return "", false
		}
	}
	return hex.EncodeToString(id[:]), true
}
