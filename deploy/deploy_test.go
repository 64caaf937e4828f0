package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

func TestProductionNeedsConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "production")

	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), shop, deploy.Params{Ref: "v2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Watch != nil || res.Confirm == nil {
		t.Fatalf("Deploy to production = %+v, want a confirmation", res)
	}
	cf := res.Confirm
	if cf.Kind != "deploy" || cf.IntentID == "" || cf.Params.Ref != "v2.1" || cf.Stack.UID != shop.UID {
		t.Errorf("confirmation = %+v", cf)
	}
	if want := e.liveHash(shop.UID); want == "" || cf.LiveHash != want {
		t.Errorf("LiveHash = %q, want the is_live hash %q", cf.LiveHash, want)
	}
	if cf.LiveRef != "main" {
		t.Errorf("LiveRef = %q, want main", cf.LiveRef)
	}
	if !cf.ExpiresAt.Equal(t0.Add(storage.IntentTTL)) {
		t.Errorf("ExpiresAt = %v", cf.ExpiresAt)
	}
	if n := e.C66.ActionCount(); n != 0 {
		t.Fatalf("%d deployments sent before confirmation", n)
	}

	// Someone else's click does nothing and leaves the intent usable.
	if _, err := e.svc.Confirm(ctx, cf.IntentID, ben); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("Confirm by ben: %v, want ErrNotYours", err)
	}
	if n := e.C66.ActionCount(); n != 0 {
		t.Fatalf("ben's click sent %d deployments", n)
	}

	w, err := e.svc.Confirm(ctx, cf.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	if w.State != "deploying" || w.ActionID == 0 || w.MessageTS == "" {
		t.Errorf("confirmed watch = %+v", w)
	}
	if !strings.HasSuffix(w.UserReference, ":req-1") {
		t.Errorf("user_reference %q does not name the original request", w.UserReference)
	}
	if n := e.C66.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d after confirming, want 1", n)
	}

	if _, err := e.svc.Confirm(ctx, cf.IntentID, ana); !errors.Is(err, deploy.ErrIntentGone) {
		t.Fatalf("second Confirm: %v, want ErrIntentGone", err)
	}
	if n := e.C66.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d after a second click, want 1", n)
	}
}

func TestConcurrentConfirmsDeployOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), e.stack("web", "production"), deploy.Params{})
	if err != nil || res.Confirm == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		started, gone   int
		unexpectedError []error
	)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				started++
			case errors.Is(err, deploy.ErrIntentGone):
				gone++
			default:
				unexpectedError = append(unexpectedError, err)
			}
		}()
	}
	wg.Wait()
	if started != 1 || gone != 9 || len(unexpectedError) > 0 {
		t.Fatalf("started %d, gone %d, errors %v; want 1 and 9", started, gone, unexpectedError)
	}
	if n := e.C66.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d, want exactly 1", n)
	}
}

func TestIntentExpiresAndAbort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "production")

	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(storage.IntentTTL + time.Second)
	if _, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana); !errors.Is(err, storage.ErrIntentExpired) || !errors.Is(err, deploy.ErrIntentExpired) {
		t.Fatalf("Confirm after expiry: %v, want ErrIntentExpired", err)
	}

	res, err = e.svc.Deploy(ctx, origin(ana, "C1", "req-2"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Abort(ctx, res.Confirm.IntentID, ben); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("Abort by ben: %v, want ErrNotYours", err)
	}
	in, err := e.svc.Abort(ctx, res.Confirm.IntentID, ana)
	if err != nil || in.StackUID != shop.UID {
		t.Fatalf("Abort = %+v, %v", in, err)
	}
	if _, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana); !errors.Is(err, deploy.ErrIntentGone) {
		t.Fatalf("Confirm after Abort: %v, want ErrIntentGone", err)
	}
	if n := e.C66.ActionCount(); n != 0 {
		t.Fatalf("ActionCount = %d, want 0", n)
	}
	if !auditHas(t, e.Store, "deploy.abort", "aborted") || !auditHas(t, e.Store, "deploy.confirm", "refused: expired") {
		t.Error("abort or expired confirm not audited")
	}
}

func TestStagingDeploysToSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), shop, deploy.Params{Ref: "v2.1", Strategy: "serial"})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Watch
	if w == nil || res.Confirm != nil {
		t.Fatalf("Deploy to staging = %+v, want a watch", res)
	}
	if w.State != "deploying" || w.ActionID == 0 || w.MessageTS == "" || w.Queued {
		t.Errorf("watch = %+v", w)
	}
	posts := e.Slack.Calls("post")
	if len(posts) != 1 || posts[0].Channel != "C1" || !strings.Contains(posts[0].Text(), "Starting") || !posts[0].Msg.InChannel {
		t.Fatalf("posts = %+v, want one Starting card in C1", posts)
	}
	e.waitCard(w.MessageTS, "🚀", "Deploying")

	// The request Cloud 66 got.
	var body string
	for _, r := range e.C66.Requests() {
		if r.Method == http.MethodPost {
			body = string(r.Body)
		}
	}
	for _, want := range []string{`"git_ref":"v2.1"`, `"deploy_strategy":"serial"`, `"user_reference":"c66bot:T1:UANA:C1:req-1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("redeploy body %s lacks %s", body, want)
		}
	}

	e.waitPolls(w.ID, 2)
	e.Clock.Advance(3*time.Minute + time.Second)
	got := e.waitState(w.ID, "succeeded")
	dep := e.newestDeployment(shop.UID)
	if got.GitHash != dep.GitHash || got.DeploymentID != dep.ID {
		t.Errorf("watch hash/id = %s/%d, want %s/%d", got.GitHash, got.DeploymentID, dep.GitHash, dep.ID)
	}
	card := e.waitCard(w.MessageTS, "✅", "Deployed", "*Git hash*\\n`"+dep.GitHash[:7]+"`", "3 min 00 s")
	if !strings.HasPrefix(card.Msg.Text, "✅ shop · staging deployed v2.1 ("+dep.GitHash[:7]+") in 3 min 00 s") {
		t.Errorf("fallback text = %q", card.Msg.Text)
	}
	testenv.Eventually(t, "Cloud 66's message in the thread", func() bool {
		th, ok := e.Slack.Last("thread", w.MessageTS)
		return ok && strings.Contains(th.Text(), "Completed successfully")
	})
	if len(e.Slack.Calls("post")) != 1 {
		t.Error("the card was posted again instead of edited")
	}
	if e.posts() != 1 {
		t.Errorf("%d redeploy POSTs, want 1", e.posts())
	}
	// The stack is free again.
	if _, err := e.Store.Watches().ActiveForStack(ctx, shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("stack still claimed: %v", err)
	}
	if !auditHas(t, e.Store, "deploy", "requested") || !auditHas(t, e.Store, "deploy.finished", "succeeded") {
		t.Error("start or outcome not audited")
	}
}

func TestFailedDeploymentMentionsRequester(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.stack("shop", "staging")
	e.C66.SetDeployOutcome(shop.UID, false, "Build failed: tests")

	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "req-1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 1)
	e.Clock.Advance(4 * time.Minute)
	e.waitState(res.Watch.ID, "failed")
	e.waitCard(res.Watch.MessageTS, "❌", "Deployment failed", "Build failed: tests")
	testenv.Eventually(t, "failure in the thread", func() bool {
		th, ok := e.Slack.Last("thread", res.Watch.MessageTS)
		return ok && strings.Contains(th.Text(), "<@UANA> Cloud 66: Build failed: tests")
	})
}

func TestQueuedDeploymentIsFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	// Someone deploys from Cloud 66 directly, so the bot's deploy queues.
	if _, err := e.Client(e.Tokens[ben]).Redeploy(ctx, shop.UID, cloud66.RedeployRequest{}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	w := res.Watch
	// Cloud 66 answers queued: true together with the action's id (as its
	// docs show); the action has not started, so the card says queued.
	if w.State != "queued" || !w.Queued || w.ActionID == 0 {
		t.Fatalf("watch = %+v, want queued with its action", w)
	}
	e.waitCard(w.MessageTS, "Queued behind the running deployment", "queued this deployment behind the deployment already running")

	e.waitPolls(w.ID, 2)
	if got := e.waitState(w.ID, "queued"); got.StartedAt != (time.Time{}) {
		t.Errorf("a queued deployment that has not started shows a start: %+v", got)
	}
	e.Clock.Advance(3 * time.Minute) // ben's deployment ends; the bot's starts
	started := e.waitState(w.ID, "deploying")
	if started.ActionID != w.ActionID || !started.StartedAt.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("started watch = %+v", started)
	}
	e.waitCard(w.MessageTS, "🚀", "Deploying")
	if n := e.C66.RequestCount("GET", fmt.Sprintf("/api/3/stacks/%s/actions/%d.json", shop.UID, w.ActionID)); n < 2 {
		t.Errorf("the queued deployment's action was polled %d times", n)
	}

	e.waitPolls(w.ID, 1)
	e.Clock.Advance(3 * time.Minute)
	e.waitState(w.ID, "succeeded")
	e.waitCard(w.MessageTS, "✅", "3 min 00 s")
	if e.C66.ActionCount() != 2 {
		t.Errorf("ActionCount = %d, want 2 (ben's and the bot's)", e.C66.ActionCount())
	}
}

func TestOneDeploymentPerStack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Deploy(ctx, origin(ben, "C2", "req-2"), shop, deploy.Params{})
	var busy *deploy.BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("second Deploy: %v, want *BusyError", err)
	}
	wantLink := "https://slack.com/archives/C1/p" + strings.ReplaceAll(res.Watch.MessageTS, ".", "")
	if busy.Link != wantLink || busy.Watch.ID != res.Watch.ID || busy.Watch.Owner != ana {
		t.Errorf("BusyError = %+v, link %q; want link %q", busy.Watch, busy.Link, wantLink)
	}
	if !strings.Contains(busy.Error(), "shop:staging") {
		t.Errorf("BusyError text %q", busy.Error())
	}
	if e.C66.ActionCount() != 1 {
		t.Errorf("ActionCount = %d, want 1", e.C66.ActionCount())
	}
	if !auditHas(t, e.Store, "deploy", "refused: already deploying") {
		t.Error("busy refusal not audited")
	}
}

func TestLocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	l, err := e.svc.Lock(ctx, origin(ana, "C1", "r1"), shop, "testing the <!channel> migration")
	if err != nil || l.Owner != ana || !l.Since.Equal(t0) {
		t.Fatalf("Lock = %+v, %v", l, err)
	}
	// Ben can neither lock nor deploy.
	var le *deploy.LockedError
	if _, err := e.svc.Lock(ctx, origin(ben, "C1", "r2"), shop, "mine"); !errors.As(err, &le) {
		t.Fatalf("ben's Lock: %v, want *LockedError", err)
	}
	_, err = e.svc.Deploy(ctx, origin(ben, "C1", "r3"), shop, deploy.Params{})
	if !errors.As(err, &le) {
		t.Fatalf("ben's Deploy: %v, want *LockedError", err)
	}
	if want := "shop:staging is locked by UANA since 2025-03-04 10:00 UTC: testing the <!channel> migration"; err.Error() != want {
		t.Errorf("LockedError = %q, want %q", err.Error(), want)
	}
	if e.C66.ActionCount() != 0 {
		t.Fatal("a locked stack was deployed")
	}

	// Re-locking updates the reason and keeps Since.
	e.Clock.Advance(time.Minute)
	l, err = e.svc.Lock(ctx, origin(ana, "C1", "r4"), shop, "db migration")
	if err != nil || l.Reason != "db migration" || !l.Since.Equal(t0) {
		t.Fatalf("re-Lock = %+v, %v", l, err)
	}
	locks, err := e.svc.Locks(ctx, "T1")
	if err != nil || len(locks) != 1 || locks[0].Reason != "db migration" {
		t.Fatalf("Locks = %+v, %v", locks, err)
	}

	// The owner deploys through her own lock.
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r5"), shop, deploy.Params{})
	if err != nil || res.Watch == nil {
		t.Fatalf("ana's Deploy = %+v, %v", res, err)
	}

	// Ben's unlock needs confirmation; ConfirmUnlock is his alone and DMs ana.
	ur, err := e.svc.Unlock(ctx, origin(ben, "C1", "r6"), shop)
	if err != nil || ur.Released != nil || ur.Confirm == nil || ur.Confirm.Lock == nil || ur.Confirm.Lock.Owner != ana {
		t.Fatalf("ben's Unlock = %+v, %v", ur, err)
	}
	if _, err := e.svc.ConfirmUnlock(ctx, ur.Confirm.IntentID, ana); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("ConfirmUnlock by ana: %v, want ErrNotYours", err)
	}
	released, err := e.svc.ConfirmUnlock(ctx, ur.Confirm.IntentID, ben)
	if err != nil || released.Owner != ana {
		t.Fatalf("ConfirmUnlock = %+v, %v", released, err)
	}
	dms := e.Slack.Calls("dm")
	if len(dms) != 1 || dms[0].User != "UANA" || !strings.Contains(dms[0].Text(), "<@UBEN> removed your lock on *shop* · staging") {
		t.Fatalf("DMs = %+v", dms)
	}
	if _, err := e.svc.Unlock(ctx, origin(ben, "C1", "r7"), shop); !errors.Is(err, deploy.ErrNotLocked) {
		t.Fatalf("Unlock of a free stack: %v, want ErrNotLocked", err)
	}

	// Your own lock goes at once.
	if _, err := e.svc.Lock(ctx, origin(ben, "C1", "r8"), shop, ""); err != nil {
		t.Fatal(err)
	}
	ur, err = e.svc.Unlock(ctx, origin(ben, "C1", "r9"), shop)
	if err != nil || ur.Released == nil || ur.Confirm != nil {
		t.Fatalf("own Unlock = %+v, %v", ur, err)
	}
	for _, action := range []string{"lock", "unlock", "unlock.force"} {
		if !auditHas(t, e.Store, action, "") {
			t.Errorf("%s not audited", action)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	if _, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r0"), shop); !errors.Is(err, deploy.ErrNothingRunning) {
		t.Fatalf("RequestCancel on an idle stack: %v, want ErrNothingRunning", err)
	}
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r2"), shop)
	if err != nil || cf.Running == nil || cf.Kind != "cancel" {
		t.Fatalf("RequestCancel = %+v, %v", cf, err)
	}
	if _, err := e.svc.ConfirmCancel(ctx, cf.IntentID, ben); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("ConfirmCancel by ben: %v", err)
	}
	if n := e.C66.RequestCount("DELETE", ""); n != 0 {
		t.Fatalf("%d DELETEs before confirmation", n)
	}
	dep, err := e.svc.ConfirmCancel(ctx, cf.IntentID, ana)
	if err != nil || dep.ID != cf.Running.ID || !dep.Cancelled() {
		t.Fatalf("ConfirmCancel = %+v, %v", dep, err)
	}
	if n := e.C66.RequestCount("DELETE", "/api/3/stacks/"+shop.UID+"/deployments/"); n != 1 {
		t.Fatalf("%d DELETEs, want 1", n)
	}
	w := e.waitState(res.Watch.ID, "cancelled")
	if w.CancelRequestedBy != "UANA" {
		t.Errorf("CancelRequestedBy = %q", w.CancelRequestedBy)
	}
	e.waitCard(res.Watch.MessageTS, "⏹", "Cancelled", "Cancelled by <@UANA>")
	// The note and Cloud 66's own message race; either may come first.
	asked := false
	for _, m := range e.Slack.Calls("thread") {
		asked = asked || strings.Contains(m.Text(), "<@UANA> asked Cloud 66 to cancel")
	}
	if !asked {
		t.Errorf("thread = %+v", e.Slack.Calls("thread"))
	}
	if !auditHas(t, e.Store, "cancel.confirm", "cancel requested") {
		t.Error("cancel not audited")
	}
}

func TestTransientErrorsAndThrottlingDoNotEndWatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.C66.Fail5xx(4)
	e.C66.InjectFault(cloud66test.Fault{Status: http.StatusServiceUnavailable, Error: "throttled", RetryAfter: "0", Times: 3})
	// The 5xx are used up first (the fake answers with the first matching
	// fault), then the throttle.
	testenv.Eventually(t, "the faults to be used up", func() bool {
		n := 0
		for _, r := range e.C66.Requests() {
			if r.Method == http.MethodGet && (r.Status == 500 || r.Status == 503) {
				n++
			}
		}
		return n == 7
	})
	if w, _ := e.Store.Watches().Get(t.Context(), res.Watch.ID); w.State != "deploying" {
		t.Fatalf("state after faults = %q, want deploying", w.State)
	}
	e.Clock.Advance(4 * time.Minute)
	e.waitState(res.Watch.ID, "succeeded")
	if e.posts() != 1 {
		t.Errorf("%d redeploy POSTs, want 1", e.posts())
	}
}

func TestRevokedTokenEndsWatchAsUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.C66.Revoke(e.Tokens[ana])
	e.waitState(res.Watch.ID, "unknown")
	e.waitCard(res.Watch.MessageTS, "⚠️", "State unknown", "expired or was revoked")
	testenv.Eventually(t, "the owner to be told", func() bool {
		c, ok := e.Slack.Last("ephemeral", "")
		return ok && c.Channel == "C1" && c.User == "UANA" && strings.Contains(c.Text(), "`/c66 login`")
	})
}

func TestHardTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDuration(3*time.Hour))
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 1)
	e.Clock.Advance(2*time.Hour + time.Minute)
	w := e.waitState(res.Watch.ID, "unknown")
	if !strings.Contains(w.Message, "after 2 h 00 min") {
		t.Errorf("message = %q", w.Message)
	}
	e.waitCard(res.Watch.MessageTS, "⚠️", "State unknown", "Check it in Cloud 66", e.C66.URL+"/stacks/"+shop.UID)
	if _, err := e.Store.Watches().ActiveForStack(t.Context(), shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Error("timed-out watch still holds the stack")
	}
}

func TestWatchdogPostsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDuration(time.Hour))
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 1)
	e.Clock.Advance(21 * time.Minute)
	e.waitPolls(res.Watch.ID, 3)
	e.Clock.Advance(5 * time.Minute)
	e.waitPolls(res.Watch.ID, 3)

	var dogs []testenv.Call
	for _, c := range e.Slack.Calls("thread") {
		if strings.Contains(c.Text(), "Still deploying") {
			dogs = append(dogs, c)
		}
	}
	if len(dogs) != 1 || !strings.Contains(dogs[0].Text(), "after 21 min") || dogs[0].TS != res.Watch.MessageTS {
		t.Fatalf("watchdog posts = %+v, want one after 21 min", dogs)
	}
	if w, _ := e.Store.Watches().Get(t.Context(), res.Watch.ID); !w.WatchdogPosted || w.State != "deploying" {
		t.Errorf("watch = %+v", w)
	}
}

func TestRestartResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 2)
	e.stop() // the bot goes down mid-deploy

	e.Clock.Advance(4 * time.Minute)
	if w, _ := e.Store.Watches().Get(t.Context(), res.Watch.ID); w.State != "deploying" {
		t.Fatalf("state while down = %q", w.State)
	}
	svc2 := e.newService(envConfig{poll: fastPoll})
	stop2 := testenv.Run(t, svc2.Run)
	t.Cleanup(stop2)

	e.waitState(res.Watch.ID, "succeeded")
	e.waitCard(res.Watch.MessageTS, "✅")
	if n := len(e.Slack.Calls("post")); n != 1 {
		t.Errorf("%d posts, want the one card edited in place", n)
	}
	if e.posts() != 1 {
		t.Errorf("%d redeploy POSTs, want 1", e.posts())
	}
}

// A restart with several deployments in flight spreads their first polls
// over one poll interval instead of asking Cloud 66 about all at once.
func TestRestartSpreadsTheFirstPolls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for _, name := range []string{"shop", "blog", "api", "search"} {
		res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r-"+name), e.stack(name, "staging"), deploy.Params{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Watch.ID)
	}
	for _, id := range ids {
		e.waitPolls(id, 1)
	}
	e.stop()

	interval := time.Hour // no second poll comes while the test looks
	var mu sync.Mutex
	var waits []time.Duration
	svc2 := e.newService(envConfig{poll: deploy.PollConfig{Initial: interval, Max: interval, BudgetPerHour: 10_000_000}})
	deploy.SetSleep(svc2, func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	})
	t.Cleanup(testenv.Run(t, svc2.Run))
	testenv.Eventually(t, "every resumed watcher to wait for its first poll", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(waits) == len(ids)
	})
	mu.Lock()
	got := slices.Sorted(slices.Values(waits))
	mu.Unlock()
	want := []time.Duration{0, interval / 4, interval / 2, 3 * interval / 4}
	if !slices.Equal(got, want) {
		t.Errorf("first waits = %v, want %v", got, want)
	}
}

func TestCannotPostFallsBackToResponseURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Slack.SetCannot("C9")
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C9", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Watch.MessageTS != "" {
		t.Fatalf("MessageTS = %q, want none", res.Watch.MessageTS)
	}
	// One message, the card, in the channel: it says itself why it won't
	// move and how to fix that, and promises no updates.
	rs := e.Slack.Calls("respond")
	if len(rs) != 1 || rs[0].URL != hooks || !rs[0].Msg.InChannel || !strings.Contains(rs[0].Text(), "Starting") {
		t.Fatalf("responses = %+v, want the card in channel only", rs)
	}
	for _, want := range []string{"I'm not in this channel, so this message won't change as it goes", "/invite @c66bot"} {
		if !strings.Contains(rs[0].Text(), want) {
			t.Errorf("card lacks %q: %s", want, rs[0].Text())
		}
	}
	if strings.Contains(rs[0].Text(), "keep this channel posted") {
		t.Errorf("card promises updates: %s", rs[0].Text())
	}
	e.waitPolls(res.Watch.ID, 2)
	if n := len(e.Slack.Calls("respond")); n != 1 {
		t.Fatalf("%d responses while deploying; only the result may use the response_url", n)
	}
	e.Clock.Advance(4 * time.Minute)
	e.waitState(res.Watch.ID, "succeeded")
	testenv.Eventually(t, "the result through the response_url", func() bool {
		rs := e.Slack.Calls("respond")
		return len(rs) == 2 && rs[1].Msg.InChannel && strings.Contains(rs[1].Text(), "✅")
	})
	if n := len(e.Slack.Calls("update")) + len(e.Slack.Calls("thread")); n != 0 {
		t.Errorf("%d updates or thread posts without a message to edit", n)
	}
}

func TestRefusedRedeployFreesStack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	e.C66.InjectFault(cloud66test.Fault{Method: "POST", Status: http.StatusConflict, Description: "Stack is busy", Times: 1})

	_, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	if !errors.Is(err, cloud66.ErrConflict) {
		t.Fatalf("Deploy: %v, want ErrConflict", err)
	}
	posts := e.Slack.Calls("post")
	if len(posts) != 1 {
		t.Fatalf("posts = %+v", posts)
	}
	card := e.waitCard(posts[0].TS, "❌", "Cloud 66 refused the deployment", "Stack is busy")
	if strings.Contains(card.Text(), "Duration") && strings.Contains(card.Text(), "action") {
		t.Errorf("refused card claims an action: %s", card.Text())
	}
	if _, err := e.Store.Watches().ActiveForStack(ctx, shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("refused deploy still holds the stack")
	}
	if _, err := e.svc.Deploy(ctx, origin(ana, "C1", "r2"), shop, deploy.Params{}); err != nil {
		t.Fatalf("deploy after a refusal: %v", err)
	}
}

func TestUnansweredRedeployIsResolved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withClientOptions(cloud66.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond})))
	shop := e.stack("shop", "staging")
	// The POST stalls past the client's timeout; the fake drops it unhandled.
	e.C66.InjectFault(cloud66test.Fault{Method: "POST", Latency: time.Second, Times: 1})

	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatalf("Deploy without an answer: %v, want the watch kept", err)
	}
	if res.Watch.State != "starting" || res.Watch.ActionID != 0 {
		t.Fatalf("watch = %+v", res.Watch)
	}
	e.waitCard(res.Watch.MessageTS, "Starting", "did not answer in time")
	e.waitPolls(res.Watch.ID, 3)
	if w, _ := e.Store.Watches().Get(t.Context(), res.Watch.ID); w.State != "starting" {
		t.Fatalf("state before the grace period = %q", w.State)
	}
	e.Clock.Advance(3 * time.Minute)
	w := e.waitState(res.Watch.ID, "unknown")
	if !strings.Contains(w.Message, "never reached Cloud 66") {
		t.Errorf("message = %q", w.Message)
	}
	if e.C66.ActionCount() != 0 {
		t.Errorf("ActionCount = %d", e.C66.ActionCount())
	}
	if _, err := e.Store.Watches().ActiveForStack(t.Context(), shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Error("the stack is still held")
	}
}

func TestNotLinked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := storage.Identity{Team: "T1", User: "UCAROL"}
	_, err := e.svc.Deploy(t.Context(), origin(carol, "C1", "r1"), e.stack("shop", "staging"), deploy.Params{})
	if !errors.Is(err, accounts.ErrNotLinked) {
		t.Fatalf("Deploy by an unlinked person: %v", err)
	}
	if _, err := e.Store.Watches().ActiveForStack(t.Context(), e.stack("shop", "staging").UID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("an unlinked person's deploy claimed the stack")
	}
}

func TestUserReference(t *testing.T) {
	t.Parallel()
	o := deploy.Origin{Identity: ana, Channel: "C1", RequestID: "req-1"}
	if got := deploy.UserReference(o); got != "c66bot:T1:UANA:C1:req-1" {
		t.Errorf("UserReference = %q", got)
	}
	if deploy.UserReference(o) != deploy.UserReference(o) {
		t.Error("UserReference is not stable")
	}
	long := o
	long.RequestID = strings.Repeat("é", 300)
	ref := deploy.UserReference(long)
	if len(ref) > 255 || !strings.HasPrefix(ref, "c66bot:T1:UANA:C1:") {
		t.Errorf("long UserReference = %q (%d bytes)", ref, len(ref))
	}
	if ref != deploy.UserReference(long) {
		t.Error("long UserReference is not stable")
	}
	other := long
	other.RequestID += "x"
	if deploy.UserReference(other) == ref {
		t.Error("different long request ids share a user_reference")
	}
	huge := deploy.Origin{Identity: storage.Identity{Team: strings.Repeat("T", 300), User: "U"}, Channel: "C", RequestID: "r"}
	if n := len(deploy.UserReference(huge)); n > 255 {
		t.Errorf("UserReference of huge ids is %d bytes", n)
	}
}

func TestParamsMapRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []deploy.Params{
		{},
		{Ref: "v2.1"},
		{Ref: "main", Services: []string{"web:1.2", "worker"}, Profile: "fast-lane", Strategy: "rolling"},
	} {
		if got := deploy.ParamsFromMap(p.Map()); got.Ref != p.Ref || got.Profile != p.Profile || got.Strategy != p.Strategy ||
			strings.Join(got.Services, ",") != strings.Join(p.Services, ",") {
			t.Errorf("round trip of %+v = %+v", p, got)
		}
	}
	if m := (deploy.Params{}).Map(); len(m) != 0 {
		t.Errorf("empty Params map = %v", m)
	}
}

func TestProtected(t *testing.T) {
	t.Parallel()
	def := deploy.New(deploy.Config{})
	custom := deploy.New(deploy.Config{Protected: []string{"Prod", "qa"}})
	none := deploy.New(deploy.Config{Protected: []string{}})
	for _, tc := range []struct {
		svc  *deploy.Service
		env  string
		want bool
	}{
		{def, "production", true},
		{def, "Production", true},
		{def, "staging", false},
		{custom, "prod", true},
		{custom, "QA", true},
		{custom, "production", false},
		{none, "production", false},
	} {
		if got := tc.svc.Protected(tc.env); got != tc.want {
			t.Errorf("Protected(%q) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

// auditHas reports whether the audit log has an entry for action whose
// result starts with result.
func auditHas(t *testing.T, store *storage.DB, action, result string) bool {
	t.Helper()
	found := false
	err := store.Audit().Scan(context.Background(), time.Time{}, func(e storage.AuditEntry) error {
		if e.Action == action && strings.HasPrefix(e.Result, result) && e.Team == "T1" && e.StackUID != "" {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
