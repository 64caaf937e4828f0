package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/storage"
)

// What an operator sees when serve cannot start: one line, each path named
// once, no Go package prefix, the fix named, and nothing left behind.

// requiredEnv is every required setting, well-formed, with the database in
// dir.
func requiredEnv(dir string) map[string]string {
	return map[string]string{
		"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1",
		"CLOUD66_CLIENT_ID": "id", "CLOUD66_CLIENT_SECRET": "secret",
		"C66BOT_DB": filepath.Join(dir, "c66bot.db"), "C66BOT_LISTEN": "127.0.0.1:0",
	}
}

// oneLine fails the test unless out is a single line holding every want
// and no package prefix.
func oneLine(t *testing.T, out string, want ...string) {
	t.Helper()
	out = strings.TrimSpace(out)
	if strings.Count(out, "\n") != 0 {
		t.Errorf("want one line, got:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%q does not contain %q", out, w)
		}
	}
	for _, p := range []string{"storage:", "postgres: ", "notify:", "accounts:", "bot:"} {
		if strings.Count(out, p) > strings.Count(out, "c66"+p) {
			t.Errorf("%q carries the package prefix %q", out, p)
		}
	}
}

func TestEverySecretSettingReadsFromAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var secrets []string
	for _, s := range app.Table() {
		if s.Secret {
			secrets = append(secrets, s.Env)
		}
	}
	for _, want := range []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CLOUD66_CLIENT_SECRET", "C66BOT_SECRET_KEY"} {
		if !slices.Contains(secrets, want) {
			t.Errorf("%s is not marked secret, so it has no %s_FILE", want, want)
		}
	}
	for _, env := range secrets {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, env)
			if err := os.WriteFile(file, []byte("c66-secret-"+env+"\r\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			v, err := parseSettings("serve", nil, envFrom(map[string]string{env + "_FILE": file}), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Get(env) != "c66-secret-"+env {
				t.Errorf("%s from %s_FILE = %q, want the file's content without its newline", env, env, v.Get(env))
			}

			// The flag still wins, as over the variable.
			v, err = parseSettings("serve", []string{"--" + app.FlagFor(env), "from-flag"}, envFrom(map[string]string{env + "_FILE": file}), &bytes.Buffer{})
			if err != nil || v.Get(env) != "from-flag" {
				t.Errorf("flag over %s_FILE = %q, %v", env, v.Get(env), err)
			}

			_, err = parseSettings("serve", nil, envFrom(map[string]string{env: "x", env + "_FILE": file}), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), env+" and "+env+"_FILE") {
				t.Errorf("both %s and %s_FILE set: %v, want an error naming both", env, env, err)
			}
		})
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ path, want string }{
		"missing file": {filepath.Join(dir, "nope"), "SLACK_BOT_TOKEN_FILE: cannot read " + filepath.Join(dir, "nope") + ": no such file"},
		"empty file":   {empty, "SLACK_BOT_TOKEN_FILE: " + empty + " is empty"},
	} {
		_, err := parseSettings("serve", nil, envFrom(map[string]string{"SLACK_BOT_TOKEN_FILE": tc.path}), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), tc.path) != 1 {
			t.Errorf("%s: %v, want %q with the path once", name, err, tc.want)
		}
	}
	// A setting that is not secret has no _FILE: it is not read.
	v, err := parseSettings("serve", nil, envFrom(map[string]string{"C66BOT_LISTEN_FILE": empty}), &bytes.Buffer{})
	if err != nil || v.Get("C66BOT_LISTEN") != ":8080" {
		t.Errorf("C66BOT_LISTEN_FILE was read: %q, %v", v.Get("C66BOT_LISTEN"), err)
	}
}

func TestServeNamesEveryMissingSettingAtOnce(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	env := map[string]string{"C66BOT_DB": filepath.Join(t.TempDir(), "c66bot.db"), "CLOUD66_CLIENT_ID": "id"}
	if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	oneLine(t, stderr.String(), "SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "CLOUD66_CLIENT_SECRET")
	if strings.Contains(stderr.String(), "CLOUD66_CLIENT_ID") {
		t.Errorf("names a setting that is set: %s", stderr.String())
	}
}

func TestHelpListsCommandsAndVersionFlag(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		var out bytes.Buffer
		code := run(t.Context(), []string{arg}, envFrom(nil), nil, &out, &bytes.Buffer{})
		for _, sub := range []string{"serve", "doctor", "token", "audit", "backup", "rekey", "sandbox", "version"} {
			if !strings.Contains(out.String(), "\n  "+sub+" ") {
				t.Errorf("c66bot %s does not list %s:\n%s", arg, sub, out.String())
			}
		}
		if code != 0 || !strings.Contains(out.String(), "_FILE") {
			t.Errorf("c66bot %s: exit %d, or no word on keeping secrets out of flags", arg, code)
		}
	}
	for _, arg := range []string{"--version", "-version"} {
		var out bytes.Buffer
		if code := run(t.Context(), []string{arg}, envFrom(nil), nil, &out, &bytes.Buffer{}); code != 0 || out.String() != "c66bot "+version+"\n" {
			t.Errorf("c66bot %s: exit %d, %q", arg, code, out.String())
		}
	}
}

// A C66BOT_DB that cannot be used is named once with the fix, and no key
// file is made for it.
func TestServeOnABadDatabasePathLeavesNoKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not bbolt\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	asDir := filepath.Join(dir, "dir.db")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, db string
		want     []string
	}{
		{"not a database", garbage, []string{"is not a c66bot database", "restore it from a backup"}},
		{"a directory", asDir, []string{"is a directory", "point C66BOT_DB at a file"}},
		{"missing directory", filepath.Join(dir, "missing", "c66bot.db"), []string{"does not exist", "mkdir -p " + filepath.Join(dir, "missing")}},
		{"under a file", filepath.Join(notDir, "c66bot.db"), []string{"not a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := requiredEnv(dir)
			env["C66BOT_DB"] = tc.db
			var stderr bytes.Buffer
			if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
				t.Fatal("serve started")
			}
			oneLine(t, stderr.String(), tc.want...)
			if n := strings.Count(stderr.String(), tc.db); n != 1 {
				t.Errorf("the path is named %d times: %s", n, stderr.String())
			}
		})
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "*.key"))
	if len(entries)+len(more) != 0 {
		t.Errorf("stray key files: %v %v", entries, more)
	}
}

func TestServeBadKeyNamesTheCommandThatMakesOne(t *testing.T) {
	t.Parallel()
	env := requiredEnv(t.TempDir())
	env["C66BOT_SECRET_KEY"] = "c66-secret-not-base64!"
	var stderr bytes.Buffer
	if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("serve started")
	}
	oneLine(t, stderr.String(), "C66BOT_SECRET_KEY", "not valid base64", storage.MakeKeyCommand)
	if strings.Contains(stderr.String(), "c66-secret") {
		t.Errorf("the key is echoed: %s", stderr.String())
	}
}

// sealedDatabase makes a database in dir holding one link sealed with key.
func sealedDatabase(t *testing.T, dir string, key []byte) string {
	t.Helper()
	db := filepath.Join(dir, "c66bot.db")
	s, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Links().Save(t.Context(), storage.Link{Identity: storage.Identity{Team: "T1", User: "U1"}, AccessToken: "c66-secret-tok"}); err != nil {
		t.Fatal(err)
	}
	return db
}

// A lost key is not a new key: serve refuses a database whose sealed links
// its key does not open, in one line naming the key and the fix, and makes
// no new key file over them.
func TestServeRefusesAKeyThatOpensNothing(t *testing.T) {
	t.Parallel()
	keyA, keyB := opsKey("a"), opsKey("b")

	t.Run("key file missing", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		db := sealedDatabase(t, dir, keyA)
		env := requiredEnv(dir)
		var stderr bytes.Buffer
		if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
			t.Fatal("serve started with a new key over sealed links")
		}
		oneLine(t, stderr.String(), db+".key is missing", "restore "+db+".key from the backup", "C66BOT_SECRET_KEY", storage.KeyID(keyA), "no new key")
		if _, err := os.Stat(db + ".key"); err == nil {
			t.Error("a new key file was written")
		}
	})
	t.Run("wrong key file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		db := sealedDatabase(t, dir, keyA)
		if err := os.WriteFile(db+".key", []byte(b64(keyB)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		if code := run(t.Context(), nil, envFrom(requiredEnv(dir)), nil, &bytes.Buffer{}, &stderr); code == 0 {
			t.Fatal("serve started with the wrong key file")
		}
		oneLine(t, stderr.String(), "the key file "+db+".key (key id "+storage.KeyID(keyB)+") opens none", "sealed with key id "+storage.KeyID(keyA), "restore")
	})
	t.Run("wrong C66BOT_SECRET_KEY", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		sealedDatabase(t, dir, keyA)
		env := requiredEnv(dir)
		env["C66BOT_SECRET_KEY"] = b64(keyB)
		var stderr bytes.Buffer
		if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
			t.Fatal("serve started with the wrong key")
		}
		oneLine(t, stderr.String(), "C66BOT_SECRET_KEY (key id "+storage.KeyID(keyB)+") opens none", storage.KeyID(keyA), "NEW,OLD")
	})
}

// A database reached through a symlink (a file link, or a linked
// directory such as a release's "current") finds its key beside the real
// file instead of getting a new one beside the link.
func TestServeFindsTheKeyThroughSymlinks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	real := filepath.Join(root, "data")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	key, keyPath, _, err := storage.DatabaseKey(filepath.Join(real, "c66bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	fillDB(t, filepath.Join(real, "c66bot.db"), [][]byte{key}, "U1")
	if err := os.Symlink(filepath.Join(real, "c66bot.db"), filepath.Join(root, "c66bot.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{filepath.Join(root, "c66bot.db"), filepath.Join(root, "current", "c66bot.db")} {
		v, err := parseSettings("serve", nil, envFrom(requiredEnv(root)), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		v.DB = db
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// New opens the database with the key it found; the database holds
		// sealed values, so only the key beside the real file opens it.
		a, err := app.New(app.Config{Settings: v, Listener: ln})
		if err != nil {
			t.Fatalf("%s: %v", db, err)
		}
		keys := a.Keys()
		a.Close()
		ln.Close()
		if keys.Generated {
			t.Errorf("%s: a new key was generated; want the key beside the real file", db)
		}
		if want, _ := filepath.EvalSymlinks(keyPath); keys.File != want {
			t.Errorf("%s: key file %s, want %s", db, keys.File, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "c66bot.db.key")); err == nil {
		t.Error("a key file was made beside the link")
	}
}

// Read-only commands never create a database: a mistyped --db is told so.
func TestReadOnlyCommandsCreateNoDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{{"token", "list", "--db", db}, {"token", "revoke", "--db", db, "ci"}, {"audit", "--db", db}} {
		code, _, stderr := runCmd(t, nil, args...)
		if code == 0 {
			t.Errorf("%v: exit 0", args)
		}
		oneLine(t, stderr, "there is no database at "+db)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files were created: %v", entries)
	}
}

func TestTokenRevokeOfAnUnknownName(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "c66bot.db")
	if code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": db}, "token", "create", "--name", "ci", "--scopes", "notify"); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": db}, "token", "revoke", "cd")
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	oneLine(t, stderr, `there is no token named "cd"`, "c66bot token list")
}

// serve says, as doctor does, what is unsafe about a running setup: a
// public URL without TLS, and a database file others may read.
func TestServeWarnsAboutPlainHTTPAndAReadableDatabase(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, opsKey("a"))
	fillDB(t, e.db, [][]byte{opsKey("a")}, "U1")
	if err := os.Chmod(e.db, 0o644); err != nil {
		t.Fatal(err)
	}
	e.env["C66BOT_PUBLIC_URL"] = "http://c66bot.example.com/"
	e.env["SLACK_CLIENT_ID"], e.env["SLACK_CLIENT_SECRET"] = e.slack.ClientID, e.slack.ClientSecret
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncWriter
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, envFrom(e.env), nil, &bytes.Buffer{}, &logs) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.slack.WaitConnected(wctx, 1); err != nil {
		t.Fatalf("never connected: %v\n%s", err, logs.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d:\n%s", code, logs.String())
	}
	for _, want := range []string{
		`level=WARN msg="C66BOT_PUBLIC_URL is plain http`, "https://",
		`level=WARN msg="the database file ` + e.db + ` has mode 0644`, "chmod 600 " + e.db,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// Slack refusing the app token stops serve with one line that names
// SLACK_APP_TOKEN and where the right token is.
func TestServeInvalidAuthIsOneLine(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, opsKey("a"))
	e.slack.FailConnectionsOpen("invalid_auth", 1)
	var stderr syncWriter
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := run(ctx, []string{"serve"}, envFrom(e.env), nil, &bytes.Buffer{}, &stderr); code != 1 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "SLACK_APP_TOKEN") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d lines name SLACK_APP_TOKEN, want 1:\n%s", len(lines), stderr.String())
	}
	for _, want := range []string{"level=ERROR", "invalid_auth", "App-Level Tokens", "xapp-"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("%q lacks %q", lines[0], want)
		}
	}
	if strings.Contains(stderr.String(), e.slack.AppToken) {
		t.Error("the token reached the log")
	}
}

func TestServeOnABusyListenAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := requiredEnv(t.TempDir())
	env["C66BOT_LISTEN"] = ln.Addr().String()
	env["C66BOT_SECRET_KEY"] = b64(opsKey("a"))
	var stderr bytes.Buffer
	if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("serve started")
	}
	oneLine(t, stderr.String(), "cannot listen on "+ln.Addr().String()+" (C66BOT_LISTEN)", "in use", "set C66BOT_LISTEN")
}

// readOnlyDirChild is the child half of TestServeInAReadOnlyDirectory:
// serve as a user who may not write the database's directory.
func readOnlyDirChild(t *testing.T) {
	env := requiredEnv(os.Getenv("C66_DIR"))
	var stderr bytes.Buffer
	if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("serve started")
	}
	oneLine(t, stderr.String(), "cannot create the database", "is not writable by this user", "give the bot's user write access")
}

// A database directory the bot's user may not write (a volume mounted for
// another user, a forgotten chown) is named, with the fix. Root ignores
// modes, so as root the check runs in a child process as nobody.
func TestServeInAReadOnlyDirectory(t *testing.T) {
	if os.Getenv("C66_CHILD") == "serve-rodir" {
		readOnlyDirChild(t)
		return
	}
	t.Parallel()
	outer, err := os.MkdirTemp("", "c66ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(outer) })
	dir := filepath.Join(outer, "data")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(outer, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(outer, "c66bot.test")
	if err := copyExecutable(exe, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestServeInAReadOnlyDirectory$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "C66_CHILD=serve-rodir", "C66_DIR="+dir)
	cmd.Dir = outer
	if os.Geteuid() == 0 {
		const nobody = 65534
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestServeInAReadOnlyDirectory") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files were created: %v", entries)
	}
}

func copyExecutable(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// The way out when a key is lost for good: serve names it, and rekey
// --forget-unopenable with a new key drops what the lost key sealed (and
// audits it), after which the new key opens the database.
func TestLostKeyForGood(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := sealedDatabase(t, dir, opsKey("a"))
	env := requiredEnv(dir)
	var stderr bytes.Buffer
	if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("serve started")
	}
	oneLine(t, stderr.String(), "rekey --forget-unopenable")

	if code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": db}, "rekey", "--forget-unopenable"); code != 1 || !strings.Contains(stderr, "set C66BOT_SECRET_KEY to the new key") {
		t.Errorf("forget without a new key: exit %d: %s", code, stderr)
	}
	newKey := map[string]string{"C66BOT_DB": db, "C66BOT_SECRET_KEY": b64(opsKey("b"))}
	code, _, errOut := runCmd(t, newKey, "rekey", "--forget-unopenable")
	if code != 0 || !strings.Contains(errOut, "forgot 1 link") {
		t.Fatalf("rekey --forget-unopenable: exit %d: %s", code, errOut)
	}
	s, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{opsKey("b")}})
	if err != nil {
		t.Fatalf("the new key after forgetting: %v", err)
	}
	s.Close()
	if code, out, _ := runCmd(t, newKey, "audit"); code != 0 || !strings.Contains(out, `"action":"rekey.forget"`) || !strings.Contains(out, `"forgotten_links":"1"`) {
		t.Errorf("no audit entry for the forgetting:\n%s", out)
	}
}
