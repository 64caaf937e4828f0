package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

func TestPollAnnouncesStartedThenSucceeded(t *testing.T) {
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	e.subscribe(ana, "C1", "shop", "production", events(notify.DeployStarted, notify.DeploySucceeded))
	e.start()

	e.Clock.Advance(time.Minute)
	e.redeploy(uid, "v2.1")
	posts := e.waitPosts("C1", 1)
	if text := posts[0].Text(); !strings.Contains(text, "🚀") || !strings.Contains(text, "v2.1") || !strings.Contains(text, "Cloud 66 deployment history") {
		t.Errorf("first post is not the start: %s", text)
	}

	e.Clock.Advance(4 * time.Minute) // the fake deployment takes 3
	posts = e.waitPosts("C1", 2)
	if text := posts[1].Text(); !strings.Contains(text, "✅") || !strings.Contains(text, "deployed `v2.1`") {
		t.Errorf("second post is not the success: %s", text)
	}
	// Many more polls change nothing.
	polls := e.deploymentPolls(uid)
	testenv.Eventually(e.t, "more polls", func() bool { return e.deploymentPolls(uid) > polls+5 })
	e.drained()
	if n := len(e.Slack.Posts("C1")); n != 2 {
		t.Errorf("%d posts, want 2", n)
	}
}

func TestPollDoesNotAnnounceHistory(t *testing.T) {
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	// A deployment that starts and ends before anyone subscribes, within
	// the last hour.
	e.Clock.Advance(time.Minute)
	e.redeploy(uid, "old")
	e.Clock.Advance(9 * time.Minute)
	e.subscribe(ana, "C1", "shop", "production", events(notify.AllEvents...))
	e.start()

	testenv.Eventually(e.t, "several polls", func() bool { return e.deploymentPolls(uid) >= 5 })
	e.drained()
	if n := len(e.Slack.Posts("C1")); n != 0 {
		t.Fatalf("%d posts about history: %s", n, e.Slack.Posts("C1")[0].Text())
	}

	e.Clock.Advance(time.Second)
	e.redeploy(uid, "new")
	e.Clock.Advance(4 * time.Minute)
	posts := e.waitPosts("C1", 1)
	if text := posts[0].Text(); !strings.Contains(text, "new") || strings.Contains(text, "old") {
		t.Errorf("announced %s, want only the new deployment", text)
	}
}

func TestWebhookAndPollOfOneDeploymentPostOnce(t *testing.T) {
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	e.subscribe(ana, "C1", "shop", "production")
	e.start()

	e.Clock.Advance(time.Minute)
	started := e.Clock.Now()
	e.redeploy(uid, "v2.1")
	e.Clock.Advance(4 * time.Minute)
	// Polling sees the finished deployment first…
	e.waitPosts("C1", 1)

	// …then Cloud 66's webhook about the same deployment arrives.
	ev, err := notify.DecodeWebhook(webhookJSON("stack.redeploy.ok", uid, "shop", "production", started, started.Add(3*time.Minute), "success"))
	if err != nil {
		t.Fatal(err)
	}
	ev.Team = "T1"
	e.accept(ev)
	e.drained()
	if n := len(e.Slack.Posts("C1")); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
}

func TestWebhookFreshStackIsNotPolled(t *testing.T) {
	e := newEnv(t, fastPolling, withConfig(func(c *notify.Config) { c.WebhookFresh = time.Hour }))
	shop, web := e.uid("shop", "production"), e.uid("web", "production")
	sub := e.subscribe(ana, "C1", "shop", "production")
	e.subscribe(ana, "C1", "web", "production")
	if err := e.Store.Subscriptions().MarkWebhookSeen(context.Background(), sub.ID, t0); err != nil {
		t.Fatal(err)
	}
	e.start()

	testenv.Eventually(e.t, "polls of the other stack", func() bool { return e.deploymentPolls(web) >= 10 })
	if n := e.deploymentPolls(shop); n != 0 {
		t.Fatalf("the stack with fresh webhooks was polled %d times", n)
	}

	// Webhooks stop arriving: polling takes over.
	e.Clock.Advance(time.Hour)
	testenv.Eventually(e.t, "polls once the webhooks are stale", func() bool { return e.deploymentPolls(shop) > 0 })
}

func TestThrottleDoesNotStopThePoller(t *testing.T) {
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	e.subscribe(ana, "C1", "shop", "production")
	e.C66.InjectFault(cloud66test.Fault{
		PathPrefix: "/api/3/stacks/" + uid + "/deployments",
		Method:     http.MethodGet,
		Status:     http.StatusServiceUnavailable,
		Error:      "throttled",
		RetryAfter: "1",
		Times:      1,
	})
	e.start()

	e.Clock.Advance(time.Minute)
	e.redeploy(uid, "v2.1")
	e.Clock.Advance(4 * time.Minute)
	e.waitPosts("C1", 1)
	throttled := 0
	for _, r := range e.C66.Requests() {
		if r.Status == http.StatusServiceUnavailable {
			throttled++
		}
	}
	if throttled != 1 {
		t.Errorf("%d throttled requests, want 1", throttled)
	}
}

func TestPollFallsBackToAnotherSubscriber(t *testing.T) {
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	// noel subscribed first but never linked Cloud 66; ana's token polls.
	e.subscribe(noel, "C1", "shop", "production")
	e.Clock.Advance(time.Second)
	e.subscribe(ana, "C2", "shop", "production")
	e.start()

	e.Clock.Advance(time.Minute)
	e.redeploy(uid, "v2.1")
	e.Clock.Advance(4 * time.Minute)
	e.waitPosts("C1", 1)
	e.waitPosts("C2", 1)
}

func TestPollFollowsSubscriptionChanges(t *testing.T) {
	lists := &listCounter{}
	e := newEnv(t, fastPolling, withConfig(lists.count))
	uid := e.uid("shop", "production")
	pollers := watchPollers(e.svc)
	e.start()

	pollers.waitPasses(t, 3)
	for _, polled := range pollers.passesSince(0) {
		if len(polled) != 0 {
			t.Fatalf("polling %v without a subscription", polled)
		}
	}
	if n := e.deploymentPolls(uid); n != 0 {
		t.Fatalf("polled %d times without a subscription", n)
	}
	e.subscribe(ana, "C1", "shop", "production")
	testenv.Eventually(e.t, "polling of the new subscription", func() bool { return e.deploymentPolls(uid) > 0 })

	if _, err := e.Store.Subscriptions().Unsubscribe(context.Background(), "T1", "C1", uid); err != nil {
		t.Fatal(err)
	}
	// The poller stops, and the passes after that start no other.
	testenv.Eventually(e.t, "the poller to stop", func() bool { return pollers.isStopped(uid) })
	n, pass := lists.of(uid), pollers.passCount()
	pollers.waitPasses(t, pass+3)
	for _, polled := range pollers.passesSince(pass) {
		if slices.Contains(polled, uid) {
			t.Fatalf("polling %v after the subscription was removed", polled)
		}
	}
	if more := lists.of(uid) - n; more != 0 {
		t.Errorf("%d polls after the subscription was removed", more)
	}
}

// pollerLog records what notify's test hooks tell of its pollers: the
// stacks each reconcile pass left polled, and the stacks whose poller has
// stopped.
type pollerLog struct {
	mu      sync.Mutex
	passes  [][]string
	stopped map[string]bool
}

// watchPollers hooks a pollerLog into svc, which must not run yet.
func watchPollers(svc *notify.Service) *pollerLog {
	p := &pollerLog{stopped: map[string]bool{}}
	notify.OnReconcile(svc, func(polled []string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.passes = append(p.passes, polled)
	})
	notify.OnPollerDone(svc, func(uid string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.stopped[uid] = true
	})
	return p
}

func (p *pollerLog) passCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.passes)
}

// passesSince returns what the passes after the first n left polled.
func (p *pollerLog) passesSince(n int) [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.passes[n:])
}

// waitPasses waits until n reconcile passes have run in all.
func (p *pollerLog) waitPasses(t *testing.T, n int) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d reconcile passes", n), func() bool { return p.passCount() >= n })
}

func (p *pollerLog) isStopped(uid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped[uid]
}

// listCounter counts the deployment lists notify asks its clients for, per
// stack, as they are asked: unlike the fake's request log, which a request
// abandoned on the wire may still reach later, a count that stays put once
// the poller has stopped.
type listCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// count is a Config option wrapping Config.Cloud66For's clients.
func (l *listCounter) count(c *notify.Config) {
	clients := c.Cloud66For
	c.Cloud66For = func(ctx context.Context, id storage.Identity) (notify.Cloud66, error) {
		client, err := clients(ctx, id)
		if err != nil {
			return nil, err
		}
		return countingClient{client, l}, nil
	}
}

func (l *listCounter) of(uid string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[uid]
}

type countingClient struct {
	notify.Cloud66
	lists *listCounter
}

func (c countingClient) ListDeploymentsPage(ctx context.Context, uid string, page int) ([]cloud66.Deployment, cloud66.Pagination, error) {
	c.lists.mu.Lock()
	if c.lists.n == nil {
		c.lists.n = map[string]int{}
	}
	c.lists.n[uid]++
	c.lists.mu.Unlock()
	return c.Cloud66.ListDeploymentsPage(ctx, uid, page)
}
