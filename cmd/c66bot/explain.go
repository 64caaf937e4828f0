package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
)

// The command's errors read like doctor's findings: one line, each path
// named once, no Go package prefixes, and the fix named. explainStartError
// knows the usual ways a start fails; cleanError tidies anything else.

// explainStartError turns an error from getting the sealing key or opening
// the database (storage.DatabaseKey, bot.New) into one line that says what
// is wrong and what to do.
func explainStartError(err error, dbPath string, keys app.KeySource) error {
	var (
		wk *storage.WrongKeyError
		op *net.OpError
	)
	switch {
	case errors.As(err, &wk) && errors.Is(err, storage.ErrKeyFileMissing):
		return fmt.Errorf("the database %s holds %s but its key file %s is missing, so they cannot be opened: restore %s from the backup made with the database, or set C66BOT_SECRET_KEY to the key that sealed them%s; no new key was made (%s)",
			dbPath, sealedValues(wk.Sealed), keys.File, keys.File, sealedWith(wk), lostForGood)
	case errors.As(err, &wk):
		fix := "restore " + keys.File + " from the backup made with the database, or set C66BOT_SECRET_KEY to the key that sealed them"
		if keys.FromEnv {
			fix = "set C66BOT_SECRET_KEY to the key that sealed them (while rotating keys, keep it after the new one: NEW,OLD)"
		}
		return fmt.Errorf("%s (key id %s) opens none of the %s in %s%s: %s (%s)",
			keys.Name(), strings.Join(wk.Configured, ", "), sealedValues(wk.Sealed), dbPath, sealedWith(wk), fix, lostForGood)
	case errors.Is(err, storage.ErrLocked):
		return fmt.Errorf("the database %s is in use by another process (is another c66bot running?); stop it, or point C66BOT_DB at another file", dbPath)
	case errors.Is(err, storage.ErrNotDatabase):
		return fmt.Errorf("%s is not a c66bot database, or it is damaged; point C66BOT_DB at the right file, or restore it from a backup (c66bot backup makes them)", dbPath)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("cannot write the database %s: its file system is read-only; point C66BOT_DB at a writable volume", dbPath)
	case errors.Is(err, fs.ErrPermission) && !writable(dbPath):
		return fmt.Errorf("cannot open the database %s for writing: permission denied; the bot's user must own it (chown) and be able to read and write it (chmod 600)", dbPath)
	case errors.Is(err, fs.ErrPermission) && !keys.FromEnv:
		return fmt.Errorf("cannot create the key file %s: permission denied; give the bot's user write access to %s, or set C66BOT_SECRET_KEY (make a key with: %s)", keys.File, filepath.Dir(keys.File), storage.MakeKeyCommand)
	case errors.As(err, &op) && op.Op == "listen":
		return explainListen(op)
	}
	return errors.New(cleanError(err))
}

// isListenError reports whether err is the listen address refusing, which
// explainStartError words whatever the database.
func isListenError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "listen"
}

// lostForGood is the way out named after every refused key.
const lostForGood = "if that key is lost for good, set C66BOT_SECRET_KEY to a new one and run c66bot rekey --forget-unopenable; those people log in again"

// sealedValues names n sealed values for a person reading the message.
func sealedValues(n int) string {
	return plural(n, "sealed value", "sealed values") + " (Cloud 66 links, deployments being followed)"
}

// sealedWith names the keys that sealed the values a WrongKeyError is
// about, when the values say.
func sealedWith(wk *storage.WrongKeyError) string {
	if len(wk.SealedWith) == 0 {
		return ""
	}
	return " (sealed with key id " + strings.Join(wk.SealedWith, ", ") + ")"
}

// writable reports whether this user may open the file at path for
// writing; a file that does not exist counts as writable (the error is
// elsewhere).
func writable(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return !errors.Is(err, fs.ErrPermission)
	}
	f.Close()
	return true
}

// explainListen is doctor's listen check as an error.
func explainListen(op *net.OpError) error {
	addr := ""
	if op.Addr != nil {
		addr = op.Addr.String()
	}
	switch {
	case errors.Is(op, syscall.EADDRINUSE):
		return fmt.Errorf("cannot listen on %s (C66BOT_LISTEN): the address is in use by another program; stop it, or set C66BOT_LISTEN to a free address such as :8081", addr)
	case errors.Is(op, syscall.EACCES):
		return fmt.Errorf("cannot listen on %s (C66BOT_LISTEN): binding it needs privileges; use a port above 1023 behind a reverse proxy, or grant CAP_NET_BIND_SERVICE", addr)
	}
	return fmt.Errorf("cannot listen on %s (C66BOT_LISTEN): %v; set C66BOT_LISTEN to host:port, e.g. :8080", addr, op.Err)
}

// packagePrefix matches the "storage: " and the like with which the
// packages begin their errors: useful in a stack of wrapped errors in a
// log, noise on an operator's terminal.
var packagePrefix = regexp.MustCompile(`(^|[\s(])(storage|postgres|notify|accounts|deploy|commands|cloud66|policy|slackapp|metrics): `)

// cleanError is err's text as one line without package prefixes, and with
// a part that only repeats a path named before it ("open /x: open /x: …")
// dropped.
func cleanError(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	msg = packagePrefix.ReplaceAllString(msg, "$1")
	parts := strings.Split(msg, ": ")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if len(out) > 0 && p == out[len(out)-1] {
			continue
		}
		if f := strings.Fields(p); len(out) > 0 && len(f) == 2 && strings.ContainsRune(f[1], os.PathSeparator) && strings.Contains(strings.Join(out, ": "), f[1]) {
			continue // "open /x" after /x was named
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// explainPostgres turns an error from PostgreSQL, at rawURL (named by
// setting: C66BOT_DATABASE_URL, or migrate's --to), into one line that
// says what to check. It never holds the URL's password: the sentences
// are built from the URL's other parts, and any text of the driver's or
// the server's has the password masked.
func explainPostgres(err error, rawURL, setting string) string {
	t := pgTargetOf(rawURL)
	var (
		se    *postgres.SchemaError
		wk    *storage.WrongKeyError
		state interface{ SQLState() string }
		dns   *net.DNSError
		ne    net.Error
	)
	switch {
	case errors.As(err, &se) && se.Database > se.Build:
		return fmt.Sprintf("the database %s has schema v%d, newer than this c66bot (v%d): this build is older than the database; run the c66bot version the replicas run",
			t.db, se.Database, se.Build)
	case errors.As(err, &se) && se.Database == 0:
		return fmt.Sprintf("the database %s at %s holds no c66bot tables yet: c66bot serve creates them on its first start (c66bot migrate --to copies a bbolt file in); "+
			"if the replicas run, check the database name and search_path in %s", t.db, t.addr, setting)
	case errors.As(err, &se):
		return fmt.Sprintf("the database %s has schema v%d, older than this c66bot's (v%d): operator commands do not migrate it; run the c66bot version the replicas run, "+
			"or upgrade the replicas first (serve migrates it on start)", t.db, se.Database, se.Build)
	case errors.As(err, &wk):
		return fmt.Sprintf("C66BOT_SECRET_KEY (key id %s) opens none of the %s in the database %s%s: set C66BOT_SECRET_KEY to the keys the replicas run with, the newest first (%s)",
			strings.Join(wk.Configured, ", "), sealedValues(wk.Sealed), t.db, sealedWith(wk), lostForGood)
	case errors.As(err, &state):
		switch state.SQLState() {
		case "28P01":
			return fmt.Sprintf("PostgreSQL at %s refused the password of user %s: check the password in %s (postgres://user:PASSWORD@host:port/database)", t.addr, t.user, setting)
		case "28000":
			return fmt.Sprintf("PostgreSQL at %s refused user %s (no such role, or pg_hba.conf does not let it in from here): check the user name in %s and the server's pg_hba.conf", t.addr, t.user, setting)
		case "3D000":
			return fmt.Sprintf("PostgreSQL at %s has no database %s: check the database name in %s (postgres://user:password@host:port/DATABASE), or create it (createdb %s)", t.addr, t.db, setting, t.db)
		case "53300":
			return fmt.Sprintf("PostgreSQL at %s has no connection slots left: raise its max_connections, or lower the replicas' number", t.addr)
		case "57P03":
			return fmt.Sprintf("PostgreSQL at %s is starting or shutting down: try again in a moment", t.addr)
		}
	case errors.As(err, &dns):
		return fmt.Sprintf("the host of %s (%s) does not resolve: check the host name in it (postgres://user:password@HOST:port/database) and DNS", setting, t.addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing accepts connections at %s: check the host and port in %s, and that PostgreSQL runs and listens there (listen_addresses)", t.addr, setting)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("PostgreSQL at %s did not answer in time: check the host and port in %s, and any firewall in between", t.addr, setting)
	case strings.Contains(err.Error(), "server refused TLS connection"):
		return fmt.Sprintf("PostgreSQL at %s does not offer TLS, which the sslmode of %s asks for: turn ssl on in the server, or change sslmode", t.addr, setting)
	}
	return withoutPassword(cleanError(err), rawURL)
}

// isLoopbackHost reports whether a PostgreSQL host is this machine: a
// loopback name or address, or a Unix socket directory.
func isLoopbackHost(host string) bool {
	return host == "" || strings.HasPrefix(host, "/") || app.IsLoopback(host)
}

// plainToRemote reports whether rawURL turns TLS off (sslmode=disable) to
// a host that is not this machine; the password would cross the network
// unencrypted.
func plainToRemote(rawURL string) (host string, plain bool) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Query().Get("sslmode") != "disable" {
		return "", false
	}
	hosts := strings.Split(u.Host, ",")
	if h := u.Query().Get("host"); h != "" {
		hosts = strings.Split(h, ",")
	}
	for _, h := range hosts {
		if name, _, err := net.SplitHostPort(h); err == nil {
			h = name
		}
		if !isLoopbackHost(strings.Trim(h, "[]")) {
			return h, true
		}
	}
	return "", false
}
