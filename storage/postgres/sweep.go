package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// SweepExpired deletes expired login states, dedup keys and intents, and
// watches finished more than storage.WatchRetention ago, and returns how
// many it deleted, as storage.DB.SweepExpired does: login states, intents
// and unfinished watches that no longer open are deleted too, since they
// can never be used (such a watch's stack is freed). Any replica may run
// it; concurrent sweeps take turns on the rows.
func (d *DB) SweepExpired(ctx context.Context) (int, error) {
	now := d.now()
	var n int
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		steps := []func() (int, error){
			func() (int, error) {
				return sweepSealed[[]byte](ctx, tx, `SELECT state_sha256, state_sha256, sealed FROM login_states FOR UPDATE`,
					`DELETE FROM login_states WHERE state_sha256 = ANY($1)`, func(ad, sealed []byte) bool {
						p, err := openRecord(d.sealer, sealed, ad, storage.DecodeLogin)
						return err != nil || !now.Before(p.ExpiresAt)
					})
			},
			func() (int, error) {
				return sweepSealed[[]byte](ctx, tx, `SELECT id_sha256, id_sha256, sealed FROM intents FOR UPDATE`,
					`DELETE FROM intents WHERE id_sha256 = ANY($1)`, func(ad, sealed []byte) bool {
						in, err := d.openIntent("", sealed, ad)
						return err != nil || !now.Before(in.ExpiresAt)
					})
			},
			func() (int, error) {
				return sweepSealed[int64](ctx, tx, `SELECT id, `+watchIDSQL+`, sealed FROM watches WHERE done_at IS NULL FOR UPDATE`,
					`DELETE FROM watches WHERE id = ANY($1)`, func(ad, sealed []byte) bool {
						_, err := d.openWatch(sealed, string(ad))
						return err != nil
					})
			},
			func() (int, error) {
				tag, err := tx.Exec(ctx, `DELETE FROM dedup WHERE expires_at <= $1`, now)
				return int(tag.RowsAffected()), err
			},
			func() (int, error) {
				tag, err := tx.Exec(ctx, `DELETE FROM watches WHERE done_at <= $1`, micro(now.Add(-storage.WatchRetention)))
				return int(tag.RowsAffected()), err
			},
		}
		for _, step := range steps {
			m, err := step()
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: sweep: %w", err)
	}
	return n, nil
}

// sweepSealed deletes, with del, the rows of sel (key, associated data,
// sealed value) for which dead reports true, and returns how many.
func sweepSealed[K any](ctx context.Context, tx pgx.Tx, sel, del string, dead func(ad, sealed []byte) bool) (int, error) {
	rows, err := tx.Query(ctx, sel)
	if err != nil {
		return 0, err
	}
	var (
		keys       []K
		key        K
		ad, sealed []byte
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &ad, &sealed}, func() error {
		if dead(ad, sealed) {
			keys = append(keys, key)
		}
		return nil
	}); err != nil || len(keys) == 0 {
		return 0, err
	}
	tag, err := tx.Exec(ctx, del, keys)
	return int(tag.RowsAffected()), err
}
