package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
)

// healthyDoctorEnv is a healthy setup: the fakes up, a database with a
// link sealed under the configured key, a policy that parses, an https
// public URL and a free listen address.
func healthyDoctorEnv(t *testing.T) *opsEnv {
	t.Helper()
	key := opsKey("k")
	e := newOpsEnv(t, key)
	fillDB(t, e.db, [][]byte{key}, "U1")
	pol := filepath.Join(filepath.Dir(e.db), "policy.yaml")
	if err := os.WriteFile(pol, []byte("default: allow\nprotected_environments: [production]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.env["C66BOT_POLICY"] = pol
	e.env["C66BOT_PUBLIC_URL"] = "https://c66bot.example.com"
	e.env["SLACK_CLIENT_ID"], e.env["SLACK_CLIENT_SECRET"] = e.slack.ClientID, e.slack.ClientSecret
	return e
}

// doctorLines runs doctor and returns its exit code, its stdout lines and
// its stderr.
func doctorLines(t *testing.T, env map[string]string) (int, []string, string) {
	t.Helper()
	code, stdout, stderr := runCmd(t, env, "doctor")
	return code, strings.Split(strings.TrimRight(stdout, "\n"), "\n"), stderr
}

// lineFor returns the first line about check name, with the fix line
// under it when there is one.
func lineFor(lines []string, name string) string {
	for i, l := range lines {
		if len(l) > 5 && strings.HasPrefix(l[5:], name+":") {
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "     fix: ") {
				return l + "\n" + lines[i+1]
			}
			return l
		}
	}
	return ""
}

func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	code, lines, stderr := doctorLines(t, e.env)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, strings.Join(lines, "\n"), stderr)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "ok   ") {
			t.Errorf("not ok: %q", l)
		}
	}
	out := strings.Join(lines, "\n")
	for _, want := range []string{
		`team "Fake Team"`, "bot @c66bot",
		"register the callback https://c66bot.example.com/oauth/callback",
		"schema v3", "1 linked person", "the 1 sealed value opens",
		"policy.yaml parses",
		"Slack did not refuse SLACK_CLIENT_ID and SLACK_CLIENT_SECRET", "redirect URLs must include https://c66bot.example.com/oauth/slack/callback",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, check := range []string{"settings", "sealing key", "Slack app token", "Slack bot token", "Sign in with Slack", "Cloud 66", "Cloud 66 OAuth app", "policy", "database", "stored tokens", "listen address"} {
		if lineFor(lines, check) == "" {
			t.Errorf("no %q line:\n%s", check, out)
		}
	}
	if !strings.Contains(stderr, "all 11 checks passed") {
		t.Errorf("stderr = %q", stderr)
	}
	if e.slack.CallCount("apps.connections.open") != 1 || e.slack.CallCount("auth.test") != 1 {
		t.Errorf("Slack calls: %d apps.connections.open, %d auth.test; want the real calls, once each",
			e.slack.CallCount("apps.connections.open"), e.slack.CallCount("auth.test"))
	}
}

func TestDoctorHealthyBeforeFirstStart(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, opsKey("k"))
	delete(e.env, "C66BOT_SECRET_KEY")
	code, lines, stderr := doctorLines(t, e.env)
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, strings.Join(lines, "\n"), stderr)
	}
	if l := lineFor(lines, "database"); !strings.Contains(l, "does not exist yet; serve creates it") {
		t.Errorf("database line = %q", l)
	}
	if l := lineFor(lines, "sealing key"); !strings.Contains(l, "serve will generate "+e.db+".key") {
		t.Errorf("sealing key line = %q", l)
	}
	for _, p := range []string{e.db, e.db + ".key"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("doctor created %s", p)
		}
	}
}

func TestDoctorBroken(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	e.slack.FailConnectionsOpen("invalid_auth", 1)
	e.slack.FailNext("auth.test", "invalid_auth", 1)
	e.c66.Fail5xx(10)
	if err := os.WriteFile(e.env["C66BOT_POLICY"], []byte("default: allow\nrules:\n  - name: x\n    approvals: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, lines, stderr := doctorLines(t, e.env)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, strings.Join(lines, "\n"))
	}
	for check, want := range map[string]string{
		"Slack app token": "fix: the app-level token is wrong or revoked: Basic Information → App-Level Tokens, scope connections:write",
		"Slack bot token": "fix: the bot token is wrong or revoked: reinstall the app and copy the Bot User OAuth Token",
		"Cloud 66":        "answered 500 to GET /api/3/ping.json",
		"policy":          e.env["C66BOT_POLICY"] + ":4: rule 1 (x): approvals must be 0 or more",
	} {
		l := lineFor(lines, check)
		if !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, want) || !strings.Contains(l, "fix: ") {
			t.Errorf("%s: %q, want FAIL with %q and a fix", check, l, want)
		}
	}
	// The rest is still checked, and fine.
	for _, check := range []string{"settings", "database", "stored tokens", "listen address"} {
		if l := lineFor(lines, check); !strings.HasPrefix(l, "ok   ") {
			t.Errorf("%s: %q, want ok", check, l)
		}
	}
	if !strings.Contains(stderr, "4 of 11 checks failed") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestDoctorCloud66Unreachable(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	e.c66.Close()
	code, lines, _ := doctorLines(t, e.env)
	l := lineFor(lines, "Cloud 66")
	if code != 1 || !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, "cannot reach "+e.env["CLOUD66_URL"]) || !strings.Contains(l, "check the network") {
		t.Errorf("exit %d, Cloud 66 line %q", code, l)
	}
}

func TestDoctorWrongKey(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	e.env["C66BOT_SECRET_KEY"] = b64(opsKey("other"))
	code, lines, _ := doctorLines(t, e.env)
	l := lineFor(lines, "stored tokens")
	if code != 1 || !strings.HasPrefix(l, "FAIL ") ||
		!strings.Contains(l, "fix: C66BOT_SECRET_KEY does not open the stored tokens: restore the key, or every person must log in again; serve refuses to start") {
		t.Errorf("exit %d, stored tokens line:\n%s", code, l)
	}
	if !strings.Contains(l, "key id "+storage.KeyID(opsKey("k"))) {
		t.Errorf("the line does not name the missing key: %s", l)
	}
}

func TestDoctorOldKeyStillInUse(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	e.env["C66BOT_SECRET_KEY"] = b64(opsKey("new"), opsKey("k"))
	code, lines, _ := doctorLines(t, e.env)
	l := lineFor(lines, "stored tokens")
	if code != 0 || !strings.HasPrefix(l, "warn ") || !strings.Contains(l, "c66bot rekey") {
		t.Errorf("exit %d, stored tokens line:\n%s", code, l)
	}
	if l := lineFor(lines, "sealing key"); !strings.Contains(l, "holds 2 keys") {
		t.Errorf("sealing key line = %q", l)
	}
}

// TestDoctorReportsEverySetting: where serve stops at the first missing
// setting, doctor names them all.
func TestDoctorReportsEverySetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{
		"C66BOT_DB": filepath.Join(dir, "c66bot.db"), "C66BOT_LISTEN": freeAddr(t),
		"SLACK_BOT_TOKEN": "xoxp-user-token", "C66BOT_COMMAND": "c66", "C66BOT_PUBLIC_URL": "bot.example.com",
		"C66BOT_SECRET_KEY": "short", "CLOUD66_URL": "http://" + freeAddr(t),
	}
	code, lines, _ := doctorLines(t, env)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{
		"setting SLACK_APP_TOKEN: not set", "setting SLACK_BOT_TOKEN: is not a bot token",
		"setting CLOUD66_CLIENT_ID: not set", "setting CLOUD66_CLIENT_SECRET: not set",
		"setting C66BOT_PUBLIC_URL:", "setting C66BOT_SECRET_KEY:", "setting C66BOT_COMMAND:",
	} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "FAIL ") && strings.Contains(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no FAIL line with %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	// Checks that depend on a broken setting are skipped, not failed again.
	for _, check := range []string{"Slack app token", "Slack bot token", "Cloud 66 OAuth app"} {
		if l := lineFor(lines, check); !strings.HasPrefix(l, "skip ") {
			t.Errorf("%s: %q, want skip", check, l)
		}
	}
	if _, err := os.Stat(env["C66BOT_DB"]); err == nil {
		t.Error("doctor created the database")
	}
}

func TestDoctorWhileTheBotRuns(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	e.serve(t)
	code, lines, stderr := doctorLines(t, e.env)
	out := strings.Join(lines, "\n")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	for check, want := range map[string]string{
		"database":       "in use by the running bot (fine); it reports schema v3, 1 linked person",
		"running bot":    "ready",
		"stored tokens":  "the 1 sealed value opens",
		"listen address": "in use, presumably by the running bot",
	} {
		if l := lineFor(lines, check); !strings.HasPrefix(l, "ok   ") || !strings.Contains(l, want) {
			t.Errorf("%s: %q, want ok with %q", check, l, want)
		}
	}
}

func TestDoctorLockedWithoutAdminSocket(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	// Another process's lock, with nobody answering on the socket.
	s, err := storage.Open(storage.Options{Path: e.db, Keys: [][]byte{opsKey("k")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, lines, _ := doctorLines(t, e.env)
	l := lineFor(lines, "database")
	if code != 0 || !strings.HasPrefix(l, "warn ") || !strings.Contains(l, "the bot is running (fine) — doctor read-only checks skipped") {
		t.Errorf("exit %d, database line:\n%s", code, l)
	}
}

func TestDoctorPublicURL(t *testing.T) {
	t.Parallel()
	for url, wantOK := range map[string]bool{
		"http://c66bot.example.com": false,
		"http://localhost:8080":     true,
		"http://127.0.0.1:8080":     true,
	} {
		e := healthyDoctorEnv(t)
		e.env["C66BOT_PUBLIC_URL"] = url
		code, lines, _ := doctorLines(t, e.env)
		l := lineFor(lines, "Cloud 66 OAuth app")
		if code != 0 {
			t.Errorf("%s: exit %d (an http URL is a warning, not a failure)", url, code)
		}
		if wantOK != strings.HasPrefix(l, "ok   ") || !wantOK && !strings.Contains(l, "put the bot behind HTTPS") {
			t.Errorf("%s: %q", url, l)
		}
	}
	e := healthyDoctorEnv(t)
	delete(e.env, "C66BOT_PUBLIC_URL")
	_, lines, _ := doctorLines(t, e.env)
	if l := lineFor(lines, "Cloud 66 OAuth app"); !strings.Contains(l, "out-of-band") || !strings.Contains(l, "urn:ietf:wg:oauth:2.0:oob") {
		t.Errorf("without a public URL: %q", l)
	}
}

func TestDoctorSignInWithSlack(t *testing.T) {
	t.Parallel()
	// With a public URL, the two settings are required, each named.
	e := healthyDoctorEnv(t)
	delete(e.env, "SLACK_CLIENT_ID")
	delete(e.env, "SLACK_CLIENT_SECRET")
	code, lines, _ := doctorLines(t, e.env)
	for _, env := range []string{"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"} {
		if l := lineFor(lines, "setting "+env); code != 1 || !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, "Basic Information → App Credentials") {
			t.Errorf("exit %d, %s line %q", code, env, l)
		}
	}
	if l := lineFor(lines, "Sign in with Slack"); !strings.HasPrefix(l, "skip ") {
		t.Errorf("Sign in with Slack line %q, want skip", l)
	}

	// A secret Slack refuses.
	e = healthyDoctorEnv(t)
	e.env["SLACK_CLIENT_SECRET"] = "regenerated-since"
	code, lines, _ = doctorLines(t, e.env)
	if l := lineFor(lines, "Sign in with Slack"); code != 1 || !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, "bad_client_secret") || strings.Contains(l, "regenerated-since") {
		t.Errorf("exit %d, line %q", code, l)
	}
	if e.slack.CallCount("openid.connect.token") != 1 {
		t.Errorf("openid.connect.token called %d times", e.slack.CallCount("openid.connect.token"))
	}

	// Without a public URL they are not needed.
	e = healthyDoctorEnv(t)
	delete(e.env, "C66BOT_PUBLIC_URL")
	delete(e.env, "SLACK_CLIENT_ID")
	delete(e.env, "SLACK_CLIENT_SECRET")
	code, lines, _ = doctorLines(t, e.env)
	if l := lineFor(lines, "Sign in with Slack"); code != 0 || !strings.HasPrefix(l, "ok   ") || !strings.Contains(l, "not used") {
		t.Errorf("exit %d, line %q", code, l)
	}
}

func TestDoctorListenInUse(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e.env["C66BOT_LISTEN"] = ln.Addr().String()
	code, lines, _ := doctorLines(t, e.env)
	if l := lineFor(lines, "listen address"); code != 1 || !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, "already in use") {
		t.Errorf("exit %d, listen line %q", code, l)
	}
}

// TestDoctorBotScopes: when Slack lists the token's scopes (it does, in a
// header), missing ones are named.
func TestDoctorBotScopes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-OAuth-Scopes", "commands,chat:write")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "team": "Acme", "team_id": "T1", "user": "c66bot", "user_id": "U1", "bot_id": "B1"})
	}))
	defer srv.Close()
	var out bytes.Buffer
	d := &doctorRun{
		v:   app.Settings{SlackBotToken: "xoxb-1", SlackAppToken: "xapp-1", SlackAPIURL: srv.URL + "/api/"},
		out: newCheckPrinter(&out, envFrom(nil)), http: srv.Client(), bad: map[string]bool{},
	}
	d.slackBotToken(t.Context())
	for _, s := range slackapp.BotScopes() {
		if s == "commands" || s == "chat:write" {
			continue
		}
		if !strings.Contains(out.String(), s) {
			t.Errorf("missing scope %s not named: %s", s, out.String())
		}
	}
	if !strings.HasPrefix(out.String(), "warn ") || d.out.failed != 0 {
		t.Errorf("missing scopes should warn: %s", out.String())
	}
}

func TestDoctorPlainOutputWhenNotATerminal(t *testing.T) {
	t.Parallel()
	if newCheckPrinter(&bytes.Buffer{}, envFrom(nil)).fancy {
		t.Error("fancy output into a buffer")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if newCheckPrinter(f, envFrom(nil)).fancy {
		t.Error("fancy output into a regular file")
	}
}

func TestDoctorBadKeySkipsTheTokenCheck(t *testing.T) {
	t.Parallel()
	e := healthyDoctorEnv(t)
	e.env["C66BOT_SECRET_KEY"] = "not-a-key"
	code, lines, _ := doctorLines(t, e.env)
	if l := lineFor(lines, "setting C66BOT_SECRET_KEY"); code != 1 || !strings.HasPrefix(l, "FAIL ") || !strings.Contains(l, storage.MakeKeyCommand) {
		t.Errorf("exit %d, key setting line %q", code, l)
	}
	if l := lineFor(lines, "stored tokens"); !strings.HasPrefix(l, "skip ") {
		t.Errorf("stored tokens line %q, want skip (the bad key is reported once)", l)
	}
}
