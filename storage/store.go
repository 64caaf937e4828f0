package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
}

// Store is c66bot's database. Its methods are safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	sealer *Sealer
	now    func() time.Time
	path   string
}

// Open opens (creating if needed) the database at opts.Path and brings its
// schema up to date in a single write transaction. It returns an error
// wrapping ErrLocked (and bbolt's timeout error) when another process holds
// the file for longer than opts.Timeout.
func Open(opts Options) (*Store, error) {
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
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("storage: open %s: %w (waited %s; is another c66bot running?): %w", opts.Path, ErrLocked, timeout, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", opts.Path, err)
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

	return &Store{db: db, sealer: sealer, now: now, path: opts.Path}, nil
}

// Close releases the file and its lock. Later calls on the Store return
// ErrClosed.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage: close %s: %w", s.path, err)
	}
	return nil
}

// Ping runs a cheap read transaction, for a readiness probe. It fails once
// the Store is closed.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, func(tx *bbolt.Tx) error {
		_, err := bucket(tx, bucketMeta)
		return err
	})
}

// Path returns the database file path given to Open.
func (s *Store) Path() string {
	return s.path
}

// view runs fn in a read transaction. bbolt has no context support, so ctx
// is only checked before starting; every transaction here is short.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapBoltError(s.db.View(fn))
}

// getCopy reads the value under key in bucket name, copied out of the
// transaction (bbolt's slices are only valid inside it), or ErrNotFound.
func (s *Store) getCopy(ctx context.Context, name, key []byte) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, name)
		if err != nil {
			return err
		}
		v := b.Get(key)
		if v == nil {
			return ErrNotFound
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// update runs fn in a write transaction; see view for ctx.
func (s *Store) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapBoltError(s.db.Update(fn))
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
