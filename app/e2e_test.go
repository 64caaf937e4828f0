package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/app/apptest"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/slackapp"
)

// ackDeadline is Slack's: a slash command not acked within 3 s fails for
// the person.
const ackDeadline = 3 * time.Second

// harness runs the real bot wiring (bot.New + Run, as `c66bot serve` does)
// against the fake Slack and the fake Cloud 66.
type harness struct {
	t      *testing.T
	slack  *bottest.Server
	c66    *cloud66test.Server
	clock  *cloud66test.Clock
	opts   harnessOptions
	bot    *app.App
	cfg    app.Config
	logs   *syncBuffer
	public string
	stop   func()
}

type harnessOptions struct {
	outOfBand bool
	policy    *policy.Policy
	start     time.Time // the fake clock's start; zero = now
	// postsPerSecond paces posts per channel; zero = 50, faster than
	// Slack, so tests don't wait on pacing they don't test.
	postsPerSecond float64
	dbPath         string
	// databaseURL, when set, puts the bot on PostgreSQL instead of dbPath.
	databaseURL string
	key         []byte
	// tweak has the last word on the bot's Config, at every start.
	tweak func(h *harness, c *app.Config)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}}
	h.slack = bottest.Start(t)
	// The manifest asks for chat:write.public, as a real install would have.
	h.slack.SetChatWritePublic(true)
	start := o.start
	if start.IsZero() {
		start = time.Now()
	}
	h.clock = cloud66test.NewClock(start)
	h.c66 = cloud66test.Start(t, cloud66test.WithClock(h.clock), cloud66test.WithDeployDuration(3*time.Minute))
	if o.dbPath == "" {
		// Short: the admin socket beside it must fit a Unix socket path.
		dir, err := os.MkdirTemp("", "c66e2e")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		o.dbPath = filepath.Join(dir, "c66bot.db")
	}
	if o.key == nil {
		o.key = make([]byte, 32)
		_, _ = rand.Read(o.key)
	}
	if o.postsPerSecond == 0 {
		o.postsPerSecond = 50
	}
	h.opts = o
	h.startBot(o)
	return h
}

// restart stops the bot and starts a new one on the same database and key,
// as a crash and a supervisor restart would.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	// The old bot closed its socket, but the fake may not have seen it yet;
	// until it has, it counts as connected (so startBot would not wait for
	// the new one) and may be handed the next envelope, which nobody acks.
	waitUntil(h.t, 10*time.Second, "the old socket to close", func() bool { return h.slack.Connections() == 0 })
	h.startBot(h.opts)
}

func (h *harness) startBot(o harnessOptions) {
	t := h.t
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := ""
	if !o.outOfBand {
		public = "http://" + ln.Addr().String()
	}
	h.public = public
	settings := apptest.Settings(h.slack, h.c66, public)
	settings.DB = o.dbPath
	if o.databaseURL != "" {
		settings.DatabaseURL = o.databaseURL
		settings.SecretKey = base64.StdEncoding.EncodeToString(o.key)
	}
	h.cfg = app.Config{
		Settings: settings,
		Listener: ln,
		Keys:     [][]byte{o.key},
		Logger:   slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      h.clock.Now,
		Policy:   o.policy,
		Tuning: app.Tuning{
			SocketPingInterval: 5 * time.Second,
			ShutdownTimeout:    5 * time.Second,
			Poll:               deploy.PollConfig{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
			NotifyPollEvery:    20 * time.Millisecond,
			PostsPerSecond:     o.postsPerSecond,
		},
	}
	if o.tweak != nil {
		o.tweak(h, &h.cfg)
	}
	b, err := app.New(h.cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	h.bot = b
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("bot.Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("bot did not stop within 15s")
			}
		})
	}
	t.Cleanup(h.stop)
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := h.slack.WaitConnected(wctx, 1); err != nil {
		t.Fatalf("bot never connected to Slack: %v", err)
	}
	// The fake counts the WebSocket as connected before the bot has read
	// Slack's hello; wait for the bot's own view (what /readyz reports).
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for h.bot.Ready(wctx) != nil {
		select {
		case <-wctx.Done():
			t.Fatalf("bot never became ready: %v", h.bot.Ready(context.Background()))
		case <-tick.C:
		}
	}
}

// run sends `/c66 <text>` as user and returns the ack and the reply the bot
// posted through that command's response_url.
func (h *harness) run(user, channel, text string) (bottest.Ack, bottest.Message) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := h.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, ChannelID: channel, Command: "/c66", Text: text})
	if err != nil {
		h.t.Fatalf("send %q: %v", text, err)
	}
	ack, err := h.slack.WaitAck(ctx, id)
	if err != nil {
		h.t.Fatalf("no ack for %q: %v", text, err)
	}
	if ack.Latency > ackDeadline {
		h.t.Errorf("ack for %q took %v, deadline %v", text, ack.Latency, ackDeadline)
	}
	msg, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("response_url") && m.EnvelopeID == id
	})
	if err != nil {
		h.t.Fatalf("no reply for %q: %v", text, err)
	}
	return ack, msg
}

// text is what a person reads in a message: fallback plus blocks.
func text(m bottest.Message) string {
	return m.Text + "\n" + unescapeJSON(string(m.Blocks))
}

func unescapeJSON(s string) string {
	return strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">", `\n`, "\n").Replace(s)
}

func mustContain(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("message lacks %q:\n%s", w, got)
		}
	}
}

// buttonURL finds the url of the first button in a message's blocks.
func buttonURL(t *testing.T, m bottest.Message) string {
	t.Helper()
	var blocks []map[string]any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	for _, b := range blocks {
		els, _ := b["elements"].([]any)
		for _, e := range els {
			if em, ok := e.(map[string]any); ok {
				if u, ok := em["url"].(string); ok && u != "" {
					return u
				}
			}
		}
	}
	t.Fatalf("no button url in %s", m.Blocks)
	return ""
}

// browser is a person's browser: it keeps cookies and follows redirects,
// remembering where it went.
type browser struct {
	*http.Client
	mu      sync.Mutex
	visited []string
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{}
	b.Client = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.mu.Lock()
		b.visited = append(b.visited, req.URL.String())
		b.mu.Unlock()
		return nil
	}}
	return b
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startForm is what the start page's form sends: its hidden fields (the
// login state and this browser's one-time nonce).
func startForm(t *testing.T, page string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("state") == "" || v.Get("nonce") == "" {
		t.Fatalf("no state and nonce in the start form:\n%s", page)
	}
	return v
}

// login drives the redirect flow as a person would: the button, the start
// page, Continue, Sign in with Slack (the browser is signed in to Slack as
// user), Cloud 66 consent (auto-approved), the callback page.
func (h *harness) login(user string) (callbackURL string, replyAfter bottest.Message, br *browser) {
	return h.loginAs(user, cloud66test.DefaultUser)
}

// loginAs links a Slack user to the Cloud 66 user with that e-mail.
func (h *harness) loginAs(user, email string) (callbackURL string, replyAfter bottest.Message, br *browser) {
	t := h.t
	t.Helper()
	h.c66.SetAuthorizingUser(email)
	_, msg := h.run(user, "C0GENERAL", "login")
	start := buttonURL(t, msg)
	if !strings.HasPrefix(start, h.public+"/oauth/start?state=") {
		t.Fatalf("login button goes to %q, want the bot's start page", start)
	}
	br = newBrowser(t)
	h.slack.SignIn(br.Jar, user)
	resp, err := br.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, "Continue with Slack") || !strings.Contains(page, user) {
		t.Fatalf("start page %d:\n%s", resp.StatusCode, page)
	}
	resp, err = br.PostForm(h.public+"/oauth/start", startForm(t, page))
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, "linked to Slack") {
		t.Fatalf("callback page %d:\n%s", resp.StatusCode, page)
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("callback page Referrer-Policy = %q", resp.Header.Get("Referrer-Policy"))
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "src=") {
		t.Errorf("callback page loads resources:\n%s", page)
	}
	for _, v := range br.visited {
		if strings.HasPrefix(v, h.public+"/oauth/callback") {
			callbackURL = v
		}
	}
	if callbackURL == "" {
		t.Fatalf("browser never reached the callback; visited %v", br.visited)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	replyAfter, err = h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("response_url") && m.EnvelopeID == msg.EnvelopeID && m.ReplaceOriginal
	})
	if err != nil {
		t.Fatalf("no confirmation in Slack after linking: %v", err)
	}
	return callbackURL, replyAfter, br
}

// tokenOf finds the Cloud 66 token the bot used for API calls.
func (h *harness) tokensUsed() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range h.c66.Requests() {
		if strings.HasPrefix(r.Path, "/api/3/stacks") && r.Token != "" && !seen[r.Token] {
			seen[r.Token] = true
			out = append(out, r.Token)
		}
	}
	return out
}

func TestE2EUnlinkedPersonIsToldHowToLink(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	ack, msg := h.run("U0NEW", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "haven't linked", "Link Cloud 66 account")
	if msg.ResponseType != "ephemeral" {
		t.Errorf("response_type = %q, want ephemeral", msg.ResponseType)
	}
	if len(ack.Payload) > 0 && string(ack.Payload) != "null" && string(ack.Payload) != "{}" {
		t.Logf("ack payload: %s", ack.Payload)
	}
	if got := h.c66.RequestCount("", "/api/3"); got != 0 {
		t.Errorf("an unlinked person caused %d Cloud 66 API calls", got)
	}
}

func TestE2ERedirectLoginThenStacksAcrossPages(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	callback, confirm, br := h.login("U0ANA")
	seeded := h.c66.Stacks()
	if len(seeded) <= 30 {
		t.Fatalf("the fake seeds %d stacks; paging needs more than 30", len(seeded))
	}
	mustContain(t, text(confirm), "Linked to Cloud 66 account *Acme*", fmt.Sprintf("(%d stacks visible)", len(seeded)))

	_, msg := h.run("U0ANA", "C0GENERAL", "stacks")
	got := text(msg)
	mustContain(t, got, fmt.Sprintf("Stacks (%d)", len(seeded)))
	for _, s := range seeded {
		mustContain(t, got, "*"+s.Name+"*")
	}
	if h.c66.RequestCount("GET", "/api/3/stacks.json") < 2 {
		t.Error("stacks did not page through Cloud 66's list")
	}

	// The same callback again, from the same browser (a replay), is refused
	// without reaching the token endpoint: the state is spent.
	before := h.c66.RequestCount("POST", "/oauth/token")
	cb, _ := url.Parse(callback)
	q := cb.Query()
	resp, err := br.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "already used") {
		t.Errorf("replayed callback answered %d:\n%s", resp.StatusCode, page)
	}
	if after := h.c66.RequestCount("POST", "/oauth/token"); after != before {
		t.Errorf("a replayed state reached the token endpoint (%d → %d)", before, after)
	}

	// whoami says who, since when, scopes and stack count.
	_, msg = h.run("U0ANA", "C0GENERAL", "whoami")
	mustContain(t, text(msg), "Acme", "`public`, `redeploy`", fmt.Sprintf("*Stacks visible*\n%d", len(seeded)))

	// The token is in neither the database file nor the logs.
	tokens := h.tokensUsed()
	if len(tokens) == 0 {
		t.Fatal("no Cloud 66 token was used")
	}
	h.stop()
	raw, err := os.ReadFile(h.cfg.Settings.DB)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	secrets := append([]string{h.slack.AppToken, h.slack.BotToken, h.c66.ClientSecret}, tokens...)
	secrets = append(secrets, q.Get("code"), q.Get("state"))
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the database file contains a secret (%d bytes long)", len(s))
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain a secret (%d bytes long)", len(s))
		}
	}
	if strings.Contains(logs, "/hooks/commands/") {
		t.Error("the logs contain a response_url")
	}
}

func TestE2ECallbackRefusals(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	before := h.c66.RequestCount("POST", "/oauth/token")
	br := newBrowser(t)
	for name, u := range map[string]string{
		"forged state":  h.public + "/oauth/callback?state=forged&code=x",
		"no state":      h.public + "/oauth/callback?code=x",
		"provider deny": h.public + "/oauth/callback?error=access_denied&state=x",
	} {
		resp, err := br.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d:\n%s", name, resp.StatusCode, body)
		}
	}
	// A real state, but the browser never confirmed on the start page (a
	// forwarded authorize link): refused, state kept for the right browser.
	_, msg := h.run("U0ANA", "C0GENERAL", "login")
	start, _ := url.Parse(buttonURL(t, msg))
	state := start.Query().Get("state")
	resp, err := br.Get(h.public + "/oauth/callback?code=x&state=" + url.QueryEscape(state))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "did not start in this browser") {
		t.Errorf("unbound browser: %d:\n%s", resp.StatusCode, body)
	}
	if after := h.c66.RequestCount("POST", "/oauth/token"); after != before {
		t.Errorf("refused callbacks reached the token endpoint (%d → %d)", before, after)
	}
	// /healthz and /readyz answer.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(h.public + p)
		if err != nil {
			t.Fatal(err)
		}
		if b := readBody(t, resp); resp.StatusCode != 200 {
			t.Errorf("%s = %d %s", p, resp.StatusCode, b)
		}
	}
}

func TestE2EOutOfBandLogin(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{outOfBand: true})
	_, msg := h.run("U0BEN", "G0PRIVATE", "login")
	mustContain(t, text(msg), "paste it back here as `/c66 login <code>`")
	authorize := buttonURL(t, msg)
	if !strings.HasPrefix(authorize, h.c66.URL+"/oauth/authorize?") {
		t.Fatalf("out-of-band login button goes to %q", authorize)
	}
	resp, err := http.Get(authorize)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	m := regexp.MustCompile(`<code id="authorization-code">([^<]+)</code>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no code on Cloud 66's page:\n%s", page)
	}
	_, msg = h.run("U0BEN", "G0PRIVATE", "login "+m[1])
	mustContain(t, text(msg), "Linked to Cloud 66 account *Acme*")
	// A code is single-use: pasting it again finds no pending login.
	_, msg = h.run("U0BEN", "G0PRIVATE", "login "+m[1])
	mustContain(t, text(msg), "no login waiting for a code")
	_, msg = h.run("U0BEN", "G0PRIVATE", "stacks")
	mustContain(t, text(msg), "Stacks (")
	if strings.Contains(h.logs.String(), m[1]) {
		t.Error("the pasted code reached the logs")
	}
}

func TestE2ERevokedTokenAndThrottling(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, msg := h.run("U0ANA", "C0GENERAL", "servers shop:production")
	mustContain(t, text(msg), "Servers of shop:production")
	tokens := h.tokensUsed()
	if len(tokens) != 1 {
		t.Fatalf("tokens used: %d", len(tokens))
	}

	clear := h.c66.Throttle(tokens[0])
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "throttling", "Try again at <!date^")
	clear()

	h.c66.Revoke(tokens[0])
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "expired or was revoked", "Link Cloud 66 account")
	// The dead link is gone: the next command needs no Cloud 66 call to say so.
	n := h.c66.RequestCount("", "/api/3")
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "haven't linked")
	if h.c66.RequestCount("", "/api/3") != n {
		t.Error("a forgotten link still called Cloud 66")
	}
}

func TestE2EAmbiguousAndEscaped(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, msg := h.run("U0ANA", "C0GENERAL", "stack shop")
	mustContain(t, text(msg), "matches 2 stacks", "shop:production", "shop:staging")
	_, msg = h.run("U0ANA", "C0GENERAL", "stack <!channel>")
	got := text(msg)
	if strings.Contains(got, "<!channel>") {
		t.Errorf("unescaped mention in reply:\n%s", got)
	}
	_, msg = h.run("U0ANA", "C0GENERAL", "deploi shop")
	mustContain(t, text(msg), "I don't know the command `deploi`")
}

func TestE2EEveryAckIsQuickUnderLoad(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.c66.InjectFault(cloud66test.Fault{Latency: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	for i := range 40 {
		id, err := h.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: "U0ANA", Text: []string{"stacks", "help", "whoami", "stack api"}[i%4]})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		ack, err := h.slack.WaitAck(ctx, id)
		if err != nil {
			t.Fatalf("no ack: %v", err)
		}
		if ack.Latency > ackDeadline {
			t.Errorf("ack took %v", ack.Latency)
		}
	}
	for _, id := range ids {
		if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool { return m.EnvelopeID == id }); err != nil {
			t.Fatalf("no reply for %s: %v", id, err)
		}
	}
}

// assertManifestCovers fails when the bot called a Slack Web API method
// whose scope the app manifest does not ask for, so the manifest can't fall
// behind the code.
func assertManifestCovers(t *testing.T, h *harness) {
	t.Helper()
	granted := slackapp.BotScopes()
	for _, c := range h.slack.Calls() {
		if c.Method == "apps.connections.open" || c.Method == "response_url" {
			continue // the app-level token's connections:write; response URLs need no scope
		}
		if scope, ok := slackapp.UserScopeFor(c.Method); ok {
			// Sign in with Slack: the app's credentials, or a person's token.
			if scope != "" && !slices.Contains(slackapp.UserScopes(), scope) {
				t.Errorf("the bot called %s, which needs the user scope %s, missing from the manifest", c.Method, scope)
			}
			continue
		}
		scope, ok := slackapp.ScopeFor(c.Method)
		if !ok {
			t.Errorf("the bot called %s, which slackapp does not list", c.Method)
			continue
		}
		if scope != "" && !slices.Contains(granted, scope) {
			t.Errorf("the bot called %s, which needs %s, missing from the manifest", c.Method, scope)
		}
	}
}
