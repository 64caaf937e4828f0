package deploy_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// failingStack is the failing stack, as Cloud 66 describes it, and its
// seeded history, newest first: its failed head, the live deployment and
// the successful one before it. The fake then forgets the reads.
func (e *env) failingStack() (crm cloud66.Stack, head, live, older cloud66.Deployment) {
	e.t.Helper()
	crm = e.fullStack(cloud66test.FailingStack, cloud66test.FailingStackEnvironment)
	deps := e.deployments(crm.UID)
	if len(deps) != 3 || !deps[0].Failed() || !deps[1].IsLive || !deps[2].Succeeded() || deps[1].GitHash == deps[2].GitHash {
		e.t.Fatalf("the failing stack's history = %+v, want failed, live, successful", deps)
	}
	e.C66.ResetRequests()
	return crm, deps[0], deps[1], deps[2]
}

// Without to=, a rollback goes back to the newest successful deployment
// older than the live one: confirmed first, a redeploy of its git hash,
// the stack locked afterwards for the person, and a card of its own
// followed to the end.
func TestRollbackGoesBackToTheDeploymentBeforeTheLiveOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	finished := withOnFinished(e)
	ctx := t.Context()
	crm, _, live, older := e.failingStack()

	res, err := e.svc.Rollback(ctx, origin(ana, "C1", "rb-1"), crm, "", true)
	if err != nil || res.Confirm == nil {
		t.Fatalf("Rollback = %+v, %v; want a confirmation", res, err)
	}
	cf := res.Confirm
	if cf.Verb != deploy.VerbRollback || cf.Live == nil || cf.Target == nil || cf.Live.ID != live.ID || cf.Target.ID != older.ID ||
		cf.LiveHash != live.GitHash || cf.LiveRef != live.GitRef || cf.Target.TriggeredBy == "" || cf.Target.FinishedAt.IsZero() {
		t.Fatalf("confirmation = %+v, want live #%d and target #%d with who and when", cf, live.ID, older.ID)
	}
	if c := cf.Change; c.Params.Ref != older.GitHash || len(c.Params.Services) != 0 || c.From != live.GitHash || !c.Lock {
		t.Errorf("change = %+v, want a redeploy of %s from %s, locking", c, older.GitHash, live.GitHash)
	}
	e.noChanges("a rollback waiting for confirmation")

	w, err := e.svc.Confirm(ctx, cf.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	e.wantOneChange("/api/3/stacks/"+crm.UID+"/deployments.json",
		`{"git_ref":"`+older.GitHash+`","user_reference":"c66bot:T1:UANA:C1:rb-1"}`)
	if w.Verb != "rollback" || w.State != storage.WatchDeploying || w.ActionID == 0 {
		t.Errorf("watch = %+v", w)
	}

	// Locked for ana, so nobody redeploys the bad commit by reflex.
	l, err := e.Store.Locks().Get(ctx, "T1", crm.UID)
	if err != nil || l.Owner != ana || l.Reason != "rolled back from "+live.GitHash[:7] {
		t.Fatalf("lock after the rollback = %+v, %v; want ana's, rolled back from %s", l, err, live.GitHash[:7])
	}
	locks := auditOf(t, e.Store, "lock")
	if len(locks) != 1 || locks[0].Result != "locked" || locks[0].User != ana.User || locks[0].Args["reason"] != l.Reason {
		t.Errorf("lock audit = %+v", locks)
	}

	post := e.Slack.Calls("post")
	if len(post) != 1 || !strings.Contains(post[0].Text(), "⏳ *Starting*") {
		t.Fatalf("posts = %+v", post)
	}
	running, _ := e.Slack.Last("update", w.MessageTS)
	for _, want := range []string{"⏪ *Rolling back* — *legacy-crm* · production", "*Back to*\\n<https://github.com/acme/legacy-crm/commit/" + older.GitHash + "|" + older.GitHash[:7] + ">",
		"*From*\\n<https://github.com/acme/legacy-crm/commit/" + live.GitHash + "|" + live.GitHash[:7] + ">",
		"*Undoes*\\n<https://github.com/acme/legacy-crm/compare/" + older.GitHash + "..." + live.GitHash + "|"} {
		if !strings.Contains(running.Text(), want) {
			t.Errorf("running card lacks %s:\n%s", want, running.Text())
		}
	}
	if !deploy.CardInProgress(running.Msg.Text) {
		t.Errorf("running card %q does not read as in progress", running.Msg.Text)
	}

	done := e.runOut(w.ID, storage.WatchSucceeded)
	if done.GitHash != older.GitHash {
		t.Errorf("the rolled back deployment runs %s, want %s", done.GitHash, older.GitHash)
	}
	card := e.waitCard(w.MessageTS, "✅ *Rolled back* — ")
	if deploy.CardInProgress(card.Msg.Text) || !strings.HasPrefix(card.Msg.Text, "✅ legacy-crm · production rolled back in 3 min 00 s") {
		t.Errorf("final card text = %q", card.Msg.Text)
	}
	if now := e.liveHash(crm.UID); now != older.GitHash {
		t.Errorf("live after the rollback = %s, want %s", now, older.GitHash)
	}
	for action, want := range map[string]string{"rollback": "requested", "rollback.finished": "succeeded"} {
		got := auditResults(t, e.Store, action)
		if strings.Count(strings.Join(got, "\n"), want) != 1 {
			t.Errorf("%s audit = %q, want one %q", action, got, want)
		}
	}
	if got := auditResults(t, e.Store, "rollback"); got[0] != "pending confirmation" {
		t.Errorf("rollback audit = %q, want the confirmation first", got)
	}
	waitFinished(t, finished, "succeeded")
}

// waitFinished waits until OnFinished heard exactly want.
func waitFinished(t *testing.T, f *finishedLog, want ...string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = f.sorted()
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("OnFinished heard %v, want %v", got, want)
	}
}

// to= names the deployment by id or by a git hash prefix; what cannot be
// gone back to is refused before anything is sent.
func TestRollbackTo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	crm, head, live, older := e.failingStack()

	for _, tc := range []struct {
		to      string
		problem string // "" = goes back to older
	}{
		{to: strconv.FormatInt(older.ID, 10)},
		{to: "#" + strconv.FormatInt(older.ID, 10)},
		{to: older.GitHash[:8]},
		{to: strings.ToUpper(older.GitHash)},
		{to: strconv.FormatInt(head.ID, 10), problem: "deployment #" + strconv.FormatInt(head.ID, 10) + " did not succeed; roll back to one that did"},
		{to: head.GitHash[:7], problem: "did not succeed"},
		{to: strconv.FormatInt(live.ID, 10), problem: "deployment #" + strconv.FormatInt(live.ID, 10) + " runs the git hash that is live now (`" + live.GitHash[:7] + "`)"},
		{to: live.GitHash, problem: "runs the git hash that is live now"},
		{to: "999999", problem: "no recent deployment has the id or git hash `999999`; `deployments` lists them"},
		{to: older.GitHash[:3], problem: "no recent deployment has the id or git hash"},
	} {
		res, err := e.svc.Rollback(ctx, origin(ana, "C1", "r"), crm, tc.to, true)
		if tc.problem == "" {
			if err != nil || res.Confirm == nil || res.Confirm.Target.ID != older.ID || res.Confirm.Change.Params.Ref != older.GitHash {
				t.Errorf("Rollback to %s = %+v, %v; want deployment #%d", tc.to, res, err, older.ID)
			}
			continue
		}
		re, ok := errors.AsType[*deploy.RollbackError](err)
		if !ok || !strings.Contains(re.Problem, tc.problem) {
			t.Errorf("Rollback to %s: %v, want a *RollbackError %q", tc.to, err, tc.problem)
		}
	}
	e.noChanges("rollbacks asked for")
	if got := auditResults(t, e.Store, "rollback"); !strings.Contains(strings.Join(got, "\n"), "did not succeed") {
		t.Errorf("rollback audit = %q, want the refusals", got)
	}

	// A stack with one deployment has nothing older to go back to.
	solo := e.C66.AddStack(cloud66test.StackSpec{Name: "solo", Environment: "staging"})
	_, err := e.svc.Rollback(ctx, origin(ana, "C1", "r"), cloud66.Stack{UID: solo.UID, Name: solo.Name, Environment: solo.Environment, Framework: "rails"}, "", true)
	if re, ok := errors.AsType[*deploy.RollbackError](err); !ok || !strings.Contains(re.Problem, "no successful deployment older than what is live") {
		t.Errorf("Rollback of a stack with one deployment: %v, want a *RollbackError", err)
	}
	e.noChanges("a rollback with nothing to go back to")
}

// A rollback is confirmed in every environment, even where the policy lets
// every other verb start at once; lock=false leaves the stack unlocked.
func TestRollbackIsAlwaysConfirmedAndLocksOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
protected_environments: []
rules:
  - name: staging-now
    environments: [staging]
    confirm: false
`))
	ctx := t.Context()
	shop := e.fullStack("shop", "staging")
	deps := e.deployments(shop.UID)
	// shop · staging, newest first: live, failed, successful: the default
	// skips the failed one.
	if !deps[0].IsLive || !deps[1].Failed() || !deps[2].Succeeded() {
		t.Fatalf("shop · staging history = %+v", deps)
	}
	e.C66.ResetRequests()

	res, err := e.svc.Rollback(ctx, origin(ana, "C1", "rb"), shop, "", false)
	if err != nil || res.Confirm == nil {
		t.Fatalf("Rollback on staging = %+v, %v; want a confirmation all the same", res, err)
	}
	if res.Confirm.Change.Lock {
		t.Error("lock=false rollback would lock")
	}
	e.noChanges("a rollback waiting for confirmation")
	if _, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ben); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("Confirm by ben: %v, want ErrNotYours", err)
	}
	w, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	e.wantOneChange("/api/3/stacks/"+shop.UID+"/deployments.json", `{"git_ref":"`+deps[2].GitHash+`","user_reference":"c66bot:T1:UANA:C1:rb"}`)
	if _, err := e.Store.Locks().Get(ctx, "T1", shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("lock=false rollback locked the stack: %v", err)
	}
	if got := auditOf(t, e.Store, "lock"); len(got) != 0 {
		t.Errorf("lock audit = %+v, want none", got)
	}
	e.runOut(w.ID, storage.WatchSucceeded)

	// The same policy starts a restart at once.
	rs, err := e.svc.Change(ctx, origin(ana, "C1", "rs"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || rs.Watch == nil {
		t.Fatalf("restart under confirm: false = %+v, %v; want it started", rs, err)
	}
}

// A Docker stack rolls back by the earlier deployment's image tags, not a
// git ref.
func TestDockerRollbackRedeploysTheEarlierImageTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	api := e.fullStack("api", "staging")
	deps := e.deployments(api.UID)
	// api · staging, newest first: live, successful, failed.
	if len(deps) != 3 || !deps[0].IsLive || !deps[1].Succeeded() || len(deps[1].Services) != 2 ||
		strings.Join(deps[1].Services, ",") == strings.Join(deps[0].Services, ",") {
		t.Fatalf("api · staging history = %+v", deps)
	}
	target := deps[1]
	e.C66.ResetRequests()

	res, err := e.svc.Rollback(ctx, origin(ana, "C1", "rb"), api, "", true)
	if err != nil || res.Confirm == nil {
		t.Fatalf("Rollback = %+v, %v", res, err)
	}
	if c := res.Confirm.Change; c.Params.Ref != "" || strings.Join(c.Params.Services, ",") != strings.Join(target.Services, ",") {
		t.Errorf("change = %+v, want the services %v and no ref", c, target.Services)
	}
	w, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	e.wantOneChange("/api/3/stacks/"+api.UID+"/deployments.json",
		`{"services":["`+target.Services[0]+`","`+target.Services[1]+`"],"user_reference":"c66bot:T1:UANA:C1:rb"}`)
	running, _ := e.Slack.Last("update", w.MessageTS)
	if want := "*Back to*\\n`" + target.Services[0] + "`, `" + target.Services[1] + "`"; !strings.Contains(running.Text(), want) {
		t.Errorf("card lacks %s:\n%s", want, running.Text())
	}
	e.runOut(w.ID, storage.WatchSucceeded)
	if got := e.deployments(api.UID)[0]; strings.Join(got.Services, ",") != strings.Join(target.Services, ",") {
		t.Errorf("services after the rollback = %v, want %v", got.Services, target.Services)
	}
}

// A failed deploy's card offers a rollback to anyone in the channel: the
// button carries an offer, and pressing it asks the presser to confirm a
// rollback made as them.
func TestFailedDeployOffersARollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	crm, _, live, older := e.failingStack()

	dep, err := e.svc.Deploy(ctx, origin(ana, "C1", "d1"), crm, deploy.Params{})
	if err != nil || dep.Confirm == nil {
		t.Fatalf("Deploy = %+v, %v", dep, err)
	}
	w, err := e.svc.Confirm(ctx, dep.Confirm.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	e.runOut(w.ID, storage.WatchFailed)
	card := e.waitCard(w.MessageTS, "❌ *Deployment failed*", `"text":"Roll back"`)
	stored, err := e.Store.Watches().Get(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	offer := stored.Params["rollback_offer"]
	if offer == "" || !strings.Contains(card.Text(), `"action_id":"`+deploy.ActionRollback+`","value":"`+offer+`"`) {
		t.Fatalf("failed card's button does not carry the offer %q:\n%s", offer, card.Text())
	}
	if !strings.Contains(card.Text(), cloud66test.FailingDeployMessage) {
		t.Errorf("failed card lacks Cloud 66's reason:\n%s", card.Text())
	}
	e.C66.ResetRequests()

	// Dan presses it, twice: an offer is read, not spent.
	var cf *deploy.Confirmation
	for i := range 2 {
		res, err := e.svc.RollbackFromOffer(ctx, offer, origin(dan, "C1", "press-"+strconv.Itoa(i)))
		if err != nil || res.Confirm == nil {
			t.Fatalf("Dan's press %d = %+v, %v; want a confirmation", i, res, err)
		}
		if res.Confirm.Target.ID != older.ID || res.Confirm.Live.ID != live.ID || !res.Confirm.Change.Lock {
			t.Errorf("confirmation of the offer = %+v, want #%d from #%d, locking", res.Confirm, older.ID, live.ID)
		}
		cf = res.Confirm
	}
	e.noChanges("pressing the offer")
	if _, err := e.svc.Confirm(ctx, cf.IntentID, ana); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("Confirm of Dan's rollback by ana: %v, want ErrNotYours", err)
	}
	rw, err := e.svc.Confirm(ctx, cf.IntentID, dan)
	if err != nil {
		t.Fatal(err)
	}
	r := e.wantOneChange("/api/3/stacks/"+crm.UID+"/deployments.json", `{"git_ref":"`+older.GitHash+`","user_reference":"c66bot:T1:UDAN:C1:press-1"}`)
	if r.Token != e.Tokens[dan] || rw.Owner != dan {
		t.Errorf("the rollback was made with another token than Dan's (owner %v)", rw.Owner)
	}
	if l, err := e.Store.Locks().Get(ctx, "T1", crm.UID); err != nil || l.Owner != dan || l.Reason != "rolled back from "+live.GitHash[:7] {
		t.Errorf("lock = %+v, %v; want Dan's", l, err)
	}

	// Only offers answer: an unknown id, or another kind's, is gone.
	other, err := e.svc.Deploy(ctx, origin(ana, "C1", "d2"), e.stack("shop", "production"), deploy.Params{})
	if err != nil || other.Confirm == nil {
		t.Fatal(err)
	}
	for _, id := range []string{"no-such-offer", other.Confirm.IntentID} {
		if _, err := e.svc.RollbackFromOffer(ctx, id, origin(dan, "C1", "p")); !errors.Is(err, deploy.ErrIntentGone) {
			t.Errorf("RollbackFromOffer(%s): %v, want ErrIntentGone", id, err)
		}
	}
	if _, err := e.svc.Confirm(ctx, other.Confirm.IntentID, ana); err != nil {
		t.Errorf("the deploy confirmation pressed as an offer was spent: %v", err)
	}
}

// OfferRollback stores an offer to go back to a given deployment, as the
// deployments list's "Roll back to this" buttons do.
func TestOfferRollbackToADeployment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.fullStack("shop", "staging")
	deps := e.deployments(shop.UID)
	oldest := deps[len(deps)-1]
	if !oldest.Succeeded() {
		t.Fatalf("shop · staging's oldest deployment = %+v", oldest)
	}
	e.C66.ResetRequests()

	id, err := e.svc.OfferRollback(ctx, origin(ana, "C1", "list"), shop, strconv.FormatInt(oldest.ID, 10))
	if err != nil || id == "" {
		t.Fatalf("OfferRollback = %q, %v", id, err)
	}
	res, err := e.svc.RollbackFromOffer(ctx, id, origin(ben, "C1", "press"))
	if err != nil || res.Confirm == nil || res.Confirm.Target.ID != oldest.ID || res.Confirm.Change.Params.Ref != oldest.GitHash {
		t.Fatalf("Ben's press = %+v, %v; want a confirmation going back to #%d", res, err, oldest.ID)
	}
	e.noChanges("an offer pressed")
}

// A rollback asked for while someone else's deployment runs is queued by
// Cloud 66 with its action's id: its card says so, in its own words, until
// the action starts, and the stack is locked once Cloud 66 has it.
func TestQueuedRollbackShowsQueuedUntilItStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.fullStack("shop", "staging")
	target := e.deployments(shop.UID)[2]
	// Someone deploys from Cloud 66 directly, so the rollback queues.
	if _, err := e.Client(e.Tokens[ben]).Redeploy(ctx, shop.UID, cloud66.RedeployRequest{}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Rollback(ctx, origin(ana, "C1", "rb"), shop, "", true)
	if err != nil || res.Confirm == nil {
		t.Fatalf("Rollback = %+v, %v", res, err)
	}
	w, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana)
	if err != nil {
		t.Fatal(err)
	}
	if w.State != storage.WatchQueued || !w.Queued || w.ActionID == 0 {
		t.Fatalf("watch = %+v, want queued with its action", w)
	}
	queued := e.waitCard(w.MessageTS, "⏳ *Queued behind the running deployment*", "*Back to*\\n<https://github.com/acme/shop/commit/"+target.GitHash+"|"+target.GitHash[:7]+">")
	if queued.Msg.Text != "⏳ shop · staging: rollback queued behind the running deployment" || !deploy.CardInProgress(queued.Msg.Text) {
		t.Errorf("queued card text = %q", queued.Msg.Text)
	}
	if l, err := e.Store.Locks().Get(ctx, "T1", shop.UID); err != nil || l.Owner != ana {
		t.Errorf("lock of a queued rollback = %+v, %v; want ana's", l, err)
	}
	e.waitPolls(w.ID, 2)
	if got := e.waitState(w.ID, storage.WatchQueued); !got.StartedAt.IsZero() {
		t.Errorf("a queued rollback that has not started shows a start: %+v", got)
	}
	e.Clock.Advance(3 * time.Minute) // ben's deployment ends; the rollback starts
	e.waitState(w.ID, storage.WatchDeploying)
	e.waitCard(w.MessageTS, "⏪ *Rolling back*")
	if done := e.runOut(w.ID, storage.WatchSucceeded); done.GitHash != target.GitHash {
		t.Errorf("rolled back to %s, want %s", done.GitHash, target.GitHash)
	}
	e.waitCard(w.MessageTS, "✅ *Rolled back*", "3 min 00 s")
}

// A rollback with nothing to go back to, and an option Cloud 66 would
// refuse, read as refusals in the audit log.
func TestRefusedOptionsAreAuditedAsRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	if _, err := e.svc.Change(ctx, origin(ana, "C1", "r1"), e.fullStack("shop", "staging"), deploy.Change{Verb: deploy.VerbRestart, Service: "web"}); err == nil {
		t.Fatal("a service restart on a Rails stack went through")
	}
	if _, err := e.svc.Rollback(ctx, origin(ana, "C1", "r2"), e.fullStack("shop", "staging"), "0000000", true); err == nil {
		t.Fatal("a rollback to an unknown hash went through")
	}
	for action, want := range map[string]string{
		"restart":  "refused: `service` is only for Docker stacks",
		"rollback": "refused: no recent deployment has the id or git hash `0000000`",
	} {
		if got := strings.Join(auditResults(t, e.Store, action), "\n"); !strings.Contains(got, want) {
			t.Errorf("%s audited as %q, want %q", action, got, want)
		}
	}
}
