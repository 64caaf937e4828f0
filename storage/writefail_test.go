//go:build linux

package storage_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// writeFailChild is the child half of TestWriteErrorFollowsFailedCommits.
// It lowers its own file size limit (RLIMIT_FSIZE) below the database's
// size, which makes every commit fail the way a full disk does (EFBIG where
// a full disk says ENOSPC), then lifts it again. The limit is per process,
// which is why this runs in a child: other tests writing files in the
// parent are not touched.
func writeFailChild(t *testing.T) {
	ctx := context.Background()
	path := os.Getenv("C66_DB")
	s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{faultKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Audit().Append(ctx, storage.AuditEntry{Action: "before"}); err != nil {
		t.Fatalf("append before the fault: %v", err)
	}
	if err := s.WriteError(); err != nil {
		t.Fatalf("WriteError after a good write = %v", err)
	}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	// Two pages: bbolt's meta pages fit, no data page does.
	full := syscall.Rlimit{Cur: 8192, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	_, writeErr := s.Audit().Append(ctx, storage.AuditEntry{Action: "during"})
	noted := s.WriteError()
	pingErr := s.Ping(ctx)
	// A refusal by the code, not the disk, is no write failure.
	_, refusal := s.APITokens().Revoke(ctx, "no-such-token")
	afterRefusal := s.WriteError()
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}

	if writeErr == nil {
		t.Fatal("a write with the disk full succeeded")
	}
	if noted == nil || !errors.Is(noted, syscall.EFBIG) {
		t.Errorf("WriteError after a failed commit = %v, want the EFBIG it failed with", noted)
	}
	if pingErr != nil {
		t.Errorf("Ping with the disk full = %v: reads still work, so Ping cannot tell", pingErr)
	}
	if !errors.Is(refusal, storage.ErrNotFound) || afterRefusal == nil {
		t.Errorf("revoking an unknown token = %v, and WriteError then = %v; want ErrNotFound, the failure kept", refusal, afterRefusal)
	}

	if _, err := s.Audit().Append(ctx, storage.AuditEntry{Action: "after"}); err != nil {
		t.Fatalf("append once there is room again: %v", err)
	}
	if err := s.WriteError(); err != nil {
		t.Errorf("WriteError after a good write = %v, want nil", err)
	}
	var actions []string
	if err := s.Audit().Scan(ctx, time.Time{}, func(e storage.AuditEntry) error {
		actions = append(actions, e.Action)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, ",") != "before,after" {
		t.Errorf("audit holds %v, want before and after only", actions)
	}
}

// A commit that fails (here: no room for the file to grow) is remembered by
// the store until the next commit succeeds, so a readiness probe can say the
// database takes no writes even though reads still answer; and the file is
// still consistent.
func TestWriteErrorFollowsFailedCommits(t *testing.T) {
	if os.Getenv("C66_CHILD") == "storage-writefail" {
		writeFailChild(t)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c66bot.db")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestWriteErrorFollowsFailedCommits$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "C66_CHILD=storage-writefail", "C66_DB="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestWriteErrorFollowsFailedCommits") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	checkConsistent(t, path)
}
