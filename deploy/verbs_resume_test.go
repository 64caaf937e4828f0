package deploy_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// A restart whose bot goes down mid-action is finished by the next one:
// the same card, one request, one outcome.
func TestRestartFollowedAcrossABotRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.fullStack("shop", "staging")
	res, err := e.svc.Change(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || res.Watch == nil {
		t.Fatalf("restart = %+v, %v", res, err)
	}
	w := res.Watch
	e.waitPolls(w.ID, 2)
	e.stop() // the bot goes down mid-restart

	e.Clock.Advance(4 * time.Minute)
	if got, _ := e.Store.Watches().Get(t.Context(), w.ID); got.State != storage.WatchDeploying {
		t.Fatalf("state while down = %q", got.State)
	}
	next := e.newService(envConfig{poll: fastPoll})
	t.Cleanup(testenv.Run(t, next.Run))

	e.waitState(w.ID, storage.WatchSucceeded)
	e.waitCard(w.MessageTS, "✅ *Restarted* — *shop* · staging")
	if n := len(e.Slack.Calls("post")); n != 1 {
		t.Errorf("%d posts, want the one card edited in place", n)
	}
	e.wantOneChange("/api/3/stacks/"+shop.UID+"/actions.json", `{"command":"restart"}`)
	if got := auditResults(t, e.Store, "restart.finished"); len(got) != 1 || got[0] != "succeeded" {
		t.Errorf("restart.finished = %q, want one success", got)
	}
}

// dyingStackActions is a person's client in a process that dies the moment
// Cloud 66 has accepted a stack action: the call reaches Cloud 66, and
// nothing after it runs until released.
type dyingStackActions struct {
	deploy.Cloud66
	accepted chan struct{}
	dead     chan struct{}
}

func (d *dyingStackActions) RunStackAction(ctx context.Context, uid string, req cloud66.StackActionRequest) (*cloud66.AsyncAction, error) {
	a, err := d.Cloud66.RunStackAction(ctx, uid, req)
	close(d.accepted)
	<-d.dead
	return a, err
}

// A restart whose process is killed after Cloud 66 accepted it, before the
// answer was saved, leaves a watch without an action; the next process
// finds the action by its name and time and finishes the same card.
func TestRestartKilledAfterCloud66AcceptedIsFoundAndFinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.fullStack("shop", "staging")
	dying := &dyingStackActions{accepted: make(chan struct{}), dead: make(chan struct{})}
	first := deploy.New(deploy.Config{
		Stores: storesOf(e.Store), Slack: e.Slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll,
		Cloud66For: func(ctx context.Context, id storage.Identity) (deploy.Cloud66, error) {
			c, err := e.client(ctx, id)
			dying.Cloud66 = c
			return dying, err
		},
	})
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		_, _ = first.Change(context.Background(), origin(ana, "C1", "req-dies"), shop, deploy.Change{Verb: deploy.VerbRestart})
	}()
	t.Cleanup(func() { close(dying.dead); <-returned })
	select {
	case <-dying.accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the restart never reached Cloud 66")
	}
	killed := filepath.Join(t.TempDir(), "killed.db")
	if _, err := e.Store.BackupFile(t.Context(), killed); err != nil {
		t.Fatal(err)
	}
	store := e.OpenStore(storage.Options{Path: killed})
	active, err := store.Watches().Active(t.Context())
	if err != nil || len(active) != 1 || active[0].State != storage.WatchStarting || active[0].ActionID != 0 || active[0].MessageTS == "" {
		t.Fatalf("watches the kill left = %+v, %v; want one starting, with its card and no action", active, err)
	}
	card := active[0].MessageTS
	if got := auditOf(t, store, "restart"); len(got) != 1 || got[0].Result != "requested" {
		t.Fatalf("audit of the dead process = %+v, want the restart requested", got)
	}

	slack := testenv.NewSlack()
	next := deploy.New(deploy.Config{Stores: storesOf(store), Slack: slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll, Cloud66For: e.client})
	t.Cleanup(testenv.Run(t, next.Run))
	testenv.Eventually(t, "the restart found and followed", func() bool {
		got, ok := slack.Last("update", card)
		return ok && strings.Contains(got.Text(), "🔄 *Restarting*")
	})
	e.Clock.Advance(3*time.Minute + time.Second)
	testenv.Eventually(t, "the same card finished", func() bool {
		got, ok := slack.Last("update", card)
		return ok && strings.Contains(got.Text(), "✅ *Restarted*")
	})
	w, err := store.Watches().Get(t.Context(), active[0].ID)
	if err != nil || w.State != storage.WatchSucceeded || w.ActionID == 0 {
		t.Errorf("resumed watch = %+v, %v", w, err)
	}
	if n := len(slack.Calls("post")); n != 0 {
		t.Errorf("the resumed restart posted %d new cards", n)
	}
	if got := auditOf(t, store, "restart.finished"); len(got) != 1 || got[0].Result != "succeeded" || got[0].Cloud66ActionID != w.ActionID {
		t.Errorf("restart.finished = %+v", got)
	}
	e.wantOneChange("/api/3/stacks/"+shop.UID+"/actions.json", `{"command":"restart"}`)
}

// answerLost is a person's client whose stack actions reach Cloud 66 but
// whose answer is lost on the way back, as when a connection drops after
// the request went out.
type answerLost struct{ deploy.Cloud66 }

func (a answerLost) RunStackAction(ctx context.Context, uid string, req cloud66.StackActionRequest) (*cloud66.AsyncAction, error) {
	if _, err := a.Cloud66.RunStackAction(ctx, uid, req); err != nil {
		return nil, err
	}
	return nil, &url.Error{Op: "Post", URL: "/api/3/stacks/" + uid + "/actions.json", Err: context.DeadlineExceeded}
}

// An unanswered restart is never sent again: the watcher finds its action
// among the stack's actions by name and time, and follows it to the end.
func TestUnansweredRestartIsFoundByNameAndTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stop()
	shop := e.fullStack("shop", "staging")
	// Someone else's restart from before the request does not count.
	if _, err := e.Client(e.Tokens[ben]).RunStackAction(t.Context(), shop.UID, cloud66.StackActionRequest{Command: cloud66.CommandRestart}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(3*time.Minute + time.Second)
	e.C66.ResetRequests()

	svc := deploy.New(deploy.Config{
		Stores: storesOf(e.Store), Slack: e.Slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll,
		Cloud66For: func(ctx context.Context, id storage.Identity) (deploy.Cloud66, error) {
			c, err := e.client(ctx, id)
			return answerLost{c}, err
		},
	})
	t.Cleanup(testenv.Run(t, svc.Run))
	res, err := svc.Change(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || res.Watch == nil || res.Watch.State != storage.WatchStarting || res.Watch.ActionID != 0 {
		t.Fatalf("restart without an answer = %+v, %v; want the watch kept, starting", res, err)
	}
	ts := res.Watch.MessageTS
	if first, _ := e.Slack.Last("update", ts); !strings.Contains(first.Text(), "did not answer in time") {
		t.Errorf("card after the lost answer:\n%s", first.Text())
	}
	found := e.waitState(res.Watch.ID, storage.WatchDeploying)
	acts := e.C66.Actions(shop.UID)
	mine := acts[len(acts)-1]
	if found.ActionID != int64(mine.ID) || mine.Action != cloud66test.ActionRestart || mine.User != "ana@example.com" {
		t.Fatalf("watch found action %d, want ana's restart %+v", found.ActionID, mine)
	}
	e.waitCard(ts, "🔄 *Restarting*")
	if e.C66.RequestCount("GET", "/api/3/stacks/"+shop.UID+"/actions.json") == 0 {
		t.Error("the action was not looked for in the stack's actions")
	}
	e.runOut(res.Watch.ID, storage.WatchSucceeded)
	e.waitCard(ts, "✅ *Restarted*")
	e.wantOneChange("/api/3/stacks/"+shop.UID+"/actions.json", `{"command":"restart"}`)
}

// A restart whose POST stalled until the client gave up never reached
// Cloud 66: after the grace period the watch ends as unknown and frees the
// stack, without sending it again.
func TestRestartCloud66NeverGotEndsUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withClientOptions(cloud66.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond})))
	shop := e.fullStack("shop", "staging")
	// The POST stalls past the client's timeout; the fake drops it unhandled.
	e.C66.InjectFault(cloud66test.Fault{Method: "POST", Command: "restart", Latency: time.Second, Times: 1})

	res, err := e.svc.Change(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || res.Watch == nil || res.Watch.State != storage.WatchStarting {
		t.Fatalf("restart without an answer = %+v, %v", res, err)
	}
	w := res.Watch
	e.waitCard(w.MessageTS, "⏳ *Starting*", "did not answer in time")
	e.waitPolls(w.ID, 3)
	if got, _ := e.Store.Watches().Get(t.Context(), w.ID); got.State != storage.WatchStarting {
		t.Fatalf("state before the grace period = %q", got.State)
	}
	e.Clock.Advance(3 * time.Minute)
	got := e.waitState(w.ID, storage.WatchUnknown)
	if got.Message != "Cloud 66 shows no restart for this request: it probably never reached Cloud 66. Try again if it is still needed." {
		t.Errorf("message = %q", got.Message)
	}
	e.waitCard(w.MessageTS, "⚠️ *State unknown*", "Cloud 66 shows no restart")
	if acts := e.C66.Actions(shop.UID); len(acts) != 0 {
		t.Errorf("Cloud 66 has actions %+v", acts)
	}
	if n := e.C66.RequestCount("POST", ""); n != 1 {
		t.Errorf("%d POSTs, want the one that stalled", n)
	}
	if _, err := e.Store.Watches().ActiveForStack(t.Context(), shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Error("the stack is still held")
	}
	if r := auditResults(t, e.Store, "restart.finished"); len(r) != 1 || !strings.HasPrefix(r[0], "unknown: Cloud 66 shows no restart") {
		t.Errorf("restart.finished = %q", r)
	}
}

// A deployment cancelled outside the bot (in Cloud 66's dashboard) ends its
// watch as cancelled: Cloud 66's outcome meaning says "cancel" in some
// form ("canceled by user" in the fake).
func TestDeploymentCancelledOutsideTheBotEndsCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	finished := withOnFinished(e)
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil || res.Watch == nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 1)
	running := e.newestDeployment(shop.UID)
	if _, err := e.Client(e.Tokens[ben]).CancelDeployment(t.Context(), shop.UID, running.ID); err != nil {
		t.Fatal(err)
	}
	if d := e.newestDeployment(shop.UID); !d.Cancelled() || d.Outcome.Meaning == "cancelled" {
		t.Fatalf("the fake's cancelled deployment = %+v, want a meaning other than the bare word", d.Outcome)
	}
	w := e.waitState(res.Watch.ID, storage.WatchCancelled)
	if w.CancelRequestedBy != "" || w.DeploymentID != running.ID {
		t.Errorf("watch = %+v", w)
	}
	card := e.waitCard(w.MessageTS, "⏹ *Cancelled*", "Cloud 66: Deployment cancelled")
	if strings.Contains(card.Text(), "Cancelled by") || strings.Contains(card.Text(), deploy.ActionRollback) {
		t.Errorf("card of a deployment cancelled outside the bot:\n%s", card.Text())
	}
	if r := auditResults(t, e.Store, "deploy.finished"); len(r) != 1 || r[0] != "cancelled: Deployment cancelled" {
		t.Errorf("deploy.finished = %q", r)
	}
	waitFinished(t, finished, "cancelled")
}
