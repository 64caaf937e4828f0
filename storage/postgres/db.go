package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/c66bot/c66bot/storage"
)

// Options configures Open.
type Options struct {
	// URL is the database, postgres://user:password@host:port/db?… (see
	// pgx's ParseConfig for every parameter; search_path picks a schema).
	URL string

	// Keys are the AES-256 keys of C66BOT_SECRET_KEY, 32 bytes each: Keys[0]
	// seals, all of them open. They are required: every replica must seal
	// and open with the same keys, so there is no key file to fall back on.
	Keys [][]byte

	// Now is the clock for link times and expiries; nil means time.Now.
	// It is real time in production (every replica compares expiries
	// written by the others); tests inject one to step past expiries.
	Now func() time.Time

	// Replica names this process in PostgreSQL's application_name
	// ("c66bot/<replica>"), so pg_stat_activity tells replicas apart. An
	// application_name in URL wins.
	Replica string

	// MaxConns bounds the pool; zero means pgxpool's default (4, or the
	// number of CPUs when more).
	MaxConns int

	// SkipKeyCheck opens a database whose sealed values the keys may not
	// open, as storage.Options.SkipKeyCheck does: for forgetting what a
	// lost key sealed (ForgetUnopenableLinks).
	SkipKeyCheck bool

	// NoMigrate opens the database without changing its schema, for the
	// operator's commands: a schema older than this build's, or none, is
	// refused with a *SchemaError instead of being migrated, so a command
	// run from a newer c66bot never migrates the tables under replicas of
	// an older one, and a read-only command writes nothing.
	NoMigrate bool
}

// DB is c66bot's PostgreSQL database: the pool, the sealer and the
// operations on the database as a whole. The records are reached through
// its per-kind stores ([DB.Links], [DB.Logins], …), which share its
// transactions, so a change and its audit entry, or a delivery and its
// dedup key, commit together. Its methods and theirs are safe for
// concurrent use, by any number of processes on the same database.
type DB struct {
	pool   *pgxpool.Pool
	sealer *storage.Sealer
	clock  func() time.Time
	where  string // host:port/database, for errors; never the password
	keyIDs []string

	closed atomic.Bool
	// lastWriteErr is the error of the last write transaction the
	// database refused (see WriteError).
	lastWriteErr atomic.Pointer[error]

	links         LinkStore
	logins        LoginStore
	intents       IntentStore
	watches       WatchStore
	locks         LockStore
	subscriptions SubscriptionStore
	outbox        OutboxStore
	dedup         DedupStore
	audit         AuditStore
	apiTokens     APITokenStore
	leases        LeaseStore
	budgets       BudgetStore
}

// Open connects to the database at opts.URL and brings its schema up to
// date (see migrate; with opts.NoMigrate it only checks it), then, unless opts.SkipKeyCheck, refuses keys that
// open none of its durable sealed values with a *storage.WrongKeyError, as
// storage.Open does.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URL == "" {
		return nil, errors.New("postgres: no database URL")
	}
	if len(opts.Keys) == 0 {
		return nil, errors.New("postgres: no sealing keys: C66BOT_SECRET_KEY is required with PostgreSQL " +
			"(every replica seals with the same keys, so there is no key file); make one with: " + storage.MakeKeyCommand)
	}
	sealer, err := storage.NewSealer(opts.Keys)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx's message names the URL with its password masked.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["application_name"]; !set {
		name := "c66bot"
		if opts.Replica != "" {
			name += "/" + opts.Replica
		}
		cfg.ConnConfig.RuntimeParams["application_name"] = name
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	d := &DB{
		sealer: sealer,
		clock:  now,
		where:  fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database),
	}
	for _, k := range opts.Keys {
		d.keyIDs = append(d.keyIDs, storage.KeyID(k))
	}
	d.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", d.where, err)
	}
	ms, err := readMigrations(migrationFiles)
	switch {
	case err != nil:
	case opts.NoMigrate:
		err = checkSchema(ctx, d.pool, len(ms))
	default:
		_, err = migrate(ctx, d.pool, ms)
	}
	if err == nil && !opts.SkipKeyCheck {
		err = d.checkKeysOpen(ctx)
	}
	if err != nil {
		d.pool.Close()
		var wk *storage.WrongKeyError
		if errors.As(err, &wk) {
			return nil, err
		}
		return nil, fmt.Errorf("postgres: open %s: %w", d.where, err)
	}
	d.links = LinkStore{d}
	d.logins = LoginStore{d}
	d.intents = IntentStore{d}
	d.watches = WatchStore{d}
	d.locks = LockStore{d}
	d.subscriptions = SubscriptionStore{d}
	d.outbox = OutboxStore{d}
	d.dedup = DedupStore{d}
	d.audit = AuditStore{d}
	d.apiTokens = APITokenStore{d}
	d.leases = LeaseStore{d}
	d.budgets = BudgetStore{d}
	return d, nil
}

// Links returns the store of Slack people's Cloud 66 links.
func (d *DB) Links() *LinkStore { return &d.links }

// Logins returns the store of pending OAuth logins.
func (d *DB) Logins() *LoginStore { return &d.logins }

// Intents returns the store of pending confirmations.
func (d *DB) Intents() *IntentStore { return &d.intents }

// Watches returns the store of the deployments being followed.
func (d *DB) Watches() *WatchStore { return &d.watches }

// Locks returns the store of stack locks.
func (d *DB) Locks() *LockStore { return &d.locks }

// Subscriptions returns the store of channels following stacks' events.
func (d *DB) Subscriptions() *SubscriptionStore { return &d.subscriptions }

// Outbox returns the store of events accepted but not yet posted.
func (d *DB) Outbox() *OutboxStore { return &d.outbox }

// Dedup returns the store of "already handled" marks.
func (d *DB) Dedup() *DedupStore { return &d.dedup }

// Audit returns the audit log.
func (d *DB) Audit() *AuditStore { return &d.audit }

// APITokens returns the store of the HTTP API's bearer tokens.
func (d *DB) APITokens() *APITokenStore { return &d.apiTokens }

// Leases returns the leases the replicas share: one owner per piece of
// work.
func (d *DB) Leases() *LeaseStore { return &d.leases }

// Budgets returns the request budgets the replicas share.
func (d *DB) Budgets() *BudgetStore { return &d.budgets }

// Close closes the pool. Later calls on the DB and its stores return
// errors wrapping storage.ErrClosed; closing twice is harmless.
func (d *DB) Close() error {
	if d.closed.CompareAndSwap(false, true) {
		d.pool.Close()
	}
	return nil
}

// Ping runs a cheap query, for a readiness probe. It fails once the DB is
// closed or the database cannot be reached.
func (d *DB) Ping(ctx context.Context) error {
	err := d.view(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `SELECT 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: ping %s: %w", d.where, err)
	}
	return nil
}

// WriteError returns the error of the last write transaction PostgreSQL
// refused (at a statement or at commit: a full disk, a read-only server, a
// dropped connection), or nil when the last one committed. Refusals of the
// stores' own (not found, stack busy) do not count. Reads may still work
// then, so this, not Ping, tells a readiness probe that no writes land.
func (d *DB) WriteError() error {
	if p := d.lastWriteErr.Load(); p != nil {
		return *p
	}
	return nil
}

// now is the store's clock at PostgreSQL's precision, microseconds (see
// micro), so a time the store stamps reads back from a column unchanged.
func (d *DB) now() time.Time { return micro(d.clock()) }

// micro is the one place times meet PostgreSQL's precision: timestamptz
// keeps microseconds, Go nanoseconds. The clock goes through it, and so
// does every time bound to a timestamptz column, so a column compares as
// the value written; records keep a caller's nanoseconds (they are JSON).
// Truncating is what pgx does itself, made explicit.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// querier is what reads need of the pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// errNoChanges is returned by a transaction's body when there turned out
// to be nothing to write: the transaction rolls back and no audit entry is
// appended. It never leaves the package.
var errNoChanges = errors.New("postgres: no changes")

// view runs fn on the pool, outside any transaction.
func (d *DB) view(ctx context.Context, fn func(q querier) error) error {
	if d.closed.Load() {
		return storage.ErrClosed
	}
	return d.closedErr(fn(d.pool))
}

// update runs fn in a transaction and, when fn makes its change (returns
// nil), appends the audit entries in the same transaction, so the change
// and its record commit together or not at all, as bbolt's updateAudited
// does: an error of fn's own comes back as it is and appends nothing; any
// other failure (begin, an entry, commit) wraps storage.ErrNotAudited when
// there are entries.
func (d *DB) update(ctx context.Context, audit []storage.AuditEntry, fn func(tx pgx.Tx) error) error {
	var fnErr error
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if fnErr = fn(tx); fnErr != nil {
			return fnErr
		}
		for i := range audit {
			e := audit[i] // the caller's entries stay as they were
			if err := appendAudit(ctx, tx, d.now(), &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || fnErr != nil || len(audit) == 0 || errors.Is(err, storage.ErrNotAudited) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrNotAudited, err)
}

// write is update for a change of one statement: without audit entries
// PostgreSQL commits the statement on its own, which saves the round trips
// of BEGIN and COMMIT.
func (d *DB) write(ctx context.Context, audit []storage.AuditEntry, fn func(q querier) error) error {
	if len(audit) > 0 {
		return d.update(ctx, audit, func(tx pgx.Tx) error { return fn(tx) })
	}
	return d.written(func() error { return fn(d.pool) })
}

// inTx runs fn in a transaction and commits it when fn returns nil.
func (d *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return d.written(func() error { return d.txOnce(ctx, fn) })
}

// written runs a write and keeps what PostgreSQL refused of it, at a
// statement or at commit, for WriteError; a write that lands clears it.
func (d *DB) written(run func() error) error {
	if d.closed.Load() {
		return storage.ErrClosed
	}
	err := run()
	switch {
	case err == nil:
		d.lastWriteErr.Store(nil)
	case refusedByDatabase(err):
		d.lastWriteErr.Store(&err)
	}
	return d.closedErr(err)
}

func (d *DB) txOnce(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	// A no-op once committed. Without ctx's cancel, so a cancelled
	// transaction still rolls back rather than losing its connection.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// refusedByDatabase reports whether err is PostgreSQL, or the connection
// to it, failing a write, rather than a store's own refusal (not found,
// stack busy) or the caller giving up.
func refusedByDatabase(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		pgErr  *pgconn.PgError
		conErr *pgconn.ConnectError
		netErr net.Error
	)
	return errors.As(err, &pgErr) || errors.As(err, &conErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF)
}

// closedErr adds storage.ErrClosed to an error that came from the pool
// being closed.
func (d *DB) closedErr(err error) error {
	if err != nil && d.closed.Load() && !errors.Is(err, storage.ErrClosed) {
		return fmt.Errorf("%w: %w", storage.ErrClosed, err)
	}
	return err
}

// sealRecord encodes v with encode and seals it with ad as associated
// data, as package storage seals its records.
func sealRecord[T any](s *storage.Sealer, encode func(T) ([]byte, error), v T, ad []byte) ([]byte, error) {
	plain, err := encode(v)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return s.Seal(plain, ad)
}

// openRecord reverses sealRecord with decode. Its errors wrap
// storage.ErrSealed when the value does not open.
func openRecord[T any](s *storage.Sealer, sealed, ad []byte, decode func([]byte) (T, error)) (T, error) {
	plain, err := s.Open(sealed, ad)
	if err != nil {
		var zero T
		return zero, err
	}
	defer clear(plain)
	return decode(plain)
}

// noRows turns pgx's "no rows" into storage.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// changed returns errNoChanges for a statement that touched no row.
func changed(tag pgconn.CommandTag, err error) error {
	if err == nil && tag.RowsAffected() == 0 {
		return errNoChanges
	}
	return err
}

// count runs a query of one count.
func (d *DB) count(ctx context.Context, sql string, args ...any) (int, error) {
	var n int
	err := d.view(ctx, func(q querier) error { return q.QueryRow(ctx, sql, args...).Scan(&n) })
	return n, err
}

// insertOrLock runs insert, an INSERT … ON CONFLICT DO NOTHING, and when
// the row was there already, lock, a SELECT … FOR UPDATE of it, into
// dest; found reports which. A row deleted between the two is inserted
// after all.
func insertOrLock(ctx context.Context, tx pgx.Tx, insert string, insertArgs []any, lock string, lockArgs []any, dest ...any) (found bool, err error) {
	for range 10 {
		err := changed(tx.Exec(ctx, insert, insertArgs...))
		if !errors.Is(err, errNoChanges) {
			return false, err
		}
		err = tx.QueryRow(ctx, lock, lockArgs...).Scan(dest...)
		if !errors.Is(err, pgx.ErrNoRows) {
			return err == nil, err
		}
	}
	return false, errors.New("postgres: the row kept coming and going")
}

// bySeq reads a row of a number and a record, decoded with decode.
func bySeq[T any](decode func(uint64, []byte) (T, error)) pgx.RowToFunc[T] {
	return func(r pgx.CollectableRow) (T, error) {
		var (
			n   int64
			rec []byte
		)
		if err := r.Scan(&n, &rec); err != nil {
			var zero T
			return zero, err
		}
		return decode(uint64(n), rec)
	}
}
