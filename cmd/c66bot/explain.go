package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/storage"
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
var packagePrefix = regexp.MustCompile(`(^|[\s(])(storage|notify|accounts|deploy|commands|cloud66|policy|slackapp|metrics): `)

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
