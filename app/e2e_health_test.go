//go:build linux

package app_test

// Honest health, end to end: /readyz on a full disk.

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// readyz returns /readyz's status and checks.
func (h *harness) readyz() (int, map[string]string) {
	h.t.Helper()
	resp, err := http.Get(h.public + "/readyz")
	if err != nil {
		h.t.Fatal(err)
	}
	var checks map[string]string
	if err := json.Unmarshal([]byte(readBody(h.t, resp)), &checks); err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, checks
}

// fullDiskChild is the child half of TestE2EReadyzSaysNotWritableOnAFullDisk.
// It runs the whole bot and then lowers its own file size limit
// (RLIMIT_FSIZE) below the database's size, so every commit fails as on a
// full disk while reads go on working. The limit is per process, hence the
// child.
func fullDiskChild(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	if status, checks := h.readyz(); status != http.StatusOK || checks["database"] != "ok" {
		t.Fatalf("/readyz before the fault: %d %v", status, checks)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	full := syscall.Rlimit{Cur: 8192, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	// A command that must write (login stores a state) fails...
	_, reply := h.run("U0ANA", "C0GENERAL", "login")
	if strings.Contains(text(reply), "/oauth/start") {
		t.Errorf("login offered a link it could not store: %s", text(reply))
	}
	// ...and from then on /readyz says so, though the database still reads.
	status, checks := h.readyz()
	if status != http.StatusServiceUnavailable || checks["database"] != "not writable" || checks["slack_socket"] != "ok" {
		t.Errorf("/readyz with the disk full: %d %v, want 503 with the database not writable", status, checks)
	}

	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	_, reply = h.run("U0ANA", "C0GENERAL", "login")
	mustContain(t, buttonURL(t, reply), "/oauth/start")
	if status, checks := h.readyz(); status != http.StatusOK || checks["database"] != "ok" {
		t.Errorf("/readyz once a write succeeds again: %d %v", status, checks)
	}
}

// A full disk does not stop the database answering reads, so a Ping alone
// kept /readyz at 200 while every change failed. After a failed write it
// says "database": "not writable" (503), until a write succeeds again.
func TestE2EReadyzSaysNotWritableOnAFullDisk(t *testing.T) {
	if os.Getenv("C66_CHILD") == "bot-fulldisk" {
		fullDiskChild(t)
		return
	}
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestE2EReadyzSaysNotWritableOnAFullDisk$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "C66_CHILD=bot-fulldisk")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestE2EReadyzSaysNotWritableOnAFullDisk") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
