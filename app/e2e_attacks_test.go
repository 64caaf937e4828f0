package app_test

// Attacks, end to end: OAuth states replayed, expired, forged and used
// across people and browsers; buttons pressed by someone else or from
// another workspace; response_urls pointing elsewhere; dead webhooks;
// oversized bodies; mrkdwn injection; secrets in logs.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/storage"
)

// stopAtCallback makes br follow redirects until the bot's callback and
// stop there, so the test holds the callback URL (code and state) unvisited.
func stopAtCallback(br *browser, public string) {
	br.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		br.mu.Lock()
		br.visited = append(br.visited, req.URL.String())
		br.mu.Unlock()
		if strings.HasPrefix(req.URL.String(), public+"/oauth/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
}

// startLogin runs `/c66 login` as user and takes br (signed in to Slack as
// user) through the bot's start page, Sign in with Slack and Cloud 66's
// consent, stopping before the callback, which it returns.
func (h *harness) startLogin(user string, br *browser) (callback string, prompt bottest.Message) {
	h.t.Helper()
	_, prompt = h.run(user, "C0GENERAL", "login")
	start := buttonURL(h.t, prompt)
	h.slack.SignIn(br.Jar, user)
	resp, err := br.Get(start)
	if err != nil {
		h.t.Fatal(err)
	}
	page := readBody(h.t, resp)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("start page %d:\n%s", resp.StatusCode, page)
	}
	resp, err = br.PostForm(h.public+"/oauth/start", startForm(h.t, page))
	if err != nil {
		h.t.Fatal(err)
	}
	readBody(h.t, resp)
	callback = resp.Header.Get("Location")
	if !strings.HasPrefix(callback, h.public+"/oauth/callback?") {
		h.t.Fatalf("the flow did not end at the callback (status %d, Location %q)", resp.StatusCode, callback)
	}
	return callback, prompt
}

func getPage(t *testing.T, br *browser, u string) (int, string) {
	t.Helper()
	resp, err := br.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// Ben sends Ana his login link. Ana's browser is signed in to Slack as
// Ana: Sign in with Slack says so, nothing is linked for either of them,
// Cloud 66 is never asked, Ben's link is spent and Ben is told in Slack.
func TestE2EOAuthLinkOpenedBySomeoneElseLinksNothing(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	// Ben's display name is his to choose: it names nobody.
	h.slack.AddUser(bottest.User{ID: "U0BEN", Name: "ana", RealName: "Ana Lyst", TZ: "Etc/UTC"})
	_, prompt := h.run("U0BEN", "C0GENERAL", "login")
	start := buttonURL(t, prompt)

	h.c66.SetAuthorizingUser("ana@example.com")
	ana := newBrowser(t)
	h.slack.SignIn(ana.Jar, "U0ANA")
	status, page := getPage(t, ana, start)
	if status != http.StatusOK {
		t.Fatalf("start page %d:\n%s", status, page)
	}
	mustContain(t, page, "U0BEN", "If someone sent you this link, close this page")
	if strings.Contains(page, "Ana Lyst") {
		t.Errorf("the start page shows a self-chosen display name:\n%s", page)
	}
	resp, err := ana.PostForm(h.public+"/oauth/start", startForm(t, page))
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Ana's sign-in as herself for Ben's login answered %d:\n%s", resp.StatusCode, page)
	}
	mustContain(t, page, "You signed in to Slack as U0ANA", "started by U0BEN", "Nothing was linked")
	for _, v := range ana.visited {
		if strings.HasPrefix(v, h.c66.URL) {
			t.Errorf("the browser went on to Cloud 66: %s", v)
		}
	}
	if n := h.c66.RequestCount("", "/oauth/"); n != 0 {
		t.Errorf("Cloud 66's OAuth endpoints were asked %d times", n)
	}
	for _, u := range []string{"U0ANA", "U0BEN"} {
		_, msg := h.run(u, "C0GENERAL", "whoami")
		mustContain(t, text(msg), "haven't linked")
	}
	// Ben's link is spent: his own browser can't use it any more.
	ben := newBrowser(t)
	h.slack.SignIn(ben.Jar, "U0BEN")
	status, page = getPage(t, ben, start)
	if status != http.StatusBadRequest || !strings.Contains(page, "not valid or was already used") {
		t.Errorf("Ben's link after the refusal: %d:\n%s", status, page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindResponseURL && m.EnvelopeID == prompt.EnvelopeID && m.ReplaceOriginal &&
			strings.Contains(m.Text, "signed in to Slack as <@U0ANA>") && strings.Contains(m.Text, "nothing was linked")
	}); err != nil {
		t.Errorf("the link's owner was not told in Slack: %v", err)
	}
}

// Replayed, expired and forged states, and a callback carried from one
// person's browser to another's: all refused before Cloud 66's token
// endpoint, and none of them spends a state its rightful browser needs.
func TestE2EOAuthStateAttacks(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	tokenCalls := func() int { return h.c66.RequestCount(http.MethodPost, "/oauth/token") }
	refused := func(name string, status int, page string, want string) {
		t.Helper()
		if status != http.StatusBadRequest || !strings.Contains(page, want) {
			t.Errorf("%s: answered %d, want 400 saying %q:\n%s", name, status, want, page)
		}
	}

	// Forged: a state of the right shape that was never issued.
	forged := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	br := newBrowser(t)
	status, page := getPage(t, br, h.public+"/oauth/start?state="+forged)
	refused("forged state on the start page", status, page, "not valid")
	resp, err := br.PostForm(h.public+"/oauth/start", url.Values{"state": {forged}})
	if err != nil {
		t.Fatal(err)
	}
	if page := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not opened in this browser") {
		t.Errorf("forged state posted without a nonce: %d:\n%s", resp.StatusCode, page)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("a forged state got a browser binding")
	}

	// Login CSRF: Ben gets a code for his Cloud 66 account and tries to
	// make Ana's browser finish it. Ana's browser has its own binding, for
	// her own login; neither her binding nor a missing one passes.
	h.c66.SetAuthorizingUser("ben@example.com")
	benBr := newBrowser(t)
	stopAtCallback(benBr, h.public)
	benCallback, _ := h.startLogin("U0BEN", benBr)
	h.c66.SetAuthorizingUser("ana@example.com")
	anaBr := newBrowser(t)
	stopAtCallback(anaBr, h.public)
	anaCallback, _ := h.startLogin("U0ANA", anaBr)
	before := tokenCalls()
	status, page = getPage(t, anaBr, benCallback)
	refused("someone else's callback", status, page, "did not start in this browser")
	status, page = getPage(t, newBrowser(t), benCallback)
	refused("callback in a fresh browser", status, page, "did not start in this browser")
	if n := tokenCalls() - before; n != 0 {
		t.Errorf("refused callbacks made %d token requests", n)
	}
	// Ben's state was not spent by any of that: his own browser finishes.
	status, page = getPage(t, benBr, benCallback)
	if status != http.StatusOK || !strings.Contains(page, "linked to Slack") {
		t.Fatalf("Ben's own browser could not finish after the attempts: %d\n%s", status, page)
	}
	_, msg := h.run("U0BEN", "C0GENERAL", "whoami")
	mustContain(t, text(msg), "Acme")
	// Ana's state with Ben's (spent) code, in Ana's browser: the state is
	// hers, the code is not; it links nothing.
	bq, _ := url.Parse(benCallback)
	aq, _ := url.Parse(anaCallback)
	mixed := h.public + "/oauth/callback?" + url.Values{"code": {bq.Query().Get("code")}, "state": {aq.Query().Get("state")}}.Encode()
	status, page = getPage(t, anaBr, mixed)
	if status == http.StatusOK {
		t.Errorf("Ana's state with Ben's code linked something:\n%s", page)
	}
	_, msg = h.run("U0ANA", "C0GENERAL", "whoami")
	mustContain(t, text(msg), "haven't linked")

	// Replayed: Ben's spent callback again, and his spent start page.
	before = tokenCalls()
	status, page = getPage(t, benBr, benCallback)
	refused("replayed callback", status, page, "already used")
	status, page = getPage(t, benBr, h.public+"/oauth/start?state="+url.QueryEscape(bq.Query().Get("state")))
	refused("replayed start page", status, page, "already used")
	if tokenCalls() != before {
		t.Error("a replayed state reached the token endpoint")
	}

	// Expired: 11 minutes after `login`, on the start page and at the callback.
	_, prompt := h.run("U0CAROL", "C0GENERAL", "login")
	h.clock.Advance(11 * time.Minute)
	status, page = getPage(t, newBrowser(t), buttonURL(t, prompt))
	refused("expired state on the start page", status, page, "expired")
	carolBr := newBrowser(t)
	stopAtCallback(carolBr, h.public)
	carolCallback, _ := h.startLogin("U0CAROL", carolBr)
	h.clock.Advance(11 * time.Minute)
	before = tokenCalls()
	status, page = getPage(t, carolBr, carolCallback)
	refused("expired state at the callback", status, page, "expired")
	if tokenCalls() != before {
		t.Error("an expired state reached the token endpoint")
	}
	_, msg = h.run("U0CAROL", "C0GENERAL", "whoami")
	mustContain(t, text(msg), "haven't linked")
}

// Buttons pressed by another person, or by the same user id from another
// workspace or enterprise, are refused and send nothing; the owner's
// message is left alone and still works for the owner.
func TestE2EButtonsFromAnotherPersonOrWorkspaceAreRefused(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	_, confirm := h.run("U0ANA", "C0GENERAL", "deploy shop:production")
	mustContain(t, text(confirm), "needs your confirmation")

	intruders := []bottest.BlockAction{
		{UserID: "U0BEN"},
		{TeamID: "T0OTHER", UserID: "U0ANA"},
		{EnterpriseID: "E0OTHER", UserID: "U0ANA"},
	}
	press := func(who bottest.BlockAction, from bottest.Message, actionID string) bottest.Message {
		t.Helper()
		blockID, value := buttonValue(t, from, actionID)
		who.ChannelID, who.ActionID, who.BlockID, who.Value, who.Ephemeral = "C0GENERAL", actionID, blockID, value, true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id, err := h.slack.SendBlockAction(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
			return m.Kind == bottest.KindResponseURL && m.EnvelopeID == id
		})
		if err != nil {
			t.Fatalf("no reply to %s/%s's %s: %v", who.TeamID+who.EnterpriseID, who.UserID, actionID, err)
		}
		return reply
	}
	for _, who := range intruders {
		for _, action := range []string{"deploy_confirm", "intent_abort"} {
			reply := press(who, confirm, action)
			mustContain(t, text(reply), "belongs to the person who asked")
			if reply.ReplaceOriginal || reply.ResponseType == "in_channel" {
				t.Errorf("%+v's %s touched the owner's message or the channel", who, action)
			}
		}
	}
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("a stranger's click deployed (%d)", n)
	}

	// Unlock confirmations are the requester's too.
	h.run("U0ANA", "C0GENERAL", "lock shop:staging release")
	_, unlock := h.run("U0BEN", "C0GENERAL", "unlock shop:staging")
	reply := press(bottest.BlockAction{TeamID: "T0OTHER", UserID: "U0BEN"}, unlock, "unlock_confirm")
	mustContain(t, text(reply), "belongs to the person who asked")
	_, locks := h.run("U0ANA", "C0GENERAL", "locks")
	mustContain(t, text(locks), "shop", "release")

	// The owner's buttons still work.
	_, ok := h.click("U0ANA", confirm, "deploy_confirm")
	mustContain(t, text(ok), "Confirmed")
	h.card("C0GENERAL", "shop")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("%d deployments, want 1", n)
	}
}

// recordingTransport remembers the host of every outbound request.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	urls []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.Scheme+"://"+req.URL.Host)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

func (r *recordingTransport) seen(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, u := range r.urls {
		if strings.HasPrefix(u, prefix) {
			n++
		}
	}
	return n
}

// A slash command whose response_url is not Slack's: the bot answers
// nothing there, never connects there, and logs the refusal.
func TestE2EResponseURLOutsideSlackIsNeverCalled(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer evil.Close()
	tr := &recordingTransport{base: http.DefaultTransport}
	h := startHarnessWith(t, harnessOptions{}, func(_ *harness, c *app.Config) {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	})
	evilURL, _ := url.Parse(evil.URL)
	targets := []string{
		evil.URL + "/hooks/commands/1",                      // same host as the test Slack, another port
		"http://localhost:" + evilURL.Port() + "/hooks/x/1", // a name for it
		"https://hooks.slack.com.evil.example/commands/T0TEST/1/x",
		"http://hooks.slack.com/commands/T0TEST/1/x", // no TLS
		"https://evil.example@hooks.slack.com/commands/T0TEST/1/x",
		"https://hooks.slack.com@" + evilURL.Host + "/commands/T0TEST/1/x",
		"//" + evilURL.Host + "/hooks/commands/1",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, target := range targets {
		payload := map[string]any{
			"token": "fakeVerificationToken", "team_id": bottest.DefaultTeamID, "team_domain": bottest.TeamDomain,
			"channel_id": "C0GENERAL", "channel_name": "general", "user_id": "U0ANA", "user_name": "ana",
			"command": "/c66", "text": "help", "api_app_id": bottest.DefaultAppID, "is_enterprise_install": "false",
			"response_url": target, "trigger_id": fmt.Sprintf("1.2.%d", i),
		}
		id, err := h.slack.SendEnvelope(ctx, "slash_commands", payload, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.slack.WaitAck(ctx, id); err != nil {
			t.Fatalf("%s: no ack: %v", target, err)
		}
	}
	waitUntil(t, 10*time.Second, "a logged refusal per command", func() bool {
		return strings.Count(h.logs.String(), "response_url host not allowed") >= len(targets)
	})
	time.Sleep(200 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Errorf("the foreign response_url server got %d requests", n)
	}
	for _, p := range []string{evil.URL, "http://localhost:" + evilURL.Port(), "https://hooks.slack.com", "http://hooks.slack.com"} {
		if n := tr.seen(p); n != 0 {
			t.Errorf("the bot connected to %s %d times", p, n)
		}
	}
	for _, target := range targets {
		if strings.Contains(h.logs.String(), target) {
			t.Errorf("the refused response_url %q reached the log", target)
		}
	}
}

// A webhook URL stops working when its subscription goes: 401, nothing
// posted.
func TestE2EWebhookOfDeletedSubscriptionIsRefused(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	_, msg := h.run("U0ANA", "C0GENERAL", "unsubscribe shop:production")
	if strings.Contains(text(msg), "doesn't follow") {
		t.Fatalf("unsubscribe failed:\n%s", text(msg))
	}
	now := h.clock.Now()
	resp, body := post(t, hook, "", h.stackPayload("stack.redeploy.ok", "shop", "production", now.Add(-time.Minute), now))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the webhook of a deleted subscription answered %d %s, want 401", resp.StatusCode, body)
	}
	// Subscribing again makes a new secret; the old one stays dead.
	fresh := h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	if fresh == hook {
		t.Error("subscribing again reused the old webhook secret")
	}
	if resp, _ := post(t, hook, "", h.stackPayload("stack.redeploy.ok", "shop", "production", now.Add(-time.Minute), now)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the old webhook answered %d after subscribing again", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.postsIn("C0GENERAL")); n != 0 {
		t.Errorf("%d posts from dead webhooks", n)
	}
}

// Oversized bodies are refused with nothing stored or posted; a 100 KB
// command text is answered with a bounded usage reply.
func TestE2EOversizedInputsAreBounded(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	token := h.apiToken("ci", "notify")
	tooBig := func(name string, status int) {
		t.Helper()
		if status != http.StatusRequestEntityTooLarge && status != http.StatusBadRequest {
			t.Errorf("%s answered %d, want 413 or 400", name, status)
		}
	}

	// A webhook one byte over 1 MiB, well-formed JSON otherwise.
	now := h.clock.Now()
	payload := h.stackPayload("stack.redeploy.ok", "shop", "production", now.Add(-time.Minute), now)
	pad := func(n int) []byte { return append(bytes.Clone(payload), bytes.Repeat([]byte(" "), n-len(payload))...) }
	resp, _ := post(t, hook, "", pad(1<<20+1))
	tooBig("a webhook of 1 MiB + 1", resp.StatusCode)
	// The API: 16 KiB + 1.
	notify := fmt.Sprintf(`{"stack":"shop:production","event":"deploy.succeeded","text":"%s"}`, strings.Repeat("x", 16<<10))
	resp, _ = post(t, h.public+"/api/v1/notify", token, []byte(notify))
	tooBig("a notify of 16 KiB", resp.StatusCode)
	// The start form: over 64 KiB, around a valid state.
	_, prompt := h.run("U0ANA", "C0GENERAL", "login")
	start, _ := url.Parse(buttonURL(t, prompt))
	form := url.Values{"state": {start.Query().Get("state")}, "pad": {strings.Repeat("x", 65<<10)}}.Encode()
	resp, err := http.Post(h.public+"/oauth/start", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	tooBig("a start form of 65 KiB", resp.StatusCode)
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Location") != "" {
		t.Error("an oversized start form was acted on")
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.postsIn("C0GENERAL")); n != 0 {
		t.Fatalf("%d posts after oversized bodies", n)
	}
	// Just under the webhook limit is fine.
	if resp, b := post(t, hook, "", pad(1<<20-64)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a webhook just under 1 MiB answered %d %s", resp.StatusCode, b)
	}
	h.waitPosts("C0GENERAL", 1)

	// 100 KB of command text.
	huge := strings.Repeat("a", 100_000)
	for _, cmd := range []string{
		huge,
		"stack " + huge,
		"deploy shop:staging ref=" + huge,
		"deploy shop:staging@" + huge,
		"lock shop:staging " + strings.Repeat("reason ", 100_000/7),
		"subscribe shop:staging " + strings.Repeat("started ", 100_000/8),
		strings.Repeat("“", 30_000),
	} {
		_, msg := h.run("U0ANA", "C0GENERAL", cmd)
		got := text(msg)
		t.Logf("%d bytes of command: %.160s", len(cmd), strings.ReplaceAll(msg.Text, "\n", " "))
		if len(got) > 20_000 {
			t.Errorf("the reply to a 100 KB command is %d bytes long", len(got))
		}
		if msg.ResponseType == "in_channel" {
			t.Errorf("a 100 KB command got an in-channel answer:\n%.300s", got)
		}
	}
	if n := h.c66.ActionCount(); n != 0 {
		t.Errorf("a 100 KB command deployed (%d)", n)
	}

	h.stop()
	st, err := storage.Open(storage.Options{Path: h.opts.dbPath, Keys: [][]byte{h.opts.key}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Outbox().Count(context.Background()); err != nil || n != 0 {
		t.Errorf("outbox holds %d items (%v) after the refused bodies", n, err)
	}
}

// injected are strings that, unescaped in mrkdwn, notify or mislead a
// channel.
var injected = []string{"<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example|click>"}

const injection = "<!channel> <!here> <@U0BOSS> <https://evil.example|click>"

// mrkdwnTexts returns the fallback text and every mrkdwn text object of m
// (plain_text is not parsed by Slack, so it cannot mention anyone).
func mrkdwnTexts(m bottest.Message) []string {
	out := []string{m.Text}
	var walk func(v any, parentType string)
	walk = func(v any, parentType string) {
		switch x := v.(type) {
		case map[string]any:
			typ, _ := x["type"].(string)
			if s, ok := x["text"].(string); ok && typ == "mrkdwn" {
				out = append(out, s)
			}
			for k, c := range x {
				if k == "text" && typ == "mrkdwn" {
					continue
				}
				walk(c, typ)
			}
		case []any:
			for _, c := range x {
				walk(c, parentType)
			}
		case string:
			if parentType == "mrkdwn" {
				out = append(out, x)
			}
		}
	}
	var blocks any
	if json.Unmarshal(m.Blocks, &blocks) == nil {
		walk(blocks, "")
	}
	return out
}

// hostileNames puts a proxy in front of the fake Cloud 66 that renames the
// stack blog to a name full of mrkdwn, as a Cloud 66 user could.
func hostileNames(t *testing.T, target string, name string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	quoted, _ := json.Marshal(name)
	old := []byte(`"name":"blog"`)
	repl := append([]byte(`"name":`), quoted...)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) },
		ModifyResponse: func(resp *http.Response) error {
			if !strings.Contains(resp.Header.Get("Content-Type"), "json") {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = bytes.ReplaceAll(b, old, repl)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	})
	t.Cleanup(proxy.Close)
	return proxy.URL
}

// mrkdwn injection through command arguments, Cloud 66 stack names,
// webhook payloads and the notify API: no reply and no channel post ever
// carries a live mention or link from them.
func TestE2EMrkdwnInjectionIsEscapedEverywhere(t *testing.T) {
	t.Parallel()
	h := startHarnessWith(t, harnessOptions{}, func(h *harness, c *app.Config) {
		c.Settings.Cloud66URL = hostileNames(t, h.c66.URL, "blog "+injection)
	})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	blog := h.c66.StackUID("blog", "staging")
	token := h.apiToken("ci", "notify")

	for _, cmd := range []string{
		"lock shop:staging " + injection,
		"locks",
		"deploy shop:production@<!here>",
		"deploy mailer:staging ref=<@U0BOSS>", // a Rails stack: Docker stacks take no git ref
		"deploy api:staging services=<!channel>",
		"deploy api:staging profile=<https://evil.example|click>",
		"subscribe api:staging <!channel> <!here>",
		"subscribe api:staging env=<!here>",
		"stack <https://evil.example|click>",
		"servers <!here>",
		"server api:staging <@U0BOSS>",
		"help <!channel>",
		"<!channel>",
		"unsubscribe <!here>",
		"stacks",
		"stacks blog",
		"stacks <!channel>",
		"stacks <@U0BOSS>",
		"stack " + blog,
		"server " + blog + " " + h.c66.ServerNames(blog)[0],
		"servers " + blog,
		"deployments " + blog,
		"lock " + blog + " " + injection,
		"unlock " + blog,
		"subscribe " + blog + " deploys",
	} {
		h.run("U0ANA", "C0GENERAL", cmd)
	}
	// Ben meets Ana's lock, with its reason.
	h.run("U0BEN", "C0GENERAL", "deploy shop:staging")
	// A deploy of the stack whose name is hostile, failing with a hostile
	// message: card, edits and thread note.
	h.c66.SetDeployOutcome(blog, false, "tests broke "+injection)
	h.run("U0ANA", "C0GENERAL", "deploy "+blog)
	// A webhook and the API, with hostile names and text.
	hook := h.subscribe("U0ANA", "C0GENERAL", "all")
	now := h.clock.Now()
	if resp, b := post(t, hook, "", h.stackPayload("stack.redeploy.ok", "api", "production", now.Add(-time.Minute), now)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", resp.StatusCode, b)
	}
	var body map[string]any
	_ = json.Unmarshal(h.stackPayload("stack.redeploy.fail", "api", "production", now, now.Add(time.Minute)), &body)
	body["name"], body["environment"] = "api "+injection, "production "+injection
	body["deploy_context"].(map[string]any)["triggered_by"] = injection
	raw, _ := json.Marshal(body)
	if resp, b := post(t, hook, "", raw); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", resp.StatusCode, b)
	}
	h.subscribe("U0ANA", "C0GENERAL", "shop:production deploys")
	if resp, b := post(t, h.public+"/api/v1/notify", token, []byte(`{"stack":"shop:production","event":"deploy.failed","text":"`+strings.ReplaceAll(injection, `"`, `\"`)+`"}`)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notify: %d %s", resp.StatusCode, b)
	}
	// Let the deployments end and the notices go out (the channel is paced
	// at one post a second): two cards, the failure's thread note, two
	// webhook notices and the API's.
	deadline := time.Now().Add(20 * time.Second)
	for len(h.slack.PostsIn("C0GENERAL")) < 6 && time.Now().Before(deadline) {
		h.clock.Advance(20 * time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(h.slack.PostsIn("C0GENERAL")); n < 6 {
		t.Errorf("only %d posts reached the channel, want 6", n)
	}
	time.Sleep(time.Second)

	checked := 0
	for _, m := range h.slack.Messages() {
		checked++
		for _, s := range mrkdwnTexts(m) {
			var found []string
			for _, bad := range injected {
				if strings.Contains(s, bad) {
					found = append(found, bad)
				}
			}
			if len(found) > 0 {
				t.Errorf("a %s message (%s) in %s carries %q unescaped in mrkdwn:\n%.400s", m.Kind, m.ResponseType, m.Channel, found, s)
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d messages were checked; the scenario did not run", checked)
	}
	// The hostile text did reach Slack, escaped: the check above saw it.
	escaped := 0
	for _, m := range h.slack.Messages() {
		if strings.Contains(text(m), "&lt;!channel&gt;") {
			escaped++
		}
	}
	if escaped == 0 {
		t.Error("no message shows the injected text escaped; were the inputs rejected everywhere?")
	}
}

// A full session at debug level: no secret reaches the log.
func TestE2ENoSecretInDebugLogs(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	callback, _, _ := h.login("U0ANA")
	h.run("U0ANA", "C0GENERAL", "stacks")
	_, confirm := h.run("U0ANA", "C0GENERAL", "deploy shop:production@v2")
	h.click("U0ANA", confirm, "deploy_confirm")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	h.run("U0ANA", "C0GENERAL", "lock shop:staging release")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:staging")
	now := h.clock.Now()
	if resp, b := post(t, hook, "", h.stackPayload("stack.redeploy.ok", "shop", "staging", now.Add(-time.Minute), now)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", resp.StatusCode, b)
	}
	apiToken := h.apiToken("ci", "notify", "audit:read")
	if resp, b := post(t, h.public+"/api/v1/notify", apiToken, []byte(`{"stack":"shop:staging","event":"deploy.started","text":"ci"}`)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notify: %d %s", resp.StatusCode, b)
	}
	post(t, h.public+"/api/v1/notify", apiToken+"x", []byte(`{}`))
	h.waitPosts("C0GENERAL", 2) // the card and the webhook's notice
	// The 401 path: Cloud 66 revokes the token.
	tokens := h.tokensUsed()
	for _, tok := range tokens {
		h.c66.Revoke(tok)
	}
	_, msg := h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "expired or was revoked")
	// An out-of-band style paste of a code, which the redirect flow refuses.
	h.run("U0ANA", "C0GENERAL", "login some-pasted-code-1234567890")
	h.stop()

	cb, _ := url.Parse(callback)
	secrets := map[string]string{
		"Slack app token":        h.slack.AppToken,
		"Slack bot token":        h.slack.BotToken,
		"Cloud 66 client secret": h.c66.ClientSecret,
		"Slack client secret":    h.slack.ClientSecret,
		"OAuth code":             cb.Query().Get("code"),
		"OAuth state":            cb.Query().Get("state"),
		"webhook secret":         hook[strings.LastIndex(hook, "/")+1:],
		"API token":              apiToken,
		"pasted code":            "some-pasted-code-1234567890",
		"DB key (base64)":        base64.StdEncoding.EncodeToString(h.opts.key),
		"DB key (base64url)":     base64.RawURLEncoding.EncodeToString(h.opts.key),
		"DB key (hex)":           hex.EncodeToString(h.opts.key),
	}
	for i, r := range h.c66.Requests() {
		if r.Token != "" {
			secrets[fmt.Sprintf("Cloud 66 token of request %d", i)] = r.Token
		}
		if v := r.Form.Get("code_verifier"); v != "" {
			secrets["PKCE verifier"] = v
		}
		if v := r.Form.Get("refresh_token"); v != "" {
			secrets["refresh token"] = v
		}
	}
	if secrets["PKCE verifier"] == "" {
		t.Error("no PKCE verifier was seen at the token endpoint")
	}
	for _, m := range h.slack.Messages() {
		if m.ResponseURL != "" {
			secrets["response_url "+m.ResponseURL[strings.Index(m.ResponseURL, "/hooks/"):]] = m.ResponseURL
		}
	}
	logs := h.logs.String()
	if len(logs) < 1000 {
		t.Fatalf("suspiciously little was logged (%d bytes)", len(logs))
	}
	// The resolved settings are logged once, at start, secrets masked.
	if n := strings.Count(logs, `"msg":"c66bot starting"`); n != 1 {
		t.Errorf("%d start lines, want 1", n)
	}
	for _, want := range []string{`"slack_bot_token":"(set)"`, `"slack_client_secret":"(set)"`, `"c66bot_public_url":"` + h.public + `"`} {
		mustContain(t, logs, want)
	}
	for name, s := range secrets {
		if s == "" {
			t.Errorf("%s: empty; the scenario did not produce it", name)
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log contains the %s", name)
		}
	}
	for _, frag := range []string{"/hooks/commands/", "/hooks/actions/", "/hooks/cloud66/", "code_verifier", "xoxb-", "xapp-", "Bearer "} {
		if strings.Contains(logs, frag) {
			t.Errorf("the log contains %q", frag)
		}
	}
	if m := regexp.MustCompile(`(?i)verifier.{0,16}[A-Za-z0-9_-]{40,}`).FindString(logs); m != "" {
		t.Errorf("the log holds something like a PKCE verifier: %q", m)
	}
}
