package bottest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/bot/bottest"
)

const (
	serverPing = 100 * time.Millisecond
	clientPing = time.Second
	waitLimit  = 5 * time.Second
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func newAPI(srv *bottest.Server) *slack.Client {
	return slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.AppToken), slack.OptionAPIURL(srv.APIURL()))
}

// bot is a real slack-go Socket Mode client with a consumer loop that acks
// every request (slash commands with a text payload) and forwards events.
type bot struct {
	api    *slack.Client
	sm     *socketmode.Client
	events chan socketmode.Event
	runErr chan error
}

const ackText = "Working on it…"

func startBot(t *testing.T, srv *bottest.Server) *bot {
	t.Helper()
	api := newAPI(srv)
	sm := socketmode.New(api, socketmode.OptionPingInterval(clientPing))
	b := &bot{api: api, sm: sm, events: make(chan socketmode.Event, 256), runErr: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.runErr <- sm.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				switch evt.Type {
				case socketmode.EventTypeSlashCommand:
					_ = sm.Ack(*evt.Request, map[string]any{"text": ackText, "response_type": "ephemeral"})
				case socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
					_ = sm.Ack(*evt.Request)
				}
				select {
				case b.events <- evt:
				default:
				}
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Error("socketmode client did not stop")
		}
	})
	return b
}

func (b *bot) next(t *testing.T, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case evt := <-b.events:
			if evt.Type == typ {
				return evt
			}
		case <-timeout:
			t.Fatalf("no %s event", typ)
		}
	}
}

func startConnected(t *testing.T, opts ...bottest.Option) (*bottest.Server, *bot) {
	t.Helper()
	srv := bottest.Start(t, append([]bottest.Option{bottest.WithPingInterval(serverPing)}, opts...)...)
	b := startBot(t, srv)
	if err := srv.WaitConnected(ctxT(t), 1); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	return srv, b
}

func TestSlashCommandRoundTrip(t *testing.T) {
	srv, b := startConnected(t)
	ctx := ctxT(t)

	hello := b.next(t, socketmode.EventTypeHello)
	if hello.Request.ConnectionInfo.AppID != srv.AppID || hello.Request.NumConnections != 1 {
		t.Errorf("hello = %+v", hello.Request)
	}

	envID, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{
		EnterpriseID: "E0GRID", UserID: "U0ALICE", Text: "deploy web --env prod",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(envID) {
		t.Errorf("envelope id %q is not a UUID", envID)
	}
	evt := b.next(t, socketmode.EventTypeSlashCommand)
	cmd := evt.Data.(slack.SlashCommand)
	if evt.Request.EnvelopeID != envID || !evt.Request.AcceptsResponsePayload {
		t.Errorf("request = %+v", evt.Request)
	}
	want := slack.SlashCommand{
		Token: "fakeVerificationToken", TeamID: "T0TEST", TeamDomain: "fake-team",
		EnterpriseID: "E0GRID", EnterpriseName: "Fake Grid",
		ChannelID: "C0GENERAL", ChannelName: "general", UserID: "U0ALICE", UserName: "u0alice",
		Command: "/c66", Text: "deploy web --env prod", APIAppID: "A0TEST",
		ResponseURL: cmd.ResponseURL, TriggerID: cmd.TriggerID,
	}
	if cmd != want {
		t.Errorf("command =\n %+v\nwant\n %+v", cmd, want)
	}
	if !strings.HasPrefix(cmd.ResponseURL, srv.URL+"/hooks/commands/") || cmd.TriggerID == "" {
		t.Errorf("response_url %q trigger_id %q", cmd.ResponseURL, cmd.TriggerID)
	}

	ack, err := srv.WaitAck(ctx, envID)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Latency <= 0 || ack.Latency > 3*time.Second {
		t.Errorf("ack latency %v", ack.Latency)
	}
	var ackBody struct{ Text string }
	if err := json.Unmarshal(ack.Payload, &ackBody); err != nil || ackBody.Text != ackText {
		t.Errorf("ack payload %s (%v)", ack.Payload, err)
	}

	// Five response_url posts are accepted, the sixth is refused like Slack does.
	for i := range 5 {
		msg := &slack.WebhookMessage{Text: fmt.Sprintf("step %d", i), ResponseType: "in_channel"}
		if i == 4 {
			msg.ResponseType = "ephemeral"
			msg.Blocks = &slack.Blocks{BlockSet: []slack.Block{
				slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*done*", false, false), nil, nil),
			}}
		}
		if err := slack.PostWebhookContext(ctx, cmd.ResponseURL, msg); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	err = slack.PostWebhookContext(ctx, cmd.ResponseURL, &slack.WebhookMessage{Text: "too many"})
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != http.StatusNotFound {
		t.Errorf("6th post: %v", err)
	}

	msgs := srv.MessagesFor(envID)
	if len(msgs) != 6 {
		t.Fatalf("MessagesFor = %d messages: %+v", len(msgs), msgs)
	}
	if m := msgs[0]; m.Kind != bottest.KindAck || m.Text != ackText || m.User != "U0ALICE" || m.Channel != "C0GENERAL" {
		t.Errorf("ack message %+v", m)
	}
	for _, m := range msgs[1:] {
		if m.Kind != bottest.KindResponseURL || m.ResponseURL != cmd.ResponseURL || m.EnvelopeID != envID {
			t.Errorf("response_url message %+v", m)
		}
	}
	if m := msgs[1]; m.ResponseType != "in_channel" || m.TS == "" || m.Text != "step 0" {
		t.Errorf("first response %+v", m)
	}
	if m := msgs[5]; m.ResponseType != "ephemeral" || !strings.Contains(string(m.Blocks), `"*done*"`) {
		t.Errorf("last response %+v blocks %s", m, m.Blocks)
	}
	if cur, ok := srv.Message("C0GENERAL", msgs[1].TS); !ok || cur.Text != "step 0" {
		t.Errorf("in_channel reply not in channel state: %+v %v", cur, ok)
	}
	calls := srv.Calls()
	if last := calls[len(calls)-1]; last.Method != "response_url" || last.Status != 404 || last.SlackError != "used_url" {
		t.Errorf("last call %+v", last)
	}
}

func TestResponseURLViaMsgOptionAndExpiry(t *testing.T) {
	clk := newClock()
	srv := bottest.Start(t, bottest.WithPingInterval(serverPing), bottest.WithNow(clk.Now))
	ctx := ctxT(t)
	raw := dialRaw(t, srv)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	envID, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{ChannelID: "D0SOMEDM"})
	if err != nil {
		t.Fatal(err)
	}
	frame := raw.read(t)
	var p slack.SlashCommand
	if err := json.Unmarshal(frame.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if frame.EnvelopeID != envID || frame.Type != "slash_commands" || !frame.AcceptsResponsePayload || p.ChannelName != "directmessage" {
		t.Errorf("frame %+v payload %+v", frame, p)
	}

	// slack-go's MsgOptionResponseURL path parses the answer as JSON or "ok".
	api := newAPI(srv)
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionResponseURL(p.ResponseURL, slack.ResponseTypeInChannel),
		slack.MsgOptionText("via api", false)); err != nil {
		t.Fatalf("MsgOptionResponseURL: %v", err)
	}
	m, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Kind == bottest.KindResponseURL })
	if err != nil || m.Text != "via api" || m.ResponseType != "in_channel" || m.Channel != "D0SOMEDM" || m.EnvelopeID != envID {
		t.Errorf("message %+v (%v)", m, err)
	}

	clk.Add(31 * time.Minute)
	err = slack.PostWebhookContext(ctx, p.ResponseURL, &slack.WebhookMessage{Text: "late"})
	var sce slack.StatusCodeError
	if !errors.As(err, &sce) || sce.Code != 404 {
		t.Errorf("expired post: %v", err)
	}
	if err := slack.PostWebhookContext(ctx, srv.URL+"/hooks/commands/999", &slack.WebhookMessage{Text: "x"}); err == nil {
		t.Error("unknown hook accepted")
	}
	// Posting into the DM the bot is not part of fails the way Slack does.
	if _, _, err := api.PostMessageContext(ctx, "D0SOMEDM", slack.MsgOptionText("hi", false)); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("post into foreign DM: %v", err)
	}
}

func TestBlockActionAndOriginalMessage(t *testing.T) {
	srv, b := startConnected(t)
	ctx := ctxT(t)

	_, ts, err := b.api.PostMessageContext(ctx, "C0GENERAL",
		slack.MsgOptionText("Deploy web?", false),
		slack.MsgOptionBlocks(
			slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "Deploy *web*?", false, false), nil, nil),
			slack.NewActionBlock("confirm-block",
				slack.NewButtonBlockElement("deploy_yes", "stack-42", slack.NewTextBlockObject("plain_text", "Deploy", false, false)),
			),
		))
	if err != nil {
		t.Fatal(err)
	}

	envID, err := srv.SendBlockAction(ctx, bottest.BlockAction{UserID: "U0BOB", ActionID: "deploy_yes", MessageTS: ts, EnterpriseID: "E0GRID"})
	if err != nil {
		t.Fatal(err)
	}
	evt := b.next(t, socketmode.EventTypeInteractive)
	cb := evt.Data.(slack.InteractionCallback)
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != "U0BOB" || cb.User.TeamID != "T0TEST" ||
		cb.Team.ID != "T0TEST" || cb.Channel.ID != "C0GENERAL" || cb.APIAppID != "A0TEST" || cb.Enterprise.ID != "E0GRID" {
		t.Errorf("callback %+v", cb)
	}
	if cb.Container.Type != "message" || cb.Container.MessageTs != ts || cb.Container.ChannelID != "C0GENERAL" || cb.Container.IsEphemeral {
		t.Errorf("container %+v", cb.Container)
	}
	if cb.Message.Timestamp != ts || cb.Message.Text != "Deploy web?" || len(cb.Message.Blocks.BlockSet) != 2 {
		t.Errorf("message ts=%q text=%q blocks=%d", cb.Message.Timestamp, cb.Message.Text, len(cb.Message.Blocks.BlockSet))
	}
	if len(cb.ActionCallback.BlockActions) != 1 {
		t.Fatalf("actions %+v", cb.ActionCallback)
	}
	act := cb.ActionCallback.BlockActions[0]
	if act.ActionID != "deploy_yes" || act.BlockID != "confirm-block" || act.Value != "stack-42" || act.Type != "button" || act.ActionTs == "" {
		t.Errorf("action %+v", act)
	}
	if !strings.HasPrefix(cb.ResponseURL, srv.URL+"/hooks/actions/") || cb.TriggerID == "" {
		t.Errorf("response_url %q", cb.ResponseURL)
	}
	if ack, err := srv.WaitAck(ctx, envID); err != nil || ack.Payload != nil {
		t.Errorf("ack %+v %v", ack, err)
	}

	// replace_original edits the message the button was on; delete_original removes it.
	if err := slack.PostWebhookContext(ctx, cb.ResponseURL, &slack.WebhookMessage{Text: "Deploying…", ReplaceOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if cur, ok := srv.Message("C0GENERAL", ts); !ok || cur.Text != "Deploying…" || cur.Blocks != nil {
		t.Errorf("after replace: %+v %v", cur, ok)
	}
	if err := slack.PostWebhookContext(ctx, cb.ResponseURL, &slack.WebhookMessage{DeleteOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Message("C0GENERAL", ts); ok {
		t.Error("message still present after delete_original")
	}
	if got := srv.MessagesFor(envID); len(got) != 2 || !got[0].ReplaceOriginal || !got[1].DeleteOriginal || got[0].TS != ts {
		t.Errorf("MessagesFor = %+v", got)
	}

	// An ephemeral container carries no message.
	if _, err := srv.SendBlockAction(ctx, bottest.BlockAction{ActionID: "x", Value: "v", Ephemeral: true, MessageTS: "1.2"}); err != nil {
		t.Fatal(err)
	}
	cb = b.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	if !cb.Container.IsEphemeral || cb.Message.Timestamp != "" || cb.ActionCallback.BlockActions[0].Value != "v" {
		t.Errorf("ephemeral callback %+v", cb)
	}
}

func TestWebAPIChat(t *testing.T) {
	srv := bottest.Start(t)
	api := newAPI(srv)
	ctx := ctxT(t)

	auth, err := api.AuthTestContext(ctx)
	if err != nil || auth.UserID != "U0BOT" || auth.TeamID != "T0TEST" || auth.BotID == "" {
		t.Fatalf("auth.test %+v %v", auth, err)
	}

	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*hello*", false, false), nil, nil)}
	ch, ts1, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("hello", false), slack.MsgOptionBlocks(blocks...))
	if err != nil || ch != "C0GENERAL" || !regexp.MustCompile(`^\d{10}\.\d{6}$`).MatchString(ts1) {
		t.Fatalf("post: %q %q %v", ch, ts1, err)
	}
	_, ts2, err := api.PostMessageContext(ctx, "C0PRIVBOT", slack.MsgOptionText("thread reply", false), slack.MsgOptionTS(ts1))
	if err != nil || ts2 <= ts1 {
		t.Fatalf("second post %q after %q: %v", ts2, ts1, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("messages %+v", msgs)
	}
	if m := msgs[0]; m.Kind != bottest.KindPost || m.Text != "hello" || m.TS != ts1 || m.Seq != 1 ||
		string(m.Blocks) != `[{"type":"section","text":{"type":"mrkdwn","text":"*hello*"}}]` {
		t.Errorf("post recorded as %+v blocks %s", m, m.Blocks)
	}
	if msgs[1].ThreadTS != ts1 || msgs[1].Seq != 2 {
		t.Errorf("thread reply %+v", msgs[1])
	}
	call := srv.Calls()[1]
	if call.Method != "chat.postMessage" || call.Token != srv.BotToken || call.Form.Get("channel") != "C0GENERAL" || call.Status != 200 {
		t.Errorf("call %+v", call)
	}

	// Membership rules.
	for _, tc := range []struct{ channel, want string }{
		{"C0PUBLIC", "not_in_channel"},
		{"G0PRIVATE", "channel_not_found"},
		{"C0NOPE", "channel_not_found"},
		{"C0OLD", "is_archived"},
	} {
		srv.AddChannel(bottest.Channel{ID: "C0OLD", Name: "old", BotMember: true, Archived: true})
		_, _, err := api.PostMessageContext(ctx, tc.channel, slack.MsgOptionText("x", false))
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) || se.Err != tc.want {
			t.Errorf("post to %s: %v, want %s", tc.channel, err, tc.want)
		}
		if _, err := api.PostEphemeralContext(ctx, tc.channel, "U0ALICE", slack.MsgOptionText("x", false)); err == nil || err.Error() != tc.want {
			t.Errorf("ephemeral to %s: %v, want %s", tc.channel, err, tc.want)
		}
	}
	srv.SetChatWritePublic(true)
	if _, _, err := api.PostMessageContext(ctx, "C0PUBLIC", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("chat:write.public post: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "G0PRIVATE", slack.MsgOptionText("x", false)); err == nil {
		t.Error("chat:write.public must not open private channels")
	}

	// Content rules.
	if _, _, err := api.PostMessageContext(ctx, "C0GENERAL"); err == nil || err.Error() != "no_text" {
		t.Errorf("empty post: %v", err)
	}
	many := make([]slack.Block, 51)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	if _, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(many...)); err == nil || err.Error() != "invalid_blocks" {
		t.Errorf("51 blocks: %v", err)
	}
	long := slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", strings.Repeat("a", 3001), false, false), nil, nil)
	_, _, err = api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(long))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_blocks" || len(se.ResponseMetadata.Messages) == 0 {
		t.Errorf("3001-char section: %v %+v", err, se)
	}

	// chat.update keeps the current state.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0GENERAL", ts1, slack.MsgOptionText("hello again", false)); err != nil {
		t.Fatal(err)
	}
	cur, ok := srv.Message("C0GENERAL", ts1)
	if !ok || cur.Text != "hello again" || cur.Kind != bottest.KindPost || !strings.Contains(string(cur.Blocks), "*hello*") {
		t.Errorf("current %+v", cur)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0GENERAL", ts1, slack.MsgOptionText("no blocks", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	if cur, _ := srv.Message("C0GENERAL", ts1); cur.Blocks != nil || cur.Text != "no blocks" {
		t.Errorf("blocks=[] must clear blocks: %+v", cur)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0GENERAL", "1.000001", slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Errorf("update unknown: %v", err)
	}
	if m, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Kind == bottest.KindUpdate }); err != nil || m.TS != ts1 || m.Text != "hello again" {
		t.Errorf("update record %+v %v", m, err)
	}

	// Ephemeral messages and DMs.
	ets, err := api.PostEphemeralContext(ctx, "C0GENERAL", "U0ALICE", slack.MsgOptionText("only you", false))
	if err != nil || ets == "" {
		t.Fatalf("ephemeral %q %v", ets, err)
	}
	if m, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Kind == bottest.KindEphemeral }); err != nil || m.User != "U0ALICE" || m.TS != ets {
		t.Errorf("ephemeral record %+v %v", m, err)
	}
	if _, ok := srv.Message("C0GENERAL", ets); ok {
		t.Error("ephemeral messages have no retrievable state")
	}
	dm, _, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil || !strings.HasPrefix(dm.ID, "D") || already {
		t.Fatalf("conversations.open %+v %v", dm, err)
	}
	dm2, _, already, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil || dm2.ID != dm.ID || !already {
		t.Errorf("second open %+v %v %v", dm2, already, err)
	}
	if _, _, err := api.PostMessageContext(ctx, dm.ID, slack.MsgOptionText("dm", false)); err != nil {
		t.Errorf("post to DM: %v", err)
	}
	if ch, _, err := api.PostMessageContext(ctx, "U0ALICE", slack.MsgOptionText("dm by user id", false)); err != nil || ch != dm.ID {
		t.Errorf("post to user id: %q %v", ch, err)
	}

	u, err := api.GetUserInfoContext(ctx, "U0ALICE")
	if err != nil || u.ID != "U0ALICE" || u.Name == "" || u.TZ == "" {
		t.Errorf("users.info %+v %v", u, err)
	}
	srv.AddUser(bottest.User{ID: "U0CAROL", Name: "carol", RealName: "Carol C", TZ: "Europe/London", Email: "carol@example.org"})
	if u, err := api.GetUserInfoContext(ctx, "U0CAROL"); err != nil || u.RealName != "Carol C" || u.TZ != "Europe/London" || u.Profile.Email != "carol@example.org" {
		t.Errorf("added user %+v %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "nobody"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: %v", err)
	}
}

func TestWebAPIAuthAndErrors(t *testing.T) {
	srv := bottest.Start(t)
	ctx := ctxT(t)

	// Raw calls: unknown method, wrong token, JSON bodies.
	if got := rawCall(t, srv, "chat.nothing", srv.BotToken, nil); got["error"] != "unknown_method" {
		t.Errorf("unknown method: %v", got)
	}
	if got := rawCall(t, srv, "auth.test", "xoxb-wrong", nil); got["error"] != "invalid_auth" || got["ok"] != false {
		t.Errorf("wrong token: %v", got)
	}
	if got := rawCall(t, srv, "auth.test", "", nil); got["error"] != "not_authed" {
		t.Errorf("no token: %v", got)
	}
	if got := rawCall(t, srv, "chat.postMessage", srv.AppToken, url.Values{"channel": {"C0GENERAL"}, "text": {"x"}}); got["error"] != "not_allowed_token_type" {
		t.Errorf("app token for chat: %v", got)
	}
	if got := rawCall(t, srv, "apps.connections.open", "", url.Values{"token": {srv.AppToken}}); got["error"] != "invalid_auth" {
		t.Errorf("app token as form field: %v", got)
	}
	body := `{"channel":"C0GENERAL","text":"json body","blocks":[{"type":"divider"}]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.APIURL()+"chat.postMessage", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+srv.BotToken)
	if got := doJSON(t, req); got["ok"] != true {
		t.Errorf("JSON post: %v", got)
	}
	if m := srv.Messages()[0]; m.Text != "json body" || string(m.Blocks) != `[{"type":"divider"}]` {
		t.Errorf("JSON post recorded %+v", m)
	}

	// apps.connections.open with the bot token, through slack-go.
	wrong := slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.BotToken), slack.OptionAPIURL(srv.APIURL()))
	if _, _, err := wrong.StartSocketModeContext(ctx); err == nil || err.Error() != "not_allowed_token_type" {
		t.Errorf("connections.open with xoxb: %v", err)
	}
	if srv.ConnectionsOpened() != 0 {
		t.Error("refused open counted")
	}

	// Injected failures and rate limits.
	api := newAPI(srv)
	srv.FailNext("chat.postMessage", "fatal_error", 2)
	for range 2 {
		if _, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false)); err == nil || err.Error() != "fatal_error" {
			t.Errorf("FailNext: %v", err)
		}
	}
	srv.RateLimitNext("chat.postMessage", 1, 1500*time.Millisecond)
	_, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Errorf("RateLimitNext: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("after injected failures: %v", err)
	}
	if n := srv.CallCount("chat.postMessage"); n != 6 {
		t.Errorf("CallCount = %d", n)
	}
	calls := srv.Calls()
	if c := calls[len(calls)-2]; c.Status != 429 || c.SlackError != "ratelimited" {
		t.Errorf("429 call %+v", c)
	}
}

func TestPostRatePerChannel(t *testing.T) {
	clk := newClock()
	srv := bottest.Start(t, bottest.WithPostRate(1, 2), bottest.WithNow(clk.Now))
	api := newAPI(srv)
	ctx := ctxT(t)
	post := func(ch string) error {
		_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("x", false))
		return err
	}
	for i := range 2 {
		if err := post("C0GENERAL"); err != nil {
			t.Fatalf("burst post %d: %v", i, err)
		}
	}
	var rl *slack.RateLimitedError
	if err := post("C0GENERAL"); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("third post: %v", err)
	}
	if err := post("C0PRIVBOT"); err != nil {
		t.Errorf("other channel has its own bucket: %v", err)
	}
	clk.Add(time.Second)
	if err := post("C0GENERAL"); err != nil {
		t.Errorf("after refill: %v", err)
	}
}

func TestReconnects(t *testing.T) {
	srv, b := startConnected(t)
	ctx := ctxT(t)

	check := func(step string, opened int) {
		t.Helper()
		if err := srv.WaitConnected(ctx, 1); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got := srv.ConnectionsOpened(); got != opened {
			t.Errorf("%s: ConnectionsOpened = %d, want %d", step, got, opened)
		}
		id, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{Text: step})
		if err != nil {
			t.Fatal(err)
		}
		if evt := b.next(t, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id {
			t.Errorf("%s: got envelope %s", step, evt.Request.EnvelopeID)
		}
		if _, err := srv.WaitAck(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	check("initial", 1)

	srv.SendDisconnect("refresh_requested")
	check("after refresh_requested", 2)

	srv.SendDisconnect("warning")
	check("after warning", 3)

	srv.DropConnections()
	check("after drop", 4)

	// No PINGs: slack-go's watchdog closes the socket and reconnects.
	srv.StopPings()
	deadline := time.Now().Add(waitLimit)
	for srv.ConnectionsOpened() < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	srv.ResumePings()
	if srv.ConnectionsOpened() < 5 {
		t.Fatal("client did not reconnect after pings stopped")
	}
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{}); err != nil {
		t.Fatal(err)
	}
	b.next(t, socketmode.EventTypeSlashCommand)
}

func TestRedeliver(t *testing.T) {
	srv, b := startConnected(t)
	ctx := ctxT(t)
	id, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{Text: "once"})
	if err != nil {
		t.Fatal(err)
	}
	first := b.next(t, socketmode.EventTypeSlashCommand)
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := srv.Redeliver(ctx, id); err != nil {
		t.Fatal(err)
	}
	second := b.next(t, socketmode.EventTypeSlashCommand)
	if second.Request.EnvelopeID != id || first.Request.RetryAttempt != 0 || second.Request.RetryAttempt != 1 || second.Request.RetryReason != "timeout" {
		t.Errorf("redelivery %+v", second.Request)
	}
	if second.Data.(slack.SlashCommand) != first.Data.(slack.SlashCommand) {
		t.Error("payload changed on redelivery")
	}
	if _, err := srv.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for len(srv.Acks()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if acks := srv.Acks(); len(acks) != 2 || acks[1].EnvelopeID != id {
		t.Errorf("acks %+v", acks)
	}
	if err := srv.Redeliver(ctx, "nope"); err == nil {
		t.Error("Redeliver of an unknown envelope succeeded")
	}
}

func TestConnectionsOpenFailures(t *testing.T) {
	t.Run("invalid_auth is fatal", func(t *testing.T) {
		srv := bottest.Start(t, bottest.WithPingInterval(serverPing))
		srv.FailConnectionsOpen("invalid_auth", 1)
		b := startBot(t, srv)
		select {
		case err := <-b.runErr:
			if err == nil || err.Error() != "invalid_auth" {
				t.Errorf("RunContext returned %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("RunContext did not return")
		}
	})
	t.Run("HTTP 500 is retried", func(t *testing.T) {
		srv := bottest.Start(t, bottest.WithPingInterval(serverPing))
		srv.FailConnectionsOpen("", 2)
		b := startBot(t, srv)
		if err := srv.WaitConnected(ctxT(t), 1); err != nil {
			t.Fatal(err)
		}
		if n, opened := srv.CallCount("apps.connections.open"), srv.ConnectionsOpened(); n != 3 || opened != 1 {
			t.Errorf("calls %d opened %d", n, opened)
		}
		b.next(t, socketmode.EventTypeHello)
	})
}

func TestSeveralConnections(t *testing.T) {
	srv := bottest.Start(t, bottest.WithPingInterval(serverPing))
	b1, b2 := startBot(t, srv), startBot(t, srv)
	ctx := ctxT(t)
	if err := srv.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	const n = 30
	for range n {
		if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[*bot]int{}
	deadline := time.After(waitLimit)
	for got[b1]+got[b2] < n {
		select {
		case evt := <-b1.events:
			if evt.Type == socketmode.EventTypeSlashCommand {
				got[b1]++
			}
		case evt := <-b2.events:
			if evt.Type == socketmode.EventTypeSlashCommand {
				got[b2]++
			}
		case <-deadline:
			t.Fatalf("received %v", got)
		}
	}
	if got[b1] == 0 || got[b2] == 0 {
		t.Errorf("envelopes not spread over connections: %v", got)
	}
}

// An envelope addressed to a connection arrives on that one, its ack says
// which connection answered, and one addressed to a closed connection is
// refused instead of going elsewhere.
func TestEnvelopesAddressedToAConnection(t *testing.T) {
	srv := bottest.Start(t, bottest.WithPingInterval(serverPing))
	ctx := ctxT(t)
	b1 := startBot(t, srv)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b2 := startBot(t, srv)
	if err := srv.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ids := srv.ConnectionIDs()
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
		t.Fatalf("ConnectionIDs = %v, want [1 2]", ids)
	}
	for _, want := range []struct {
		conn int
		b    *bot
	}{{1, b1}, {2, b2}, {2, b2}, {1, b1}} {
		id, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{Text: "to " + strconv.Itoa(want.conn), Connection: want.conn})
		if err != nil {
			t.Fatal(err)
		}
		evt := want.b.next(t, socketmode.EventTypeSlashCommand)
		if cmd, _ := evt.Data.(slack.SlashCommand); cmd.Text != "to "+strconv.Itoa(want.conn) {
			t.Errorf("connection %d received %q", want.conn, cmd.Text)
		}
		ack, err := srv.WaitAck(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Connection != want.conn {
			t.Errorf("ack came on connection %d, want %d", ack.Connection, want.conn)
		}
	}
	id, err := srv.SendBlockAction(ctx, bottest.BlockAction{ActionID: "x", Value: "v", Connection: 2})
	if err != nil {
		t.Fatal(err)
	}
	b2.next(t, socketmode.EventTypeInteractive)
	if ack, err := srv.WaitAck(ctx, id); err != nil || ack.Connection != 2 {
		t.Errorf("block action ack %+v, %v; want on connection 2", ack, err)
	}
	// Dropped, the clients reconnect on new connections; the old numbers
	// are refused.
	srv.DropConnections()
	if err := srv.WaitConnected(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{Connection: 1}); !errors.Is(err, bottest.ErrConnectionGone) {
		t.Errorf("an envelope for closed connection 1: %v, want ErrConnectionGone", err)
	}
}

func TestConnectionLimitAndTickets(t *testing.T) {
	srv := bottest.Start(t, bottest.WithPingInterval(serverPing))
	ctx := ctxT(t)
	for range 10 {
		dialRaw(t, srv)
	}
	if err := srv.WaitConnected(ctx, 10); err != nil {
		t.Fatal(err)
	}
	u := openURL(t, srv)
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, http.Header{"Origin": {"https://api.slack.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var f struct{ Type, Reason string }
	if err := ws.ReadJSON(&f); err != nil || f.Type != "disconnect" || f.Reason != "too_many_websockets" {
		t.Errorf("11th connection got %+v %v", f, err)
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("11th connection stayed open")
	}
	if srv.Connections() != 10 {
		t.Errorf("Connections = %d", srv.Connections())
	}
	// A ticket is single use.
	u = openURL(t, srv)
	srv.DropConnections()
	c, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reused ticket: %v", err)
	}
}

func TestRawProtocolAndClose(t *testing.T) {
	srv := bottest.New(bottest.WithPingInterval(50 * time.Millisecond))
	ctx := ctxT(t)
	raw := dialRaw(t, srv)
	if _, err := srv.SendEnvelope(ctx, "events_api", json.RawMessage(`{"type":"event_callback","event":{"type":"app_home_opened"}}`), false); err != nil {
		t.Fatal(err)
	}
	f := raw.read(t)
	if f.Type != "events_api" || f.AcceptsResponsePayload || f.RetryAttempt == nil || *f.RetryAttempt != 0 {
		t.Errorf("events_api frame %+v", f)
	}
	deadline := time.Now().Add(waitLimit)
	for raw.pings.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if raw.pings.Load() < 2 {
		t.Error("no WebSocket PINGs")
	}
	if err := raw.ws.WriteJSON(map[string]any{"envelope_id": f.EnvelopeID}); err != nil {
		t.Fatal(err)
	}
	if a, err := srv.WaitAck(ctx, f.EnvelopeID); err != nil || a.Payload != nil {
		t.Errorf("ack %+v %v", a, err)
	}

	srv.SendDisconnect("link_disabled")
	if d := raw.read(t); d.Type != "disconnect" || d.Reason != "link_disabled" {
		t.Errorf("disconnect frame %+v", d)
	}
	raw.waitClosed(t)

	raw2 := dialRaw(t, srv)
	srv.Close()
	srv.Close() // idempotent
	raw2.waitClosed(t)
	if err := srv.WaitConnected(ctx, 1); !errors.Is(err, bottest.ErrClosed) {
		t.Errorf("WaitConnected after Close: %v", err)
	}
	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{}); !errors.Is(err, bottest.ErrClosed) {
		t.Errorf("SendSlashCommand after Close: %v", err)
	}
}

// --- helpers -------------------------------------------------------------------

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func doJSON(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: not JSON: %s", req.URL, b)
	}
	return out
}

func rawCall(t *testing.T, srv *bottest.Server, method, bearer string, form url.Values) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.APIURL()+method, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return doJSON(t, req)
}

func openURL(t *testing.T, srv *bottest.Server) string {
	t.Helper()
	got := rawCall(t, srv, "apps.connections.open", srv.AppToken, nil)
	u, _ := got["url"].(string)
	if got["ok"] != true || !strings.HasPrefix(u, "ws://") || !strings.Contains(u, "/link/?ticket=") {
		t.Fatalf("apps.connections.open: %v", got)
	}
	return u
}

// rawConn is a Socket Mode connection made with gorilla directly. A reader
// goroutine answers PINGs (counting them) and queues data frames.
type rawConn struct {
	ws     *websocket.Conn
	frames chan []byte // closed when the connection ends
	pings  atomic.Int32
}

type rawFrame struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	Reason                 string          `json:"reason"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           *int            `json:"retry_attempt"`
}

// dialRaw opens a Socket Mode connection, checks hello and starts the reader.
func dialRaw(t *testing.T, srv *bottest.Server) *rawConn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(openURL(t, srv), http.Header{"Origin": {"https://api.slack.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var hello struct {
		Type           string
		NumConnections int `json:"num_connections"`
		ConnectionInfo struct {
			AppID string `json:"app_id"`
		} `json:"connection_info"`
		DebugInfo struct {
			Host string
		} `json:"debug_info"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.ConnectionInfo.AppID != srv.AppID || hello.NumConnections < 1 || hello.DebugInfo.Host == "" {
		t.Fatalf("hello %+v %v", hello, err)
	}
	c := &rawConn{ws: ws, frames: make(chan []byte, 64)}
	ws.SetPingHandler(func(data string) error {
		c.pings.Add(1)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		defer close(c.frames)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			c.frames <- data
		}
	}()
	return c
}

func (c *rawConn) read(t *testing.T) rawFrame {
	t.Helper()
	select {
	case data, ok := <-c.frames:
		if !ok {
			t.Fatal("connection closed")
		}
		var f rawFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		return f
	case <-time.After(waitLimit):
		t.Fatal("no frame")
	}
	return rawFrame{}
}

// waitClosed waits for the server to end the connection.
func (c *rawConn) waitClosed(t *testing.T) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("connection still open")
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := bottest.New(bottest.WithPingInterval(serverPing))
	ctx := ctxT(t)
	for range 3 {
		dialRaw(t, srv)
	}
	if err := srv.WaitConnected(ctx, 3); err != nil {
		t.Fatal(err)
	}
	// WaitMessage also sees messages recorded after it started waiting.
	got := make(chan bottest.Message, 1)
	go func() {
		m, _ := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Text == "later" })
		got <- m
	}()
	if _, _, err := newAPI(srv).PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("later", false)); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Text != "later" {
		t.Errorf("WaitMessage = %+v", m)
	}
	srv.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestUserGroupsAndPermalinks(t *testing.T) {
	srv := bottest.Start(t)
	api := newAPI(srv)
	ctx := ctxT(t)

	srv.AddUserGroup("S0OPS", "U0ALICE", "U0BOB")
	srv.AddUserGroup("S0EMPTY")
	if users, err := api.GetUserGroupMembersContext(ctx, "S0OPS"); err != nil || strings.Join(users, ",") != "U0ALICE,U0BOB" {
		t.Errorf("usergroups.users.list: %v %v", users, err)
	}
	if got := rawCall(t, srv, "usergroups.users.list", srv.BotToken, url.Values{"usergroup": {"S0EMPTY"}}); got["ok"] != true || fmt.Sprint(got["users"]) != "[]" {
		t.Errorf("empty group must list [] not null: %v", got)
	}
	if _, err := api.GetUserGroupMembersContext(ctx, "S0NOPE"); err == nil || err.Error() != "no_such_subteam" {
		t.Errorf("unknown group: %v", err)
	}
	if got := rawCall(t, srv, "usergroups.users.list", srv.AppToken, url.Values{"usergroup": {"S0OPS"}}); got["error"] != "not_allowed_token_type" {
		t.Errorf("app token: %v", got)
	}

	_, ts, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("card", false))
	if err != nil {
		t.Fatal(err)
	}
	_, rts, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	link, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0GENERAL", Ts: ts})
	if want := "https://fake.slack.com/archives/C0GENERAL/p" + strings.ReplaceAll(ts, ".", ""); err != nil || link != want {
		t.Errorf("permalink %q %v, want %q", link, err, want)
	}
	link, err = api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: "C0GENERAL", Ts: rts})
	if want := "https://fake.slack.com/archives/C0GENERAL/p" + strings.ReplaceAll(rts, ".", "") + "?thread_ts=" + ts + "&cid=C0GENERAL"; err != nil || link != want {
		t.Errorf("reply permalink %q %v, want %q", link, err, want)
	}
	for _, tc := range []struct{ channel, ts, want string }{
		{"C0GENERAL", "1.000001", "message_not_found"},
		{"C0GENERAL", "", "message_not_found"},
		{"C0PRIVBOT", ts, "message_not_found"},
		{"C0NOPE", ts, "channel_not_found"},
	} {
		if _, err := api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: tc.channel, Ts: tc.ts}); err == nil || err.Error() != tc.want {
			t.Errorf("permalink %s/%s: %v, want %s", tc.channel, tc.ts, err, tc.want)
		}
	}
}

func TestRemoveBotAndPostsIn(t *testing.T) {
	srv := bottest.Start(t)
	api := newAPI(srv)
	ctx := ctxT(t)
	post := func(ch, text, thread string) (string, error) {
		opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
		}
		_, ts, err := api.PostMessageContext(ctx, ch, opts...)
		return ts, err
	}

	ts1, err := post("C0GENERAL", "one", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ ch, text, thread string }{{"C0PRIVBOT", "elsewhere", ""}, {"C0GENERAL", "two", ts1}, {"C0GENERAL", "three", ""}} {
		if _, err := post(step.ch, step.text, step.thread); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0GENERAL", ts1, slack.MsgOptionText("one, edited", false)); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range srv.PostsIn("C0GENERAL") {
		texts = append(texts, m.Text)
	}
	if got := strings.Join(texts, ","); got != "one,two,three" {
		t.Errorf("PostsIn = %s", got)
	}
	if got := srv.PostsIn("C0GENERAL")[1]; got.ThreadTS != ts1 {
		t.Errorf("thread reply %+v", got)
	}
	if got := srv.PostsIn("C0NOPE"); len(got) != 0 {
		t.Errorf("PostsIn unknown channel = %+v", got)
	}

	// Kicked from a public channel: not_in_channel; from a private one:
	// channel_not_found. Inviting it back works.
	srv.RemoveBot("C0GENERAL")
	srv.RemoveBot("C0PRIVBOT")
	srv.RemoveBot("C0NOPE") // ignored
	var se slack.SlackErrorResponse
	if _, err := post("C0GENERAL", "x", ""); !errors.As(err, &se) || se.Err != "not_in_channel" {
		t.Errorf("post after kick from public: %v", err)
	}
	if _, err := post("C0GENERAL", "x", ts1); !errors.As(err, &se) || se.Err != "not_in_channel" {
		t.Errorf("thread reply after kick: %v", err)
	}
	if _, err := post("C0PRIVBOT", "x", ""); !errors.As(err, &se) || se.Err != "channel_not_found" {
		t.Errorf("post after kick from private: %v", err)
	}
	srv.AddChannel(bottest.Channel{ID: "C0GENERAL", Name: "general", BotMember: true})
	if _, err := post("C0GENERAL", "back", ""); err != nil {
		t.Errorf("post after invite: %v", err)
	}
	if n := len(srv.PostsIn("C0GENERAL")); n != 4 {
		t.Errorf("PostsIn after kick = %d messages, want 4", n)
	}
}

func TestFailNextHTTP(t *testing.T) {
	srv := bottest.Start(t)
	api := newAPI(srv)
	ctx := ctxT(t)
	srv.FailNextHTTP("chat.postMessage", http.StatusInternalServerError, 1)
	_, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false))
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != http.StatusInternalServerError {
		t.Errorf("FailNextHTTP: %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("a failed call must not post")
	}
	if c := srv.Calls()[0]; c.Status != http.StatusInternalServerError {
		t.Errorf("recorded %+v", c)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("after FailNextHTTP: %v", err)
	}
	srv.FailNextHTTP("chat.postMessage", http.StatusServiceUnavailable, 5)
	srv.FailNextHTTP("chat.postMessage", 0, 0) // cancels
	if _, _, err := api.PostMessageContext(ctx, "C0GENERAL", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("after cancelling FailNextHTTP: %v", err)
	}
}
