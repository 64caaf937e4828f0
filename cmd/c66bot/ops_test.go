package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

// opsEnv is a complete, healthy environment against the fake Slack and the
// fake Cloud 66, with a database in a fresh directory and key as the only
// sealing key.
type opsEnv struct {
	slack *bottest.Server
	c66   *cloud66test.Server
	db    string
	env   map[string]string
}

func newOpsEnv(t *testing.T, key []byte) *opsEnv {
	t.Helper()
	slack := bottest.Start(t)
	c66 := cloud66test.Start(t)
	// Short: the admin socket beside the database must fit a Unix socket
	// path, which t.TempDir's long names may not.
	dir, err := os.MkdirTemp("", "c66ops")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "c66bot.db")
	return &opsEnv{slack: slack, c66: c66, db: db, env: map[string]string{
		"SLACK_APP_TOKEN": slack.AppToken, "SLACK_BOT_TOKEN": slack.BotToken, "SLACK_API_URL": slack.APIURL(),
		"CLOUD66_URL": c66.URL, "CLOUD66_CLIENT_ID": c66.ClientID, "CLOUD66_CLIENT_SECRET": c66.ClientSecret,
		"C66BOT_DB": db, "C66BOT_LISTEN": freeAddr(t), "C66BOT_LOG_FORMAT": "text",
		"C66BOT_SECRET_KEY": b64(key),
	}}
}

func b64(keys ...[]byte) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = base64.StdEncoding.EncodeToString(k)
	}
	return strings.Join(parts, ",")
}

// opsKey returns a fixed 32-byte key per label.
func opsKey(label string) []byte {
	k := bytes.Repeat([]byte(label), 32)
	return k[:32]
}

// freeAddr returns a loopback address nothing listens on (now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serve runs `c66bot serve` with e's environment until the test ends (or
// the returned stop is called), once Slack sees it connected and its admin
// socket is up.
func (e *opsEnv) serve(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncWriter
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, envFrom(e.env), nil, &bytes.Buffer{}, &logs) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d:\n%s", code, logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.slack.WaitConnected(wctx, 1); err != nil {
		t.Fatalf("never connected: %v\n%s", err, logs.String())
	}
	for {
		if _, err := os.Stat(e.db + ".sock"); err == nil {
			return stop
		}
		select {
		case <-wctx.Done():
			t.Fatalf("no admin socket:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// runCmd runs one c66bot command with env and returns its exit code and
// output.
func runCmd(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, envFrom(env), nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// fillDB stores a link and an audit entry per user, the links sealed with
// keys[0], in the closed database at path. No watches: a running bot would
// resume them with these made-up tokens, get a 401 from the fake Cloud 66
// and forget the links.
func fillDB(t *testing.T, path string, keys [][]byte, users ...string) {
	t.Helper()
	ctx := t.Context()
	// SkipKeyCheck: some tests seal under a key unlike the file's others,
	// which a bot's Open would refuse.
	s, err := storage.Open(storage.Options{Path: path, Keys: keys, SkipKeyCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range users {
		id := storage.Identity{Team: "T1", User: u}
		if err := s.Links().Save(ctx, storage.Link{Identity: id, AccessToken: "tok-" + u, RefreshToken: "ref-" + u}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Audit().Append(ctx, storage.AuditEntry{Team: "T1", User: u, Action: "deploy", StackName: "shop", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkTokens opens the database at path with keys and checks that every
// user's link opens with the right token.
func checkTokens(t *testing.T, path string, keys [][]byte, users ...string) {
	t.Helper()
	s, err := storage.Open(storage.Options{Path: path, Keys: keys, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range users {
		l, err := s.Links().Get(t.Context(), storage.Identity{Team: "T1", User: u})
		if err != nil || l.AccessToken != "tok-"+u {
			t.Errorf("link of %s = %+v, %v", u, l, err)
		}
	}
}
