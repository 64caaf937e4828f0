package notify_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

var (
	ana  = storage.Identity{Team: "T1", User: "UANA"}  // sees every stack
	ben  = storage.Identity{Team: "T1", User: "UBEN"}  // sees five staging stacks
	cora = storage.Identity{Team: "T2", User: "UCORA"} // another workspace; Cloud 66 user ana
	noel = storage.Identity{Team: "T1", User: "UNOEL"} // never linked Cloud 66
	t0   = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
)

// sent is one Enqueue call the fake Slack received.
type sent struct {
	Channel string
	Msg     chat.Message
	Err     error
}

// text is everything a person could read in the message: the fallback and
// the blocks as JSON, with Go's HTML escapes undone.
func (s sent) text() string { return s.Msg.Text + "\n" + blocksJSON(s.Msg.Blocks) }

func blocksJSON(blocks any) string {
	b, err := json.Marshal(blocks)
	if err != nil {
		return "!" + err.Error()
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// blockTexts returns the mrkdwn of sections and context blocks.
func blockTexts(blocks []slack.Block) []string {
	var out []string
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Text != nil {
				out = append(out, b.Text.Text)
			}
		case *slack.ContextBlock:
			for _, el := range b.ContextElements.Elements {
				if t, ok := el.(*slack.TextBlockObject); ok {
					out = append(out, t.Text)
				}
			}
		}
	}
	return out
}

// dm is one DM the fake Slack received.
type dm struct {
	To  storage.Identity
	Msg chat.Message
}

// fakeSlack records every Enqueue in call order (so per-channel order is
// kept) and answers asynchronously, like the bot's queue. Channels in
// cannot fail with ErrCannotPost; failN[channel] makes the next n posts
// there fail transiently; posts to a held channel wait in its queue for
// good, as behind a long Retry-After, and are neither recorded nor
// answered.
type fakeSlack struct {
	mu     sync.Mutex
	calls  []sent
	dms    []dm
	cannot map[string]bool
	failN  map[string]int
	held   map[string]int // channel -> posts waiting there
}

func newFakeSlack() *fakeSlack {
	return &fakeSlack{cannot: map[string]bool{}, failN: map[string]int{}, held: map[string]int{}}
}

func (f *fakeSlack) Enqueue(channel, threadTS string, m chat.Message, done func(string, error)) {
	f.mu.Lock()
	if _, ok := f.held[channel]; ok {
		f.held[channel]++
		f.mu.Unlock()
		return
	}
	var err error
	switch {
	case f.cannot[channel]:
		err = fmt.Errorf("%w (not_in_channel)", chat.ErrCannotPost)
	case f.failN[channel] > 0:
		f.failN[channel]--
		err = errors.New("slack: connection reset by peer")
	}
	f.calls = append(f.calls, sent{Channel: channel, Msg: m, Err: err})
	ts := fmt.Sprintf("1741082400.%06d", len(f.calls))
	f.mu.Unlock()
	if err != nil {
		ts = ""
	}
	go done(ts, err)
}

func (f *fakeSlack) DM(_ context.Context, to storage.Identity, m chat.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dms = append(f.dms, dm{To: to, Msg: m})
	return nil
}

func (f *fakeSlack) setCannot(channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cannot[channel] = true
}

// hold makes posts to channel wait in its queue from now on.
func (f *fakeSlack) hold(channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.held[channel]; !ok {
		f.held[channel] = 0
	}
}

// waiting counts the posts held in channel's queue.
func (f *fakeSlack) waiting(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[channel]
}

func (f *fakeSlack) setFail(channel string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failN[channel] = n
}

// posts returns the successful posts in channel ("" = every channel).
func (f *fakeSlack) posts(channel string) []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sent
	for _, c := range f.calls {
		if c.Err == nil && (channel == "" || c.Channel == channel) {
			out = append(out, c)
		}
	}
	return out
}

// attempts counts every Enqueue for channel, failed ones included.
func (f *fakeSlack) attempts(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Channel == channel {
			n++
		}
	}
	return n
}

func (f *fakeSlack) allDMs() []dm {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dm(nil), f.dms...)
}

// channels returns the channels with successful posts, in order, each once.
func (f *fakeSlack) channels() []string {
	var out []string
	for _, p := range f.posts("") {
		if !contains(out, p.Channel) {
			out = append(out, p.Channel)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// storesOf returns the stores of db that notify uses.
func storesOf(db *storage.DB) notify.Stores {
	return notify.Stores{Subscriptions: db.Subscriptions(), Outbox: db.Outbox(), Dedup: db.Dedup(), Watches: db.Watches()}
}

// env is one test's world: a fake Cloud 66 on a frozen clock, a real store
// on the same clock, a recording Slack and a notify Service.
type env struct {
	t      *testing.T
	c66    *cloud66test.Server
	clock  *cloud66test.Clock
	store  *storage.DB
	key    []byte // the store's sealing key
	slack  *fakeSlack
	tokens map[storage.Identity]string
	cfg    notify.Config
	svc    *notify.Service
	stop   func()
}

type option func(*notify.Config)

// fastPolling polls every few milliseconds whatever the stack count.
func fastPolling(c *notify.Config) {
	c.PollEvery = 5 * time.Millisecond
	c.PollBudgetPerHour = 100_000_000
}

func withConfig(f func(*notify.Config)) option { return option(f) }

// newEnv builds the world without running the service; see start.
func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	clock := cloud66test.NewClock(t0)
	e := &env{
		t:     t,
		clock: clock,
		c66:   cloud66test.Start(t, cloud66test.WithClock(clock), cloud66test.WithDeployDuration(3*time.Minute)),
		slack: newFakeSlack(),
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	store, err := storage.Open(storage.Options{Path: filepath.Join(t.TempDir(), "c66bot.db"), Keys: [][]byte{key}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.store, e.key = store, key
	e.tokens = map[storage.Identity]string{
		ana:  e.c66.IssueToken("ana@example.com"),
		ben:  e.c66.IssueToken("ben@example.com"),
		cora: e.c66.IssueToken("ana@example.com"),
	}
	e.cfg = notify.Config{
		Stores:     storesOf(store),
		Slack:      e.slack,
		Cloud66For: e.client,
		Cloud66URL: e.c66.URL,
		Command:    "/c66",
		Now:        clock.Now,
		// Slow by default: tests about delivery should not depend on
		// polling, which is tested on its own with fastPolling.
		PollEvery: 20 * time.Millisecond,
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.svc = notify.New(e.cfg)
	return e
}

// start runs the service until the test ends.
func (e *env) start() *env {
	e.stop = e.run(e.svc)
	e.t.Cleanup(e.stop)
	return e
}

// run starts svc.Run and returns a func that stops it and waits.
func (e *env) run(svc *notify.Service) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				e.t.Error("Run did not return after its context ended")
			}
		})
	}
}

// client is Config.Cloud66For: the person's own client, without the
// client's own retries.
func (e *env) client(_ context.Context, id storage.Identity) (notify.Cloud66, error) {
	tok, ok := e.tokens[id]
	if !ok {
		return nil, accounts.ErrNotLinked
	}
	return e.rawClient(tok), nil
}

func (e *env) rawClient(tok string) *cloud66.Client {
	c, err := cloud66.NewClient(cloud66.WithBaseURL(e.c66.URL), cloud66.WithToken(tok), cloud66.WithRetry(0, 0))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// uid is the fake's uid of a seeded stack.
func (e *env) uid(name, environment string) string {
	e.t.Helper()
	uid := e.c66.StackUID(name, environment)
	if uid == "" {
		e.t.Fatalf("no stack %s:%s", name, environment)
	}
	return uid
}

type subOpt func(*storage.Subscription)

func events(kinds ...string) subOpt { return func(s *storage.Subscription) { s.Events = kinds } }
func envFilter(v string) subOpt     { return func(s *storage.Subscription) { s.EnvFilter = v } }
func onlyFailures() subOpt          { return func(s *storage.Subscription) { s.OnlyFailures = true } }

// subscribe stores a subscription of channel by who to name:environment
// ("" name = all stacks), with the default events unless opts say
// otherwise.
func (e *env) subscribe(who storage.Identity, channel, name, environment string, opts ...subOpt) storage.Subscription {
	e.t.Helper()
	sub := storage.Subscription{
		Team:       who.Team,
		Channel:    channel,
		Events:     notify.DefaultEvents(),
		Subscriber: who,
	}
	if name != "" {
		sub.StackUID, sub.StackName, sub.Environment = e.uid(name, environment), name, environment
	}
	for _, o := range opts {
		o(&sub)
	}
	saved, _, err := e.store.Subscriptions().Subscribe(context.Background(), sub)
	if err != nil {
		e.t.Fatal(err)
	}
	return saved
}

// event is a webhook-style event from team T1 about name:environment.
func (e *env) event(kind, name, environment string) notify.Event {
	return notify.Event{
		Kind:        kind,
		StackUID:    e.uid(name, environment),
		StackName:   name,
		Environment: environment,
		GitRef:      "v2.1",
		GitHash:     "6507918abcdef",
		TriggeredBy: "ana@example.com",
		At:          e.clock.Now(),
		StartedAt:   e.clock.Now().Add(-3 * time.Minute),
		Source:      notify.SourceWebhook,
		Team:        "T1",
	}
}

func (e *env) accept(ev notify.Event) {
	e.t.Helper()
	if err := e.svc.Accept(context.Background(), ev); err != nil {
		e.t.Fatalf("Accept: %v", err)
	}
}

// redeploy starts a deployment through the fake's API with ana's token.
func (e *env) redeploy(uid, ref string) {
	e.t.Helper()
	if _, err := e.rawClient(e.tokens[ana]).Redeploy(context.Background(), uid, cloud66.RedeployRequest{GitRef: ref}); err != nil {
		e.t.Fatalf("redeploy: %v", err)
	}
}

// eventually polls cond until it holds or a few seconds pass.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// drained waits until the outbox is empty: every accepted event has been
// handled for good, including the outcome of its posts.
func (e *env) drained() {
	e.t.Helper()
	e.drainedIn(e.store)
}

func (e *env) drainedIn(store *storage.DB) {
	e.t.Helper()
	e.eventually("the outbox to drain", func() bool {
		n, err := store.Outbox().Count(context.Background())
		return err == nil && n == 0
	})
}

// waitPosts waits until channel has n successful posts and returns them.
func (e *env) waitPosts(channel string, n int) []sent {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%d posts in %s", n, channel), func() bool { return len(e.slack.posts(channel)) >= n })
	return e.slack.posts(channel)
}

// deploymentPolls counts the fake's GETs of the stack's deployments list.
func (e *env) deploymentPolls(uid string) int {
	return e.c66.RequestCount("GET", "/api/3/stacks/"+uid+"/deployments")
}

// webhookJSON is a stack webhook body as Cloud 66 documents it.
func webhookJSON(eventType, uid, name, environment string, started, finished time.Time, outcome string) []byte {
	dc := map[string]any{"triggered_by": "ana@example.com", "outcome": outcome, "started_at": started.UTC().Format(time.RFC3339)}
	if !finished.IsZero() {
		dc["finished_at"] = finished.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(map[string]any{
		"timestamp":      finished.Unix(),
		"event_type":     eventType,
		"uid":            uid,
		"name":           name,
		"environment":    environment,
		"status":         1,
		"health":         3,
		"deploy_context": dc,
	})
	return b
}
