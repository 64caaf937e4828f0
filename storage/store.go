package storage

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
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

// Store is c66bot's database. Its methods are safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	sealer *Sealer
	now    func() time.Time
	path   string

	// lastWriteErr is the error of the last write transaction that failed
	// to commit (a full disk, an I/O error), nil once one commits again;
	// see WriteError.
	lastWriteErr atomic.Pointer[error]
}

// Open opens (creating if needed) the database at opts.Path and brings its
// schema up to date in a single write transaction. It returns an error
// wrapping ErrLocked (and bbolt's timeout error) when another process holds
// the file for longer than opts.Timeout, one wrapping ErrNotDatabase for a
// file that is not a bbolt database, and a *WrongKeyError when the file
// holds sealed values and the keys open none of them (unless
// opts.SkipKeyCheck or opts.ReadOnly).
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

	s := &Store{db: db, sealer: sealer, now: now, path: opts.Path}
	if !opts.ReadOnly && !opts.SkipKeyCheck {
		if err := s.checkKeysOpen(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

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
func (s *Store) checkKeysOpen() error {
	var (
		sealed  int
		opened  bool
		unknown = map[string]bool{}
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
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
				sealed++
				plain, err := s.sealer.Open(v, k)
				if err == nil {
					clear(plain)
					opened = true
					return nil
				}
				if id, ok := s.sealer.unknownKeyID(v); ok {
					unknown[id] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: open %s: %w", s.path, err)
	}
	if opened || sealed == 0 {
		return nil
	}
	e := &WrongKeyError{Path: s.path, Sealed: sealed}
	for id := range unknown {
		e.SealedWith = append(e.SealedWith, id)
	}
	slices.Sort(e.SealedWith)
	for _, k := range s.sealer.keys {
		e.Configured = append(e.Configured, hex.EncodeToString(k.id[:]))
	}
	return e
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

// update runs fn in a write transaction; see view for ctx. It is bbolt's
// Update spelt out, so that a failed commit (the disk is full, the file
// cannot be written) is told apart from fn's own refusal and recorded for
// WriteError.
func (s *Store) update(ctx context.Context, fn func(tx *bbolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
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
		s.lastWriteErr.Store(&err)
		return mapBoltError(err)
	}
	s.lastWriteErr.Store(nil)
	return nil
}

// WriteError returns the error of the last write that could not be
// committed (a full disk, an I/O error), or nil when the last commit
// succeeded. Reads keep working on such a file, so this, not Ping, is what
// tells a readiness probe that the database takes no writes.
func (s *Store) WriteError() error {
	if p := s.lastWriteErr.Load(); p != nil {
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
