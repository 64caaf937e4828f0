package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

// buttonValue finds the value of the button with actionID in a message.
func buttonValue(t *testing.T, m bottest.Message, actionID string) (blockID, value string) {
	t.Helper()
	type button struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	}
	var blocks []struct {
		BlockID  string   `json:"block_id"`
		Elements []button `json:"elements"`
		// A section's button (the deployments list's Roll back to this).
		Accessory *button `json:"accessory"`
	}
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	for _, b := range blocks {
		if b.Accessory != nil && b.Accessory.ActionID == actionID {
			return b.BlockID, b.Accessory.Value
		}
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return b.BlockID, e.Value
			}
		}
	}
	t.Fatalf("no %q button in %s", actionID, m.Blocks)
	return "", ""
}

// click presses a button as user and returns the reply to that press.
func (h *harness) click(user string, from bottest.Message, actionID string) (string, bottest.Message) {
	h.t.Helper()
	blockID, value := buttonValue(h.t, from, actionID)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := h.slack.SendBlockAction(ctx, bottest.BlockAction{UserID: user, ChannelID: "C0GENERAL", ActionID: actionID, BlockID: blockID, Value: value, Ephemeral: true})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		h.t.Fatalf("no ack for the click: %v", err)
	}
	msg, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("response_url") && m.EnvelopeID == id
	})
	if err != nil {
		h.t.Fatalf("no reply to the click: %v", err)
	}
	return id, msg
}

// card waits for the deployment message the bot posts in channel.
func (h *harness) card(channel, stack string) bottest.Message {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("post") && m.Channel == channel && m.ThreadTS == "" && strings.Contains(text(m), stack)
	})
	if err != nil {
		h.t.Fatalf("no deployment message for %s in %s: %v", stack, channel, err)
	}
	return m
}

// waitCard waits until the message at ts reads want, advancing the fake
// Cloud 66 clock so the deployment moves.
func (h *harness) waitCard(channel, ts, want string) bottest.Message {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m, ok := h.slack.Message(channel, ts); ok && strings.Contains(text(m), want) {
			return m
		}
		h.clock.Advance(30 * time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	m, _ := h.slack.Message(channel, ts)
	h.t.Fatalf("message never read %q; it reads:\n%s", want, text(m))
	return m
}

// waitThread waits until the thread under ts holds every want: the card is
// edited before the thread note is posted, so a test reading the thread
// right after the card moved could miss it.
func (h *harness) waitThread(channel, ts string, want ...string) string {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := h.threadText(channel, ts)
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(got, w)
		}
		if !missing || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) threadText(channel, ts string) string {
	var b strings.Builder
	for _, m := range h.slack.Messages() {
		if m.Channel == channel && m.ThreadTS == ts {
			b.WriteString(text(m))
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestE2EProductionDeployNeedsConfirmationAndFinishes(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, confirm := h.run("U0ANA", "C0GENERAL", "deploy shop:production@v2.1")
	mustContain(t, text(confirm), "needs your confirmation", "v2.1", "Live now")
	if confirm.ResponseType != "ephemeral" {
		t.Errorf("confirmation is %q, want ephemeral", confirm.ResponseType)
	}
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("a protected deploy was sent before confirmation (%d)", n)
	}

	// Someone else's click is refused and sends nothing.
	_, refusal := h.click("U0BEN", confirm, "deploy_confirm")
	mustContain(t, text(refusal), "belongs to the person who asked")
	if refusal.ReplaceOriginal {
		t.Error("another person's click replaced the requester's confirmation")
	}
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("another person's click deployed (%d)", n)
	}

	// The requester confirms; a second (double) click and a redelivered
	// envelope deploy nothing more.
	envID, ok := h.click("U0ANA", confirm, "deploy_confirm")
	mustContain(t, text(ok), "Confirmed")
	_, again := h.click("U0ANA", confirm, "deploy_confirm")
	mustContain(t, text(again), "already confirmed or cancelled")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.slack.Redeliver(ctx, envID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, envID); err != nil {
		t.Fatal(err)
	}

	card := h.card("C0GENERAL", "shop")
	mustContain(t, text(card), "<@U0ANA>", "v2.1")
	final := h.waitCard("C0GENERAL", card.TS, "Deployed")
	mustContain(t, text(final), "v2.1")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("Cloud 66 got %d deployments, want exactly 1", n)
	}
	posts := 0
	for _, m := range h.slack.Messages() {
		if m.Kind == bottest.MessageKind("post") && m.ThreadTS == "" && m.Channel == "C0GENERAL" {
			posts++
		}
	}
	if posts != 1 {
		t.Errorf("%d deployment messages in the channel, want one edited in place", posts)
	}
	// The user_reference ties the Cloud 66 action to the Slack request.
	var ref string
	for _, r := range h.c66.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/deployments.json") {
			ref = string(r.Body)
		}
	}
	if !strings.Contains(ref, "U0ANA") || !strings.Contains(ref, "C0GENERAL") {
		t.Errorf("redeploy body lacks a user_reference naming the person and channel: %s", ref)
	}

	// The audit log has the deploy and its confirmation.
	var buf syncBuffer
	if err := writeAuditFromBot(t, h, &buf); err != nil {
		t.Fatal(err)
	}
	mustContain(t, buf.String(), `"deploy`, "U0ANA", "shop")
	assertManifestCovers(t, h)
}

func TestE2EStagingDeployFailsWithCloud66Message(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	uid := h.c66.StackUID("shop", "staging")
	h.c66.SetDeployOutcome(uid, false, "Build failed: tests <!channel> broke")
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	final := h.waitCard("C0GENERAL", card.TS, "failed")
	if strings.Contains(text(final), "<!channel>") {
		t.Error("Cloud 66's message was not escaped")
	}
	thread := h.waitThread("C0GENERAL", card.TS, "Build failed: tests", "<@U0ANA>")
	mustContain(t, thread, "Build failed: tests", "<@U0ANA>")
}

func TestE2ELockBlocksAnotherPersonsDeploy(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	_, msg := h.run("U0ANA", "C0GENERAL", "lock shop:staging release freeze")
	mustContain(t, text(msg), "locked", "release freeze")
	if msg.ResponseType != "in_channel" {
		t.Errorf("lock announcement is %q, want in_channel", msg.ResponseType)
	}
	h.clock.Advance(2*time.Hour + time.Minute)
	_, msg = h.run("U0BEN", "C0GENERAL", "deploy shop:staging")
	mustContain(t, text(msg), "locked by <@U0ANA> 2 h ago: release freeze")
	_, msg = h.run("U0BEN", "C0GENERAL", "locks")
	mustContain(t, text(msg), "shop", "<@U0ANA>", "release freeze")
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("a locked stack was deployed (%d)", n)
	}
	// Ben removing Ana's lock needs confirmation and tells Ana.
	_, confirm := h.run("U0BEN", "C0GENERAL", "unlock shop:staging")
	mustContain(t, text(confirm), "locked by <@U0ANA>")
	_, done := h.click("U0BEN", confirm, "unlock_confirm")
	mustContain(t, text(done), "removed <@U0ANA>'s lock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("post") && strings.HasPrefix(m.Channel, "D") && strings.Contains(text(m), "lock")
	}); err != nil {
		t.Errorf("the lock's owner was not told: %v", err)
	}
	assertManifestCovers(t, h)
}

func TestE2ERestartMidDeployStillFinishesTheMessage(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	// A second deploy of the same stack is told one is running.
	_, busy := h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	mustContain(t, text(busy), "already running", "its message")

	h.restart()
	final := h.waitCard("C0GENERAL", card.TS, "Deployed")
	mustContain(t, text(final), "<@U0ANA>")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("Cloud 66 got %d deployments across the restart, want 1", n)
	}
}

func TestE2EDeploymentsAndCancel(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, msg := h.run("U0ANA", "C0GENERAL", "deployments api:production")
	mustContain(t, text(msg), "Deployments of api:production", "Deployed")

	h.run("U0ANA", "C0GENERAL", "deploy api:staging")
	card := h.card("C0GENERAL", "api")
	_, confirm := h.run("U0ANA", "C0GENERAL", "cancel api:staging")
	mustContain(t, text(confirm), "Cancel")
	_, done := h.click("U0ANA", confirm, "cancel_confirm")
	mustContain(t, text(done), "Cancelling")
	h.waitCard("C0GENERAL", card.TS, "Cancelled")
}

func TestE2EBadDeployArgumentsSendNothing(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	for text_, want := range map[string]string{
		"deploy shop:staging colour=blue":    "Unknown option `colour`",
		"deploy shop:staging strategy=yolo":  "isn't one of serial, parallel, rolling, fast",
		"deploy shop:staging@":               "empty",
		"deploy shop:staging ref=a..b":       "isn't a valid git ref",
		"deploy shop":                        "matches 2 stacks",
		"deploy shop:staging services=web:,": "should be `name` or `name:tag`",
	} {
		_, msg := h.run("U0ANA", "C0GENERAL", text_)
		mustContain(t, text(msg), want)
	}
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("bad arguments deployed (%d)", n)
	}
}

// adminHTTP is a client of the running bot's admin socket, as the
// `c66bot audit` and `c66bot token` commands use it.
func adminHTTP(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func createTokenViaSocket(sock, name string, scopes []string) (string, error) {
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	resp, err := adminHTTP(sock).Post("http://c66bot/tokens", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ Token, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", fmt.Errorf("no token: %d %s", resp.StatusCode, out.Error)
	}
	return out.Token, nil
}

func revokeTokenViaSocket(sock, name string) error {
	req, _ := http.NewRequest(http.MethodDelete, "http://c66bot/tokens/"+name, nil)
	resp, err := adminHTTP(sock).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("revoke answered %d", resp.StatusCode)
	}
	return nil
}

// writeAuditFromBot reads the audit log from the running bot's admin socket,
// as `c66bot audit` does while the bot holds the database.
func writeAuditFromBot(t *testing.T, h *harness, w io.Writer) error {
	t.Helper()
	resp, err := adminHTTP(h.opts.dbPath + ".sock").Get("http://c66bot/audit")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// In a private channel the bot is not in, a deploy gets one card, through
// the response_url, saying itself why it won't move, and one reply to the
// requester saying where the result comes: nothing promises to keep the
// channel posted, and nothing is posted there directly.
func TestE2EDeployInAPrivateChannelTheBotIsNotIn(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, first := h.run("U0ANA", bottest.ChannelPrivate, "deploy shop:staging")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	reply, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindResponseURL && m.EnvelopeID == first.EnvelopeID && m.ResponseType == "ephemeral"
	})
	if err != nil {
		t.Fatalf("no reply to the requester: %v", err)
	}
	mustContain(t, text(reply), "Deployment started.", "I couldn't post in <#"+bottest.ChannelPrivate+">",
		"I'll send you the result here when it finishes", "/invite @c66bot")
	var responses []bottest.Message
	for _, m := range h.slack.Messages() {
		if m.Kind == bottest.KindResponseURL && m.EnvelopeID == first.EnvelopeID {
			responses = append(responses, m)
		}
		if m.Kind == bottest.MessageKind("post") && m.Channel == bottest.ChannelPrivate {
			t.Errorf("posted in a channel the bot is not in: %s", text(m))
		}
	}
	if len(responses) != 2 {
		t.Fatalf("%d responses, want the card and the reply: %v", len(responses), responses)
	}
	card := responses[0]
	if card.ResponseType != "in_channel" {
		t.Errorf("the card went %q, want in_channel", card.ResponseType)
	}
	mustContain(t, text(card), "shop", "I'm not in this channel, so this message won't change as it goes", "/invite @c66bot")
	for _, m := range responses {
		if s := text(m); strings.Contains(s, "keep this channel posted") || strings.Contains(s, "follow it in the channel message") {
			t.Errorf("a message promises what the bot can't do:\n%s", s)
		}
	}
}
