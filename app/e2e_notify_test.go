package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

var webhookURL = regexp.MustCompile(`https?://[^\s"` + "`" + `]+/hooks/cloud66/[A-Za-z0-9_-]+`)

// subscribe runs `/c66 subscribe …` and returns the webhook URL shown: the
// subscription is announced in the channel, without it, and the URL comes
// after, to the subscriber alone.
func (h *harness) subscribe(user, channel, args string) string {
	h.t.Helper()
	_, msg := h.run(user, channel, "subscribe "+args)
	mustContain(h.t, text(msg), "now follows")
	if msg.ResponseType != "in_channel" {
		h.t.Errorf("the subscription was announced %q, want in_channel", msg.ResponseType)
	}
	if hook := webhookURL.FindString(text(msg)); hook != "" {
		h.t.Fatalf("the channel's announcement shows the webhook secret: %s", text(msg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	private, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindResponseURL && m.EnvelopeID == msg.EnvelopeID && webhookURL.MatchString(text(m))
	})
	if err != nil {
		h.t.Fatalf("no webhook URL after the announcement: %v", err)
	}
	if private.ResponseType != "ephemeral" {
		h.t.Errorf("the reply with the webhook secret is %q, want ephemeral", private.ResponseType)
	}
	return webhookURL.FindString(text(private))
}

// stackPayload is a Cloud 66 webhook body: the stack object plus
// event_type and timestamp, as Cloud 66 documents.
func (h *harness) stackPayload(eventType, name, env string, started, finished time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_type":  eventType,
		"timestamp":   finished.Unix(),
		"uid":         h.c66.StackUID(name, env),
		"name":        name,
		"environment": env,
		"deploy_context": map[string]any{
			"triggered_by": "ben@example.com",
			"outcome":      "success",
			"started_at":   started.UTC().Format(time.RFC3339),
			"finished_at":  finished.UTC().Format(time.RFC3339),
		},
	})
	return b
}

func post(t *testing.T, url, token string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readBody(t, resp)
}

// postsIn are the top-level messages the bot posted in channel.
func (h *harness) postsIn(channel string) []bottest.Message {
	var out []bottest.Message
	for _, m := range h.slack.Messages() {
		if m.Kind == bottest.MessageKind("post") && m.Channel == channel && m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

func (h *harness) waitPosts(channel string, n int) []bottest.Message {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p := h.postsIn(channel); len(p) >= n {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("%d posts in %s, want %d: %v", len(h.postsIn(channel)), channel, n, h.postsIn(channel))
	return nil
}

func TestE2EWebhookSecretAndDuplicates(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	if hook == "" || !strings.HasPrefix(hook, h.public+"/hooks/cloud66/") {
		t.Fatalf("no webhook URL in the subscribe reply (%q)", hook)
	}
	now := h.clock.Now()
	body := h.stackPayload("stack.redeploy.ok", "shop", "production", now.Add(-3*time.Minute), now)

	// No secret, a wrong secret: 401 and nothing posted.
	for _, u := range []string{h.public + "/hooks/cloud66/", h.public + "/hooks/cloud66/not-the-secret"} {
		resp, _ := post(t, u, "", body)
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s answered %d", u, resp.StatusCode)
		}
	}
	resp, _ := post(t, h.public+"/hooks/cloud66/not-the-secret", "", body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret answered %d, want 401", resp.StatusCode)
	}
	// Malformed JSON: 400. An oversized body is refused.
	if resp, _ := post(t, hook, "", []byte("{not json")); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed JSON answered %d, want 400", resp.StatusCode)
	}
	if resp, _ := post(t, hook, "", bytes.Repeat([]byte("x"), 2<<20)); resp.StatusCode < 400 {
		t.Errorf("a 2 MiB body answered %d", resp.StatusCode)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(h.postsIn("C0GENERAL")); n != 0 {
		t.Fatalf("%d posts after refused webhooks", n)
	}

	// The right secret, twice: one post.
	for range 2 {
		if resp, b := post(t, hook, "", body); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook answered %d: %s", resp.StatusCode, b)
		}
	}
	posts := h.waitPosts("C0GENERAL", 1)
	mustContain(t, text(posts[0]), "shop", "production")
	time.Sleep(300 * time.Millisecond)
	if n := len(h.postsIn("C0GENERAL")); n != 1 {
		t.Errorf("the same event delivered twice made %d posts", n)
	}
}

func TestE2EBotStartedDeployAndItsWebhookMakeOneMessage(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:staging deploys")
	started := h.clock.Now()
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	body := h.stackPayload("stack.redeploy.ok", "shop", "staging", started, h.clock.Now())
	if resp, b := post(t, hook, "", body); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %d: %s", resp.StatusCode, b)
	}
	time.Sleep(500 * time.Millisecond)
	if posts := h.postsIn("C0GENERAL"); len(posts) != 1 {
		t.Errorf("%d messages in the channel for one bot-started deploy, want its one message:\n%v", len(posts), posts)
	}
}

func TestE2EPollingAnnouncesDeploysStartedElsewhere(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.slack.AddChannel(bottest.Channel{ID: "C0DEPLOYS", Name: "deploys", BotMember: true})
	h.subscribe("U0ANA", "C0DEPLOYS", "shop:staging deploys")
	// Ben deploys from the Cloud 66 dashboard: no webhook, the bot polls.
	ben := h.c66.IssueToken("ben@example.com", "public", "redeploy")
	req, _ := http.NewRequest(http.MethodPost, h.c66.URL+"/api/3/stacks/"+h.c66.StackUID("shop", "staging")+"/deployments.json", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+ben)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	posts := h.waitPosts("C0DEPLOYS", 1)
	mustContain(t, text(posts[0]), "shop")
	h.clock.Advance(4 * time.Minute)
	posts = h.waitPosts("C0DEPLOYS", 2)
	mustContain(t, text(posts[1]), "deployed")
}

func TestE2ERateLimitStormLosesNothingAndKeepsOrder(t *testing.T) {
	t.Parallel()
	// Slack's real pace, one post a second per channel, and a 429 storm.
	h := startHarness(t, harnessOptions{postsPerSecond: 1})
	h.login("U0ANA")
	h.subscribe("U0ANA", "C0GENERAL", "shop:production deploys")
	token := h.apiToken("ci", "notify")
	h.slack.RateLimitNext("chat.postMessage", 3, time.Second)
	const n = 8
	for i := range n {
		body := fmt.Sprintf(`{"stack":"shop:production","event":"deploy.started","text":"notice %02d"}`, i)
		if resp, b := post(t, h.public+"/api/v1/notify", token, []byte(body)); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("notify answered %d: %s", resp.StatusCode, b)
		}
	}
	posts := h.waitPosts("C0GENERAL", n)
	for i, p := range posts {
		mustContain(t, text(p), fmt.Sprintf("notice %02d", i))
	}
	time.Sleep(200 * time.Millisecond)
	if got := len(h.postsIn("C0GENERAL")); got != n {
		t.Errorf("%d posts, want exactly %d", got, n)
	}
}

// apiToken creates an API token through the running bot's admin socket.
func (h *harness) apiToken(name string, scopes ...string) string {
	h.t.Helper()
	tok, err := createTokenViaSocket(h.opts.dbPath+".sock", name, scopes)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func TestE2EAPIAuthentication(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	notifier := h.apiToken("notifier", "notify")
	auditor := h.apiToken("auditor", "audit:read")
	body := []byte(`{"stack":"shop:production","event":"deploy.succeeded","text":"from CI"}`)

	resp, _ := post(t, h.public+"/api/v1/notify", "", body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = post(t, h.public+"/api/v1/notify", "c66bot_forged", body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("forged token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, b := post(t, h.public+"/api/v1/notify", auditor, body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "notify") || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="notify"`) {
		t.Errorf("token without the scope: %d %s %q", resp.StatusCode, b, resp.Header.Get("WWW-Authenticate"))
	}
	resp, b = post(t, h.public+"/api/v1/notify", notifier, body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notify: %d %s", resp.StatusCode, b)
	}
	mustContain(t, text(h.waitPosts("C0GENERAL", 1)[0]), "from CI")

	// audit:read reads the audit log; the notify token may not.
	get := func(token string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, h.public+"/api/v1/audit", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readBody(t, resp)
	}
	if resp, b := get(auditor); resp.StatusCode != 200 || !strings.Contains(b, `"api.notify"`) {
		t.Errorf("audit: %d %s", resp.StatusCode, b)
	}
	if resp, _ := get(notifier); resp.StatusCode != http.StatusForbidden {
		t.Errorf("audit with a notify token: %d", resp.StatusCode)
	}
	if err := revokeTokenViaSocket(h.opts.dbPath+".sock", "notifier"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := post(t, h.public+"/api/v1/notify", notifier, body); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", resp.StatusCode)
	}
}
