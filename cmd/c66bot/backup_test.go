package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// checkCopy opens a backup with key and checks it against the original:
// links unseal, the audit log reads, the schema version is the same.
func checkCopy(t *testing.T, copyPath string, key []byte, users ...string) {
	t.Helper()
	checkTokens(t, copyPath, [][]byte{key}, users...)
	info, err := os.Stat(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", info.Mode().Perm())
	}
	c, err := storage.Open(storage.Options{Path: copyPath, Keys: [][]byte{key}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var entries int
	if err := c.Audit().Scan(t.Context(), time.Time{}, func(storage.AuditEntry) error { entries++; return nil }); err != nil || entries < len(users) {
		t.Errorf("audit in the copy: %d entries, %v; want at least %d", entries, err, len(users))
	}
	v, err := c.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if file, build, err := storage.FileSchema(copyPath, time.Second); err != nil || file != v || file != build {
		t.Errorf("copy schema v%d, FileSchema v%d (build v%d), %v", v, file, build, err)
	}
}

func TestBackupCommandFromTheFile(t *testing.T) {
	t.Parallel()
	key := opsKey("k")
	e := newOpsEnv(t, key)
	fillDB(t, e.db, [][]byte{key}, "U1", "U2")
	out := filepath.Join(t.TempDir(), "copy.db")

	code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db}, "backup", out)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	checkCopy(t, out, key, "U1", "U2")
	for _, want := range []string{out, "from the database file", e.db + ".key", "separately"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// With the key in the environment, that is what it reminds of.
	code, _, stderr = runCmd(t, e.env, "backup", out)
	if code != 0 || !strings.Contains(stderr, "C66BOT_SECRET_KEY") {
		t.Errorf("second backup over the first: exit %d: %s", code, stderr)
	}

	// A directory gets a time-stamped file inside it.
	dir := t.TempDir()
	if code, _, stderr := runCmd(t, e.env, "backup", dir); code != 0 {
		t.Fatalf("backup into a directory: exit %d: %s", code, stderr)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "c66bot-*.db"))
	if len(names) != 1 {
		t.Fatalf("backup into a directory made %v", names)
	}
	checkCopy(t, names[0], key, "U1", "U2")
}

func TestBackupCommandThroughTheRunningBot(t *testing.T) {
	t.Parallel()
	key := opsKey("k")
	e := newOpsEnv(t, key)
	fillDB(t, e.db, [][]byte{key}, "U1", "U2")
	stop := e.serve(t)

	out := filepath.Join(t.TempDir(), "copy.db")
	// The operator's shell has no key: the copy needs none.
	code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db}, "backup", out)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "through the running bot") {
		t.Errorf("stderr does not say the running bot made the copy:\n%s", stderr)
	}
	checkCopy(t, out, key, "U1", "U2")

	// Never over the live file, even through the bot.
	if code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db}, "backup", e.db); code == 0 || !strings.Contains(stderr, "database file itself") {
		t.Errorf("backup over the live database: exit %d: %s", code, stderr)
	}
	stop()
	checkTokens(t, e.db, [][]byte{key}, "U1", "U2")
}

func TestBackupCommandErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": missing}, "backup", filepath.Join(dir, "x.db"))
	if code != 1 || !strings.Contains(stderr, "there is no database at "+missing) {
		t.Errorf("backup of a missing database: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("backup created the missing database")
	}
	if code, _, _ := runCmd(t, nil, "backup"); code != 2 {
		t.Errorf("backup without FILE: exit %d, want 2", code)
	}
}
