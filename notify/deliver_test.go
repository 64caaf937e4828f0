package notify_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

func TestDeliveryMatching(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "CSHOP", "shop", "production")
	e.subscribe(ana, "CALL", "", "")
	e.subscribe(ben, "CBENALL", "", "") // ben sees staging stacks only
	e.subscribe(ana, "CSTAGING", "", "", envFilter("STAGING"))
	e.subscribe(ana, "CFAIL", "shop", "production", onlyFailures(), events(notify.AllEvents...))
	e.subscribe(ana, "CSTARTED", "shop", "production", events(notify.DeployStarted))
	e.subscribe(ana, "CSERVERS", "shop", "production", events(notify.ServerStopped, notify.ServerBack))
	e.subscribe(ana, "CPAUSED", "shop", "production")
	if _, err := e.Store.Subscriptions().PauseChannel(context.Background(), "T1", "CPAUSED", "test"); err != nil {
		t.Fatal(err)
	}
	e.subscribe(cora, "COTHER", "shop", "production") // workspace T2
	e.start()

	server := e.event(notify.ServerStopped, "shop", "production")
	server.Server = "Lion"
	otherTeam := e.event(notify.DeploySucceeded, "shop", "production")
	otherTeam.Team = "T2"
	otherTeam.StartedAt = otherTeam.StartedAt.Add(time.Second)

	tests := []struct {
		name string
		ev   notify.Event
		want []string
	}{
		{"succeeded", e.event(notify.DeploySucceeded, "shop", "production"), []string{"CALL", "CSHOP"}},
		{"failed", e.event(notify.DeployFailed, "shop", "production"), []string{"CALL", "CFAIL", "CSHOP"}},
		{"started", e.event(notify.DeployStarted, "shop", "production"), []string{"CSTARTED"}},
		{"cancelled", e.event(notify.DeployCancelled, "shop", "production"), nil},
		{"staging", e.event(notify.DeploySucceeded, "shop", "staging"), []string{"CALL", "CBENALL", "CSTAGING"}},
		{"not visible to ben", e.event(notify.DeploySucceeded, "web", "production"), []string{"CALL"}},
		{"server stopped", server, []string{"CFAIL", "CSERVERS"}},
		{"other workspace", otherTeam, []string{"COTHER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.Slack.Posts(""))
			e.accept(tt.ev)
			e.drained()
			var got []string
			for _, p := range e.Slack.Posts("")[before:] {
				got = append(got, p.Channel)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("posted to %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSameWebhookTwicePostsOnce(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "C1", "shop", "production")
	e.subscribe(ana, "C1", "", "") // a second subscription in the same channel
	e.start()

	uid := e.uid("shop", "production")
	body := webhookJSON("stack.redeploy.ok", uid, "shop", "production", t0.Add(-3*time.Minute), t0, "success")
	for range 2 {
		ev, err := notify.DecodeWebhook(body)
		if err != nil {
			t.Fatal(err)
		}
		ev.Team = "T1"
		e.accept(ev)
	}
	e.drained()
	if got := len(e.Slack.Posts("C1")); got != 1 {
		t.Fatalf("%d posts, want 1", got)
	}
	// The stack's subscription now counts as fed by webhooks (which stops
	// its polling); the "all" one cannot tell.
	subs, err := e.Store.Subscriptions().All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if seen := !s.WebhookSeenAt.IsZero(); seen != (s.StackUID == uid) {
			t.Errorf("subscription to %q: webhook seen = %v", s.StackUID, seen)
		}
	}
}

func TestBotOwnDeploymentNotPostedInItsChannel(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "CDEPLOY", "shop", "production", events(notify.DeployStarted, notify.DeploySucceeded))
	e.subscribe(ana, "COTHER", "shop", "production", events(notify.DeployStarted, notify.DeploySucceeded))
	uid := e.uid("shop", "production")
	if _, err := e.Store.Watches().Start(context.Background(), storage.Watch{
		Owner: ana, Channel: "CDEPLOY", StackUID: uid, StackName: "shop", Environment: "production", State: "deploying",
	}); err != nil {
		t.Fatal(err)
	}
	e.start()

	started := e.event(notify.DeployStarted, "shop", "production")
	started.StartedAt, started.At = t0.Add(5*time.Second), t0.Add(5*time.Second)
	e.accept(started)
	e.drained()
	if n := len(e.Slack.Posts("CDEPLOY")); n != 0 {
		t.Errorf("%d posts in the channel that started the deployment, want 0", n)
	}
	if n := len(e.Slack.Posts("COTHER")); n != 1 {
		t.Errorf("%d posts in the other channel, want 1", n)
	}
}

func TestUnpostableChannelIsPausedAndSubscribersToldOnce(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "CGONE", "shop", "production")
	e.subscribe(ana, "CGONE", "", "", onlyFailures(), events(notify.AllEvents...))
	e.subscribe(ben, "CGONE", "shop", "staging", events(notify.DeployFailed))
	e.subscribe(ana, "COK", "shop", "production", events(notify.DeployFailed))
	e.Slack.SetCannot("CGONE")
	e.start()

	e.accept(e.event(notify.DeployFailed, "shop", "production"))
	second := e.event(notify.DeployFailed, "shop", "production")
	second.StartedAt = second.StartedAt.Add(time.Minute)
	e.accept(second)
	e.drained()

	subs, err := e.Store.Subscriptions().All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if want := s.Channel == "CGONE"; s.Paused != want {
			t.Errorf("%s %q paused = %v, want %v", s.Channel, s.StackName, s.Paused, want)
		}
		if s.Channel == "CGONE" && s.PausedReason != "not_in_channel" {
			t.Errorf("paused reason %q, want not_in_channel", s.PausedReason)
		}
	}
	dms := e.Slack.Calls("dm")
	if len(dms) != 2 {
		t.Fatalf("%d DMs, want one each for ana and ben: %+v", len(dms), dms)
	}
	for _, d := range dms {
		text := d.Msg.Text + testenv.BlocksJSON(d.Msg.Blocks)
		for _, want := range []string{"<#CGONE>", "not_in_channel", "/invite @c66bot", "/c66 subscribe"} {
			if !strings.Contains(text, want) {
				t.Errorf("DM to %s lacks %q: %s", d.To.User, want, text)
			}
		}
	}
	anaDM := dms[slices.IndexFunc(dms, func(d testenv.Call) bool { return d.To == ana })]
	for _, want := range []string{"`/c66 subscribe shop:production`", "`/c66 subscribe all started succeeded failed cancelled stopped back only=failures`"} {
		if !strings.Contains(testenv.BlocksJSON(anaDM.Msg.Blocks), want) {
			t.Errorf("ana's DM lacks %s: %s", want, testenv.BlocksJSON(anaDM.Msg.Blocks))
		}
	}
	if n := len(e.Slack.Posts("COK")); n != 2 {
		t.Errorf("%d posts in the postable channel, want 2", n)
	}

	// Paused: the next event is not even tried there.
	attempts := e.Slack.Attempts("CGONE")
	third := e.event(notify.DeployFailed, "shop", "production")
	third.StartedAt = third.StartedAt.Add(2 * time.Minute)
	e.accept(third)
	e.drained()
	if got := e.Slack.Attempts("CGONE"); got != attempts {
		t.Errorf("%d more posts tried in the paused channel", got-attempts)
	}
	if len(e.Slack.Calls("dm")) != 2 {
		t.Errorf("subscribers were told again")
	}
}

func TestTransientFailureIsRetriedFromTheOutbox(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "C1", "shop", "production")
	e.subscribe(ana, "C2", "shop", "production")
	e.Slack.FailNext("C1", 1)
	e.start()

	e.accept(e.event(notify.DeploySucceeded, "shop", "production"))
	testenv.Eventually(e.t, "the failed attempt", func() bool { return e.Slack.Attempts("C1") == 1 })
	e.waitPosts("C2", 1)
	// The retry waits for its backoff on the store's clock.
	testenv.Eventually(e.t, "the retry", func() bool {
		e.Clock.Advance(5 * time.Second)
		return len(e.Slack.Posts("C1")) == 1
	})
	e.drained()
	if got := len(e.Slack.Posts("C1")); got != 1 {
		t.Errorf("%d posts in C1, want 1", got)
	}
	if got := len(e.Slack.Posts("C2")); got != 1 {
		t.Errorf("%d posts in C2, want 1 (the retry must not post again where it worked)", got)
	}
}

func TestAcceptedEventSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "C1", "shop", "production")
	// Accepted by a service that never runs, as if the process died right
	// after answering the webhook.
	e.accept(e.event(notify.DeployFailed, "shop", "production"))

	next := notify.New(e.cfg)
	e.t.Cleanup(testenv.Run(e.t, next.Run))
	posts := e.waitPosts("C1", 1)
	if !strings.Contains(posts[0].Msg.Text, "failed") {
		t.Errorf("post %q is not the failure", posts[0].Msg.Text)
	}
	e.drained()
}

func TestAcceptRefusesBadEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good := e.event(notify.DeploySucceeded, "shop", "production")

	bad := good
	bad.Kind = "deploy.exploded"
	if err := e.svc.Accept(ctx, bad); err == nil {
		t.Error("unknown kind accepted")
	}
	bad = good
	bad.StackUID = "../../etc"
	if err := e.svc.Accept(ctx, bad); err == nil {
		t.Error("hostile stack uid accepted")
	}
	if err := e.svc.Accept(ctx, good); err != nil {
		t.Errorf("good event refused: %v", err)
	}
}

// A process killed while a post waits in its channel's queue loses it not,
// and repeats nothing: on the database as the kill leaves it (a consistent
// copy taken while C1's post is done and C2's still queued), the next
// process posts C2's and only that.
func TestKilledWithAPostQueuedPostsItOnceAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.subscribe(ana, "C1", "shop", "production")
	e.subscribe(ana, "C2", "shop", "production")
	e.Slack.Hold("C2")
	e.start()
	ctx := context.Background()

	e.accept(e.event(notify.DeploySucceeded, "shop", "production"))
	e.waitPosts("C1", 1)
	testenv.Eventually(e.t, "C2's post to wait in its queue", func() bool { return e.Slack.Waiting("C2") == 1 })
	testenv.Eventually(e.t, "C1's post to be recorded", func() bool {
		items, err := e.Store.Outbox().Pending(ctx, 0)
		return err == nil && len(items) == 1 && slices.Equal(items[0].Done, []string{"T1:C1"})
	})
	killed := filepath.Join(t.TempDir(), "killed.db")
	if _, err := e.Store.BackupFile(ctx, killed); err != nil {
		t.Fatal(err)
	}

	store := e.OpenStore(storage.Options{Path: killed})
	slack := testenv.NewSlack()
	next := e.cfg
	next.Stores, next.Slack = storesOf(store), slack
	t.Cleanup(testenv.Run(t, notify.New(next).Run))
	e.drainedIn(store)
	var got []string
	for _, p := range slack.Posts("") {
		got = append(got, p.Channel)
	}
	if !slices.Equal(got, []string{"C2"}) {
		t.Errorf("after the restart the bot posted in %v, want [C2] alone", got)
	}
}
