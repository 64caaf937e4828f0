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
// file, so the bot does the work with its own store and keys. With
// C66BOT_DATABASE_URL it reseals in PostgreSQL itself, with the keys of
// C66BOT_SECRET_KEY (there is no key file), while the replicas run: they
// hold the same list, so each opens what this reseals.
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
	db := databaseOf(v)
	path := db.path
	if !db.postgres() && !fileExists(path) {
		fmt.Fprintf(stderr, "c66bot rekey: there is no database at %s; point --db or C66BOT_DB at it\n", path)
		return 1
	}
	keys, source, kerr := operatorKeys(v)
	if forget {
		return forgetUnopenable(ctx, db, keys, source, kerr, stderr)
	}

	var (
		rep    storage.RekeyReport
		remote bool
	)
	if kerr == nil {
		err = db.with(ctx, "rekey", access{keys: keys}, func(s opsDB) error {
			rep, err = admin.Rekey(ctx, s.whole, s.audit)
			return err
		})
		remote = errors.Is(err, storage.ErrLocked)
	} else {
		// Without keys here, only a running bot can rekey, with its own.
		remote = !db.postgres() && errors.Is(db.with(ctx, "rekey", access{readOnly: true}, func(opsDB) error { return nil }), storage.ErrLocked)
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
		msg := db.explain(err)
		if !db.postgres() {
			msg = explainStartError(err, path, app.KeySource{FromEnv: source == "C66BOT_SECRET_KEY", File: source}).Error()
		}
		fmt.Fprintf(stderr, "c66bot rekey: %s\n", msg)
		return 1
	}

	fmt.Fprintf(stdout, "resealed         %d\nalready primary  %d\nfailed           %d\n", rep.Resealed, rep.AlreadyPrimary, rep.Failed)
	first, list, restart := "the first key of "+source, source, "restart the bot if it runs"
	switch {
	case remote:
		first, list = "the running bot's first key", "the bot's C66BOT_SECRET_KEY"
		fmt.Fprintln(stderr, "c66bot: the database is in use, so the running bot resealed the tokens with the keys it was started with, not this shell's.")
	case db.postgres():
		restart = "restart every replica with it"
		fallthrough
	default:
		first += " (key id " + storage.KeyID(keys[0]) + ")"
	}
	if rep.Failed > 0 {
		ids := "a key"
		if len(rep.UnknownKeyIDs) > 0 {
			ids = "the key with id " + strings.Join(rep.UnknownKeyIDs, ", id ")
		}
		fmt.Fprintf(stderr, "c66bot rekey: %d stored value(s) open with no configured key: %s, which sealed them, is missing from %s. "+
			"Add that key back at the end of the list, %s, and run c66bot rekey again. "+
			"If the key is lost, the people concerned must log in again; the values were kept, not deleted.\n",
			rep.Failed, ids, list, restart)
		return 1
	}
	switch {
	case db.postgres():
		// Every replica holds the same list, so each opens what another,
		// or this rekey, sealed with its first key.
		fmt.Fprintf(stderr, "c66bot: every stored token is now sealed with %s. The replicas keep working meanwhile: they hold the same key list. "+
			"Once every replica has been restarted with this list, the other keys can be dropped from C66BOT_SECRET_KEY (then restart the replicas one at a time; "+
			"if one was still running with an older list, run c66bot rekey again after restarting it).\n", first)
	case !remote && len(keys) == 1:
		fmt.Fprintf(stderr, "c66bot: every stored token is sealed with %s.\n", first)
	default:
		fmt.Fprintf(stderr, "c66bot: every stored token is now sealed with %s; the other keys can be dropped from %s (then restart the bot).\n", first, list)
	}
	return 0
}

// operatorKeys returns the sealing keys as serve would use them, and where
// they came from, without ever creating a key file: an operator command
// that made up a new key would only hide the real problem. With
// C66BOT_DATABASE_URL they come only from C66BOT_SECRET_KEY.
func operatorKeys(v app.Settings) (keys [][]byte, source string, err error) {
	if spec := v.Get("C66BOT_SECRET_KEY"); spec != "" {
		keys, err := storage.ParseKeys(spec)
		if err != nil {
			return nil, "C66BOT_SECRET_KEY", fmt.Errorf("C66BOT_SECRET_KEY: %w", err)
		}
		return keys, "C66BOT_SECRET_KEY", nil
	}
	if v.Get("C66BOT_DATABASE_URL") != "" {
		return nil, "C66BOT_SECRET_KEY", errNoPostgresKey()
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
// people concerned log in again. Audited. On a bbolt file it needs the bot
// stopped: a running bot would not have started with keys that open
// nothing.
func forgetUnopenable(ctx context.Context, db database, keys [][]byte, source string, kerr error, stderr io.Writer) int {
	if kerr != nil {
		fmt.Fprintf(stderr, "c66bot rekey: %v; to forget what a lost key sealed, first set C66BOT_SECRET_KEY to the new key (make one with: %s)\n", kerr, storage.MakeKeyCommand)
		return 1
	}
	var (
		n         int
		unaudited bool
	)
	err := db.with(ctx, "rekey", access{keys: keys, skipKeyCheck: true}, func(s opsDB) error {
		var err error
		n, err = s.whole.ForgetUnopenableLinks(ctx)
		if err == nil {
			// Watches, pending logins and intents that do not open go too.
			_, err = s.whole.SweepExpired(ctx)
		}
		if err != nil {
			return err
		}
		_, err = s.audit.Append(ctx, storage.AuditEntry{Action: "rekey.forget", User: "operator", Result: "ok",
			Args: map[string]string{"forgotten_links": strconv.Itoa(n), "key_id": storage.KeyID(keys[0])}})
		unaudited = err != nil
		return err
	})
	switch {
	case errors.Is(err, storage.ErrLocked):
		fmt.Fprintf(stderr, "c66bot rekey: the database %s is in use: stop the bot first\n", db)
		return 1
	case unaudited:
		fmt.Fprintf(stderr, "c66bot rekey: the links were forgotten but the audit entry failed: %s\n", db.explain(err))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "c66bot rekey: %s\n", db.explain(err))
		return 1
	}
	fmt.Fprintf(stderr, "c66bot: forgot %s that %s does not open; those people must log in again. serve now starts with it.\n",
		plural(n, "link", "links"), keyName(source))
	return 0
}
