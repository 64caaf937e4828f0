package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// ErrNotEmpty is Import's refusal of a database that already holds
// records, unless told to replace them.
var ErrNotEmpty = errors.New("postgres: the database already holds records")

// importBatch is how many rows Import sends per round trip.
const importBatch = 500

// recordTables are the tables of the ten record kinds, which Import
// fills. leases and budgets are the replicas' working state, not records.
func recordTables() []string {
	return []string{"links", "login_states", "intents", "watches", "locks", "subscriptions", "outbox", "dedup", "audit", "api_tokens"}
}

// Import copies records into the database, all in one transaction, for
// `c66bot migrate`: records calls put with each, kind by kind, as
// storage.DB.Export hands them out (see storage.ExportKinds for the kinds
// and their types). Sealed kinds are sealed again with this database's
// keys and their associated data as bbolt's, so they open where they
// did; ids, sequence numbers and hashes are kept, and the sequences go on
// after them. A database that holds records already is refused with
// ErrNotEmpty unless replace, which empties it first. Nothing is written
// unless everything is.
func (d *DB) Import(ctx context.Context, replace bool, records func(put func(kind string, rec any) error) error) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if replace {
			if _, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(recordTables(), ", ")+` RESTART IDENTITY`); err != nil {
				return err
			}
		} else if empty, err := recordsEmpty(ctx, tx); err != nil || !empty {
			if err == nil {
				err = ErrNotEmpty
			}
			return err
		}
		imp := importer{d: d, tx: tx, now: d.now(), batch: &pgx.Batch{}}
		if err := records(func(kind string, rec any) error { return imp.put(ctx, kind, rec) }); err != nil {
			return err
		}
		if err := imp.flush(ctx); err != nil {
			return err
		}
		// The numbering goes on after the records copied.
		_, err := tx.Exec(ctx, `
			SELECT setval('watch_ids', coalesce((SELECT max(id) FROM watches), 1), (SELECT max(id) FROM watches) IS NOT NULL);
			SELECT setval(pg_get_serial_sequence('outbox', 'id'), coalesce((SELECT max(id) FROM outbox), 1), (SELECT max(id) FROM outbox) IS NOT NULL);
			SELECT setval(pg_get_serial_sequence('audit', 'seq'), coalesce((SELECT max(seq) FROM audit), 1), (SELECT max(seq) FROM audit) IS NOT NULL)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: import: %w", err)
	}
	return nil
}

// recordsEmpty reports whether the database holds no records (leases and
// budgets aside).
func recordsEmpty(ctx context.Context, q querier) (bool, error) {
	sql := `SELECT true`
	for _, t := range recordTables() {
		sql += ` AND NOT EXISTS (SELECT FROM ` + t + `)`
	}
	var empty bool
	err := q.QueryRow(ctx, sql).Scan(&empty)
	return empty, err
}

// importer queues Import's rows and sends them in batches.
type importer struct {
	d     *DB
	tx    pgx.Tx
	now   time.Time
	batch *pgx.Batch
}

func (im *importer) put(ctx context.Context, kind string, rec any) error {
	sql, args, err := im.row(rec)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	im.batch.Queue(sql, args...)
	if im.batch.Len() >= importBatch {
		return im.flush(ctx)
	}
	return nil
}

func (im *importer) flush(ctx context.Context) error {
	if im.batch.Len() == 0 {
		return nil
	}
	err := im.tx.SendBatch(ctx, im.batch).Close()
	im.batch = &pgx.Batch{}
	return err
}

// row returns the statement that inserts rec.
func (im *importer) row(rec any) (sql string, args []any, err error) {
	sealer := im.d.sealer
	switch r := rec.(type) {
	case storage.Link:
		sealed, err := sealRecord(sealer, storage.EncodeLink, r, r.Identity.Key())
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO links (identity, sealed) VALUES ($1, $2)`, []any{r.Identity.String(), sealed}, nil
	case storage.ExportedLogin:
		sealed, err := sealRecord(sealer, storage.EncodeLogin, r.Login, r.StateHash)
		if err != nil {
			return "", nil, err
		}
		// One pending login per person: a second (only a damaged file has
		// one) is dropped.
		return `INSERT INTO login_states (state_sha256, identity, sealed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, []any{r.StateHash, r.Login.Identity.String(), sealed}, nil
	case storage.ExportedIntent:
		sealed, err := sealRecord(sealer, storage.EncodeIntent, r.Intent, r.IDHash)
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO intents (id_sha256, sealed) VALUES ($1, $2)`, []any{r.IDHash, sealed}, nil
	case storage.ExportedWatch:
		n, ok := parseWatchID(r.Watch.ID)
		if !ok {
			return "", nil, fmt.Errorf("watch id %q is not a watch id", r.Watch.ID)
		}
		sealed, err := sealRecord(sealer, storage.EncodeWatch, r.Watch, []byte(r.Watch.ID))
		if err != nil {
			return "", nil, err
		}
		var doneAt *time.Time
		if !r.Active {
			t := r.DoneAt
			if t.IsZero() {
				t = r.Watch.FinishedAt
			}
			if t.IsZero() {
				t = im.now
			}
			t = micro(t)
			doneAt = &t
		}
		return `INSERT INTO watches (id, stack_uid, done_at, sealed) VALUES ($1, $2, $3, $4)`, []any{n, r.Watch.StackUID, doneAt, sealed}, nil
	case storage.Lock:
		v, err := storage.EncodeLock(r)
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO locks (team, stack_uid, record) VALUES ($1, $2, $3)`, []any{r.Team, r.StackUID, v}, nil
	case storage.ExportedSubscription:
		s := r.Subscription
		v, err := storage.EncodeSubscription(s, r.SecretHash)
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO subscriptions (team, channel, stack_uid, id, secret_sha256, record) VALUES ($1, $2, $3, $4, $5, $6)`, []any{s.Team, s.Channel, s.StackUID, s.ID, r.SecretHash, v}, nil
	case storage.OutboxItem:
		v, err := storage.EncodeOutbox(r)
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO outbox (id, next_attempt, record) VALUES ($1, $2, $3)`, []any{int64(r.ID), micro(r.NextAttempt), v}, nil
	case storage.DedupMark:
		return `INSERT INTO dedup (key, expires_at) VALUES ($1, $2)`, []any{[]byte(r.Key), micro(r.Expires)}, nil
	case storage.AuditEntry:
		v, err := storage.EncodeAudit(r)
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO audit (seq, at, record) VALUES ($1, $2, $3)`, []any{int64(r.Seq), micro(r.At), v}, nil
	case storage.ExportedAPIToken:
		v, err := storage.EncodeAPIToken(r.Token, r.Hash)
		if err != nil {
			return "", nil, err
		}
		return `INSERT INTO api_tokens (name, sha256, record) VALUES ($1, $2, $3)`, []any{r.Token.Name, r.Hash, v}, nil
	}
	return "", nil, fmt.Errorf("a %T is no record kind this database knows", rec)
}
