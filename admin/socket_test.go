//go:build linux

package admin

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// adminSocketChild is the child half of TestAdminSocketIsNeverOpenToOthers:
// it runs with umask 000, the laxest there is, which is process-wide and
// so cannot be set in the parent's shared process.
func adminSocketChild(t *testing.T) {
	syscall.Umask(0)
	// A directory others may enter, as /var/lib or /run often are.
	dir, err := os.MkdirTemp("", "c66adm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c66bot.db.sock")
	// A stale socket file from a process that died.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	binds := 0
	listen := func(network, addr string) (net.Listener, error) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		binds++
		// The socket exists from here on. Another user can connect only
		// if it is writable by them and every directory on the way lets
		// them through; its own directory is the one the bot controls.
		sock, serr := os.Lstat(addr)
		parent, perr := os.Stat(filepath.Dir(addr))
		if serr != nil || perr != nil {
			t.Fatalf("stat at bind: %v, %v", serr, perr)
		}
		if sock.Mode().Perm()&0o022 != 0 && parent.Mode().Perm()&0o077 != 0 {
			t.Errorf("at bind, socket %s is mode %#o inside a directory of mode %#o: others could connect", addr, sock.Mode().Perm(), parent.Mode().Perm())
		}
		return ln, nil
	}
	ln, err := listenUnixPrivate(path, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if binds != 1 {
		t.Fatalf("%d binds, want 1", binds)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s is %v, want a socket of mode 0600", path, fi.Mode())
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want the socket alone: the private directory must be gone", entries, err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the socket at its final path: %v", err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("accept: %v", err)
	}
}

// The admin socket answers audit, token, backup and rekey requests, so no
// other local user may connect to it at any moment: under a lax umask it is
// created inside a private directory and appears at its path already 0600,
// replacing a stale file there.
func TestAdminSocketIsNeverOpenToOthers(t *testing.T) {
	if os.Getenv("C66_CHILD") == "admin-socket" {
		adminSocketChild(t)
		return
	}
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestAdminSocketIsNeverOpenToOthers$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "C66_CHILD=admin-socket")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestAdminSocketIsNeverOpenToOthers") {
		t.Fatalf("child (umask 000): %v\n%s", err, out)
	}
}
