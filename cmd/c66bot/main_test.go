package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseSettingsPrecedence(t *testing.T) {
	t.Parallel()
	env := map[string]string{"C66BOT_LISTEN": ":9000", "C66BOT_DB": "/env.db", "C66BOT_COMMAND": "/deploy"}
	v, err := parseSettings("serve", []string{"--db", "/flag.db"}, envFrom(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"C66BOT_DB":      "/flag.db",                // flag wins
		"C66BOT_LISTEN":  ":9000",                   // env over default
		"C66BOT_COMMAND": "/deploy",                 // env
		"CLOUD66_URL":    "https://app.cloud66.com", // default
		"CLOUD66_SCOPES": "public redeploy",
		"SLACK_API_URL":  "https://slack.com/api/",
	} {
		if v.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, v.Get(k), want)
		}
	}
}

func TestMissingRequiredSettingIsOneLine(t *testing.T) {
	t.Parallel()
	full := map[string]string{
		"SLACK_APP_TOKEN":       "xapp-1",
		"SLACK_BOT_TOKEN":       "xoxb-1",
		"CLOUD66_CLIENT_ID":     "id",
		"CLOUD66_CLIENT_SECRET": "secret",
	}
	for missing := range full {
		t.Run(missing, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"C66BOT_DB": filepath.Join(t.TempDir(), "x.db")}
			for k, v := range full {
				if k != missing {
					env[k] = v
				}
			}
			var stderr bytes.Buffer
			code := run(t.Context(), []string{"serve"}, envFrom(env), nil, &bytes.Buffer{}, &stderr)
			if code == 0 {
				t.Fatal("exit code 0 with a missing setting")
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.Contains(out, missing) {
				t.Errorf("stderr = %q, want one line naming %s", out, missing)
			}
		})
	}
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1",
		"CLOUD66_CLIENT_ID": "id", "CLOUD66_CLIENT_SECRET": "secret",
		"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s",
	}
	tests := []struct {
		key, val, want string
		unset          []string
	}{
		{key: "C66BOT_SECRET_KEY", val: "not-base64!", want: "C66BOT_SECRET_KEY"},
		{key: "SLACK_APP_TOKEN", val: "xoxb-wrong", want: "SLACK_APP_TOKEN must be an app-level token"},
		{key: "C66BOT_PUBLIC_URL", val: "ftp://x", want: "C66BOT_PUBLIC_URL must be an http(s) URL"},
		{key: "C66BOT_PUBLIC_URL", val: "https://bot.example.com", want: "missing required settings SLACK_CLIENT_ID, SLACK_CLIENT_SECRET", unset: []string{"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"}},
		{key: "C66BOT_LOG_LEVEL", val: "loud", want: "C66BOT_LOG_LEVEL"},
		{key: "C66BOT_COMMAND", val: "c66", want: "must start with /"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"C66BOT_DB": filepath.Join(t.TempDir(), "x.db")}
			for k, v := range base {
				env[k] = v
			}
			env[tt.key] = tt.val
			for _, k := range tt.unset {
				delete(env, k)
			}
			var stderr bytes.Buffer
			if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
				t.Fatal("exit 0")
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "secret") && tt.key != "C66BOT_SECRET_KEY" {
				t.Errorf("stderr echoes a secret: %q", stderr.String())
			}
		})
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"version"}, envFrom(nil), nil, &out, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(out.String(), "c66bot ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"deploy-everything"}, envFrom(nil), nil, &bytes.Buffer{}, &errOut); code != 2 || !strings.Contains(errOut.String(), "unknown command") {
		t.Errorf("unknown: %d %q", code, errOut.String())
	}
}

// TestServeGeneratesKeyAndShutsDownCleanly runs `c66bot serve` against the
// fakes with no C66BOT_SECRET_KEY: it creates a 0600 key file, connects,
// and on cancellation (SIGTERM) exits 0 with the database closed.
func TestServeGeneratesKeyAndShutsDownCleanly(t *testing.T) {
	t.Parallel()
	slack := bottest.Start(t)
	c66 := cloud66test.Start(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "c66bot.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"SLACK_APP_TOKEN": slack.AppToken, "SLACK_BOT_TOKEN": slack.BotToken, "SLACK_API_URL": slack.APIURL(),
		"CLOUD66_URL": c66.URL, "CLOUD66_CLIENT_ID": c66.ClientID, "CLOUD66_CLIENT_SECRET": c66.ClientSecret,
		"C66BOT_DB": db, "C66BOT_LISTEN": addr, "C66BOT_LOG_FORMAT": "text",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncWriter
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, envFrom(env), nil, &bytes.Buffer{}, &stderr) }()

	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := slack.WaitConnected(wctx, 1); err != nil {
		t.Fatalf("never connected: %v\n%s", err, stderr.String())
	}
	info, err := os.Stat(db + ".key")
	if err != nil {
		t.Fatalf("no generated key file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(stderr.String(), "generated a sealing key") {
		t.Errorf("no warning about the generated key:\n%s", stderr.String())
	}
	// The database was closed: it opens again at once.
	key, err := storage.ReadKeyFile(db + ".key")
	if err != nil {
		t.Fatal(err)
	}
	s, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{key}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("database still locked after shutdown: %v", err)
	}
	s.Close()
	if strings.Contains(stderr.String(), slack.AppToken) || strings.Contains(stderr.String(), base64.StdEncoding.EncodeToString(key)) {
		t.Error("logs contain a secret")
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestAuditFromTheDatabaseFile(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "c66bot.db")
	key := make([]byte, 32)
	s, err := storage.Open(storage.Options{Path: db, Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, e := range []storage.AuditEntry{
		{At: old, Team: "T1", User: "U1", Action: "deploy", StackName: "shop", Result: "ok"},
		{Team: "T1", User: "U2", Action: "lock", StackName: "api", Result: "ok"},
		{Team: "T1", User: "U1", Action: "deploy.confirm", StackName: "shop", Result: "ok", Cloud66ActionID: 7},
	} {
		if _, err := s.Audit().Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	tests := []struct {
		args  []string
		lines int
		want  string
	}{
		{[]string{"--db", db}, 3, `"action":"deploy"`},
		{[]string{"--db", db, "--stack", "SHOP"}, 2, `"cloud66_action_id":7`},
		{[]string{"--db", db, "--since", "24h"}, 2, `"action":"lock"`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := run(t.Context(), append([]string{"audit"}, tt.args...), envFrom(nil), nil, &out, &errOut); code != 0 {
			t.Fatalf("audit %v: exit %d: %s", tt.args, code, errOut.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != tt.lines || !strings.Contains(out.String(), tt.want) {
			t.Errorf("audit %v printed %d lines, want %d containing %s:\n%s", tt.args, len(lines), tt.lines, tt.want, out.String())
		}
	}
}

func TestTokenCreateListRevoke(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "c66bot.db")
	runOK := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(t.Context(), append([]string{"token"}, args...), envFrom(map[string]string{"C66BOT_DB": db}), nil, &out, &errOut); code != 0 {
			t.Fatalf("token %v: exit %d: %s", args, code, errOut.String())
		}
		return out.String(), errOut.String()
	}
	out, _ := runOK("create", "--name", "ci", "--scopes", "notify,audit:read")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "c66bot_") {
		t.Fatalf("token create printed %q, want the token alone on one line", out)
	}
	out, _ = runOK("list")
	if !strings.Contains(out, `"name":"ci"`) || strings.Contains(out, lines[0]) {
		t.Errorf("token list = %q (must name it and never show it)", out)
	}
	runOK("revoke", "ci")
	out, _ = runOK("list")
	if !strings.Contains(out, `"revoked":true`) {
		t.Errorf("after revoke: %q", out)
	}
	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"token", "create", "--name", "x", "--scopes", "deploy"}, envFrom(map[string]string{"C66BOT_DB": db}), nil, &bytes.Buffer{}, &errOut); code == 0 || !strings.Contains(errOut.String(), "unknown scope") {
		t.Errorf("a bad scope: exit %d, %q", code, errOut.String())
	}
}

func TestInvalidPolicyStopsTheBotNamingFileAndLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte("default: allow\nrules:\n  - name: x\n    approvals: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SLACK_APP_TOKEN": "xapp-1", "SLACK_BOT_TOKEN": "xoxb-1", "CLOUD66_CLIENT_ID": "id", "CLOUD66_CLIENT_SECRET": "secret",
		"C66BOT_DB": filepath.Join(dir, "x.db"), "C66BOT_POLICY": path,
	}
	var stderr bytes.Buffer
	if code := run(t.Context(), nil, envFrom(env), nil, &bytes.Buffer{}, &stderr); code == 0 {
		t.Fatal("started with an invalid policy")
	}
	if !strings.Contains(stderr.String(), path+":4:") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Errorf("stderr = %q, want one line naming %s:4", stderr.String(), path)
	}
}
