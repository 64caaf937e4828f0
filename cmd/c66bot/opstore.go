package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
)

// The operator's commands (audit, token, rekey, doctor's database check)
// work on either database: the bbolt file at C66BOT_DB, or PostgreSQL when
// C66BOT_DATABASE_URL is set. opsDB is either one as the admin package's
// interfaces, so each command is written once; what differs is how it is
// opened and how its errors read.

// opsDB is an open database as an operator command uses it.
type opsDB struct {
	audit  auditLog
	tokens admin.TokenStore
	links  admin.LinkCounter
	whole  wholeDB
}

// auditLog is what the commands do with the audit log: read it, and add
// the entries of rekey.
type auditLog interface {
	admin.AuditSource
	admin.AuditAppender
}

// wholeDB is what the commands do with the database as a whole;
// *storage.DB and *postgres.DB both do it.
type wholeDB interface {
	admin.KeyStore
	Ping(ctx context.Context) error
	SweepExpired(ctx context.Context) (int, error)
	ForgetUnopenableLinks(ctx context.Context) (int, error)
}

// database names the database an operator command works on, as serve
// reads the settings.
type database struct {
	path string // the bbolt file, when url is empty
	url  string // C66BOT_DATABASE_URL
}

func databaseOf(v app.Settings) database {
	return database{path: v.Get("C66BOT_DB"), url: v.Get("C66BOT_DATABASE_URL")}
}

func (d database) postgres() bool { return d.url != "" }

// String names the database in messages: the file, or the URL with its
// password masked.
func (d database) String() string {
	if d.postgres() {
		return redactURL(d.url)
	}
	return d.path
}

// access is what a command does with the database it opens.
type access struct {
	// readOnly: the command only reads. bbolt opens the file with a
	// shared lock; PostgreSQL is opened the same either way, since without
	// create nothing is written on opening.
	readOnly bool
	// create: the command may make a new database, as token create does
	// before the bot's first start: a bbolt file, or the tables in an
	// empty PostgreSQL schema. Otherwise a missing one is an error, and
	// PostgreSQL's schema is never migrated (postgres.Options.NoMigrate):
	// an operator's newer c66bot must not change the tables under replicas
	// of an older one.
	create bool
	// keys are the real sealing keys, for a command that opens sealed
	// values; nil means a throwaway key, enough for the tokens and the
	// audit log, which are not sealed, so an operator's shell needs no key.
	keys [][]byte
	// skipKeyCheck opens a database that keys do not open (rekey
	// --forget-unopenable).
	skipKeyCheck bool
}

// How long opening may take: bbolt's wait for the file lock (the running
// bot holds it), PostgreSQL's connecting.
const (
	bboltLockTimeout  = 300 * time.Millisecond
	postgresConnectBy = 10 * time.Second
)

// with opens the database for command, runs fn on it and closes it.
func (d database) with(ctx context.Context, command string, a access, fn func(opsDB) error) error {
	db, closeDB, err := d.open(ctx, command, a)
	if err != nil {
		return err
	}
	err = fn(db)
	if cerr := closeDB(); err == nil {
		err = cerr
	}
	return err
}

func (d database) open(ctx context.Context, command string, a access) (opsDB, func() error, error) {
	keys, skip := a.keys, a.skipKeyCheck
	if keys == nil {
		keys, skip = [][]byte{throwawayKey()}, true
	}
	if d.postgres() {
		return openPostgres(ctx, d.url, command, a.create, keys, skip)
	}
	if !a.create && !fileExists(d.path) {
		return opsDB{}, nil, &fs.PathError{Op: "open", Path: d.path, Err: fs.ErrNotExist}
	}
	s, err := storage.Open(storage.Options{Path: d.path, Keys: keys, ReadOnly: a.readOnly, Timeout: bboltLockTimeout, SkipKeyCheck: skip})
	if err != nil {
		return opsDB{}, nil, err
	}
	return opsDB{audit: s.Audit(), tokens: s.APITokens(), links: s.Links(), whole: s}, s.Close, nil
}

// openPostgres opens PostgreSQL without migrating it, except an empty
// schema when the command may create the database.
func openPostgres(ctx context.Context, rawURL, command string, create bool, keys [][]byte, skipKeyCheck bool) (opsDB, func() error, error) {
	opts := postgres.Options{URL: rawURL, Keys: keys, SkipKeyCheck: skipKeyCheck, NoMigrate: true,
		Replica: strings.ReplaceAll(command, " ", "-"), MaxConns: 2}
	octx, cancel := context.WithTimeout(ctx, postgresConnectBy)
	defer cancel()
	p, err := postgres.Open(octx, opts)
	var se *postgres.SchemaError
	if create && errors.As(err, &se) && se.Database == 0 {
		// No replica has run on it (each migrates on start), so making the
		// tables surprises none.
		opts.NoMigrate = false
		p, err = postgres.Open(octx, opts)
	}
	if err != nil {
		return opsDB{}, nil, err
	}
	return opsDB{audit: p.Audit(), tokens: p.APITokens(), links: p.Links(), whole: p}, p.Close, nil
}

// explain is an error of the command about d as one line with the fix.
func (d database) explain(err error) string {
	if d.postgres() {
		return explainPostgres(err, d.url, "C66BOT_DATABASE_URL")
	}
	return explainOperatorError(err, d.path)
}

// redactURL is a PostgreSQL URL with its password masked, in the user
// part and in a password parameter, for messages; a URL that does not
// parse is not shown at all, since where its password is cannot be told.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// passwords returns the ways raw's password may be spelt in an error: as
// written (escaped) and decoded, in the user part and in a password
// parameter. It reads the user part by hand, so a URL that does not
// parse gives its password up too.
func passwords(raw string) []string {
	var pws []string
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				pws = append(pws, pw)
				if dec, err := url.PathUnescape(pw); err == nil {
					pws = append(pws, dec)
				}
			}
		}
	}
	if _, query, ok := strings.Cut(raw, "?"); ok {
		for _, kv := range strings.Split(query, "&") {
			if k, v, _ := strings.Cut(kv, "="); k == "password" {
				pws = append(pws, v)
				if dec, err := url.QueryUnescape(v); err == nil {
					pws = append(pws, dec)
				}
			}
		}
	}
	return pws
}

// withoutPassword masks raw's password wherever msg, a text from outside
// (the driver's, the server's), holds it.
func withoutPassword(msg, raw string) string {
	for _, pw := range passwords(raw) {
		if pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// pgTarget is what a PostgreSQL URL names, without its password, for
// messages.
type pgTarget struct{ user, addr, db string }

func pgTargetOf(raw string) pgTarget {
	t := pgTarget{user: "(the user)", addr: "the server", db: "(the database)"}
	u, err := url.Parse(raw)
	if err != nil {
		return t
	}
	if name := u.User.Username(); name != "" {
		t.user = name
	}
	if u.Host != "" {
		t.addr = u.Host
		if u.Port() == "" && !strings.Contains(u.Host, ",") {
			t.addr += ":5432"
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		t.db = db
	}
	return t
}

// errPostgresBackup is backup's answer when the database is PostgreSQL.
var errPostgresBackup = errors.New("the database is PostgreSQL (C66BOT_DATABASE_URL), which c66bot backup does not copy: back it up with pg_dump " +
	"(pg_dump -Fc, of the database C66BOT_DATABASE_URL names) and keep C66BOT_SECRET_KEY with the dump: without the key the tokens in it cannot be opened")

// errNoPostgresKey is what a command that opens sealed values says when
// the keys it needs are not set.
func errNoPostgresKey() error {
	return fmt.Errorf("C66BOT_SECRET_KEY is unset: with C66BOT_DATABASE_URL it is the only source of the sealing keys (the replicas share no key file); " +
		"set it to the keys the replicas run with, the newest first")
}
