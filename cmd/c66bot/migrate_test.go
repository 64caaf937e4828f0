package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// filled is a bbolt file with a record of every kind, and what reads each
// back.
type filled struct {
	path                 string
	ana, ben             storage.Identity
	state                string // ben's pending login
	intent               string
	active, done         storage.Watch
	secret, token        string
	outboxID             uint64
	dedupKey, markedDone string
	audit                []storage.AuditEntry
}

func fillEveryKind(t *testing.T, key []byte) filled {
	t.Helper()
	ctx := t.Context()
	f := filled{
		path: filepath.Join(t.TempDir(), "c66bot.db"),
		ana:  storage.Identity{Team: "T1", User: "UANA"}, ben: storage.Identity{Team: "T1", User: "UBEN"},
		dedupKey: "env-1", markedDone: "notify:T1:C1:deploy:1",
	}
	db, err := storage.Open(storage.Options{Path: f.path, Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	audit := func(action string) storage.AuditEntry {
		return storage.AuditEntry{Team: "T1", User: "UANA", Action: action, Result: "ok"}
	}
	step(db.Links().Save(ctx, storage.Link{Identity: f.ana, AccessToken: "tok-ana", RefreshToken: "ref-ana", Scopes: []string{"public"}}, audit("login")))
	f.state, err = db.Logins().Create(ctx, storage.PendingLogin{Identity: f.ben, Channel: "C1", Verifier: "verifier-ben"})
	step(err)
	in, err := db.Intents().Create(ctx, storage.Intent{Kind: "deploy", Requester: f.ana, StackUID: "s1", Params: map[string]string{"ref": "main"}})
	step(err)
	f.intent = in.ID
	f.done, err = db.Watches().Start(ctx, storage.Watch{Owner: f.ana, StackUID: "s2", ResponseURL: "https://hooks.slack.com/x"}, audit("deploy"))
	step(err)
	f.done.State, f.done.FinishedAt = storage.WatchSucceeded, time.Now()
	step(db.Watches().Save(ctx, f.done, audit("deploy.finished")))
	f.active, err = db.Watches().Start(ctx, storage.Watch{Owner: f.ana, StackUID: "s1"}, audit("deploy"))
	step(err)
	_, _, err = db.Locks().Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s3", Owner: f.ben, Reason: "migrating"}, audit("lock"))
	step(err)
	_, f.secret, err = db.Subscriptions().Subscribe(ctx, storage.Subscription{Team: "T1", Channel: "C1", StackUID: "s1", Subscriber: f.ana, Events: []string{"deploy.failed"}})
	step(err)
	it, err := db.Outbox().Enqueue(ctx, "cloud66.webhook", []byte(`{"event":"deploy.failed"}`))
	step(err)
	f.outboxID = it.ID
	step(db.Outbox().MarkDone(ctx, it.ID, "T1:C1", f.markedDone, time.Hour))
	_, err = db.Dedup().FirstTime(ctx, f.dedupKey, time.Hour)
	step(err)
	f.token, _, err = db.APITokens().Create(ctx, "ci", []string{"notify"}, audit("token.create"))
	step(err)
	step(db.Audit().Scan(ctx, time.Time{}, func(e storage.AuditEntry) error { f.audit = append(f.audit, e); return nil }))
	return f
}

// Everything in the file reaches PostgreSQL and reads back through its
// stores: tokens open, the audit log keeps its order, the API token still
// checks, and the numbering goes on after the copy.
func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	key := opsKey("m")
	f := fillEveryKind(t, key)
	env := map[string]string{"C66BOT_DB": f.path, "C66BOT_SECRET_KEY": b64(key)}

	code, stdout, stderr := runCmd(t, env, "migrate", "--to", url)
	if code != 0 {
		t.Fatalf("migrate: exit %d:\n%s%s", code, stdout, stderr)
	}
	want := fmt.Sprintf("links 1\nlogins 1\nintents 1\nwatches 2\nlocks 1\nsubscriptions 1\noutbox 1\ndedup 2\naudit %d\napi_tokens 1\n", len(f.audit))
	if !slices.Equal(strings.Fields(stdout), strings.Fields(want)) || strings.Count(stdout, "\n") != 10 {
		t.Errorf("counts:\n%s\nwant:\n%s", stdout, want)
	}
	checkMigrated(t, url, key, f)

	code, stdout, stderr = runCmd(t, env, "migrate", "--to", url)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "already holds records") || !strings.Contains(stderr, "--force") {
		t.Errorf("migrate into a database that holds records: exit %d:\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, env, "migrate", "--to", url, "--force")
	if code != 0 || !strings.Contains(stdout, "audit") {
		t.Fatalf("migrate --force: exit %d:\n%s%s", code, stdout, stderr)
	}
	checkMigrated(t, url, key, f) // replaced, not added twice
}

func checkMigrated(t *testing.T, url string, key []byte, f filled) {
	t.Helper()
	ctx := t.Context()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, Keys: [][]byte{key}, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if l, err := db.Links().Get(ctx, f.ana); err != nil || l.AccessToken != "tok-ana" || l.RefreshToken != "ref-ana" {
		t.Errorf("ana's link = %+v, %v", l, err)
	}
	if n, err := db.Links().Count(ctx); err != nil || n != 1 {
		t.Errorf("links = %d, %v", n, err)
	}
	if p, err := db.Logins().Peek(ctx, f.state); err != nil || p.Identity != f.ben || p.Verifier != "verifier-ben" {
		t.Errorf("ben's pending login = %+v, %v", p, err)
	}
	if in, err := db.Intents().Get(ctx, f.intent); err != nil || in.Params["ref"] != "main" || in.Requester != f.ana {
		t.Errorf("the intent = %+v, %v", in, err)
	}
	if ws, err := db.Watches().Active(ctx); err != nil || len(ws) != 1 || ws[0].ID != f.active.ID {
		t.Errorf("active watches = %+v, %v; want %s", ws, err, f.active.ID)
	}
	if w, err := db.Watches().Get(ctx, f.done.ID); err != nil || w.State != storage.WatchSucceeded || w.ResponseURL != "https://hooks.slack.com/x" {
		t.Errorf("the finished watch = %+v, %v", w, err)
	}
	if _, err := db.Watches().Start(ctx, storage.Watch{Owner: f.ben, StackUID: "s1"}); !errors.Is(err, storage.ErrStackBusy) {
		t.Errorf("starting on the stack the copied watch holds: %v, want storage.ErrStackBusy", err)
	}
	if l, err := db.Locks().Get(ctx, "T1", "s3"); err != nil || l.Owner != f.ben || l.Reason != "migrating" {
		t.Errorf("the lock = %+v, %v", l, err)
	}
	if sub, err := db.Subscriptions().BySecret(ctx, f.secret); err != nil || sub.Channel != "C1" || !slices.Equal(sub.Events, []string{"deploy.failed"}) {
		t.Errorf("the subscription by its secret = %+v, %v", sub, err)
	}
	if items, err := db.Outbox().Pending(ctx, 0); err != nil || len(items) != 1 || items[0].ID != f.outboxID || !slices.Equal(items[0].Done, []string{"T1:C1"}) {
		t.Errorf("the outbox = %+v, %v", items, err)
	}
	for _, k := range []string{f.dedupKey, f.markedDone} {
		if seen, err := db.Dedup().Seen(ctx, k); err != nil || !seen {
			t.Errorf("dedup %s seen = %v, %v", k, seen, err)
		}
	}
	if tok, err := db.APITokens().Check(ctx, f.token); err != nil || tok.Name != "ci" {
		t.Errorf("the API token = %+v, %v", tok, err)
	}
	var got []storage.AuditEntry
	if err := db.Audit().Scan(ctx, time.Time{}, func(e storage.AuditEntry) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(f.audit) {
		t.Fatalf("audit = %d entries, want %d", len(got), len(f.audit))
	}
	for i := range got {
		if got[i].Seq != f.audit[i].Seq || got[i].Action != f.audit[i].Action || !got[i].At.Equal(f.audit[i].At) {
			t.Errorf("audit entry %d = %+v, want %+v", i, got[i], f.audit[i])
		}
	}
	// The numbering goes on after the copy.
	next, err := db.Watches().Start(ctx, storage.Watch{Owner: f.ben, StackUID: "s9"})
	if err != nil || next.ID <= f.active.ID {
		t.Errorf("a new watch = %q, %v; want an id after %s", next.ID, err, f.active.ID)
	}
	if e, err := db.Audit().Append(ctx, storage.AuditEntry{Action: "after"}); err != nil || e.Seq <= f.audit[len(f.audit)-1].Seq {
		t.Errorf("a new audit entry = seq %d, %v", e.Seq, err)
	}
	if it, err := db.Outbox().Enqueue(ctx, "api.notify", nil); err != nil || it.ID <= f.outboxID {
		t.Errorf("a new outbox item = %d, %v", it.ID, err)
	}
}

// What migrate refuses before it touches PostgreSQL.
func TestMigrateCommandRefuses(t *testing.T) {
	t.Parallel()
	key := opsKey("m")
	f := fillEveryKind(t, key)
	keyFileDB := filepath.Join(t.TempDir(), "c66bot.db")
	if _, _, _, err := storage.DatabaseKey(keyFileDB); err != nil {
		t.Fatal(err)
	}
	held, err := storage.Open(storage.Options{Path: filepath.Join(t.TempDir(), "held.db"), Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	const to = "postgres://c66bot@nowhere.invalid/c66bot"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no target", map[string]string{"C66BOT_DB": f.path, "C66BOT_SECRET_KEY": b64(key)}, nil, 2, "--to is required"},
		{"no database", map[string]string{"C66BOT_DB": f.path + ".nope", "C66BOT_SECRET_KEY": b64(key)}, []string{"--to", to}, 1, "there is no database"},
		{"a key file, no C66BOT_SECRET_KEY", map[string]string{"C66BOT_DB": keyFileDB}, []string{"--to", to}, 1, "PostgreSQL needs C66BOT_SECRET_KEY"},
		{"no keys at all", map[string]string{"C66BOT_DB": f.path}, []string{"--to", to}, 1, "C66BOT_SECRET_KEY is unset and there is no key file"},
		{"the bot runs", map[string]string{"C66BOT_DB": held.Path(), "C66BOT_SECRET_KEY": b64(key)}, []string{"--to", to}, 1, "stop the bot first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCmd(t, tc.env, append([]string{"migrate"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, want %d and %q:\n%s%s", code, tc.code, tc.want, stdout, stderr)
			}
		})
	}
}
