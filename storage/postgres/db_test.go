package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// The behaviour PostgreSQL must keep that the contract suites cannot see:
// how it is opened and migrated, what lies in its tables, what it does
// once closed or when the server refuses a write, and its keys.

// The whole-database operations are storage.DB's, so the app and admin
// can take either (Backup aside: PostgreSQL is backed up with pg_dump).
type wholeDB interface {
	Ping(ctx context.Context) error
	WriteError() error
	Close() error
	SchemaVersion(ctx context.Context) (uint64, error)
	CheckKeys(ctx context.Context) (storage.KeyReport, error)
	Rekey(ctx context.Context) (storage.RekeyReport, error)
	SweepExpired(ctx context.Context) (int, error)
	ForgetUnopenableLinks(ctx context.Context) (int, error)
}

var (
	_ wholeDB = (*storage.DB)(nil)
	_ wholeDB = (*postgres.DB)(nil)
)

func key(label string) []byte {
	k := sha256.Sum256([]byte(label))
	return k[:]
}

func open(t *testing.T, url string, keys ...[]byte) (*postgres.DB, error) {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url, Keys: keys, MaxConns: 4})
	if err == nil {
		t.Cleanup(func() { _ = db.Close() })
	}
	return db, err
}

func mustOpen(t *testing.T, url string, keys ...[]byte) *postgres.DB {
	t.Helper()
	db, err := open(t, url, keys...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return db
}

// Replicas starting at once on an empty database all open it, and the
// schema is migrated once.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const replicas = 6
	dbs := make([]*postgres.DB, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { dbs[i], errs[i] = open(t, url, testKey()) })
	}
	wg.Wait()
	var want uint64
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		v, err := dbs[i].SchemaVersion(t.Context())
		if err != nil || v == 0 || (want != 0 && v != want) {
			t.Fatalf("replica %d: schema version %d, %v; others see %d", i, v, err, want)
		}
		want = v
	}
	var n, distinct uint64
	queryRow(t, url, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`, &n, &distinct)
	if n != want || distinct != want {
		t.Errorf("schema_migrations holds %d rows, %d versions; want each of the %d once", n, distinct, want)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	t.Run("no keys", func(t *testing.T) {
		t.Parallel()
		// Before any connection: no server needed.
		_, err := postgres.Open(t.Context(), postgres.Options{URL: "postgres://nowhere.invalid/db"})
		if err == nil || !strings.Contains(err.Error(), "C66BOT_SECRET_KEY is required") {
			t.Errorf("Open without keys = %v", err)
		}
	})
	t.Run("no URL", func(t *testing.T) {
		t.Parallel()
		if _, err := postgres.Open(t.Context(), postgres.Options{Keys: [][]byte{testKey()}}); err == nil {
			t.Error("Open without a URL succeeded")
		}
	})
	t.Run("a newer schema", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		mustOpen(t, url, testKey()).Close()
		pgtest.Exec(t, url, `INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')`)
		_, err := open(t, url, testKey())
		if err == nil || !strings.Contains(err.Error(), "schema v999 is newer than this c66bot") {
			t.Errorf("Open of a newer schema = %v", err)
		}
	})
	t.Run("wrong keys", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		a, b := key("a"), key("b")
		db := mustOpen(t, url, a)
		ana := storage.Identity{Team: "T1", User: "UANA"}
		if err := db.Links().Save(t.Context(), storage.Link{Identity: ana, AccessToken: "tok"}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err := open(t, url, b)
		var wk *storage.WrongKeyError
		if !errors.As(err, &wk) || !errors.Is(err, storage.ErrSealed) || wk.Sealed != 1 || !slices.Equal(wk.SealedWith, []string{storage.KeyID(a)}) {
			t.Fatalf("Open with another key = %v, want a WrongKeyError naming key %s", err, storage.KeyID(a))
		}
		// The way out when a is lost for good.
		db, err = postgres.Open(t.Context(), postgres.Options{URL: url, Keys: [][]byte{b}, SkipKeyCheck: true})
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.ForgetUnopenableLinks(t.Context())
		db.Close()
		if err != nil || n != 1 {
			t.Fatalf("ForgetUnopenableLinks = %d, %v; want 1", n, err)
		}
		mustOpen(t, url, b)
	})
}

// NoMigrate opens a database at this build's schema and refuses, changing
// nothing, one with no schema or a newer one, saying which.
func TestOpenNoMigrate(t *testing.T) {
	t.Parallel()
	noMigrate := func(url string) (*postgres.DB, error) {
		db, err := postgres.Open(t.Context(), postgres.Options{URL: url, Keys: [][]byte{testKey()}, NoMigrate: true})
		if err == nil {
			t.Cleanup(func() { _ = db.Close() })
		}
		return db, err
	}
	url := pgtest.URL(t)
	_, err := noMigrate(url)
	var se *postgres.SchemaError
	if !errors.As(err, &se) || se.Database != 0 || se.Build == 0 || !strings.Contains(err.Error(), "no c66bot schema yet") {
		t.Fatalf("NoMigrate Open of an empty schema = %v, want a *SchemaError at v0", err)
	}
	var tables int
	queryRow(t, url, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`, &tables)
	if tables != 0 {
		t.Errorf("NoMigrate Open made %d tables", tables)
	}

	mustOpen(t, url, testKey()).Close() // migrated
	db, err := noMigrate(url)
	if err != nil {
		t.Fatalf("NoMigrate Open of a migrated schema: %v", err)
	}
	if v, err := db.SchemaVersion(t.Context()); err != nil || int(v) != se.Build {
		t.Errorf("schema version = %d, %v; want this build's v%d", v, err, se.Build)
	}
	db.Close()

	pgtest.Exec(t, url, `INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')`)
	for name, open := range map[string]func(string) (*postgres.DB, error){
		"NoMigrate": noMigrate,
		"migrating": func(url string) (*postgres.DB, error) { return open(t, url, testKey()) },
	} {
		_, err = open(url)
		if !errors.As(err, &se) || se.Database != 999 || !strings.Contains(err.Error(), "schema v999 is newer than this c66bot") {
			t.Errorf("%s Open of a newer schema = %v, want a *SchemaError at v999", name, err)
		}
	}
}

// A token is sealed in its table, and a sealed value moved to another
// row, another person's say, does not open there.
func TestSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ana, ben := storage.Identity{Team: "T1", User: "UANA"}, storage.Identity{Team: "T1", User: "UBEN"}
	secret := func(who storage.Identity) string { return "secret-of-" + who.User }
	tests := []struct {
		table, key string
		// make stores a value of who holding secret(who) and returns how to
		// read it back (nil when it opens) and its row's key.
		make func(t *testing.T, db *postgres.DB, who storage.Identity) (read func() error, key any)
	}{
		{
			table: "links", key: "identity",
			make: func(t *testing.T, db *postgres.DB, who storage.Identity) (func() error, any) {
				if err := db.Links().Save(ctx, storage.Link{Identity: who, AccessToken: secret(who)}); err != nil {
					t.Fatal(err)
				}
				return func() error { _, err := db.Links().Get(ctx, who); return err }, who.String()
			},
		},
		{
			table: "login_states", key: "state_sha256",
			make: func(t *testing.T, db *postgres.DB, who storage.Identity) (func() error, any) {
				state, err := db.Logins().Create(ctx, storage.PendingLogin{Identity: who, Verifier: secret(who)})
				if err != nil {
					t.Fatal(err)
				}
				hash, _ := storage.LoginStateHash(state)
				return func() error { _, err := db.Logins().Peek(ctx, state); return err }, hash
			},
		},
		{
			table: "intents", key: "id_sha256",
			make: func(t *testing.T, db *postgres.DB, who storage.Identity) (func() error, any) {
				in, err := db.Intents().Create(ctx, storage.Intent{Kind: "deploy", Requester: who, ResponseURL: secret(who)})
				if err != nil {
					t.Fatal(err)
				}
				hash, _ := storage.IntentIDHash(in.ID)
				return func() error { _, err := db.Intents().Get(ctx, in.ID); return err }, hash
			},
		},
		{
			table: "watches", key: "lpad(id::text, 20, '0')",
			make: func(t *testing.T, db *postgres.DB, who storage.Identity) (func() error, any) {
				w, err := db.Watches().Start(ctx, storage.Watch{Owner: who, StackUID: "s-" + who.User, ResponseURL: secret(who)})
				if err != nil {
					t.Fatal(err)
				}
				return func() error { _, err := db.Watches().Get(ctx, w.ID); return err }, w.ID
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.table, func(t *testing.T) {
			t.Parallel()
			url := pgtest.URL(t)
			db := mustOpen(t, url, testKey())
			readAna, anaKey := tc.make(t, db, ana)
			readBen, benKey := tc.make(t, db, ben)
			var rows, escaped string
			queryRow(t, url, `SELECT string_agg(t::text, ' '), string_agg(encode(sealed, 'escape'), ' ') FROM `+tc.table+` t`, &rows, &escaped)
			for _, who := range []storage.Identity{ana, ben} {
				if strings.Contains(rows, secret(who)) || strings.Contains(escaped, secret(who)) {
					t.Errorf("%s holds %q in the clear", tc.table, secret(who))
				}
			}
			if err := readAna(); err != nil {
				t.Fatalf("reading ana's value before the swap: %v", err)
			}
			pgtest.Exec(t, url, `UPDATE `+tc.table+` SET sealed = (SELECT sealed FROM `+tc.table+` WHERE `+tc.key+` = $2) WHERE `+tc.key+` = $1`, anaKey, benKey)
			if err := readAna(); err == nil {
				t.Errorf("ana's row holding ben's value opened")
			}
			if err := readBen(); err != nil {
				t.Errorf("ben's own value: %v", err)
			}
		})
	}
}

// Every call on a closed DB fails with storage.ErrClosed.
func TestClosed(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, pgtest.URL(t), testKey())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := t.Context()
	ana := storage.Identity{Team: "T1", User: "UANA"}
	calls := map[string]func() error{
		"Ping":          func() error { return db.Ping(ctx) },
		"SchemaVersion": func() error { _, err := db.SchemaVersion(ctx); return err },
		"CheckKeys":     func() error { _, err := db.CheckKeys(ctx); return err },
		"Rekey":         func() error { _, err := db.Rekey(ctx); return err },
		"SweepExpired":  func() error { _, err := db.SweepExpired(ctx); return err },
		"Links.Get":     func() error { _, err := db.Links().Get(ctx, ana); return err },
		"Links.Save": func() error {
			return db.Links().Save(ctx, storage.Link{Identity: ana, AccessToken: "tok"}, storage.AuditEntry{Action: "x"})
		},
		"Watches.Start":   func() error { _, err := db.Watches().Start(ctx, storage.Watch{Owner: ana, StackUID: "s1"}); return err },
		"Dedup.FirstTime": func() error { _, err := db.Dedup().FirstTime(ctx, "k", time.Minute); return err },
		"Outbox.Pending":  func() error { _, err := db.Outbox().Pending(ctx, 0); return err },
		"Leases.Acquire":  func() error { _, _, err := db.Leases().Acquire(ctx, "k", "a", time.Minute); return err },
		"Budgets.Reserve": func() error { _, err := db.Budgets().Reserve(ctx, "k", 60, 1); return err },
		"Import": func() error {
			return db.Import(ctx, false, func(func(string, any) error) error { return nil })
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close: %v, want storage.ErrClosed", name, err)
		}
	}
}

// WriteError holds what PostgreSQL refused last, at a statement or at
// commit, and the next write that commits clears it; the stores' own
// refusals are no database failure.
func TestWriteError(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"at commit", "at the statement"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			url := pgtest.URL(t)
			db := mustOpen(t, url, testKey())
			trigger := `CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON links DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()`
			if when == "at the statement" {
				trigger = `CREATE TRIGGER refuse BEFORE INSERT ON links FOR EACH ROW EXECUTE FUNCTION refuse()`
			}
			pgtest.Exec(t, url, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
					IF NEW.identity = 'T1:UFULL' THEN RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END IF;
					RETURN NEW;
				END $$`)
			pgtest.Exec(t, url, trigger)
			ctx := t.Context()
			if _, err := db.Locks().Release(ctx, "T1", "s1"); !errors.Is(err, storage.ErrNotFound) || db.WriteError() != nil {
				t.Fatalf("a refusal of the store's own: %v; WriteError %v", err, db.WriteError())
			}
			// Alone, the statement commits on its own; with an audit entry,
			// in a transaction, whose commit refused is the entry not
			// written (a statement refused is the change not made).
			for _, audit := range [][]storage.AuditEntry{nil, {{Action: "login"}}} {
				err := db.Links().Save(ctx, storage.Link{Identity: storage.Identity{Team: "T1", User: "UFULL"}, AccessToken: "tok"}, audit...)
				notAudited := audit != nil && when == "at commit"
				if err == nil || notAudited != errors.Is(err, storage.ErrNotAudited) ||
					db.WriteError() == nil || !strings.Contains(db.WriteError().Error(), "no space left") {
					t.Fatalf("a refused write (audit %v): %v; WriteError %v", audit, err, db.WriteError())
				}
				if err := db.Ping(ctx); err != nil {
					t.Errorf("Ping while writes fail: %v (reads still work)", err)
				}
				if err := db.Links().Save(ctx, storage.Link{Identity: storage.Identity{Team: "T1", User: "UOK"}, AccessToken: "tok"}, audit...); err != nil {
					t.Fatal(err)
				}
				if err := db.WriteError(); err != nil {
					t.Errorf("WriteError after a write committed: %v", err)
				}
			}
		})
	}
}

// Rotation: CheckKeys sees the values under the old key, Rekey moves them
// under the new one in batches, and then the old key can go.
func TestRekey(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := t.Context()
	oldKey, newKey := key("old"), key("new")
	db := mustOpen(t, url, oldKey)
	const people = 300 // more than one batch
	for i := range people {
		id := storage.Identity{Team: "T1", User: fmt.Sprintf("U%03d", i)}
		if err := db.Links().Save(ctx, storage.Link{Identity: id, AccessToken: "tok"}); err != nil {
			t.Fatal(err)
		}
	}
	ana := storage.Identity{Team: "T1", User: "UANA"}
	w, err := db.Watches().Start(ctx, storage.Watch{Owner: ana, StackUID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Logins().Create(ctx, storage.PendingLogin{Identity: ana}); err != nil {
		t.Fatal(err)
	}
	in, err := db.Intents().Create(ctx, storage.Intent{Kind: "deploy", Requester: ana})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	const sealed = people + 3

	db = mustOpen(t, url, newKey, oldKey)
	if rep, err := db.CheckKeys(ctx); err != nil || rep.Older != sealed || rep.Primary != 0 || rep.Unopenable != 0 {
		t.Fatalf("CheckKeys before the rekey = %+v, %v", rep, err)
	}
	if rep, err := db.Rekey(ctx); err != nil || rep.Resealed != sealed || rep.Failed != 0 {
		t.Fatalf("Rekey = %+v, %v; want %d resealed", rep, err, sealed)
	}
	if rep, err := db.Rekey(ctx); err != nil || rep.Resealed != 0 || rep.AlreadyPrimary != sealed {
		t.Fatalf("second Rekey = %+v, %v; want nothing left to do", rep, err)
	}
	db.Close()

	db = mustOpen(t, url, newKey)
	if rep, err := db.CheckKeys(ctx); err != nil || rep.Primary != sealed || rep.Total() != sealed {
		t.Errorf("CheckKeys with the new key alone = %+v, %v", rep, err)
	}
	if _, err := db.Watches().Get(ctx, w.ID); err != nil {
		t.Errorf("the watch after the rekey: %v", err)
	}
	if _, err := db.Intents().Get(ctx, in.ID); err != nil {
		t.Errorf("the intent after the rekey: %v", err)
	}

	// A value under a key nobody has is counted, kept, and named.
	lost := mustOpenSkipping(t, url, key("lost"))
	if err := lost.Links().Save(ctx, storage.Link{Identity: storage.Identity{Team: "T1", User: "ULOST"}, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := db.Rekey(ctx); err != nil || rep.Failed != 1 || !slices.Equal(rep.UnknownKeyIDs, []string{storage.KeyID(key("lost"))}) {
		t.Errorf("Rekey with a value under a lost key = %+v, %v", rep, err)
	}
}

func mustOpenSkipping(t *testing.T, url string, keys ...[]byte) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), postgres.Options{URL: url, Keys: keys, SkipKeyCheck: true, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// SweepExpired deletes what has expired and what no key opens, and
// nothing else.
func TestSweepExpired(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := t.Context()
	clock := fakeclock.New()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, Keys: [][]byte{testKey()}, Now: clock.Now, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ana, ben := storage.Identity{Team: "T1", User: "UANA"}, storage.Identity{Team: "T1", User: "UBEN"}

	// Expire within the hour: a login, an intent, a dedup key.
	if _, err := db.Logins().Create(ctx, storage.PendingLogin{Identity: ana}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Intents().Create(ctx, storage.Intent{Kind: "deploy", Requester: ana}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Dedup().FirstTime(ctx, "env-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Finished now, kept for 30 days.
	old, err := db.Watches().Start(ctx, storage.Watch{Owner: ana, StackUID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	old.State = storage.WatchSucceeded
	if err := db.Watches().Save(ctx, old); err != nil {
		t.Fatal(err)
	}
	// Unfinished under a key nobody has: its stack is freed.
	if _, err := mustOpenSkipping(t, url, key("lost")).Watches().Start(ctx, storage.Watch{Owner: ben, StackUID: "s2"}); err != nil {
		t.Fatal(err)
	}
	// Lives on: a link, a dedup key for a day, a running watch.
	if err := db.Links().Save(ctx, storage.Link{Identity: ana, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Dedup().FirstTime(ctx, "env-2", 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	running, err := db.Watches().Start(ctx, storage.Watch{Owner: ana, StackUID: "s3"})
	if err != nil {
		t.Fatal(err)
	}

	if n, err := db.SweepExpired(ctx); err != nil || n != 1 {
		t.Fatalf("SweepExpired at once = %d, %v; want the unopenable watch", n, err)
	}
	if _, err := db.Watches().Start(ctx, storage.Watch{Owner: ana, StackUID: "s2"}); err != nil {
		t.Errorf("the stack the unopenable watch held: %v", err)
	}
	clock.Advance(time.Hour)
	if n, err := db.SweepExpired(ctx); err != nil || n != 3 {
		t.Fatalf("SweepExpired after an hour = %d, %v; want the login, the intent and env-1", n, err)
	}
	clock.Advance(storage.WatchRetention)
	if n, err := db.SweepExpired(ctx); err != nil || n != 2 {
		t.Fatalf("SweepExpired after 30 days = %d, %v; want the finished watch and env-2", n, err)
	}
	if _, err := db.Watches().Get(ctx, old.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the finished watch after 30 days: %v", err)
	}
	if _, err := db.Watches().Get(ctx, running.ID); err != nil {
		t.Errorf("the running watch: %v", err)
	}
	if _, err := db.Links().Get(ctx, ana); err != nil {
		t.Errorf("the link: %v", err)
	}
	if n, err := db.SweepExpired(ctx); err != nil || n != 0 {
		t.Errorf("SweepExpired with nothing to do = %d, %v", n, err)
	}
}

// timestamptz keeps microseconds: what the store stamps is cut to them,
// so it reads back equal from a column; a caller's nanoseconds stay in the
// record. Keys and payloads are bytes, NUL included.
func TestPrecisionAndBytes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	db, err := postgres.Open(ctx, postgres.Options{URL: pgtest.URL(t), Keys: [][]byte{testKey()}, Now: func() time.Time { return now }, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ana := storage.Identity{Team: "T1", User: "UANA"}
	expiry := now.Add(time.Hour) // nanoseconds the caller chose
	if err := db.Links().Save(ctx, storage.Link{Identity: ana, AccessToken: "tok", Expiry: expiry}); err != nil {
		t.Fatal(err)
	}
	l, err := db.Links().Get(ctx, ana)
	if err != nil || !l.Expiry.Equal(expiry) || !l.LinkedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("link = expiry %v, linked %v, %v; want %v and the clock to the microsecond", l.Expiry, l.LinkedAt, err, expiry)
	}
	first, _, err := db.Leases().Acquire(ctx, "watch:1", "a", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen, held, err := db.Leases().Acquire(ctx, "watch:1", "b", 20*time.Second)
	if err != nil || held || !seen.Expires.Equal(first.Expires) {
		t.Errorf("the lease as another owner reads it = %+v, %v, %v; want %v as its owner was told", seen, held, err, first.Expires)
	}
	for _, key := range []string{"nul\x00byte", "\xff not utf-8"} {
		if first, err := db.Dedup().FirstTime(ctx, key, time.Minute); err != nil || !first {
			t.Errorf("FirstTime(%q) = %v, %v", key, first, err)
		}
		if seen, err := db.Dedup().Seen(ctx, key); err != nil || !seen {
			t.Errorf("Seen(%q) = %v, %v", key, seen, err)
		}
	}
	it, err := db.Outbox().Enqueue(ctx, "api.notify", []byte("a\x00b"))
	if err != nil {
		t.Fatal(err)
	}
	if items, err := db.Outbox().Pending(ctx, 0); err != nil || len(items) != 1 || !bytes.Equal(items[0].Payload, []byte("a\x00b")) || !items[0].At.Equal(it.At) {
		t.Errorf("Pending = %+v, %v", items, err)
	}
}

func queryRow(t *testing.T, url, sql string, dest ...any) {
	t.Helper()
	db := pgtest.Conn(t, url)
	if err := db.QueryRow(t.Context(), sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
