package app

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/c66bot/c66bot/storage"
)

// KeySource says where the sealing keys came from, for messages about them.
type KeySource struct {
	// FromEnv: C66BOT_SECRET_KEY (or Config.Keys); otherwise the key file
	// at File.
	FromEnv bool
	File    string
	// Generated: the key file was created just now.
	Generated bool
}

// Name is how messages name the key.
func (k KeySource) Name() string {
	if k.FromEnv {
		return "C66BOT_SECRET_KEY"
	}
	return "the key file " + k.File
}

// StartError is New's error when the sealing keys or the database cannot
// be used; it says where the keys came from, so the command line can say
// what to restore.
type StartError struct {
	Keys KeySource
	DB   string
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// sealingKeys finds the keys: Config.Keys, C66BOT_SECRET_KEY, or the key
// file beside the database (made on the first start). The database path is
// checked first, so that a bad C66BOT_DB gets its own clear message and
// leaves no key file behind.
func (a *App) sealingKeys() ([][]byte, error) {
	s := a.cfg.Settings
	if a.cfg.Keys != nil {
		a.keys = KeySource{FromEnv: true}
		return a.cfg.Keys, nil
	}
	// Replicas on PostgreSQL share no file: each is given the keys
	// (Settings.Check requires C66BOT_SECRET_KEY with a URL).
	if s.DatabaseURL == "" {
		if err := CheckDatabasePath(s.DB); err != nil {
			return nil, err
		}
	}
	if s.SecretKey != "" || s.DatabaseURL != "" {
		a.keys = KeySource{FromEnv: true}
		keys, err := storage.ParseKeys(s.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("C66BOT_SECRET_KEY: %w", err)
		}
		return keys, nil
	}
	key, path, created, err := storage.DatabaseKey(s.DB)
	a.keys = KeySource{File: path, Generated: created}
	if err != nil {
		return nil, err
	}
	return [][]byte{key}, nil
}

// CheckDatabasePath finds the problems with C66BOT_DB that can be told
// before opening it: a directory where the file should be, a missing or
// unwritable directory for a file still to be created.
func CheckDatabasePath(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("the database %s is a directory; point C66BOT_DB at a file (one inside that directory, for example)", path)
	case err == nil:
		return nil // it exists: opening it tells the rest
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot reach the database %s: %v; point C66BOT_DB at a file the bot's user can reach", path, UnwrapPathError(err))
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err != nil || !di.IsDir() {
		return fmt.Errorf("cannot create the database %s: the directory %s does not exist; create it for the bot's user (mkdir -p %s), or point C66BOT_DB elsewhere", path, dir, dir)
	}
	// The only sure test of "may this user create a file here" is creating
	// one; it is removed at once.
	f, err := os.CreateTemp(dir, ".c66bot-check-*")
	if err != nil {
		return fmt.Errorf("cannot create the database %s: the directory %s is not writable by this user (%v); give the bot's user write access to it, or point C66BOT_DB at a writable place", path, dir, UnwrapPathError(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// warnings says at start what is unsafe about the setup, as doctor does: a
// generated key to back up, a public URL without TLS, a database file
// others may read.
func (a *App) warnings() {
	s := a.cfg.Settings
	if a.keys.Generated {
		a.log.Warn("C66BOT_SECRET_KEY is unset: generated a sealing key; back it up with the database, or set C66BOT_SECRET_KEY", "key_file", a.keys.File)
	}
	if u, err := url.Parse(s.PublicURL); s.PublicURL != "" && err == nil && u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		a.log.Warn("C66BOT_PUBLIC_URL is plain http: login codes and cookies would cross the network unencrypted; put the bot behind HTTPS and set C66BOT_PUBLIC_URL to the https:// address",
			"public_url", u.Scheme+"://"+u.Host)
	}
	// The file serve creates is 0600; an older or copied one may not be.
	// Windows has synthetic permission bits (see storage.ReadKeyFile).
	if fi, err := os.Stat(s.DB); runtime.GOOS != "windows" && err == nil && fi.Mode().Perm()&0o077 != 0 {
		a.log.Warn(fmt.Sprintf("the database file %s has mode %#o, which lets group or others read it (the audit log, subscriptions and sealed tokens); run: chmod 600 %s", s.DB, fi.Mode().Perm(), s.DB),
			"db", s.DB, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
	}
}

// IsLoopback reports whether host names this machine only.
func IsLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
