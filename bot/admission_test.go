package bot

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/testenv"
)

// holdingRouter runs "hold" commands until release is closed, computing
// all the while (it never waits outside its CPU slot); anything else it
// answers at once.
type holdingRouter struct {
	started chan string
	release chan struct{}
}

func (r *holdingRouter) Dispatch(_ context.Context, req commands.Request) chat.Message {
	r.started <- req.Text
	if strings.HasPrefix(req.Text, "hold") {
		<-r.release
	}
	return chat.Message{Text: "ran " + req.Text}
}

func (r *holdingRouter) HandleAction(context.Context, commands.Action) (commands.ActionReply, bool) {
	return commands.ActionReply{}, false
}

func runGatedBot(t *testing.T, srv *bottest.Server, router Router, workers, queue int) {
	t.Helper()
	b := New(Config{
		API: slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.AppToken), slack.OptionAPIURL(srv.APIURL())), SlackAPIURL: srv.APIURL(),
		Router: router, Replies: NewReplier(http.DefaultClient, srv.APIURL(), nil), Logger: slog.New(slog.DiscardHandler),
		Workers: workers, Queue: queue, CommandTimeout: queueWait, ShutdownTimeout: queueWait,
		Gate: admission.NewGate(1),
	})
	t.Cleanup(testenv.Run(t, b.Run))
}

// TestAcksNeverWaitForTheCPUSlot: with the only CPU slot held by a command
// that keeps computing, every other envelope is still acked, and the
// commands behind it run once the slot is free.
func TestAcksNeverWaitForTheCPUSlot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	srv := bottest.Start(t)
	r := &holdingRouter{started: make(chan string, 64), release: make(chan struct{})}
	runGatedBot(t, srv, r, 8, 64)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{UserID: bottest.DefaultUserID, ChannelID: bottest.ChannelGeneral, Text: "hold"}); err != nil {
		t.Fatal(err)
	}
	if got := <-r.started; got != "hold" {
		t.Fatalf("started %q", got)
	}
	var ids []string
	for range 20 {
		id, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{UserID: bottest.DefaultUserID, ChannelID: bottest.ChannelGeneral, Text: "help"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := srv.WaitAck(ctx, id); err != nil {
			t.Fatalf("envelope %s not acked while the slot was held: %v", id, err)
		}
	}
	select {
	case got := <-r.started:
		t.Fatalf("%q started while the only slot was held", got)
	default:
	}
	close(r.release)
	for range ids {
		<-r.started
	}
	for _, id := range ids {
		if _, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.EnvelopeID == id && m.Text == "ran help" }); err != nil {
			t.Fatalf("no answer to %s: %v", id, err)
		}
	}
}

// TestFullQueueAnswersBusy: a command that finds every worker busy and
// the queue full is acked, and told at once that the bot is busy, instead
// of waiting.
func TestFullQueueAnswersBusy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	srv := bottest.Start(t)
	r := &holdingRouter{started: make(chan string, 8), release: make(chan struct{})}
	runGatedBot(t, srv, r, 1, 1)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	send := func(text string) string {
		id, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{UserID: bottest.DefaultUserID, ChannelID: bottest.ChannelGeneral, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	send("hold 1")
	<-r.started // the worker is busy
	send("hold 2")
	// The queue of one holds "hold 2" once the socket loop has taken it;
	// its ack says so.
	third := send("third")
	if _, err := srv.WaitAck(ctx, third); err != nil {
		t.Fatal(err)
	}
	m, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.EnvelopeID == third })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "very busy") || !strings.Contains(m.Text, "Try again") {
		t.Fatalf("reply to the command that found the queue full: %q", m.Text)
	}
	close(r.release)
	if got := <-r.started; got != "hold 2" {
		t.Fatalf("after the release, %q ran; want the queued hold 2", got)
	}
	select {
	case got := <-r.started:
		t.Fatalf("%q ran; it was refused as busy", got)
	default:
	}
}
