package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
)

// migrateTo is `c66bot migrate --to <postgres URL> [--force]`: it copies
// everything in the bbolt file at C66BOT_DB into PostgreSQL, kind by kind,
// in one transaction, and prints each kind's count. The file is opened
// read-only with the keys serve would use (C66BOT_SECRET_KEY, or the key
// file beside it), so the bot must be stopped; PostgreSQL needs those same
// keys in C66BOT_SECRET_KEY, since every replica seals with them and there
// is no key file. A target that holds records is refused unless --force,
// which replaces them.
func migrateTo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var (
		to    string
		force bool
	)
	v, err := parseSettingsWith("migrate", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&to, "to", "", "the PostgreSQL database to copy into: postgres://user:password@host:port/db (required)")
		fs.BoolVar(&force, "force", false, "replace what the PostgreSQL database holds already")
	})
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && to == "" {
		err = errors.New("--to is required: the PostgreSQL database to copy into, postgres://user:password@host:port/db")
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot migrate: %v\n", err)
		return 2
	}
	path := v.Get("C66BOT_DB")
	if !fileExists(path) {
		fmt.Fprintf(stderr, "c66bot migrate: there is no database at %s; point --db or C66BOT_DB at it\n", path)
		return 1
	}
	keys, source, err := operatorKeys(v)
	if err != nil {
		fmt.Fprintf(stderr, "c66bot migrate: %v\n", err)
		return 1
	}
	if source != "C66BOT_SECRET_KEY" {
		fmt.Fprintf(stderr, "c66bot migrate: PostgreSQL needs C66BOT_SECRET_KEY: every replica seals with it and there is no key file; "+
			"set C66BOT_SECRET_KEY to the key in %s and keep it set for serve\n", source)
		return 1
	}

	from, err := storage.Open(storage.Options{Path: path, Keys: keys, ReadOnly: true, Timeout: 300 * time.Millisecond})
	if errors.Is(err, storage.ErrLocked) {
		fmt.Fprintf(stderr, "c66bot migrate: the database %s is in use: stop the bot first, so nothing changes while it is copied\n", path)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot migrate: %s\n", explainOperatorError(err, path))
		return 1
	}
	defer from.Close()
	// The target's own sealed values, if any, are refused or replaced
	// below, so the keys need not open them.
	target, err := postgres.Open(ctx, postgres.Options{URL: to, Keys: keys, SkipKeyCheck: true, Replica: "migrate"})
	if err != nil {
		fmt.Fprintf(stderr, "c66bot migrate: %s\n", explainPostgres(err, to, "--to"))
		return 1
	}
	defer target.Close()

	counts := map[string]int{}
	var unopenable int
	err = target.Import(ctx, force, func(put func(kind string, rec any) error) error {
		var err error
		unopenable, err = from.Export(ctx, func(kind string, rec any) error {
			counts[kind]++
			return put(kind, rec)
		})
		return err
	})
	if errors.Is(err, postgres.ErrNotEmpty) {
		fmt.Fprintln(stderr, "c66bot migrate: the PostgreSQL database already holds records; nothing was copied. Add --force to replace them with the file's.")
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot migrate: nothing was copied: %s\n", explainPostgres(err, to, "--to"))
		return 1
	}
	for _, kind := range storage.ExportKinds() {
		fmt.Fprintf(stdout, "%-14s %d\n", kind, counts[kind])
	}
	if unopenable > 0 {
		fmt.Fprintf(stderr, "c66bot migrate: left out %s that no key of C66BOT_SECRET_KEY opens (they were of no use; the people concerned log in again).\n",
			plural(unopenable, "sealed value", "sealed values"))
	}
	fmt.Fprintf(stderr, "c66bot: copied %s into PostgreSQL; serve with C66BOT_DATABASE_URL set to it and the same C66BOT_SECRET_KEY. The file is unchanged.\n", path)
	return 0
}
