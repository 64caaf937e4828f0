package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// testKey returns a fixed 32-byte key per label, so tests can reopen a file
// with "the same key" without passing bytes around.
func testKey(label string) []byte {
	sum := sha256.Sum256([]byte("c66bot test key " + label))
	return sum[:]
}

// mustOpen opens a fresh store in t.TempDir with key "A" and the real clock.
func mustOpen(t testing.TB) *DB {
	t.Helper()
	return mustOpenWith(t, Options{})
}

// mustOpenWith opens a store, filling in a temp Path and key "A" when unset.
// Cleanup checks the file's consistency (as bbolt's own btesting does) and
// closes it; closing a store the test already closed is harmless.
func mustOpenWith(t testing.TB, opts Options) *DB {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "c66bot.db")
	}
	if opts.Keys == nil {
		opts.Keys = [][]byte{testKey("A")}
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		err := s.bolt.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		})
		if err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Errorf("consistency check: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawGet reads a value straight from bbolt, bypassing the Store API.
func rawGet(t testing.TB, s *DB, bucket, key []byte) []byte {
	t.Helper()
	var v []byte
	if err := s.bolt.View(func(tx *bbolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucket).Get(key))
		return nil
	}); err != nil {
		t.Fatalf("raw get: %v", err)
	}
	return v
}

// rawPut writes a value straight into bbolt, as an attacker with write
// access to the file could.
func rawPut(t testing.TB, s *DB, bucket, key, value []byte) {
	t.Helper()
	if err := s.bolt.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).Put(key, value)
	}); err != nil {
		t.Fatalf("raw put: %v", err)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("database file mode = %#o, want no group/other bits", perm)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no path", Options{Keys: [][]byte{testKey("A")}}, "Path is empty"},
		{"no keys", Options{Path: filepath.Join(dir, "a.db")}, "no sealing keys"},
		{"short key", Options{Path: filepath.Join(dir, "b.db"), Keys: [][]byte{make([]byte, 16)}}, "16 bytes, want 32"},
		{"duplicate key", Options{Path: filepath.Join(dir, "c.db"), Keys: [][]byte{testKey("A"), testKey("B"), testKey("A")}}, "keys 1 and 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)

	start := time.Now()
	s2, err := Open(Options{Path: s.Path(), Keys: [][]byte{testKey("A")}, Timeout: 100 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("error = %v, want ErrLocked", err)
	}
	if !errors.Is(err, berrors.ErrTimeout) {
		t.Errorf("error = %v, want it to wrap bbolt's ErrTimeout", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("second Open took %s with a 100ms timeout", elapsed)
	}

	// The first store is unaffected.
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping on the lock holder: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := mustOpen(t)
	id := Identity{Team: "T1", User: "U1"}
	if err := w.Links().Save(ctx, Link{Identity: id, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r := mustOpenWith(t, Options{Path: w.Path(), ReadOnly: true})
	// A second reader shares the lock.
	mustOpenWith(t, Options{Path: w.Path(), ReadOnly: true, Timeout: 100 * time.Millisecond})

	l, err := r.Links().Get(ctx, id)
	if err != nil || l.AccessToken != "tok" {
		t.Fatalf("GetLink = %+v, %v", l, err)
	}
	if n, err := r.Links().Count(ctx); err != nil || n != 1 {
		t.Errorf("CountLinks = %d, %v; want 1", n, err)
	}
	// The v2 reads work read-only too.
	if n, err := r.Watches().CountActive(ctx); err != nil || n != 0 {
		t.Errorf("CountActiveWatches = %d, %v; want 0", n, err)
	}
	if locks, err := r.Locks().List(ctx, "T1"); err != nil || len(locks) != 0 {
		t.Errorf("ListLocks = %v, %v; want none", locks, err)
	}
	if err := r.Audit().Scan(ctx, time.Time{}, func(AuditEntry) error { return nil }); err != nil {
		t.Errorf("ScanAudit: %v", err)
	}
	// And the v3 ones.
	if subs, err := r.Subscriptions().All(ctx); err != nil || len(subs) != 0 {
		t.Errorf("AllSubscriptions = %v, %v; want none", subs, err)
	}
	if subs, err := r.Subscriptions().ForChannel(ctx, "T1", "C1"); err != nil || len(subs) != 0 {
		t.Errorf("ChannelSubscriptions = %v, %v; want none", subs, err)
	}
	if tokens, err := r.APITokens().List(ctx); err != nil || len(tokens) != 0 {
		t.Errorf("APITokens = %v, %v; want none", tokens, err)
	}
	if items, err := r.Outbox().Pending(ctx, 0); err != nil || len(items) != 0 {
		t.Errorf("PendingOutbox = %v, %v; want none", items, err)
	}
	if n, err := r.Outbox().Count(ctx); err != nil || n != 0 {
		t.Errorf("CountOutbox = %d, %v; want 0", n, err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	writes := []struct {
		name string
		do   func() error
	}{
		{"SaveLink", func() error { return r.Links().Save(ctx, Link{Identity: id, AccessToken: "x"}) }},
		{"DeleteLink", func() error { _, err := r.Links().Delete(ctx, id); return err }},
		{"CreateLoginState", func() error { _, err := r.Logins().Create(ctx, PendingLogin{Identity: id}); return err }},
		{"FirstTime", func() error { _, err := r.Dedup().FirstTime(ctx, "k", time.Minute); return err }},
		{"SweepExpired", func() error { _, err := r.SweepExpired(ctx); return err }},
		{"CreateIntent", func() error { _, err := r.Intents().Create(ctx, Intent{Kind: "deploy", Requester: id}); return err }},
		{"AcquireLock", func() error {
			_, _, err := r.Locks().Acquire(ctx, Lock{Team: "T1", StackUID: "s1", Owner: id})
			return err
		}},
		{"StartWatch", func() error { _, err := r.Watches().Start(ctx, Watch{Owner: id, StackUID: "s1"}); return err }},
		{"AppendAudit", func() error { _, err := r.Audit().Append(ctx, AuditEntry{Action: "deploy"}); return err }},
		{"UpdateIntent", func() error {
			_, err := r.Intents().Update(ctx, "AAAAAAAAAAAAAAAAAAAAAA", func(*Intent) error { return nil })
			return err
		}},
		{"Forget", func() error { return r.Dedup().Forget(ctx, "k") }},
		{"Subscribe", func() error {
			_, _, err := r.Subscriptions().Subscribe(ctx, Subscription{Team: "T1", Channel: "C1", Subscriber: id})
			return err
		}},
		{"Unsubscribe", func() error { _, err := r.Subscriptions().Unsubscribe(ctx, "T1", "C1", ""); return err }},
		{"PauseChannel", func() error { _, err := r.Subscriptions().PauseChannel(ctx, "T1", "C1", "x"); return err }},
		{"ResumeChannel", func() error { _, err := r.Subscriptions().ResumeChannel(ctx, "T1", "C1"); return err }},
		{"MarkWebhookSeen", func() error { return r.Subscriptions().MarkWebhookSeen(ctx, "id", time.Now()) }},
		{"CreateAPIToken", func() error { _, _, err := r.APITokens().Create(ctx, "ci", nil); return err }},
		{"RevokeAPIToken", func() error { _, err := r.APITokens().Revoke(ctx, "ci"); return err }},
		{"EnqueueOutbox", func() error { _, err := r.Outbox().Enqueue(ctx, "api.notify", nil); return err }},
		{"AckOutbox", func() error { return r.Outbox().Ack(ctx, 1) }},
		{"RetryOutbox", func() error { _, err := r.Outbox().Retry(ctx, 1, time.Now()); return err }},
	}
	for _, w := range writes {
		err := w.do()
		if !errors.Is(err, ErrReadOnly) || !errors.Is(err, berrors.ErrDatabaseReadOnly) {
			t.Errorf("%s on a read-only store = %v, want ErrReadOnly wrapping bbolt's", w.name, err)
		}
	}
}

func TestReadOnlyNeedsExistingCurrentFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	if _, err := Open(Options{Path: filepath.Join(dir, "missing.db"), Keys: [][]byte{testKey("A")}, ReadOnly: true}); err == nil {
		t.Error("read-only Open of a missing file succeeded")
	}

	// A file at schema v0 cannot be migrated read-only.
	path := filepath.Join(dir, "old.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(Options{Path: path, Keys: [][]byte{testKey("A")}, ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "older than this c66bot") {
		t.Errorf("read-only Open of a v0 file = %v, want an 'older' error", err)
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Links().Get(ctx, Identity{Team: "T", User: "U"}); !errors.Is(err, ErrClosed) {
		t.Errorf("GetLink after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Dedup().FirstTime(ctx, "k", time.Minute); !errors.Is(err, ErrClosed) {
		t.Errorf("FirstTime after Close = %v, want ErrClosed", err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with a canceled context succeeded")
	}
	if err := s.Links().Save(ctx, Link{Identity: Identity{Team: "T", User: "U"}, AccessToken: "x"}); err == nil {
		t.Error("SaveLink with a canceled context succeeded")
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id    Identity
		key   string
		valid bool
	}{
		{Identity{"T123", "U456"}, "T123:U456", true},
		{Identity{"E1", "W2"}, "E1:W2", true},
		{Identity{"", "U1"}, ":U1", false},
		{Identity{"T1", ""}, "T1:", false},
		{Identity{"T:1", "U1"}, "T:1:U1", false},
		{Identity{"T1", "U:1"}, "T1:U:1", false},
	}
	for _, tc := range tests {
		if got := string(tc.id.Key()); got != tc.key {
			t.Errorf("%#v.Key() = %q, want %q", tc.id, got, tc.key)
		}
		if got := tc.id.String(); got != tc.key {
			t.Errorf("%#v.String() = %q, want %q", tc.id, got, tc.key)
		}
		if got := tc.id.Valid(); got != tc.valid {
			t.Errorf("%#v.Valid() = %v, want %v", tc.id, got, tc.valid)
		}
	}
}
