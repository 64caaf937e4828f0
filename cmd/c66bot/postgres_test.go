package main

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// The operator's commands with C66BOT_DATABASE_URL: each opens PostgreSQL
// itself (there is no admin socket), never changes its schema unless it
// may create the database, and never shows the URL's password.

// openPG opens the database at u as a replica would, with keys, and closes
// it when the test ends.
func openPG(t *testing.T, u string, keys ...[]byte) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), postgres.Options{URL: u, Keys: keys, MaxConns: 2, SkipKeyCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fillPG is fillDB for PostgreSQL: a fresh schema, migrated, with a link
// sealed under keys[0] and an audit entry per user. It returns the URL.
func fillPG(t *testing.T, keys [][]byte, users ...string) string {
	t.Helper()
	u := pgtest.URL(t)
	db := openPG(t, u, keys...)
	for _, user := range users {
		id := storage.Identity{Team: "T1", User: user}
		if err := db.Links().Save(t.Context(), storage.Link{Identity: id, AccessToken: "tok-" + user}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Audit().Append(t.Context(), storage.AuditEntry{Team: "T1", User: user, Action: "deploy", StackName: "shop", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	return u
}

// pgEnv is an operator's shell for the database at u: no bbolt file
// (C66BOT_DB names one that does not exist, so a command that used it
// would say so), and keys when given.
func pgEnv(t *testing.T, u string, keys ...[]byte) map[string]string {
	t.Helper()
	env := map[string]string{"C66BOT_DATABASE_URL": u, "C66BOT_DB": filepath.Join(t.TempDir(), "unused.db")}
	if len(keys) > 0 {
		env["C66BOT_SECRET_KEY"] = b64(keys...)
	}
	return env
}

// noFiles fails when the directory of env's C66BOT_DB holds anything: no
// command on PostgreSQL makes a bbolt file or key file.
func noFiles(t *testing.T, env map[string]string) {
	t.Helper()
	if entries, _ := os.ReadDir(filepath.Dir(env["C66BOT_DB"])); len(entries) != 0 {
		t.Errorf("files were made beside C66BOT_DB: %v", entries)
	}
}

func auditActions(t *testing.T, u string) []string {
	t.Helper()
	var actions []string
	err := openPG(t, u, opsKey("x")).Audit().Scan(t.Context(), time.Time{}, func(e storage.AuditEntry) error {
		actions = append(actions, e.Action)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return actions
}

func tableCount(t *testing.T, u string) int {
	t.Helper()
	var n int
	if err := pgtest.Conn(t, u).QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuditOnPostgres(t *testing.T) {
	t.Parallel()
	u := fillPG(t, [][]byte{opsKey("a")}, "U1", "U2")
	db := openPG(t, u, opsKey("a"))
	if _, err := db.Audit().Append(t.Context(), storage.AuditEntry{At: time.Now().Add(-48 * time.Hour), Action: "lock", StackName: "api", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// No key needed: the audit log is not sealed.
	env := pgEnv(t, u)
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		lines int
		want  string
	}{
		{"everything", env, nil, 3, `"action":"lock"`},
		{"one stack", env, []string{"--stack", "SHOP"}, 2, `"user":"U2"`},
		{"since", env, []string{"--since", "24h"}, 2, `"stack":"shop"`},
		{"the flag", map[string]string{"C66BOT_DB": env["C66BOT_DB"]}, []string{"--database-url", u}, 3, `"action":"deploy"`},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCmd(t, tc.env, append([]string{"audit"}, tc.args...)...)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) != tc.lines || !strings.Contains(stdout, tc.want) {
			t.Errorf("%s: exit %d, %d lines, want %d with %s:\n%s%s", tc.name, code, len(lines), tc.lines, tc.want, stdout, stderr)
		}
	}
	noFiles(t, env)
}

func TestTokenOnPostgres(t *testing.T) {
	t.Parallel()
	u := fillPG(t, [][]byte{opsKey("a")})
	env := pgEnv(t, u)
	code, stdout, stderr := runCmd(t, env, "token", "create", "--name", "ci", "--scopes", "notify")
	tok := strings.TrimSpace(stdout)
	if code != 0 || strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(tok, "c66bot_") {
		t.Fatalf("token create: exit %d, %q, %s", code, stdout, stderr)
	}
	db := openPG(t, u, opsKey("a"))
	if got, err := db.APITokens().Check(t.Context(), tok); err != nil || got.Name != "ci" {
		t.Fatalf("the token in PostgreSQL = %+v, %v", got, err)
	}
	code, stdout, _ = runCmd(t, env, "token", "list")
	if code != 0 || !strings.Contains(stdout, `"name":"ci"`) || strings.Contains(stdout, tok) {
		t.Errorf("token list: exit %d: %q", code, stdout)
	}
	if code, _, stderr := runCmd(t, env, "token", "revoke", "--database-url", u, "ci"); code != 0 || !strings.Contains(stderr, `token "ci" revoked`) {
		t.Errorf("token revoke: exit %d: %s", code, stderr)
	}
	if _, err := db.APITokens().Check(t.Context(), tok); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("the revoked token checks: %v", err)
	}
	code, _, stderr = runCmd(t, env, "token", "revoke", "cd")
	if code != 1 || !strings.Contains(stderr, `there is no token named "cd"`) {
		t.Errorf("revoke of an unknown name: exit %d: %s", code, stderr)
	}
	if got := strings.Join(auditActions(t, u), " "); got != "token.create token.revoke" {
		t.Errorf("audit log = %s; want the create and the revoke", got)
	}
	noFiles(t, env)
}

// The read-only commands write nothing, not even the schema: on an empty
// one they say there are no tables and leave it empty. token create may
// make the tables there, since no replica runs on it yet.
func TestOperatorCommandsKeepThePostgresSchema(t *testing.T) {
	t.Parallel()
	u := pgtest.URL(t)
	env := pgEnv(t, u, opsKey("a"))
	for _, args := range [][]string{{"audit"}, {"token", "list"}, {"token", "revoke", "ci"}, {"rekey"}, {"rekey", "--forget-unopenable"}} {
		code, stdout, stderr := runCmd(t, env, args...)
		if code != 1 || stdout != "" {
			t.Errorf("%v on an empty schema: exit %d:\n%s%s", args, code, stdout, stderr)
		}
		oneLine(t, stderr, "holds no c66bot tables yet", "c66bot serve creates them")
	}
	if code, stdout, stderr := runCmd(t, env, "doctor"); !strings.Contains(stdout, "will be migrated on start") {
		t.Errorf("doctor on an empty schema: exit %d:\n%s%s", code, stdout, stderr)
	}
	if n := tableCount(t, u); n != 0 {
		t.Fatalf("the commands made %d tables", n)
	}
	if code, _, stderr := runCmd(t, env, "token", "create", "--name", "ci", "--scopes", "notify"); code != 0 {
		t.Fatalf("token create on an empty schema: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := runCmd(t, env, "token", "list"); code != 0 || !strings.Contains(stdout, `"name":"ci"`) {
		t.Errorf("token list after create: exit %d:\n%s%s", code, stdout, stderr)
	}
}

// A newer schema is refused by every command, which says this build is
// the older; none migrates an older one (see above).
func TestOperatorCommandsRefuseANewerPostgresSchema(t *testing.T) {
	t.Parallel()
	u := fillPG(t, [][]byte{opsKey("a")}, "U1")
	pgtest.Exec(t, u, `INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')`)
	env := pgEnv(t, u, opsKey("a"))
	for _, args := range [][]string{{"audit"}, {"token", "list"}, {"token", "create", "--name", "x", "--scopes", "notify"}, {"rekey"}} {
		code, _, stderr := runCmd(t, env, args...)
		if code != 1 {
			t.Errorf("%v: exit %d", args, code)
		}
		oneLine(t, stderr, "schema v999, newer than this c66bot", "this build is older than the database")
	}
}

func TestRekeyOnPostgres(t *testing.T) {
	t.Parallel()
	keyA, keyB := opsKey("a"), opsKey("b")
	u := fillPG(t, [][]byte{keyA}, "U1", "U2", "U3")
	// A replica already restarted with the new list runs throughout.
	replica := openPG(t, u, keyB, keyA)

	env := pgEnv(t, u, keyB, keyA)
	code, stdout, stderr := runCmd(t, env, "rekey")
	if code != 0 || !strings.Contains(stdout, "resealed         3") || !strings.Contains(stdout, "failed           0") {
		t.Fatalf("rekey: exit %d:\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{storage.KeyID(keyB), "replicas keep working", "once every replica has been restarted with this list", "can be dropped from C66BOT_SECRET_KEY"} {
		if !strings.Contains(strings.ToLower(stderr), strings.ToLower(want)) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "running bot") {
		t.Errorf("rekey on PostgreSQL speaks of a running bot:\n%s", stderr)
	}
	for _, user := range []string{"U1", "U2", "U3"} {
		id := storage.Identity{Team: "T1", User: user}
		if l, err := replica.Links().Get(t.Context(), id); err != nil || l.AccessToken != "tok-"+user {
			t.Errorf("the replica reads %s's link as %+v, %v", user, l, err)
		}
		if l, err := openPG(t, u, keyB).Links().Get(t.Context(), id); err != nil || l.AccessToken != "tok-"+user {
			t.Errorf("%s's link with the new key alone = %+v, %v", user, l, err)
		}
	}
	if got := strings.Join(auditActions(t, u), " "); !strings.Contains(got, "rekey rekey.finished") {
		t.Errorf("audit log = %s; want the rekey", got)
	}
	if code, stdout, _ = runCmd(t, env, "rekey"); code != 0 || !strings.Contains(stdout, "already primary  3") {
		t.Errorf("second rekey: exit %d:\n%s", code, stdout)
	}
	noFiles(t, env)
}

// With a URL the keys come only from C66BOT_SECRET_KEY, never from a key
// file beside C66BOT_DB, and the command says so.
func TestRekeyOnPostgresNeedsTheSecretKey(t *testing.T) {
	t.Parallel()
	keyA := opsKey("a")
	u := fillPG(t, [][]byte{keyA}, "U1")
	env := pgEnv(t, u)
	if err := os.WriteFile(storage.KeyFilePath(env["C66BOT_DB"]), []byte(b64(keyA)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"rekey"}, {"rekey", "--forget-unopenable"}} {
		code, stdout, stderr := runCmd(t, env, args...)
		if code != 1 || stdout != "" {
			t.Errorf("%v: exit %d: %s", args, code, stdout)
		}
		oneLine(t, stderr, "C66BOT_SECRET_KEY is unset", "the only source of the sealing keys")
	}
	// And keys that open nothing are refused, naming the setting.
	code, _, stderr := runCmd(t, pgEnv(t, u, opsKey("z")), "rekey")
	if code != 1 {
		t.Errorf("rekey with a wrong key: exit %d", code)
	}
	oneLine(t, stderr, "C66BOT_SECRET_KEY (key id "+storage.KeyID(opsKey("z"))+") opens none of the 1 sealed value", "rekey --forget-unopenable")
}

func TestRekeyForgetUnopenableOnPostgres(t *testing.T) {
	t.Parallel()
	lost, keyC := opsKey("l"), opsKey("c")
	u := fillPG(t, [][]byte{lost}, "U1")
	db := openPG(t, u, keyC)
	if err := db.Links().Save(t.Context(), storage.Link{Identity: storage.Identity{Team: "T1", User: "U2"}, AccessToken: "tok-U2"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, stderr := runCmd(t, pgEnv(t, u, keyC), "rekey", "--forget-unopenable")
	if code != 0 || !strings.Contains(stderr, "forgot 1 link") {
		t.Fatalf("forget: exit %d: %s", code, stderr)
	}
	// The new key alone now opens the database, with the key check.
	after, err := postgres.Open(t.Context(), postgres.Options{URL: u, Keys: [][]byte{keyC}, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if n, err := after.Links().Count(t.Context()); err != nil || n != 1 {
		t.Errorf("links left = %d, %v; want U2's", n, err)
	}
	if got := strings.Join(auditActions(t, u), " "); !strings.HasSuffix(got, "rekey.forget") {
		t.Errorf("audit log = %s; want rekey.forget", got)
	}
}

// backup does not copy PostgreSQL; it says how, in one line, before
// connecting anywhere (the host here does not exist).
func TestBackupRefusesPostgres(t *testing.T) {
	t.Parallel()
	env := pgEnv(t, "postgres://c66bot:pw@db.invalid/c66bot")
	out := filepath.Join(t.TempDir(), "copy.db")
	for _, args := range [][]string{{"backup", out}, {"backup"}} {
		code, stdout, stderr := runCmd(t, env, args...)
		if code != 1 || stdout != "" {
			t.Errorf("%v: exit %d: %s", args, code, stdout)
		}
		oneLine(t, stderr, "the database is PostgreSQL", "pg_dump", "keep C66BOT_SECRET_KEY with the dump", "cannot be opened")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("backup wrote a file")
	}
	noFiles(t, env)
}

// pgDoctorEnv is healthyDoctorEnv on PostgreSQL: the fakes, a link sealed
// under the configured key, and no bbolt file.
func pgDoctorEnv(t *testing.T, u string) *opsEnv {
	t.Helper()
	e := newOpsEnv(t, opsKey("k"))
	e.env["C66BOT_DATABASE_URL"] = u
	return e
}

func TestDoctorOnPostgres(t *testing.T) {
	t.Parallel()
	key := opsKey("k")
	u := fillPG(t, [][]byte{key}, "U1")
	e := pgDoctorEnv(t, u)
	code, lines, stderr := doctorLines(t, e.env)
	out := strings.Join(lines, "\n")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	redacted := strings.Replace(u, "c66bot:c66bot@", "c66bot:xxxxx@", 1)
	for check, want := range map[string]string{
		"database URL":  "ok   database URL: " + redacted + " (PostgreSQL",
		"database":      "schema v1 (this c66bot's), 1 linked person",
		"stored tokens": "the 1 sealed value opens with the first key",
	} {
		if l := lineFor(lines, check); !strings.Contains(l, want) {
			t.Errorf("%s line = %q, want %q", check, l, want)
		}
	}
	if lineFor(lines, "running bot") != "" || strings.Contains(out, ".sock") {
		t.Errorf("doctor looked for an admin socket:\n%s", out)
	}
	noFiles(t, map[string]string{"C66BOT_DB": e.db})

	t.Run("broken", func(t *testing.T) {
		t.Parallel()
		empty := pgtest.URL(t)
		newer := fillPG(t, [][]byte{key}, "U1")
		pgtest.Exec(t, newer, `INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')`)
		tests := []struct {
			name    string
			env     map[string]string
			check   string
			outcome string
			want    []string
		}{
			{"an empty schema", map[string]string{"C66BOT_DATABASE_URL": empty}, "database", "warn",
				[]string{"no c66bot tables yet, this c66bot v1: it will be migrated on start"}},
			{"a newer schema", map[string]string{"C66BOT_DATABASE_URL": newer}, "database", "FAIL",
				[]string{"schema v999, newer than this c66bot (v1): this build is older than the database"}},
			{"another key", map[string]string{"C66BOT_SECRET_KEY": b64(opsKey("z"))}, "stored tokens", "FAIL",
				[]string{"open with C66BOT_SECRET_KEY: 0 of 1", "id " + storage.KeyID(key)}},
			{"no key", map[string]string{"C66BOT_SECRET_KEY": ""}, "setting C66BOT_SECRET_KEY", "FAIL",
				[]string{"and C66BOT_DATABASE_URL is"}},
		}
		for _, tc := range tests {
			code, lines, _ := doctorLines(t, mergeEnv(e.env, tc.env))
			if l := lineFor(lines, tc.check); code != map[string]int{"warn": 0, "FAIL": 1}[tc.outcome] || !strings.HasPrefix(l, tc.outcome) || !containsAll(l, tc.want) {
				t.Errorf("%s: exit %d, %s line = %q, want %s with %q", tc.name, code, tc.check, l, tc.outcome, tc.want)
			}
		}
		_, lines, _ := doctorLines(t, mergeEnv(e.env, map[string]string{"C66BOT_SECRET_KEY": ""}))
		if l := lineFor(lines, "stored tokens"); !strings.HasPrefix(l, "skip") {
			t.Errorf("without a key the stored tokens are not skipped: %q", l)
		}
		if n := tableCount(t, empty); n != 0 {
			t.Errorf("doctor made %d tables", n)
		}
	})
}

// What doctor says of a PostgreSQL it cannot reach or should not trust;
// no server is needed.
func TestDoctorPostgresConnection(t *testing.T) {
	t.Parallel()
	// Accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var open []net.Conn
		for {
			c, err := silent.Accept()
			if err != nil {
				for _, c := range open {
					c.Close()
				}
				return
			}
			open = append(open, c)
		}
	}()
	// Held, as a replica on this machine holds it.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	refused := freeAddr(t)

	e := newOpsEnv(t, opsKey("k"))
	tests := []struct {
		name, url, check, outcome string
		env                       map[string]string
		want                      []string
	}{
		{"refused", "postgres://c66bot:pw@" + refused + "/c66bot", "database", "FAIL", nil,
			[]string{"nothing accepts connections at " + refused, "check the host and port in C66BOT_DATABASE_URL"}},
		{"no such host", "postgres://c66bot:pw@db.invalid:5432/c66bot", "database", "FAIL", nil,
			[]string{"(db.invalid:5432) does not resolve", "check the host name"}},
		{"no answer", "postgres://c66bot:pw@" + silent.Addr().String() + "/c66bot?connect_timeout=1", "database", "FAIL", nil,
			[]string{"at " + silent.Addr().String() + " did not answer in time", "check the host and port"}},
		{"plain to another host", "postgres://c66bot:pw@db.invalid/c66bot?sslmode=disable", "database URL", "warn", nil,
			[]string{"postgres://c66bot:xxxxx@db.invalid/c66bot?sslmode=disable", "sslmode=disable to db.invalid", "unencrypted", "sslmode=require"}},
		{"plain on loopback", "postgres://c66bot:pw@[::1]:" + strings.Split(refused, ":")[1] + "/c66bot?sslmode=disable", "database URL", "ok  ", nil,
			[]string{"postgres://c66bot:xxxxx@[::1]"}},
		{"password in a parameter", "postgres://c66bot@" + refused + "/c66bot?password=pw", "database URL", "ok  ", nil,
			[]string{"password=xxxxx"}},
		{"not a URL", "postgres://c66bot:p%zz@db/c66bot", "database URL", "FAIL", nil,
			[]string{"does not parse as a URL", "%-escaped"}},
		{"not postgres", "mysql://c66bot:pw@db/c66bot", "setting C66BOT_DATABASE_URL", "FAIL", nil,
			[]string{"is not a postgres:// URL"}},
		{"the listen address in use", "postgres://c66bot:pw@" + refused + "/c66bot", "listen address", "warn", map[string]string{"C66BOT_LISTEN": held.Addr().String()},
			[]string{"by a replica running on this machine, or by another program"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := mergeEnv(e.env, map[string]string{"C66BOT_DATABASE_URL": tc.url})
			env = mergeEnv(env, tc.env)
			_, lines, _ := doctorLines(t, env)
			if l := lineFor(lines, tc.check); !strings.HasPrefix(l, tc.outcome) || !containsAll(l, tc.want) {
				t.Errorf("%s line = %q, want %q with %q:\n%s", tc.check, l, tc.outcome, tc.want, strings.Join(lines, "\n"))
			}
			if lineFor(lines, "running bot") != "" {
				t.Errorf("doctor looked for a running bot:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// No command shows the URL's password, whether it connects, names a
// database or a port that is not there, or does not parse; given in the
// environment or as a flag.
func TestNoOutputHoldsThePostgresPassword(t *testing.T) {
	t.Parallel()
	const password = "Zq8-s3cr3t:p@ss/w0rd"
	good := fillPG(t, [][]byte{opsKey("a")}, "U1")
	withPassword := func(raw, db string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(u.User.Username(), password) // the server trusts loopback: any password is right
		if db != "" {
			u.Path = "/" + db
		}
		return u.String()
	}
	inParameter := strings.Replace(good, "c66bot:c66bot@", "c66bot@", 1) + "&password=" + url.QueryEscape(password)
	urls := map[string]string{
		"right":                   withPassword(good, ""),
		"right, as a parameter":   inParameter,
		"no such database":        withPassword(good, "nope"),
		"nothing at the port":     withPassword("postgres://c66bot@"+freeAddr(t)+"/c66bot", ""),
		"a bad parameter":         withPassword(good, "") + "&sslmode=bogus",
		"does not parse":          "postgres://c66bot:" + password + "%zz@127.0.0.1/c66bot",
		"a bad parameter, inline": inParameter + "&connect_timeout=x",
	}
	source := filepath.Join(t.TempDir(), "c66bot.db")
	fillDB(t, source, [][]byte{opsKey("a")}, "U1")
	e := newOpsEnv(t, opsKey("a"))
	forms := []string{password, url.PathEscape(password), url.QueryEscape(password), url.UserPassword("u", password).String()[2:], "s3cr3t"}
	for name, u := range urls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			commands := [][]string{
				{"audit"}, {"token", "list"}, {"token", "create", "--name", "ci", "--scopes", "notify"},
				{"token", "revoke", "nobody"}, {"rekey"}, {"rekey", "--forget-unopenable"},
				{"backup", filepath.Join(t.TempDir(), "x.db")}, {"doctor"},
			}
			for _, args := range commands {
				for _, how := range []string{"environment", "flag"} {
					env := mergeEnv(e.env, map[string]string{"C66BOT_DATABASE_URL": u})
					a := args
					if how == "flag" {
						delete(env, "C66BOT_DATABASE_URL")
						n := 1
						if args[0] == "token" {
							n = 2
						}
						a = append(append(slices.Clone(args[:n]), "--database-url="+u), args[n:]...)
					}
					_, stdout, stderr := runCmd(t, env, a...)
					for _, f := range forms {
						if strings.Contains(stdout+stderr, f) {
							t.Errorf("%v (URL in the %s) shows the password (%q):\n%s%s", args, how, f, stdout, stderr)
						}
					}
				}
			}
			_, stdout, stderr := runCmd(t, map[string]string{"C66BOT_DB": source, "C66BOT_SECRET_KEY": b64(opsKey("a"))}, "migrate", "--to", u, "--force")
			for _, f := range forms {
				if strings.Contains(stdout+stderr, f) {
					t.Errorf("migrate --to shows the password (%q):\n%s%s", f, stdout, stderr)
				}
			}
		})
	}
}

func mergeEnv(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// serve on PostgreSQL refuses to start in one line that names what to fix,
// without the URL's password and without making a file beside C66BOT_DB:
// a key that opens nothing stored, and a database that is not there.
func TestServeOnPostgresExplainsWhyItCannotStart(t *testing.T) {
	t.Parallel()
	keyA, keyB := opsKey("a"), opsKey("b")
	u := fillPG(t, [][]byte{keyA}, "U1")
	noDB, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	noDB.Path = "/no_such_database"
	noDB.User = url.UserPassword("c66bot", "Sw0rdfish-secret")
	for _, c := range []struct {
		name, url string
		key       []byte
		want      []string
	}{
		{"wrong key", u, keyB, []string{"C66BOT_SECRET_KEY (key id " + storage.KeyID(keyB) + ") opens none", "in the database c66bot_test", storage.KeyID(keyA)}},
		{"no database", noDB.String(), keyA, []string{"has no database no_such_database", "C66BOT_DATABASE_URL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := requiredEnv(t.TempDir())
			for k, v := range pgEnv(t, c.url, c.key) {
				env[k] = v
			}
			var stderr bytes.Buffer
			if code := run(t.Context(), []string{"serve"}, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
				t.Fatal("serve started")
			}
			oneLine(t, stderr.String(), c.want...)
			if strings.Contains(stderr.String(), "Sw0rdfish-secret") {
				t.Errorf("the password is in the output: %s", stderr.String())
			}
			noFiles(t, env)
		})
	}
}
