package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fillStore writes one of each kind of record, so a copy can be checked for
// all of them.
func fillStore(t *testing.T, s *DB) (Identity, Watch) {
	t.Helper()
	ctx := t.Context()
	id := Identity{"T1", "U1"}
	if err := s.Links().Save(ctx, Link{Identity: id, AccessToken: "tok-1", RefreshToken: "ref-1", Account: "Acme"}); err != nil {
		t.Fatal(err)
	}
	w := mustStartWatch(t, s, testWatch(id, "stack-1"))
	for i := range 3 {
		if _, err := s.Audit().Append(ctx, AuditEntry{Team: "T1", User: "U1", Action: "deploy", StackName: fmt.Sprint("shop-", i), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	return id, w
}

func TestBackupFileOpensAsAWorkingDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id, w := fillStore(t, s)

	out := filepath.Join(t.TempDir(), "copy.db")
	n, err := s.BackupFile(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != n {
		t.Errorf("BackupFile reported %d bytes, the file has %d", n, info.Size())
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", info.Mode().Perm())
	}
	if _, err := os.Stat(out + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}

	// The original keeps working after the copy.
	if _, err := s.Audit().Append(ctx, AuditEntry{Action: "after.backup", Result: "ok"}); err != nil {
		t.Fatal(err)
	}

	c := mustOpenWith(t, Options{Path: out, Keys: [][]byte{testKey("A")}})
	if l, err := c.Links().Get(ctx, id); err != nil || l.AccessToken != "tok-1" || l.RefreshToken != "ref-1" {
		t.Errorf("link in the copy = %+v, %v", l, err)
	}
	if got, err := c.Watches().Get(ctx, w.ID); err != nil || got.ResponseURL != w.ResponseURL {
		t.Errorf("watch in the copy = %+v, %v", got, err)
	}
	entries := scanAll(t, c)
	if len(entries) != 3 {
		t.Errorf("copy has %d audit entries, want the 3 from before the backup", len(entries))
	}
	orig, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := c.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if orig != copied || orig != schemaVersion() {
		t.Errorf("schema versions: original %d, copy %d, build %d", orig, copied, schemaVersion())
	}
	// The copy is a live database: it takes writes of its own.
	if err := c.Links().Save(ctx, Link{Identity: Identity{"T1", "U2"}, AccessToken: "tok-2"}); err != nil {
		t.Errorf("writing to the copy: %v", err)
	}
}

// TestBackupWhileWriting copies a store that is being written to: the copy
// is whatever one read transaction saw, so it is always consistent.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	fillStore(t, s)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Audit().Append(ctx, AuditEntry{Action: "busy", Result: "ok", Detail: fmt.Sprint(i)}); err != nil {
				t.Error(err)
				return
			}
			if err := s.Links().Save(ctx, Link{Identity: Identity{"T1", fmt.Sprint("UB", i%20)}, AccessToken: fmt.Sprint("tok-", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	dir := t.TempDir()
	for i := range 5 {
		out := filepath.Join(dir, fmt.Sprint("copy", i, ".db"))
		if _, err := s.BackupFile(ctx, out); err != nil {
			t.Fatal(err)
		}
		c := mustOpenWith(t, Options{Path: out, ReadOnly: true})
		if err := c.Ping(ctx); err != nil {
			t.Error(err)
		}
		c.Close()
	}
	close(stop)
	wg.Wait()
}

func TestBackupRefusesTheDatabaseItself(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	if _, err := s.BackupFile(t.Context(), s.Path()); err == nil {
		t.Fatal("BackupFile over the live database succeeded")
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("store after the refused backup: %v", err)
	}
}

// TestWriteBackupFileNeverLeavesAHalfFile: a copy that fails midway, or
// arrives truncated, leaves neither the target nor the temporary file, and
// an older good backup under the same name survives.
func TestWriteBackupFileNeverLeavesAHalfFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	fillStore(t, s)
	var full bytes.Buffer
	if _, err := s.Backup(ctx, &full); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	failing := filepath.Join(dir, "failing.db")
	_, err := WriteBackupFile(ctx, failing, func(w io.Writer) (int64, error) {
		n, _ := w.Write(full.Bytes()[:4096])
		return int64(n), errors.New("connection reset")
	})
	if err == nil {
		t.Fatal("a failing copy was reported as written")
	}
	for _, p := range []string{failing, failing + ".tmp"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed copy (%v)", filepath.Base(p), err)
		}
	}

	good := filepath.Join(dir, "good.db")
	if _, err := s.BackupFile(ctx, good); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// A stream cut short without an error from the sender, as a dropped
	// connection may look, fails the check before the rename, wherever it
	// was cut: before the second meta page, just after it, or midway.
	for _, cut := range []int{0, 100, os.Getpagesize(), 2*os.Getpagesize() + 1, full.Len() / 2, full.Len() - 1} {
		_, err = WriteBackupFile(ctx, good, func(w io.Writer) (int64, error) {
			n, err := w.Write(full.Bytes()[:cut])
			return int64(n), err
		})
		if err == nil {
			t.Fatalf("a copy cut at %d of %d bytes was accepted", cut, full.Len())
		}
	}
	after, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the older good backup was replaced by a truncated one")
	}
	if _, err := os.Stat(good + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestBackupFromReadOnlyStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id, _ := fillStore(t, s)
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Operators copy a stopped bot's file without its key: nothing is
	// unsealed on the way.
	ro := mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("other")}, ReadOnly: true})
	out := filepath.Join(t.TempDir(), "copy.db")
	if _, err := ro.BackupFile(ctx, out); err != nil {
		t.Fatal(err)
	}
	c := mustOpenWith(t, Options{Path: out})
	if l, err := c.Links().Get(ctx, id); err != nil || l.AccessToken != "tok-1" {
		t.Errorf("link in the copy = %+v, %v", l, err)
	}
}

func TestBackupCancelled(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	fillStore(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out := filepath.Join(t.TempDir(), "copy.db")
	if _, err := s.BackupFile(ctx, out); err == nil {
		t.Fatal("a cancelled backup succeeded")
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cancelled backup left %s (%v)", out, err)
	}
}

func TestBackupPath(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id, _ := fillStore(t, s)
	path := s.Path()
	dir := t.TempDir()

	// While a Store holds the file, as the running bot does, the copy must
	// come from that Store instead.
	if _, err := BackupPath(ctx, path, filepath.Join(dir, "locked.db"), 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("BackupPath of a held file = %v, want ErrLocked", err)
	}
	s.Close()

	out := filepath.Join(dir, "copy.db")
	if _, err := BackupPath(ctx, path, out, 0); err != nil {
		t.Fatal(err)
	}
	c := mustOpenWith(t, Options{Path: out})
	if l, err := c.Links().Get(ctx, id); err != nil || l.AccessToken != "tok-1" {
		t.Errorf("link in the copy = %+v, %v", l, err)
	}
	c.Close()

	if _, err := BackupPath(ctx, path, path, 0); err == nil {
		t.Error("BackupPath onto the database itself succeeded")
	}
	if _, err := BackupPath(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("BackupPath of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Error("BackupPath created the missing database file")
	}
}

// TestBackupPathOlderSchema: a file an older c66bot wrote is copied as it
// is, so it can be saved before a new version migrates it.
func TestBackupPathOlderSchema(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	path := s.Path()
	s.Close()
	rollBack(t, path, 2, notifyBuckets()...)
	out := filepath.Join(t.TempDir(), "v2.db")
	if _, err := BackupPath(t.Context(), path, out, 0); err != nil {
		t.Fatalf("backup of a v2 file: %v", err)
	}
	if v := fileVersion(t, out); v != 2 {
		t.Errorf("copy has schema v%d, want the original's v2", v)
	}
}

func TestFileSchema(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	path := s.Path()
	if _, _, err := FileSchema(path, 50*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("FileSchema of a held file = %v, want ErrLocked", err)
	}
	var full bytes.Buffer
	if _, err := s.Backup(t.Context(), &full); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if file, build, err := FileSchema(path, 0); err != nil || file != build || build != schemaVersion() {
		t.Errorf("FileSchema = v%d, build v%d, %v", file, build, err)
	}
	rollBack(t, path, 2, notifyBuckets()...)
	if file, build, err := FileSchema(path, 0); err != nil || file != 2 || build != schemaVersion() {
		t.Errorf("FileSchema of a v2 file = v%d, build v%d, %v", file, build, err)
	}

	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not bbolt "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := FileSchema(garbage, 0); err == nil {
		t.Error("FileSchema of a garbage file succeeded")
	}
	truncated := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(truncated, full.Bytes()[:2*os.Getpagesize()+10], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := FileSchema(truncated, 0); err == nil {
		t.Error("FileSchema of a truncated file succeeded")
	}
	if _, _, err := FileSchema(filepath.Join(dir, "missing.db"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FileSchema of a missing file = %v, want ErrNotExist", err)
	}
}
