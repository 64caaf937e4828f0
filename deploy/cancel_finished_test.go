package deploy_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// A cancel confirmed after its deployment ended is answered with how it
// ended (Cloud 66's 409 "Deployment is not running" read back from the
// deployments list), changes nothing, and spends the confirmation.
func TestConfirmCancelAfterTheDeploymentFinished(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before runs before the deployment starts, after once the
		// prompt is shown.
		before, after func(e *env, uid string, running cloud66.Deployment)
		ended         func(cloud66.Deployment) bool
	}{
		{name: "deployed", ended: cloud66.Deployment.Succeeded},
		{name: "failed", ended: cloud66.Deployment.Failed,
			before: func(e *env, uid string, _ cloud66.Deployment) { e.C66.SetDeployOutcome(uid, false, "") }},
		{name: "cancelled in Cloud 66", ended: cloud66.Deployment.Cancelled,
			after: func(e *env, uid string, running cloud66.Deployment) {
				if _, err := e.Client(e.Tokens[ben]).CancelDeployment(e.t.Context(), uid, running.ID); err != nil {
					e.t.Fatal(err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			shop := e.stack("shop", "staging")
			if tt.before != nil {
				tt.before(e, shop.UID, cloud66.Deployment{})
			}
			// Started outside the bot: nobody's watch.
			if _, err := e.Client(e.Tokens[ben]).Redeploy(ctx, shop.UID, cloud66.RedeployRequest{}); err != nil {
				t.Fatal(err)
			}
			cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r1"), shop)
			if err != nil || cf.Running == nil {
				t.Fatalf("RequestCancel = %+v, %v", cf, err)
			}
			if cf.RunningOwner != "" {
				t.Errorf("RunningOwner = %q for a deployment started outside the bot", cf.RunningOwner)
			}
			if tt.after != nil {
				tt.after(e, shop.UID, *cf.Running)
			}
			e.Clock.Advance(4 * time.Minute) // the deployment takes 3

			_, err = e.svc.ConfirmCancel(ctx, cf.IntentID, ana)
			fe, ok := errors.AsType[*deploy.FinishedError](err)
			if !ok {
				t.Fatalf("ConfirmCancel: %v, want a *deploy.FinishedError", err)
			}
			if fe.Deployment.ID != cf.Running.ID || fe.Deployment.IsDeploying || !tt.ended(fe.Deployment) {
				t.Errorf("FinishedError.Deployment = %+v", fe.Deployment)
			}
			if fe.Stack.UID != shop.UID || fe.Stack.Name != "shop" || fe.Stack.Environment != "staging" || fe.Running != nil {
				t.Errorf("FinishedError = %+v", fe)
			}
			if errors.Is(err, cloud66.ErrConflict) {
				t.Error("a finished deployment is still answered as Cloud 66's conflict")
			}
			if !auditHas(t, e.Store, "cancel.confirm", "refused: deployment "+strconv.FormatInt(cf.Running.ID, 10)) {
				t.Error("the refused cancel is not audited as refused")
			}
			if _, err := e.svc.ConfirmCancel(ctx, cf.IntentID, ana); !errors.Is(err, deploy.ErrIntentGone) {
				t.Errorf("second press: %v, want ErrIntentGone", err)
			}
		})
	}
}

// When the deployment cannot be read back after the refusal, it is still
// reported as no longer running, named as the prompt named it.
func TestConfirmCancelAfterTheDeploymentFinishedUnreadable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.Client(e.Tokens[ben]).Redeploy(ctx, shop.UID, cloud66.RedeployRequest{}); err != nil {
		t.Fatal(err)
	}
	cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r1"), shop)
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(4 * time.Minute)
	e.C66.InjectFault(cloud66test.Fault{Method: http.MethodGet, PathPrefix: "/api/3/stacks/" + shop.UID + "/deployments", Status: http.StatusInternalServerError})

	_, err = e.svc.ConfirmCancel(ctx, cf.IntentID, ana)
	fe, ok := errors.AsType[*deploy.FinishedError](err)
	if !ok {
		t.Fatalf("ConfirmCancel: %v, want a *deploy.FinishedError", err)
	}
	d := fe.Deployment
	if d.ID != cf.Running.ID || d.GitRef != cf.Running.GitRef || d.GitHash != cf.Running.GitHash || d.IsDeploying ||
		d.Succeeded() || d.Failed() || d.Cancelled() {
		t.Errorf("FinishedError.Deployment = %+v, want only the prompt's id, ref and hash", d)
	}
}

// A deployment that started after the prompt is not the one the person
// confirmed: it is left running, and named in the answer.
func TestConfirmCancelLeavesALaterDeploymentAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	bens := e.Client(e.Tokens[ben])
	if _, err := bens.Redeploy(ctx, shop.UID, cloud66.RedeployRequest{}); err != nil {
		t.Fatal(err)
	}
	cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r1"), shop)
	if err != nil {
		t.Fatal(err)
	}
	// Queued behind the first, it starts when that one ends.
	if _, err := bens.Redeploy(ctx, shop.UID, cloud66.RedeployRequest{GitRef: "main"}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(4 * time.Minute)
	later := e.newestDeployment(shop.UID)
	if later.ID == cf.Running.ID || !later.IsDeploying {
		t.Fatalf("newest deployment = %+v, want a later one running", later)
	}

	_, err = e.svc.ConfirmCancel(ctx, cf.IntentID, ana)
	fe, ok := errors.AsType[*deploy.FinishedError](err)
	if !ok {
		t.Fatalf("ConfirmCancel: %v, want a *deploy.FinishedError", err)
	}
	if fe.Deployment.ID != cf.Running.ID || !fe.Deployment.Succeeded() || fe.Running == nil || fe.Running.ID != later.ID {
		t.Errorf("FinishedError = %+v", fe)
	}
	if now := e.newestDeployment(shop.UID); now.ID != later.ID || !now.IsDeploying {
		t.Errorf("the later deployment = %+v, want it still running", now)
	}
	for _, r := range e.C66.Requests() {
		if r.Method == http.MethodDelete && strings.Contains(r.Path, "/deployments/"+strconv.FormatInt(later.ID, 10)) {
			t.Errorf("the later deployment was asked to cancel: %+v", r)
		}
	}
}

// The bot's own deployment: the prompt knows who started it, and a cancel
// pressed after it ended leaves its watch and card as they ended.
func TestConfirmCancelAfterTheBotsDeploymentFinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	res, err := e.svc.Deploy(ctx, origin(ben, "C1", "r1"), shop, deploy.Params{})
	if err != nil || res.Watch == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	e.waitState(res.Watch.ID, storage.WatchDeploying)
	cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r2"), shop)
	if err != nil {
		t.Fatal(err)
	}
	if cf.RunningOwner != "UBEN" {
		t.Errorf("RunningOwner = %q, want UBEN", cf.RunningOwner)
	}
	e.Clock.Advance(4 * time.Minute)
	e.waitState(res.Watch.ID, storage.WatchSucceeded)

	_, err = e.svc.ConfirmCancel(ctx, cf.IntentID, ana)
	if fe, ok := errors.AsType[*deploy.FinishedError](err); !ok || !fe.Deployment.Succeeded() {
		t.Fatalf("ConfirmCancel: %v, want a *deploy.FinishedError of a success", err)
	}
	w, err := e.Store.Watches().Get(ctx, res.Watch.ID)
	if err != nil || w.State != storage.WatchSucceeded || w.CancelRequestedBy != "" {
		t.Errorf("watch = %+v, %v", w, err)
	}
	for _, m := range e.Slack.Calls("thread") {
		if strings.Contains(m.Text(), "asked Cloud 66 to cancel") {
			t.Errorf("thread note of a cancel that did not happen: %s", m.Text())
		}
	}
}

// A 409 while Cloud 66 still lists the deployment running is not a
// finished deployment: Cloud 66's refusal is passed on.
func TestConfirmCancelConflictWhileStillRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.Client(e.Tokens[ben]).Redeploy(ctx, shop.UID, cloud66.RedeployRequest{}); err != nil {
		t.Fatal(err)
	}
	cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r1"), shop)
	if err != nil {
		t.Fatal(err)
	}
	e.C66.InjectFault(cloud66test.Fault{Method: http.MethodDelete, Status: http.StatusConflict, Description: "Stack is busy"})
	_, err = e.svc.ConfirmCancel(ctx, cf.IntentID, ana)
	if _, ok := errors.AsType[*deploy.FinishedError](err); ok || !errors.Is(err, cloud66.ErrConflict) {
		t.Fatalf("ConfirmCancel: %v, want Cloud 66's conflict", err)
	}
}
