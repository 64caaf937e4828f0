package postgres

import (
	"bytes"
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// rekeyBatch is how many values one rekey transaction reseals, so a
// running bot's writes to the same rows wait milliseconds, not the whole
// pass.
const rekeyBatch = 256

// sealedTable is a table of sealed values: its name, its key column and
// the SQL of the seal's associated data, which also orders the table.
type sealedTable struct {
	name, key string
	ad        string
}

// watchIDSQL spells a watch's id as storage.WatchID does, as bytes: the
// associated data of its seal.
const watchIDSQL = `convert_to(lpad(id::text, 20, '0'), 'UTF8')`

// sealedTables lists every table whose values are sealed (see doc.go);
// Rekey and CheckKeys walk exactly these. links and watches come first:
// they are the durable ones Open's key check reads.
func sealedTables() []sealedTable {
	return []sealedTable{
		{"links", "identity", `convert_to(identity, 'UTF8')`},
		{"watches", "id", watchIDSQL},
		{"login_states", "state_sha256", "state_sha256"},
		{"intents", "id_sha256", "id_sha256"},
	}
}

// durableSealedTables are the sealed tables whose values outlive a few
// minutes: keys that open none of them are the wrong keys.
const durableSealedTables = 2

// eachSealed calls fn with every sealed value of the tables and its
// associated data, table by table in key order, until fn returns false.
func (d *DB) eachSealed(ctx context.Context, tables []sealedTable, fn func(sealed, ad []byte) bool) error {
	return d.view(ctx, func(q querier) error {
		for _, t := range tables {
			rows, err := q.Query(ctx, `SELECT sealed, `+t.ad+` AS ad FROM `+t.name+` ORDER BY ad`)
			if err != nil {
				return err
			}
			var sealed, ad []byte
			more := true
			_, err = pgx.ForEachRow(rows, []any{&sealed, &ad}, func() error {
				if more = fn(sealed, ad); !more {
					rows.Close()
				}
				return nil
			})
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// checkKeysOpen refuses keys that open none of the durable sealed values,
// with a *storage.WrongKeyError, as storage.Open does. It stops at the
// first value that opens.
func (d *DB) checkKeysOpen(ctx context.Context) error {
	var rep storage.KeyReport
	err := d.eachSealed(ctx, sealedTables()[:durableSealedTables], func(sealed, ad []byte) bool {
		rep.Tally(d.sealer, sealed, ad)
		return rep.Primary+rep.Older == 0
	})
	if err != nil {
		return fmt.Errorf("check keys: %w", err)
	}
	return rep.WrongKey(d.where, d.sealer)
}

// CheckKeys tries to open every sealed value with the configured keys, for
// `c66bot doctor`, without changing anything.
func (d *DB) CheckKeys(ctx context.Context) (storage.KeyReport, error) {
	var rep storage.KeyReport
	err := d.eachSealed(ctx, sealedTables(), func(sealed, ad []byte) bool {
		rep.Tally(d.sealer, sealed, ad)
		return true
	})
	if err != nil {
		return storage.KeyReport{}, fmt.Errorf("postgres: check keys: %w", err)
	}
	return rep, nil
}

// Rekey reseals every sealed value (links, pending logins, intents,
// watches) under the primary key, Options.Keys[0], in batches of short
// transactions, so it is safe while replicas run. Each value is locked,
// opened and resealed in the transaction that writes it back, so a
// concurrent update is never overwritten with a stale copy. Values already
// under the primary key are left alone; a second run writes nothing.
// Values no configured key opens are kept and counted as Failed.
func (d *DB) Rekey(ctx context.Context) (storage.RekeyReport, error) {
	var rep storage.RekeyReport
	for _, t := range sealedTables() {
		var after []byte // the associated data of the last value handled; nil: from the start
		for {
			var (
				batch storage.RekeyReport
				n     int
			)
			err := d.inTx(ctx, func(tx pgx.Tx) error {
				batch, n = storage.RekeyReport{}, 0
				// The associated data orders the table: a bytea, so NULL
				// before the first batch.
				rows, err := tx.Query(ctx, `SELECT `+t.key+`, sealed, `+t.ad+` AS ad FROM `+t.name+`
					WHERE $1::bytea IS NULL OR `+t.ad+` > $1 ORDER BY ad LIMIT $2 FOR UPDATE`, after, rekeyBatch)
				if err != nil {
					return err
				}
				type item struct {
					key    any
					sealed []byte
				}
				var (
					todo       []item
					key        any
					sealed, ad []byte
				)
				_, err = pgx.ForEachRow(rows, []any{&key, &sealed, &ad}, func() error {
					n++
					after = bytes.Clone(ad)
					resealed, err := batch.Reseal(d.sealer, sealed, ad)
					if resealed != nil {
						todo = append(todo, item{key, resealed})
					}
					return err
				})
				if err != nil {
					return err
				}
				for _, it := range todo {
					if _, err := tx.Exec(ctx, `UPDATE `+t.name+` SET sealed = $2 WHERE `+t.key+` = $1`, it.key, it.sealed); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return rep, fmt.Errorf("postgres: rekey %s: %w", t.name, err)
			}
			rep.Add(batch)
			if n < rekeyBatch {
				break
			}
		}
	}
	return rep, nil
}

// ForgetUnopenableLinks deletes the links none of the configured keys
// opens and returns how many there were: the way out when the key that
// sealed them is lost for good (open with SkipKeyCheck and the new key).
// Links that open are left alone.
func (d *DB) ForgetUnopenableLinks(ctx context.Context) (int, error) {
	var n int
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, `SELECT identity, sealed FROM links FOR UPDATE`)
		if err != nil {
			return err
		}
		var dead []string
		var id string
		var sealed []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &sealed}, func() error {
			plain, err := d.sealer.Open(sealed, []byte(id))
			clear(plain)
			if err != nil {
				dead = append(dead, id)
			}
			return nil
		})
		if err != nil || len(dead) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM links WHERE identity = ANY($1)`, dead)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: forget unopenable links: %w", err)
	}
	return n, nil
}
