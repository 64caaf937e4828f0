package bot

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// countingRouter counts the commands it runs.
type countingRouter struct {
	mu   sync.Mutex
	runs map[string]int // by text
}

func (r *countingRouter) Dispatch(_ context.Context, req commands.Request) chat.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[req.Text]++
	return chat.Message{Text: "ran " + req.Text}
}

func (r *countingRouter) HandleAction(context.Context, commands.Action) (commands.ActionReply, bool) {
	return commands.ActionReply{}, false
}

func (r *countingRouter) count(text string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[text]
}

// watchedDedup is a bot's view of the shared store: it reports every
// answer, and may hold each call until released.
type watchedDedup struct {
	DedupStore
	answers chan bool
	hold    chan struct{} // when set, each call waits for it to close
}

func (d watchedDedup) FirstTime(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if d.hold != nil {
		<-d.hold
	}
	first, err := d.DedupStore.FirstTime(ctx, key, ttl)
	d.answers <- first
	return first, err
}

// runBot runs a Bot against srv with dedup until the returned func stops it.
func runBot(t *testing.T, srv *bottest.Server, router Router, dedup DedupStore) (stop func()) {
	t.Helper()
	b := New(Config{
		API: slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.AppToken), slack.OptionAPIURL(srv.APIURL())), SlackAPIURL: srv.APIURL(),
		Router: router, Replies: NewReplier(http.DefaultClient, srv.APIURL(), nil), Logger: slog.New(slog.DiscardHandler),
		Workers: 2, Queue: 8, CommandTimeout: queueWait, ShutdownTimeout: queueWait, Dedup: dedup,
	})
	stop = testenv.Run(t, b.Run)
	t.Cleanup(stop)
	return stop
}

// dedupWorld is a fake Slack, a router, and a dedup store to share.
func dedupWorld(t *testing.T) (context.Context, *bottest.Server, *countingRouter, *storage.DedupStore) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	t.Cleanup(cancel)
	return ctx, bottest.Start(t), &countingRouter{runs: map[string]int{}}, sharedDedup(t)
}

func sharedDedup(t *testing.T) *storage.DedupStore {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	db, err := storage.Open(storage.Options{Path: filepath.Join(t.TempDir(), "c66bot.db"), Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Dedup()
}

func answer(t *testing.T, d watchedDedup) bool {
	t.Helper()
	select {
	case first := <-d.answers:
		return first
	case <-time.After(queueWait):
		t.Fatal("the envelope was never checked")
		return false
	}
}

// TestEnvelopeRedeliveredToAnotherReplicaIsHandledOnce: Slack redelivers an
// envelope it thinks went unacknowledged on any of the app's connections;
// with the dedup store shared, the replica that gets it second acks it and
// drops it.
func TestEnvelopeRedeliveredToAnotherReplicaIsHandledOnce(t *testing.T) {
	t.Parallel()
	ctx, srv, router, store := dedupWorld(t)
	a := watchedDedup{DedupStore: store, answers: make(chan bool, 4)}
	b := watchedDedup{DedupStore: store, answers: make(chan bool, 4)}

	stopA := runBot(t, srv, router, a)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	env, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{Text: "stacks"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, env); err != nil {
		t.Fatal(err)
	}
	if !answer(t, a) {
		t.Fatal("replica a found a fresh envelope seen")
	}
	stopA() // its connection goes; the next delivery reaches b
	testenv.Eventually(t, "a's connection to close", func() bool { return srv.Connections() == 0 })

	runBot(t, srv, router, b)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Redeliver(ctx, env); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, env); err != nil {
		t.Fatalf("replica b never acked the redelivery: %v", err)
	}
	if answer(t, b) {
		t.Error("replica b took the redelivered envelope for a new one")
	}
	if n := router.count("stacks"); n != 1 {
		t.Errorf("the command ran %d times, want once", n)
	}
}

// TestAckNeverWaitsForTheDedupStore: the duplicate check is a database
// round trip with a shared store, so it runs in the worker after the ack.
func TestAckNeverWaitsForTheDedupStore(t *testing.T) {
	t.Parallel()
	ctx, srv, router, store := dedupWorld(t)
	slow := watchedDedup{DedupStore: store, answers: make(chan bool, 1), hold: make(chan struct{})}
	runBot(t, srv, router, slow)
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	env, err := srv.SendSlashCommand(ctx, bottest.SlashCommand{Text: "whoami"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(ctx, env); err != nil {
		t.Fatalf("no ack while the dedup store was stuck: %v", err)
	}
	close(slow.hold)
	if !answer(t, slow) {
		t.Fatal("a fresh envelope found seen")
	}
	if _, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Text == "ran whoami" }); err != nil {
		t.Errorf("the command's reply never came: %v", err)
	}
}
