package app_test

// Reliability under faults, end to end: Cloud 66 failing and stalling while
// a deployment is followed, the Slack socket dropped under load, a Slack
// 429 storm during a deployment, and databases the bot cannot use.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// startHarnessWith is startHarness with a last word on the bot's Config
// (a short-timeout HTTP client, a proxied Cloud 66 URL); restarts keep it.
func startHarnessWith(t *testing.T, o harnessOptions, tweak func(h *harness, c *app.Config)) *harness {
	t.Helper()
	o.tweak = tweak
	return startHarness(t, o)
}

// waitCardPaced is waitCard with a slower fake clock: faults make real
// time pass between polls, and the fast waitCard would run the fake clock
// past the watcher's two-hour limit before the deployment is seen to end.
func (h *harness) waitCardPaced(channel, ts, want string, within time.Duration) bottest.Message {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m, ok := h.slack.Message(channel, ts); ok && strings.Contains(text(m), want) {
			return m
		}
		h.clock.Advance(20 * time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	m, _ := h.slack.Message(channel, ts)
	h.t.Fatalf("message never read %q within %v; it reads:\n%s", want, within, text(m))
	return m
}

// waitMessageIn waits until the message at ts reads want, without moving
// the fake clock.
func (h *harness) waitMessageIn(channel, ts, want string) bottest.Message {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m, ok := h.slack.Message(channel, ts); ok && strings.Contains(text(m), want) {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	m, _ := h.slack.Message(channel, ts)
	h.t.Fatalf("message never read %q; it reads:\n%s", want, text(m))
	return m
}

// c66Answered counts Cloud 66 requests under prefix answered with status
// (0: never answered, the client went away).
func c66Answered(c *cloud66test.Server, method, prefix string, status int) int {
	n := 0
	for _, r := range c.Requests() {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) && r.Status == status {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Cloud 66 answering 5xx, stalling beyond the bot's HTTP timeout and
// throttling (503) while a deployment is followed: the watch carries on,
// the card reaches ✅, and exactly one redeploy reached Cloud 66.
func TestE2EWatchSurvivesCloud66FaultsMidDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out client timeouts and Retry-After (~6 s)")
	}
	t.Parallel()
	const clientTimeout = 800 * time.Millisecond
	h := startHarnessWith(t, harnessOptions{}, func(_ *harness, c *app.Config) {
		c.HTTPClient = &http.Client{Timeout: clientTimeout}
	})
	h.login("U0ANA")
	uid := h.c66.StackUID("shop", "staging")
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	h.waitMessageIn("C0GENERAL", card.TS, "Deploying")
	if n := h.c66.ActionCount(); n != 1 {
		t.Fatalf("%d redeploys before the faults, want 1", n)
	}

	// Only the watcher's reads fail: the redeploy has been sent already.
	prefix := "/api/3/stacks/" + uid
	get := func(status int) int { return c66Answered(h.c66, http.MethodGet, prefix, status) }

	// 1. 5xx.
	h.c66.InjectFault(cloud66test.Fault{Method: http.MethodGet, PathPrefix: prefix, Status: http.StatusInternalServerError, Times: 4})
	waitUntil(t, 10*time.Second, "the watcher to meet four 500s", func() bool { return get(http.StatusInternalServerError) >= 4 })
	okBefore := get(http.StatusOK)
	waitUntil(t, 5*time.Second, "a good poll after the 500s", func() bool { return get(http.StatusOK) > okBefore })

	// 2. Answers slower than the client's timeout.
	h.c66.InjectFault(cloud66test.Fault{Method: http.MethodGet, PathPrefix: prefix, Latency: 3 * clientTimeout, Times: 2})
	waitUntil(t, 10*time.Second, "two polls to time out", func() bool { return get(0) >= 2 })
	okBefore = get(http.StatusOK)
	waitUntil(t, 10*time.Second, "a good poll after the timeouts", func() bool { return get(http.StatusOK) > okBefore })

	// 3. Cloud 66's throttle: 503 {"error":"throttled"} with Retry-After.
	h.c66.InjectFault(cloud66test.Fault{Method: http.MethodGet, PathPrefix: prefix, Status: http.StatusServiceUnavailable,
		Error: "throttled", Description: "Rate limit exceeded", RetryAfter: "1", Times: 3})
	waitUntil(t, 15*time.Second, "three throttled polls", func() bool { return get(http.StatusServiceUnavailable) >= 3 })

	if m, _ := h.slack.Message("C0GENERAL", card.TS); !strings.Contains(text(m), "Deploying") {
		t.Errorf("the faults changed the card before the deployment ended:\n%s", text(m))
	}
	final := h.waitCardPaced("C0GENERAL", card.TS, "Deployed", 20*time.Second)
	mustContain(t, text(final), "✅", "<@U0ANA>")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("Cloud 66 accepted %d deployments, want exactly 1", n)
	}
	if n := h.c66.RequestCount(http.MethodPost, prefix+"/deployments"); n != 1 {
		t.Errorf("%d redeploy POSTs reached Cloud 66, want exactly 1", n)
	}
	if strings.Contains(h.threadText("C0GENERAL", card.TS), "stopped following") {
		t.Error("the watcher gave up on the deployment")
	}
}

// The Slack socket goes away under load — dropped without a close frame, or
// closed by Slack's disconnect (refresh_requested) — while commands are in
// flight. The bot reconnects, and every envelope sent around the drop, all
// of which Slack redelivers, is handled exactly once; a redelivered Confirm
// deploys once.
func TestE2ESocketLossUnderLoadHandlesEachEnvelopeOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault func(*bottest.Server)
	}{
		{"dropped", func(s *bottest.Server) { s.DropConnections() }},
		{"refresh_requested", func(s *bottest.Server) { s.SendDisconnect("refresh_requested") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := startHarness(t, harnessOptions{})
			h.login("U0ANA")
			_, confirm := h.run("U0ANA", "C0GENERAL", "deploy shop:production")
			mustContain(t, text(confirm), "needs your confirmation")
			// Commands take a while in Cloud 66, so some are in flight at the drop.
			clear := h.c66.InjectFault(cloud66test.Fault{Latency: 150 * time.Millisecond})
			defer clear()
			opened := h.slack.ConnectionsOpened()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			texts := []string{"whoami", "stack shop:staging", "help", "servers api:staging", "locks"}
			var ids []string
			send := func(n int) {
				for i := range n {
					id, err := h.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: "U0ANA", Text: texts[i%len(texts)]})
					if err != nil && id == "" {
						t.Fatalf("send: %v", err)
					}
					ids = append(ids, id)
				}
			}
			send(8)
			blockID, value := buttonValue(t, confirm, "deploy_confirm")
			clickID, err := h.slack.SendBlockAction(ctx, bottest.BlockAction{UserID: "U0ANA", ChannelID: "C0GENERAL",
				ActionID: "deploy_confirm", BlockID: blockID, Value: value, Ephemeral: true})
			if err != nil && clickID == "" {
				t.Fatal(err)
			}
			tc.fault(h.slack)
			send(8) // these wait for the new connection

			waitUntil(t, 15*time.Second, "a new Socket Mode connection", func() bool { return h.slack.ConnectionsOpened() > opened })
			if err := h.slack.WaitConnected(ctx, 1); err != nil {
				t.Fatalf("the bot did not reconnect: %v", err)
			}
			// Slack redelivers what it sent around the drop, acked or not.
			for _, id := range append(ids, clickID) {
				if err := h.slack.Redeliver(ctx, id); err != nil {
					t.Fatalf("redeliver: %v", err)
				}
				if _, err := h.slack.WaitAck(ctx, id); err != nil {
					t.Fatalf("redelivered envelope never acked: %v", err)
				}
			}
			for _, id := range append(ids, clickID) {
				if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
					return m.Kind == bottest.KindResponseURL && m.EnvelopeID == id
				}); err != nil {
					t.Fatalf("envelope %s was never answered: %v", id, err)
				}
			}
			time.Sleep(500 * time.Millisecond) // room for a duplicate to show
			for _, id := range append(ids, clickID) {
				if n := len(h.slack.MessagesFor(id)); n != 1 {
					t.Errorf("envelope %s answered %d times, want once", id, n)
				}
			}
			h.card("C0GENERAL", "shop")
			if n := h.c66.ActionCount(); n != 1 {
				t.Errorf("a redelivered Confirm made %d deployments, want 1", n)
			}
			waitUntil(t, 10*time.Second, "/readyz to answer 200 again", func() bool {
				resp, err := http.Get(h.public + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
		})
	}
}

// A Slack 429 storm on chat.postMessage and chat.update while a deployment
// runs: the card still reaches ✅ and its thread note is posted, once.
func TestE2EDeployCardSurvivesSlack429Storm(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a dozen Retry-After seconds")
	}
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	uid := h.c66.StackUID("shop", "staging")
	h.c66.SetDeployOutcome(uid, true, "Build 42 shipped")

	// The storm meets the card's first post and its first edit…
	h.slack.RateLimitNext("chat.postMessage", 3, time.Second)
	h.slack.RateLimitNext("chat.update", 3, time.Second)
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	h.waitMessageIn("C0GENERAL", card.TS, "Deploying")

	// …and, longer, the edit to ✅ and the note in the thread.
	h.slack.RateLimitNext("chat.postMessage", 7, time.Second)
	h.slack.RateLimitNext("chat.update", 7, time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := h.slack.Message("C0GENERAL", card.TS); strings.Contains(text(m), "✅ *Deployed*") {
			break
		}
		h.clock.Advance(20 * time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	if m, _ := h.slack.Message("C0GENERAL", card.TS); !strings.Contains(text(m), "✅ *Deployed*") {
		var why []string
		for _, l := range strings.Split(h.logs.String(), "\n") {
			if strings.Contains(l, "deployment card") || strings.Contains(l, "deployment finished") {
				why = append(why, l)
			}
		}
		t.Errorf("the storm lost the card's last edit; it still reads:\n%s\nlog:\n%s", text(m), strings.Join(why, "\n"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindPost && m.ThreadTS == card.TS && strings.Contains(m.Text+string(m.Blocks), "Build 42 shipped")
	}); err != nil {
		t.Errorf("the thread note was lost in the storm: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if posts := h.postsIn("C0GENERAL"); len(posts) != 1 {
		t.Errorf("%d deployment messages, want one edited in place", len(posts))
	}
	notes := 0
	for _, m := range h.slack.PostsIn("C0GENERAL") {
		if m.ThreadTS == card.TS && strings.Contains(m.Text+string(m.Blocks), "Build 42 shipped") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("the thread note was posted %d times, want once", notes)
	}
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("%d deployments, want 1", n)
	}
}

// botConfig is a Config for app.New alone (nothing runs, nothing is
// dialled).
func botConfig(dbPath string) app.Config {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := app.DefaultSettings()
	s.SlackAppToken, s.SlackBotToken, s.SlackAPIURL = bottest.DefaultAppToken, bottest.DefaultBotToken, "http://127.0.0.1:1/api/"
	s.Cloud66URL, s.Cloud66ClientID, s.Cloud66ClientSecret = "http://127.0.0.1:1", "id", "secret"
	s.Listen, s.DB = "127.0.0.1:0", dbPath
	return app.Config{Settings: s, Keys: [][]byte{key}}
}

// newBotNoPanic runs app.New, turning a panic into a test failure.
func newBotNoPanic(t *testing.T, cfg app.Config) (b *app.App, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("app.New panicked: %v", r)
		}
	}()
	return app.New(cfg)
}

// A database the bot cannot use stops bot.New with an error naming the
// file, not a panic or a hang.
func TestBotNewRefusesUnusableDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a bbolt file\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	asDir := filepath.Join(dir, "is-a-dir.db")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(dir, "held.db")
	holder, err := storage.Open(storage.Options{Path: held, Keys: [][]byte{make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	for name, tc := range map[string]struct{ path, want string }{
		"a directory":            {asDir, asDir},
		"in a missing directory": {filepath.Join(dir, "missing", "c66bot.db"), "missing"},
		"not a bbolt file":       {garbage, garbage},
		"held by another bot":    {held, "another c66bot"},
	} {
		done := make(chan struct{})
		var b *app.App
		go func() {
			defer close(done)
			b, err = newBotNoPanic(t, botConfig(tc.path))
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: app.New hangs", name)
		}
		if err == nil {
			t.Errorf("%s: app.New succeeded", name)
			_ = b
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "database") {
			t.Errorf("%s: error %q does not say which database and why (want %q)", name, err, tc.want)
		}
	}
}

// The child half of TestBotNewOnReadOnlyDatabase: bot.New as the user
// that cannot write the file; it prints the outcome.
func botNewChild() {
	_, err := app.New(botConfig(os.Getenv("C66_DB")))
	if err != nil {
		fmt.Println("ERROR:", err)
		os.Exit(0)
	}
	fmt.Println("OK")
	os.Exit(0)
}

// A database file and directory the bot may only read (0400/0500): bot.New
// fails with a clear error. Root ignores file modes, so as root the check
// runs in a child process as nobody.
func TestBotNewOnReadOnlyDatabase(t *testing.T) {
	if os.Getenv("C66_CHILD") == "botnew" {
		botNewChild()
		return
	}
	t.Parallel()
	outer, err := os.MkdirTemp("", "c66ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.Walk(outer, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o700) })
		os.RemoveAll(outer)
	})
	dir := filepath.Join(outer, "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c66bot.db")
	s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{make([]byte, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	const nobody = 65534
	root := os.Geteuid() == 0
	if root {
		for _, p := range []string{dir, path} {
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(outer, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}

	var out string
	if !root {
		if _, err := newBotNoPanic(t, botConfig(path)); err != nil {
			out = "ERROR: " + err.Error()
		} else {
			out = "OK"
		}
	} else {
		// The test binary, somewhere nobody may run it from.
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(outer, "bot.test")
		if err := copyFile(exe, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestBotNewOnReadOnlyDatabase$", "-test.count=1")
		cmd.Env = append(os.Environ(), "C66_CHILD=botnew", "C66_DB="+path)
		cmd.Dir = outer
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child as nobody failed (%v):\n%s", err, b)
		}
		out = string(b)
	}
	if strings.Contains(out, "panic") {
		t.Fatalf("app.New panicked on a read-only database:\n%s", out)
	}
	line := ""
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		if l := sc.Text(); strings.HasPrefix(l, "ERROR:") || l == "OK" {
			line = l
		}
	}
	if !strings.HasPrefix(line, "ERROR:") {
		t.Fatalf("app.New on a read-only database did not fail:\n%s", out)
	}
	t.Logf("as uid %d: %s", map[bool]int{true: nobody, false: os.Geteuid()}[root], line)
	if !strings.Contains(line, path) || !strings.Contains(line, "permission denied") {
		t.Errorf("the error does not name the file and the cause: %s", line)
	}
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// A store opened read-only refuses writes with storage.ErrReadOnly; a
// command that must write (login stores a state) answers the person with
// an ephemeral error, neither crashing nor hanging, and the log says why.
func TestLoginOnReadOnlyStoreAnswersWithAnError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c66bot.db")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{key}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()

	logs := &syncBuffer{}
	acc := accounts.New(accounts.Config{
		Stores: accounts.Stores{Links: ro.Links(), Logins: ro.Logins()},
		OAuth: cloud66.OAuthConfig(cloud66.OAuthSettings{BaseURL: "http://127.0.0.1:1", ClientID: "id", ClientSecret: "secret",
			RedirectURL: "http://127.0.0.1:2/oauth/callback", Scopes: []string{"public", "redeploy"}}),
		Cloud66URL: "http://127.0.0.1:1",
	})
	r := commands.NewRouter(commands.Deps{
		Accounts:   acc,
		Logger:     slog.New(slog.NewJSONHandler(logs, nil)),
		Cloud66For: func(context.Context, storage.Identity) (commands.Cloud66, error) { return nil, accounts.ErrNotLinked },
		LoginURL:   func(st accounts.LoginStart) string { return "http://127.0.0.1:2/oauth/start?state=" + st.State },
	})
	for _, cmd := range []string{"login", "stacks"} {
		got := make(chan chat.Message, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a read-only store panicked: %v", cmd, r)
					got <- chat.Message{}
				}
			}()
			got <- r.Dispatch(context.Background(), commands.Request{TeamID: "T0TEST", UserID: "U0ANA", ChannelID: "C0GENERAL",
				Text: cmd, ResponseURL: "https://hooks.slack.com/commands/T0TEST/1/x", RequestID: "req-ro-" + cmd})
		}()
		var reply chat.Message
		select {
		case reply = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s on a read-only store hangs", cmd)
		}
		if reply.InChannel {
			t.Errorf("%s: the error went to the channel", cmd)
		}
		if strings.TrimSpace(reply.Text) == "" {
			t.Errorf("%s: empty reply", cmd)
		}
		if strings.Contains(reply.Text, "Link Cloud 66 account") || strings.Contains(fmt.Sprint(reply.Blocks), "oauth/start") {
			t.Errorf("%s: offered a login link that was never stored: %q", cmd, reply.Text)
		}
	}
	if !strings.Contains(logs.String(), "read-only") {
		t.Errorf("the log does not say the store is read-only:\n%s", logs)
	}
	if _, err := ro.Audit().Append(context.Background(), storage.AuditEntry{Action: "login"}); !errors.Is(err, storage.ErrReadOnly) {
		t.Errorf("AppendAudit on a read-only store: %v, want ErrReadOnly", err)
	}
}
