package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// defaultLockTimeout is how long Open waits for another process to release
// the file when Options.Timeout is zero.
const defaultLockTimeout = time.Second

// Options configures Open.
type Options struct {
	// Path is the bbolt file. It is created with mode 0600 if missing.
	Path string

	// Keys are AES-256 keys, 32 bytes each. Keys[0] seals new values; all of
	// them are tried to open old ones (see ParseKeys, LoadOrCreateKeyFile).
	Keys [][]byte

	// Timeout bounds the wait for the file lock. Zero means one second,
	// because bbolt's own zero means wait forever, which would make a second
	// bot instance hang silently at startup instead of failing.
	Timeout time.Duration

	// Now is the clock for link times and expiries; nil means time.Now.
	// Tests inject one to step past expiries without sleeping.
	Now func() time.Time

	// ReadOnly opens the file with a shared lock for inspection; every write
	// returns ErrReadOnly. The schema must already be current, since a
	// read-only open cannot migrate.
	ReadOnly bool

	// SkipKeyCheck opens a file whose sealed values the keys may not open.
	// Without it a read-write Open refuses such a file (see WrongKeyError):
	// a bot started with the wrong key would fail every linked person and
	// seal new values under a key that cannot open the old ones. It is for
	// operator commands that touch no sealed value (API tokens, the audit
	// log) and open the file with a throwaway key.
	SkipKeyCheck bool
}

// DB is c66bot's database: the bbolt file, the sealer, the schema and the
// operations on the whole file. The records themselves are reached through
// its per-kind stores ([DB.Links], [DB.Logins], …), which share its
// transactions, so a change and its audit entry, or a delivery and its
// dedup key, still commit together. Its methods and theirs are safe for
// concurrent use.
type DB struct {
	bolt   *bbolt.DB
	sealer *Sealer
	now    func() time.Time
	path   string

	// lastWriteErr is the error of the last write transaction that failed
	// to commit (a full disk, an I/O error), nil once one commits again;
	// see WriteError.
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
}

// Open opens (creating if needed) the database at opts.Path and brings its
// schema up to date in a single write transaction. It returns an error
// wrapping ErrLocked (and bbolt's timeout error) when another process holds
// the file for longer than opts.Timeout, one wrapping ErrNotDatabase for a
// file that is not a bbolt database, and a *WrongKeyError when the file
// holds sealed values and the keys open none of them (unless
// opts.SkipKeyCheck or opts.ReadOnly).
func Open(opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("storage: Options.Path is empty")
	}
	sealer, err := NewSealer(opts.Keys)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = defaultLockTimeout
	}

	bopts := *bbolt.DefaultOptions
	bopts.Timeout = timeout
	bopts.ReadOnly = opts.ReadOnly
	db, err := bbolt.Open(opts.Path, 0o600, &bopts)
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("storage: open %s: %w (waited %s; is another c66bot running?): %w", opts.Path, ErrLocked, timeout, err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, fmt.Errorf("storage: open %s: %w: %w", opts.Path, ErrNotDatabase, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", opts.Path, unwrapPath(err, opts.Path))
	}

	if opts.ReadOnly {
		err = db.View(func(tx *bbolt.Tx) error { return checkSchema(tx, schemaVersion()) })
	} else {
		err = db.Update(func(tx *bbolt.Tx) error { return migrate(tx, schemaMigrations()) })
		if errors.Is(err, errNoChanges) {
			err = nil
		}
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("storage: open %s: %w", opts.Path, err)
	}

	d := newDB(db, sealer, now, opts.Path)
	if !opts.ReadOnly && !opts.SkipKeyCheck {
		if err := d.checkKeysOpen(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return d, nil
}

// newDB wires the per-kind stores to d once, so the accessors below
// allocate nothing.
func newDB(bolt *bbolt.DB, sealer *Sealer, now func() time.Time, path string) *DB {
	d := &DB{bolt: bolt, sealer: sealer, now: now, path: path}
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
	return d
}

// Links returns the store of Slack people's Cloud 66 links.
func (d *DB) Links() *LinkStore { return &d.links }

// Logins returns the store of pending OAuth logins (the login states).
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

// durableSealedBuckets are the sealed buckets whose values outlive a few
// minutes: a key that opens none of them is the wrong key. Pending logins
// and intents expire within minutes (an hour at most), so a few left under
// a lost key say nothing worth refusing to start over.
func durableSealedBuckets() [][]byte {
	return [][]byte{bucketLinks, bucketWatches}
}

// checkKeysOpen refuses keys that open none of the file's durable sealed
// values, with a *WrongKeyError. It stops at the first value that opens, so
// on a healthy file it reads one.
func (d *DB) checkKeysOpen() error {
	var rep KeyReport
	err := d.bolt.View(func(tx *bbolt.Tx) error {
		for _, name := range durableSealedBuckets() {
			b, err := bucket(tx, name)
			if err != nil {
				return err
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if v == nil {
					continue
				}
				if rep.Tally(d.sealer, v, k); rep.Primary+rep.Older > 0 {
					return nil
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", d.path, err)
	}
	return rep.WrongKey(d.path, d.sealer)
}

// unwrapPath drops an *fs.PathError naming path itself, whose text would
// repeat the path the caller already names, keeping what went wrong and
// how (errors.Is still finds fs.ErrPermission and the like).
func unwrapPath(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return pe.Err
	}
	return err
}

// Close releases the file and its lock. Later calls on the DB and its
// stores return ErrClosed.
func (d *DB) Close() error {
	if err := d.bolt.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", d.path, err)
	}
	return nil
}

// Ping runs a cheap read transaction, for a readiness probe. It fails once
// the DB is closed.
func (d *DB) Ping(ctx context.Context) error {
	return d.view(ctx, func(tx *bbolt.Tx) error {
		_, err := bucket(tx, bucketMeta)
		return err
	})
}

// Path returns the database file path given to Open.
func (d *DB) Path() string {
	return d.path
}

// view runs fn in a read transaction. bbolt has no context support, so ctx
// is only checked before starting; every transaction here is short.
func (d *DB) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapBoltError(d.bolt.View(fn))
}

// getCopy reads the value under key in bucket name, copied out of the
// transaction (bbolt's slices are only valid inside it), or ErrNotFound.
func (d *DB) getCopy(ctx context.Context, name, key []byte) ([]byte, error) {
	var out []byte
	err := d.view(ctx, func(tx *bbolt.Tx) error {
		_, v, err := getTx(tx, name, key)
		out = bytes.Clone(v)
		return err
	})
	return out, err
}

// countKeys returns how many keys bucket name holds, without decoding
// any, for metrics and the startup log.
func (d *DB) countKeys(ctx context.Context, name []byte) (int, error) {
	var n int
	err := d.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		n = b.Stats().KeyN
		return nil
	})
	return n, err
}

// getTx is the first step of every read-decode(-change) body: it returns
// the bucket name of tx and the value under key in it, or ErrNotFound when
// there is none. The value is bbolt's memory, valid only until the
// transaction ends or the bucket is written, so decode or copy it first.
func getTx(tx *bbolt.Tx, name, key []byte) (*bbolt.Bucket, []byte, error) {
	b, err := bucket(tx, name)
	if err != nil {
		return nil, nil, err
	}
	v := b.Get(key)
	if v == nil {
		return b, nil, ErrNotFound
	}
	return b, v, nil
}

// follow looks key up in the first bucket of chain, the value found in the
// next one, and so on along an index (sha256(token) → name → record). It
// returns the key looked up last and its value, or ErrNotFound at the
// first missing link. The slices are bbolt's, as getTx's are.
func follow(key []byte, chain ...*bbolt.Bucket) (last, v []byte, err error) {
	v = key
	for _, b := range chain {
		last = v
		if v = b.Get(last); v == nil {
			return nil, nil, ErrNotFound
		}
	}
	return last, v, nil
}

// takeTx is getTx for what is spent once presented (a login state, its
// identity index entry, a lock being released): it deletes the value and
// returns a copy of it, since the delete may reuse the page it was on.
func takeTx(tx *bbolt.Tx, name, key []byte) ([]byte, error) {
	b, v, err := getTx(tx, name, key)
	if err != nil {
		return nil, err
	}
	v = bytes.Clone(v)
	return v, b.Delete(key)
}

// update runs fn in a write transaction; see view for ctx. It is bbolt's
// Update spelt out, so that a failed commit (the disk is full, the file
// cannot be written) is told apart from fn's own refusal and recorded for
// WriteError.
func (d *DB) update(ctx context.Context, fn func(tx *bbolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := d.bolt.Begin(true)
	if err != nil {
		return mapBoltError(err)
	}
	committed := false
	defer func() {
		// Also on a panic in fn, so the writer lock is never left held.
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return mapBoltError(err)
	}
	committed = true
	if err := tx.Commit(); err != nil {
		d.lastWriteErr.Store(&err)
		return mapBoltError(err)
	}
	d.lastWriteErr.Store(nil)
	return nil
}

// WriteError returns the error of the last write that could not be
// committed (a full disk, an I/O error), or nil when the last commit
// succeeded. Reads keep working on such a file, so this, not Ping, is what
// tells a readiness probe that the database takes no writes.
func (d *DB) WriteError() error {
	if p := d.lastWriteErr.Load(); p != nil {
		return *p
	}
	return nil
}

// mapBoltError adds this package's sentinels to bbolt's lifecycle errors so
// callers need not import bbolt, while errors.Is still finds bbolt's.
func mapBoltError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, berrors.ErrDatabaseReadOnly):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// bucket returns a top-level bucket, or an error rather than a nil bucket
// (which would panic on first use) if the file lacks it.
func bucket(tx *bbolt.Tx, name []byte) (*bbolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("storage: bucket %q missing; is the database file damaged?", name)
	}
	return b, nil
}
