package notify_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/notify"
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
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	e.start()

	testenv.Eventually(e.t, "a few reconciles", func() bool { time.Sleep(30 * time.Millisecond); return true })
	if n := e.deploymentPolls(uid); n != 0 {
		t.Fatalf("polled %d times without a subscription", n)
	}
	e.subscribe(ana, "C1", "shop", "production")
	testenv.Eventually(e.t, "polling of the new subscription", func() bool { return e.deploymentPolls(uid) > 0 })

	if _, err := e.Store.Subscriptions().Unsubscribe(context.Background(), "T1", "C1", uid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a few PollEvery: the poller stops
	n := e.deploymentPolls(uid)
	time.Sleep(50 * time.Millisecond)
	if more := e.deploymentPolls(uid) - n; more != 0 {
		t.Errorf("%d polls after the subscription was removed", more)
	}
}
