package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/internal/testenv"
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

// storesOf returns the stores of db that notify uses.
func storesOf(db *storage.DB) notify.Stores {
	return notify.Stores{Subscriptions: db.Subscriptions(), Outbox: db.Outbox(), Dedup: db.Dedup(), Watches: db.Watches()}
}

// env is one test's world (a fake Cloud 66 on a frozen clock, a real
// store on the same clock, a recording Slack) and a notify Service.
type env struct {
	*testenv.World
	t    *testing.T
	cfg  notify.Config
	svc  *notify.Service
	stop func()
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
	e := &env{World: testenv.New(t, t0, 3*time.Minute), t: t}
	e.Link(ana, "ana@example.com")
	e.Link(ben, "ben@example.com")
	e.Link(cora, "ana@example.com")
	e.cfg = notify.Config{
		Stores:     storesOf(e.Store),
		Slack:      e.Slack,
		Cloud66For: testenv.Cloud66For[notify.Cloud66](e.World),
		Cloud66URL: e.C66.URL,
		Command:    "/c66",
		Now:        e.Clock.Now,
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
	e.stop = testenv.Run(e.t, e.svc.Run)
	e.t.Cleanup(e.stop)
	return e
}

// uid is the fake's uid of a seeded stack.
func (e *env) uid(name, environment string) string {
	e.t.Helper()
	uid := e.C66.StackUID(name, environment)
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
	saved, _, err := e.Store.Subscriptions().Subscribe(context.Background(), sub)
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
		At:          e.Clock.Now(),
		StartedAt:   e.Clock.Now().Add(-3 * time.Minute),
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
	if _, err := e.Client(e.Tokens[ana]).Redeploy(context.Background(), uid, cloud66.RedeployRequest{GitRef: ref}); err != nil {
		e.t.Fatalf("redeploy: %v", err)
	}
}

// drained waits until the outbox is empty: every accepted event has been
// handled for good, including the outcome of its posts.
func (e *env) drained() {
	e.t.Helper()
	e.drainedIn(e.Store)
}

func (e *env) drainedIn(store *storage.DB) {
	e.t.Helper()
	testenv.Eventually(e.t, "the outbox to drain", func() bool {
		n, err := store.Outbox().Count(context.Background())
		return err == nil && n == 0
	})
}

// waitPosts waits until channel has n successful posts and returns them.
func (e *env) waitPosts(channel string, n int) []testenv.Call {
	e.t.Helper()
	testenv.Eventually(e.t, fmt.Sprintf("%d posts in %s", n, channel), func() bool { return len(e.Slack.Posts(channel)) >= n })
	return e.Slack.Posts(channel)
}

// deploymentPolls counts the fake's GETs of the stack's deployments list.
func (e *env) deploymentPolls(uid string) int {
	return e.C66.RequestCount("GET", "/api/3/stacks/"+uid+"/deployments")
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
