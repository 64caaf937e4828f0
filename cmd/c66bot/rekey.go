package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/storage"
)

// rekey reseals every stored token under the first key of
// C66BOT_SECRET_KEY, the last step of a key rotation:
//
//  1. put a new key in front: C66BOT_SECRET_KEY=NEW,OLD, and restart the bot;
//  2. c66bot rekey;
//  3. once it reports nothing failed, drop OLD and restart again.
//
// It reads the keys exactly as serve does (the same flags and environment,
// the <db>.key file when C66BOT_SECRET_KEY is unset) and, unlike audit,
// needs the real ones. While the bot runs, bbolt lets only the bot open the
// file, so the bot does the work with its own store and keys.
func rekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var forget bool
	v, err := parseSettingsWith("rekey", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&forget, "forget-unopenable", false, "when the key that sealed some tokens is lost for good: delete the links no configured key opens (those people log in again), so serve starts with the new key")
	})
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot rekey: %v\n", err)
		return 2
	}
	path := v.Get("C66BOT_DB")
	if !fileExists(path) {
		fmt.Fprintf(stderr, "c66bot rekey: there is no database at %s; point --db or C66BOT_DB at it\n", path)
		return 1
	}
	keys, source, kerr := operatorKeys(v)
	if forget {
		return forgetUnopenable(ctx, path, keys, source, kerr, stderr)
	}

	var (
		rep    storage.RekeyReport
		remote bool
	)
	if kerr == nil {
		var s *storage.DB
		s, err = storage.Open(storage.Options{Path: path, Keys: keys, Timeout: 300 * time.Millisecond})
		if err == nil {
			rep, err = admin.Rekey(ctx, s, s.Audit())
			if cerr := s.Close(); err == nil {
				err = cerr
			}
		}
		remote = errors.Is(err, storage.ErrLocked)
	} else {
		// Without keys here, only a running bot can rekey, with its own.
		remote = errors.Is(withReadOnlyStore(path, func(*storage.DB) error { return nil }), storage.ErrLocked)
		if !remote {
			fmt.Fprintf(stderr, "c66bot rekey: %v\n", kerr)
			return 1
		}
	}
	if remote {
		c := newAdminClient(path + ".sock")
		err = c.call(ctx, http.MethodPost, "/rekey", nil, &rep)
	}
	if err != nil {
		ks := app.KeySource{FromEnv: source == "C66BOT_SECRET_KEY", File: source}
		fmt.Fprintf(stderr, "c66bot rekey: %v\n", explainStartError(err, path, ks))
		return 1
	}

	fmt.Fprintf(stdout, "resealed         %d\nalready primary  %d\nfailed           %d\n", rep.Resealed, rep.AlreadyPrimary, rep.Failed)
	first, list := "the first key of "+source, source
	if remote {
		first, list = "the running bot's first key", "the bot's C66BOT_SECRET_KEY"
		fmt.Fprintln(stderr, "c66bot: the database is in use, so the running bot resealed the tokens with the keys it was started with, not this shell's.")
	} else {
		first += " (key id " + storage.KeyID(keys[0]) + ")"
	}
	if rep.Failed > 0 {
		ids := "a key"
		if len(rep.UnknownKeyIDs) > 0 {
			ids = "the key with id " + strings.Join(rep.UnknownKeyIDs, ", id ")
		}
		fmt.Fprintf(stderr, "c66bot rekey: %d stored value(s) open with no configured key: %s, which sealed them, is missing from %s. "+
			"Add that key back at the end of the list, restart the bot if it runs, and run c66bot rekey again. "+
			"If the key is lost, the people concerned must log in again; the values were kept, not deleted.\n",
			rep.Failed, ids, list)
		return 1
	}
	if !remote && len(keys) == 1 {
		fmt.Fprintf(stderr, "c66bot: every stored token is sealed with %s.\n", first)
		return 0
	}
	fmt.Fprintf(stderr, "c66bot: every stored token is now sealed with %s; the other keys can be dropped from %s (then restart the bot).\n", first, list)
	return 0
}

// operatorKeys returns the sealing keys as serve would use them, and where
// they came from, without ever creating a key file: an operator command
// that made up a new key would only hide the real problem.
func operatorKeys(v app.Settings) (keys [][]byte, source string, err error) {
	if spec := v.Get("C66BOT_SECRET_KEY"); spec != "" {
		keys, err := storage.ParseKeys(spec)
		if err != nil {
			return nil, "C66BOT_SECRET_KEY", fmt.Errorf("C66BOT_SECRET_KEY: %w", err)
		}
		return keys, "C66BOT_SECRET_KEY", nil
	}
	path := storage.KeyFilePath(v.Get("C66BOT_DB"))
	if _, err := os.Stat(path); err != nil {
		return nil, path, fmt.Errorf("C66BOT_SECRET_KEY is unset and there is no key file %s: set C66BOT_SECRET_KEY to the keys that sealed the tokens, the newest first", path)
	}
	key, err := storage.ReadKeyFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("C66BOT_SECRET_KEY is unset and %w", err)
	}
	return [][]byte{key}, path, nil
}

// forgetUnopenable is rekey --forget-unopenable: the way out when a key is
// lost for good. serve refuses keys that open none of the stored links, so
// the operator sets the new key, forgets what the lost one sealed, and the
// people concerned log in again. Audited. It needs the bot stopped: a
// running bot would not have started with keys that open nothing.
func forgetUnopenable(ctx context.Context, path string, keys [][]byte, source string, kerr error, stderr io.Writer) int {
	if kerr != nil {
		fmt.Fprintf(stderr, "c66bot rekey: %v; to forget what a lost key sealed, first set C66BOT_SECRET_KEY to the new key (make one with: %s)\n", kerr, storage.MakeKeyCommand)
		return 1
	}
	s, err := storage.Open(storage.Options{Path: path, Keys: keys, Timeout: 300 * time.Millisecond, SkipKeyCheck: true})
	if errors.Is(err, storage.ErrLocked) {
		fmt.Fprintf(stderr, "c66bot rekey: the database %s is in use: stop the bot first\n", path)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot rekey: %s\n", explainOperatorError(err, path))
		return 1
	}
	defer s.Close()
	n, err := s.ForgetUnopenableLinks(ctx)
	if err == nil {
		// Watches, pending logins and intents that do not open go too.
		_, err = s.SweepExpired(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot rekey: %s\n", cleanError(err))
		return 1
	}
	if _, err := s.Audit().Append(ctx, storage.AuditEntry{Action: "rekey.forget", User: "operator", Result: "ok",
		Args: map[string]string{"forgotten_links": strconv.Itoa(n), "key_id": storage.KeyID(keys[0])}}); err != nil {
		fmt.Fprintf(stderr, "c66bot rekey: the links were forgotten but the audit entry failed: %s\n", cleanError(err))
		return 1
	}
	fmt.Fprintf(stderr, "c66bot: forgot %s that %s does not open; those people must log in again. serve now starts with it.\n",
		plural(n, "link", "links"), keyName(source))
	return 0
}
