package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Backup writes a consistent copy of the whole database to w and returns the
// number of bytes written. The copy is taken in one read transaction, so it
// shows the database exactly as it was at one instant while the bot keeps
// writing; bbolt readers never block the writer.
//
// The copy holds sealed values only; the keys that open them are not in
// it, so a backup is useless without the keys and must be paired with them.
//
// bbolt cannot interrupt a transaction, so ctx is honoured between writes
// to w: a cancelled ctx makes the next write fail and ends the copy.
func (d *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("storage: backup %s: %w", d.path, err)
	}
	n, err := copyDB(ctx, d.bolt, w)
	if err != nil {
		return n, fmt.Errorf("storage: backup %s: %w", d.path, mapBoltError(err))
	}
	return n, nil
}

// copyDB writes db as one read transaction saw it.
func copyDB(ctx context.Context, db *bbolt.DB, w io.Writer) (n int64, err error) {
	err = db.View(func(tx *bbolt.Tx) error {
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	return n, err
}

// BackupPath copies the database file at dbPath, which must not be open in
// this process, to path the safe way (see WriteBackupFile), for a bot that
// is stopped. Unlike Open it needs no keys and accepts any schema version,
// so the file can be saved as it is before a new c66bot migrates it. It
// takes a shared lock, so it returns an error wrapping ErrLocked when a
// running bot holds the file for longer than timeout (zero means one
// second); ask that bot for the copy instead.
func BackupPath(ctx context.Context, dbPath, path string, timeout time.Duration) (int64, error) {
	if same, err := SameFile(dbPath, path); err != nil {
		return 0, fmt.Errorf("storage: backup to %s: %w", path, err)
	} else if same {
		return 0, fmt.Errorf("storage: backup to %s: that is the database file itself; choose another file", path)
	}
	// Checked first so a mistyped path reads as "no such file" rather
	// than as whatever bbolt makes of it.
	if _, err := os.Stat(dbPath); err != nil {
		return 0, fmt.Errorf("storage: backup %s: %w", dbPath, err)
	}
	if timeout == 0 {
		timeout = defaultLockTimeout
	}
	db, err := openWhole(dbPath, timeout)
	if err != nil {
		return 0, fmt.Errorf("storage: backup %s: %w", dbPath, err)
	}
	defer db.Close()
	return WriteBackupFile(ctx, path, func(w io.Writer) (int64, error) { return copyDB(ctx, db, w) })
}

// BackupFile writes a consistent copy of the database to path (see Backup)
// the safe way: see WriteBackupFile. It refuses to write over the database
// file itself, which would swap the live file for a copy behind the bot's
// back.
func (d *DB) BackupFile(ctx context.Context, path string) (int64, error) {
	if same, err := SameFile(d.path, path); err != nil {
		return 0, fmt.Errorf("storage: backup to %s: %w", path, err)
	} else if same {
		return 0, fmt.Errorf("storage: backup to %s: that is the database file itself; choose another file", path)
	}
	return WriteBackupFile(ctx, path, func(w io.Writer) (int64, error) { return d.Backup(ctx, w) })
}

// WriteBackupFile makes path a database copy produced by write, without ever
// leaving a partial file under that name: the bytes go to path+".tmp"
// (created with mode 0600, since the copy holds every sealed token and the
// whole audit log), are synced to disk, checked to be a complete database,
// and only then renamed over path. The directory is synced too, so the
// rename survives a crash. On any failure the temporary file is removed and
// path is left as it was.
//
// It is exported for copies that arrive from elsewhere, such as the running
// bot's admin socket streaming [DB.Backup].
func WriteBackupFile(ctx context.Context, path string, write func(w io.Writer) (int64, error)) (n int64, err error) {
	tmp := path + ".tmp"
	// A leftover from an interrupted run may have a looser mode than 0600,
	// which OpenFile would keep; start from a fresh file instead.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("storage: backup to %s: %w", path, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("storage: backup to %s: %w", path, err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()

	if n, err = write(f); err != nil {
		return n, fmt.Errorf("storage: backup to %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return n, fmt.Errorf("storage: backup to %s: sync: %w", path, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return n, fmt.Errorf("storage: backup to %s: %w", path, err)
	}
	if err = ctx.Err(); err != nil {
		return n, fmt.Errorf("storage: backup to %s: %w", path, err)
	}
	if err = verifyCopy(tmp); err != nil {
		return n, fmt.Errorf("storage: backup to %s: the copy is not a usable database: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return n, fmt.Errorf("storage: backup to %s: %w", path, err)
	}
	// Without syncing the directory a crash can forget the rename even
	// though the file's bytes are on disk. Some file systems cannot sync a
	// directory; the copy is complete either way, so that is not an error.
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return n, nil
}

// verifyCopy opens a freshly written copy read-only and checks that it is
// whole, every page reachable, and its schema version readable, so a
// truncated or garbled stream is caught before it replaces a good backup.
// Any schema version passes: a copy of an older file, taken before an
// upgrade migrates it, is exactly what an operator wants to keep.
func verifyCopy(path string) error {
	db, err := openWhole(path, time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		_, err := storedSchemaVersion(tx)
		return err
	})
}

// openWhole opens a bbolt file read-only after making sure it is as long as
// its meta page says. bbolt maps the file into memory, and touching a page
// beyond the end of a truncated file kills the process with SIGBUS instead
// of returning an error, so this runs before anything reads past the meta
// pages.
func openWhole(path string, timeout time.Duration) (*bbolt.DB, error) {
	opts := *bbolt.DefaultOptions
	opts.ReadOnly = true
	opts.Timeout = timeout
	db, err := bbolt.Open(path, 0o600, &opts)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w (waited %s; is c66bot running?): %w", ErrLocked, timeout, err)
		}
		return nil, err
	}
	info, err := os.Stat(path)
	if err == nil {
		err = db.View(func(tx *bbolt.Tx) error {
			if want := tx.Size(); info.Size() < want {
				return fmt.Errorf("truncated: %d bytes of %d", info.Size(), want)
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// FileSchema reads the schema version recorded in the database file at
// path, without keys and without migrating, and returns it with the
// version this build writes. `c66bot doctor` uses it to tell a file that
// only needs migrating from one a newer c66bot wrote. It returns an error
// wrapping ErrLocked when a running bot holds the file for longer than
// timeout.
func FileSchema(path string, timeout time.Duration) (file, build uint64, err error) {
	if _, err := os.Stat(path); err != nil {
		return 0, schemaVersion(), fmt.Errorf("storage: %w", err)
	}
	db, err := openWhole(path, timeout)
	if err != nil {
		return 0, schemaVersion(), fmt.Errorf("storage: open %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		file, err = storedSchemaVersion(tx)
		return err
	})
	if err != nil {
		return 0, schemaVersion(), fmt.Errorf("storage: open %s: %w", path, err)
	}
	return file, schemaVersion(), nil
}

// SchemaVersion returns the schema version recorded in the file: the number
// of migrations applied. `c66bot doctor` reports it, and tests compare a
// backup's with the original's.
func (d *DB) SchemaVersion(ctx context.Context) (uint64, error) {
	var v uint64
	err := d.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		v, err = storedSchemaVersion(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: schema version: %w", err)
	}
	return v, nil
}

// SameFile reports whether a and b name the same existing file. A b that
// does not exist yet is not a; a that does not exist is not an error either.
func SameFile(a, b string) (bool, error) {
	bi, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ai, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(ai, bi), nil
}

// ctxWriter fails writes once ctx is done, so a copy that bbolt cannot
// interrupt still stops at the next page when its caller gives up.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
