package bottest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
)

// Slack refuses a message for its form (more than 50 blocks, a section over
// 3,000 characters, text over 40,000) on every way of posting, shows
// nothing and, for a response_url, spends none of its uses; the fake does
// the same, so the bot's plain-text fallback is tested against it.
func TestRefusesWhatSlackRefuses(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t, bottest.WithPingInterval(serverPing))
	ctx := ctxT(t)
	raw := dialRaw(t, srv)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{ChannelID: bottest.ChannelGeneral}); err != nil {
		t.Fatal(err)
	}
	var cmd slack.SlashCommand
	if err := json.Unmarshal(raw.read(t).Payload, &cmd); err != nil {
		t.Fatal(err)
	}

	divider := map[string]any{"type": "divider"}
	many := make([]any, 51)
	for i := range many {
		many[i] = divider
	}
	longSection := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Repeat("a", 3001)}}}
	longText := strings.Repeat("a", 40001)

	hook := func(payload map[string]any) (int, string) {
		t.Helper()
		body, _ := json.Marshal(payload)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cmd.ResponseURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for name, tc := range map[string]struct {
		payload map[string]any
		code    string
	}{
		"51 blocks":         {map[string]any{"text": "x", "blocks": many}, "invalid_blocks"},
		"3001-char section": {map[string]any{"text": "x", "blocks": longSection}, "invalid_blocks"},
		"40001-char text":   {map[string]any{"text": longText}, "msg_too_long"},
	} {
		if status, body := hook(tc.payload); status != http.StatusBadRequest || !strings.Contains(body, tc.code) {
			t.Errorf("response_url with %s: %d %s, want 400 %s", name, status, body, tc.code)
		}
	}
	srv.FailNext("response_url", "invalid_blocks", 1)
	if status, body := hook(map[string]any{"text": "fine"}); status != http.StatusBadRequest || !strings.Contains(body, "invalid_blocks") {
		t.Errorf("injected refusal: %d %s", status, body)
	}
	// Nothing was shown and no use spent: all five are still there.
	for i := range 5 {
		if status, body := hook(map[string]any{"text": "fine"}); status != http.StatusOK {
			t.Fatalf("post %d after the refusals: %d %s", i+1, status, body)
		}
	}
	if status, _ := hook(map[string]any{"text": "sixth"}); status != http.StatusNotFound {
		t.Errorf("sixth post: %d, want 404 used_url", status)
	}
	for _, m := range srv.Messages() {
		if m.Kind == bottest.KindResponseURL && m.Text != "fine" {
			t.Errorf("a refused post was shown: %q", m.Text)
		}
	}

	// The Web API methods refuse the same.
	api := newAPI(srv)
	_, ts, err := api.PostMessageContext(ctx, bottest.ChannelGeneral, slack.MsgOptionText("original", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, bottest.ChannelGeneral, slack.MsgOptionText(longText, false)); err == nil || err.Error() != "msg_too_long" {
		t.Errorf("chat.postMessage with 40001 characters: %v", err)
	}
	blocks := make([]slack.Block, 51)
	for i := range blocks {
		blocks[i] = slack.NewDividerBlock()
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, bottest.ChannelGeneral, ts, slack.MsgOptionText("x", false), slack.MsgOptionBlocks(blocks...)); err == nil || err.Error() != "invalid_blocks" {
		t.Errorf("chat.update with 51 blocks: %v", err)
	}
	if cur, _ := srv.Message(bottest.ChannelGeneral, ts); cur.Text != "original" {
		t.Errorf("a refused chat.update changed the message: %q", cur.Text)
	}
	section := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("a", 3001), false, false), nil, nil)
	if _, err := api.PostEphemeralContext(ctx, bottest.ChannelGeneral, "U0ALICE", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(section)); err == nil || err.Error() != "invalid_blocks" {
		t.Errorf("chat.postEphemeral with a 3001-character section: %v", err)
	}
}
