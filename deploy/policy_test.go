package deploy_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// t0 is a Tuesday, 10:00 UTC; the freezes below are written around it.

const deployersPolicy = `
default: allow
rules:
  - name: shop-production
    stacks: "shop*"
    environments: [production]
    deployers: [UANA, S0OPS]
`

// quiet fails the test when anything reached Slack or Cloud 66.
func (e *env) quiet(what string) {
	e.t.Helper()
	if n := len(e.Slack.Calls("")); n != 0 {
		e.t.Errorf("%s: %d Slack calls, want none: %+v", what, n, e.Slack.Calls(""))
	}
	if n := len(e.C66.Requests()); n != 0 {
		e.t.Errorf("%s: %d Cloud 66 requests, want none", what, n)
	}
}

func TestPolicyRestrictsDeployers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(deployersPolicy), withGroups(map[string][]string{"UDAN": {"S0OPS"}, "UBEN": {"S0OTHER"}}))
	ctx := t.Context()
	shop := e.stack("shop", "production")

	_, err := e.svc.Deploy(ctx, origin(ben, "C1", "r1"), shop, deploy.Params{})
	var pe *deploy.PolicyError
	if !errors.As(err, &pe) || pe.Rule != "shop-production" {
		t.Fatalf("ben's Deploy: %v, want a *PolicyError naming shop-production", err)
	}
	if !strings.HasPrefix(err.Error(), "refused by rule shop-production: ") || pe.Reason == "" {
		t.Errorf("refusal reads %q", err.Error())
	}
	e.quiet("a refused deploy")
	if !auditHas(t, e.Store, "deploy", "refused: rule shop-production") {
		t.Error("refusal not audited with its rule")
	}

	// Ana is named; Dan is in the S0OPS group.
	for _, id := range []storage.Identity{ana, dan} {
		res, err := e.svc.Deploy(ctx, origin(id, "C1", "r-"+id.User), shop, deploy.Params{})
		if err != nil || res.Confirm == nil {
			t.Fatalf("%s's Deploy = %+v, %v; want a confirmation", id.User, res, err)
		}
	}
	// Other stacks fall to the default: allow.
	res, err := e.svc.Deploy(ctx, origin(ben, "C1", "r2"), e.stack("shop", "staging"), deploy.Params{})
	if err != nil || res.Watch == nil {
		t.Fatalf("ben's staging Deploy = %+v, %v", res, err)
	}
	if e.groups.calls == 0 {
		t.Error("Config.Groups was never asked")
	}

	d, err := e.svc.Decide(ctx, origin(ben, "C1", ""), shop, deploy.VerbDeploy)
	if err != nil || d.Allowed || d.Rule != "shop-production" {
		t.Errorf("Decide for ben = %+v, %v", d, err)
	}
}

func TestPolicyChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
rules:
  - name: deploy-room
    environments: [production]
    channels: [C0DEPLOYS]
`))
	ctx := t.Context()
	shop := e.stack("shop", "production")

	_, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	var pe *deploy.PolicyError
	if !errors.As(err, &pe) || pe.Rule != "deploy-room" || !strings.Contains(pe.Reason, "C0DEPLOYS") {
		t.Fatalf("Deploy from C1: %v, want a refusal by deploy-room naming the channel", err)
	}
	e.quiet("a deploy from the wrong channel")
	res, err := e.svc.Deploy(ctx, origin(ana, "C0DEPLOYS", "r2"), shop, deploy.Params{})
	if err != nil || res.Confirm == nil {
		t.Fatalf("Deploy from C0DEPLOYS = %+v, %v", res, err)
	}
}

func TestPolicyDefaultDeny(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
default: deny
rules:
  - name: staging
    environments: [staging]
    deployers: [UANA, S0OPS]
`), withGroups(map[string][]string{"UDAN": {"S0OPS"}}))
	ctx := t.Context()

	_, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), e.stack("web", "production"), deploy.Params{})
	var pe *deploy.PolicyError
	if !errors.As(err, &pe) || pe.Rule != "" || !strings.HasPrefix(err.Error(), "refused: ") {
		t.Fatalf("Deploy with no rule matching: %v, want the default's refusal", err)
	}
	e.quiet("a deploy the default denies")
	if !auditHas(t, e.Store, "deploy", "refused: no rule matches") {
		t.Error("default refusal not audited")
	}

	for _, tc := range []struct {
		id   storage.Identity
		want bool
	}{{ana, true}, {dan, true}, {ben, false}} {
		if got := e.svc.MayUse(ctx, tc.id, deploy.VerbDeploy); got != tc.want {
			t.Errorf("MayUse(%s, deploy) = %v, want %v", tc.id.User, got, tc.want)
		}
	}
	// Unknown groups hide nothing: help is a courtesy, Deploy decides.
	e.groups.fail(errors.New("slack down"))
	if !e.svc.MayUse(ctx, ben, deploy.VerbDeploy) {
		t.Error("MayUse with groups unknown = false, want true")
	}
	// Dan is allowed only through his group: with groups unknown the
	// lookup failure is the answer, not a misleading refusal.
	_, err = e.svc.Deploy(ctx, origin(dan, "C1", "r2"), e.stack("shop", "staging"), deploy.Params{})
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "slack down") {
		t.Errorf("Dan's Deploy with groups unknown: %v, want the lookup error", err)
	}
	// Ana is named, so her deploy does not need her groups.
	if res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r3"), e.stack("shop", "staging"), deploy.Params{}); err != nil || res.Watch == nil {
		t.Errorf("Ana's Deploy with groups unknown = %+v, %v", res, err)
	}
}

func TestRuleConfirmOverridesProtected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
rules:
  - name: shop-production-fast
    stacks: shop
    environments: [production]
    confirm: false
  - name: shop-staging-careful
    stacks: shop
    environments: [staging]
    confirm: true
`))
	ctx := t.Context()
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), e.stack("shop", "production"), deploy.Params{})
	if err != nil || res.Watch == nil || res.Confirm != nil {
		t.Fatalf("confirm: false on production = %+v, %v; want it started", res, err)
	}
	res, err = e.svc.Deploy(ctx, origin(ana, "C1", "r2"), e.stack("shop", "staging"), deploy.Params{})
	if err != nil || res.Confirm == nil {
		t.Fatalf("confirm: true on staging = %+v, %v; want a confirmation", res, err)
	}
	if _, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	// Protected still answers from the file's protected environments.
	if !e.svc.Protected("production") || e.svc.Protected("staging") {
		t.Error("Protected does not follow the policy's protected_environments")
	}
	if n := e.C66.ActionCount(); n != 2 {
		t.Errorf("ActionCount = %d, want 2", n)
	}
}

const approvalPolicy = `
admins: [UBOSS]
rules:
  - name: shop-production
    stacks: shop
    environments: [production]
    deployers: [UANA, UBEN, UDAN, UEVE]
    approvals: 2
  - name: web-production
    stacks: web
    environments: [production]
    deployers: [UANA, UBEN]
    approvals: 1
`

// approvalPost returns the one approval request posted, failing otherwise.
func (e *env) approvalPost() testenv.Call {
	e.t.Helper()
	posts := e.Slack.Calls("post")
	if len(posts) != 1 {
		e.t.Fatalf("posts = %+v, want one approval request", posts)
	}
	return posts[0]
}

func TestApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
admins: [UBOSS]
rules:
  - name: shop-production
    stacks: shop
    environments: [production]
    deployers: [UANA, UBEN, UDAN, S0OPS]
    approvals: 2
`), withGroups(map[string][]string{}))
	ctx := t.Context()
	shop := e.stack("shop", "production")

	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "req-1"), shop, deploy.Params{Ref: "v<2>"})
	if err != nil || res.Approval == nil || res.Confirm != nil || res.Watch != nil {
		t.Fatalf("Deploy = %+v, %v; want an approval request", res, err)
	}
	ar := res.Approval
	if ar.Needed != 2 || ar.Channel != "C1" || ar.MessageTS == "" || ar.IntentID == "" ||
		strings.Join(ar.Approvers, ",") != "UBEN,UDAN,S0OPS,UBOSS" {
		t.Errorf("approval request = %+v", ar)
	}
	if !ar.ExpiresAt.After(t0) || ar.ExpiresAt.After(t0.Add(30*time.Minute)) {
		t.Errorf("ExpiresAt = %v", ar.ExpiresAt)
	}
	post := e.approvalPost()
	if post.TS != ar.MessageTS || post.Channel != "C1" || !post.Msg.InChannel {
		t.Errorf("approval post = %+v", post)
	}
	for _, want := range []string{
		"<@UANA> asks to deploy `v&lt;2&gt;` to *shop* · production",
		"Needs 2 approvals from <@UBEN>, <@UDAN>, <!subteam^S0OPS> or <@UBOSS>",
		"Rule `shop-production`",
		`"text":"Approve","emoji":true},"action_id":"deploy_approve","value":"` + ar.IntentID + `","style":"primary"}`,
		`"text":"Reject","emoji":true},"action_id":"deploy_reject","value":"` + ar.IntentID + `"}`,
	} {
		if !strings.Contains(post.Text(), want) {
			t.Errorf("approval request lacks %s:\n%s", want, post.Text())
		}
	}
	if e.C66.ActionCount() != 0 {
		t.Fatal("deployed before any approval")
	}

	if _, err := e.svc.Approve(ctx, ar.IntentID, ana); !errors.Is(err, deploy.ErrOwnApproval) {
		t.Fatalf("the requester's Approve: %v, want ErrOwnApproval", err)
	}
	var pe *deploy.PolicyError
	if _, err := e.svc.Approve(ctx, ar.IntentID, eve); !errors.As(err, &pe) || pe.Rule != "shop-production" {
		t.Fatalf("Eve's Approve: %v, want a *PolicyError naming the rule", err)
	}
	if _, err := e.svc.Approve(ctx, ar.IntentID, storage.Identity{Team: "T2", User: "UBEN"}); !errors.As(err, &pe) {
		t.Fatalf("an approval from another workspace: %v, want a *PolicyError", err)
	}

	st, err := e.svc.Approve(ctx, ar.IntentID, ben)
	if err != nil || st.Watch != nil || st.Needed != 2 || strings.Join(st.Approved, ",") != "UBEN" {
		t.Fatalf("Ben's Approve = %+v, %v; want 1 of 2", st, err)
	}
	up, ok := e.Slack.Last("update", ar.MessageTS)
	if !ok || !strings.Contains(up.Text(), "1 of 2 approvals: <@UBEN>") || !strings.Contains(up.Text(), "deploy_approve") {
		t.Fatalf("message after one approval: %+v", up)
	}
	// The same person twice counts once.
	if st, err := e.svc.Approve(ctx, ar.IntentID, ben); err != nil || len(st.Approved) != 1 || st.Watch != nil {
		t.Fatalf("Ben's second Approve = %+v, %v", st, err)
	}
	if e.C66.ActionCount() != 0 {
		t.Fatal("deployed after one approval of two")
	}

	st, err = e.svc.Approve(ctx, ar.IntentID, dan)
	if err != nil || st.Watch == nil || strings.Join(st.Approved, ",") != "UBEN,UDAN" {
		t.Fatalf("Dan's Approve = %+v, %v; want the deploy started", st, err)
	}
	w := st.Watch
	if w.Owner != ana || w.Channel != "C1" || !strings.HasSuffix(w.UserReference, ":UANA:C1:req-1") || w.ActionID == 0 {
		t.Errorf("approved deploy = %+v; want it Ana's, from her request", w)
	}
	if n := e.C66.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d, want 1", n)
	}
	up, _ = e.Slack.Last("update", ar.MessageTS)
	if !strings.Contains(up.Text(), "approved by <@UBEN>, <@UDAN> — deploying") || strings.Contains(up.Text(), "deploy_approve") {
		t.Errorf("message after the last approval: %s", up.Text())
	}
	if _, err := e.svc.Approve(ctx, ar.IntentID, boss); !errors.Is(err, deploy.ErrIntentGone) {
		t.Errorf("an approval after the start: %v, want ErrIntentGone", err)
	}
	if n := e.C66.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d after a late approval, want 1", n)
	}
	for _, want := range [][2]string{{"deploy", "pending approval"}, {"approve", "approved: 1 of 2"}, {"approve", "approved: 2 of 2"}, {"approve", "refused: own approval"}, {"deploy", "requested"}} {
		if !auditHas(t, e.Store, want[0], want[1]) {
			t.Errorf("no audit %s %q", want[0], want[1])
		}
	}
}

func TestConcurrentApprovalsDeployOnce(t *testing.T) {
	t.Parallel()
	groups := map[string][]string{}
	var people []storage.Identity
	for i := range 10 {
		id := storage.Identity{Team: "T1", User: "UOPS" + string(rune('A'+i))}
		people = append(people, id)
		groups[id.User] = []string{"S0OPS"}
	}
	e := newEnv(t, withPolicy(`
rules:
  - name: shop-production
    stacks: shop
    environments: [production]
    deployers: [UANA, S0OPS]
    approvals: 2
`), withGroups(groups))
	ctx := t.Context()
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), e.stack("shop", "production"), deploy.Params{})
	if err != nil || res.Approval == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	var (
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		started, counted, gone int
		unexpected             []error
	)
	for _, id := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := e.svc.Approve(ctx, res.Approval.IntentID, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && st.Watch != nil:
				started++
			case err == nil:
				counted++
			case errors.Is(err, deploy.ErrIntentGone):
				gone++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	wg.Wait()
	if started != 1 || counted != 1 || gone != 8 || len(unexpected) > 0 {
		t.Fatalf("started %d, counted %d, gone %d, errors %v; want 1, 1, 8", started, counted, gone, unexpected)
	}
	if n := e.C66.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d, want exactly 1", n)
	}
	up, _ := e.Slack.Last("update", res.Approval.MessageTS)
	if !strings.Contains(up.Text(), "— deploying") {
		t.Errorf("final message: %s", up.Text())
	}
}

func TestRejectAndWithdraw(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(approvalPolicy))
	ctx := t.Context()
	shop := e.stack("shop", "production")

	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil || res.Approval == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	var pe *deploy.PolicyError
	if err := e.svc.Reject(ctx, res.Approval.IntentID, carol); !errors.As(err, &pe) {
		t.Fatalf("Carol's Reject: %v, want a *PolicyError", err)
	}
	if _, err := e.svc.Approve(ctx, res.Approval.IntentID, ben); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Reject(ctx, res.Approval.IntentID, dan); err != nil {
		t.Fatalf("Dan's Reject: %v", err)
	}
	up, _ := e.Slack.Last("update", res.Approval.MessageTS)
	if !strings.Contains(up.Text(), "rejected by <@UDAN>") || strings.Contains(up.Text(), "deploy_approve") {
		t.Errorf("message after the rejection: %s", up.Text())
	}
	eph, ok := e.Slack.Last("ephemeral", "")
	if !ok || eph.User != "UANA" || eph.Channel != "C1" || !strings.Contains(eph.Text(), "<@UDAN> rejected your deploy of *shop* · production") {
		t.Errorf("the requester was not told: %+v", eph)
	}
	if _, err := e.svc.Approve(ctx, res.Approval.IntentID, eve); !errors.Is(err, deploy.ErrIntentGone) {
		t.Errorf("Approve after Reject: %v, want ErrIntentGone", err)
	}

	// The requester may withdraw their own request.
	res, err = e.svc.Deploy(ctx, origin(ana, "C1", "r2"), shop, deploy.Params{})
	if err != nil || res.Approval == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	if err := e.svc.Reject(ctx, res.Approval.IntentID, ana); err != nil {
		t.Fatalf("Ana's withdrawal: %v", err)
	}
	up, _ = e.Slack.Last("update", res.Approval.MessageTS)
	if !strings.Contains(up.Text(), "withdrawn by <@UANA>") {
		t.Errorf("message after the withdrawal: %s", up.Text())
	}
	if n := e.C66.ActionCount(); n != 0 {
		t.Errorf("ActionCount = %d, want 0", n)
	}
	if !auditHas(t, e.Store, "reject", "rejected") || !auditHas(t, e.Store, "reject", "withdrawn") {
		t.Error("reject not audited")
	}
}

func TestApprovalByAnyoneLinked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
rules:
  - name: open-production
    environments: [production]
    approvals: 1
`))
	ctx := t.Context()
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), e.stack("shop", "production"), deploy.Params{})
	if err != nil || res.Approval == nil || res.Approval.Approvers != nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	if post := e.approvalPost(); !strings.Contains(post.Text(), "Needs 1 approval from anyone but <@UANA> who has linked Cloud 66") {
		t.Errorf("approval request: %s", post.Text())
	}
	var pe *deploy.PolicyError
	if _, err := e.svc.Approve(ctx, res.Approval.IntentID, carol); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "linked") {
		t.Fatalf("unlinked Carol's Approve: %v, want a *PolicyError about linking", err)
	}
	st, err := e.svc.Approve(ctx, res.Approval.IntentID, ben)
	if err != nil || st.Watch == nil || st.Watch.Owner != ana {
		t.Fatalf("Ben's Approve = %+v, %v", st, err)
	}
}

const freezePolicy = `
admins: [UBOSS]
freeze:
  - name: release
    from: "Tue 09:00"
    to: "Tue 12:00"
    timezone: UTC
    environments: [production]
`

func TestFreezeAndOverride(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(freezePolicy))
	ctx := t.Context()
	shop := e.stack("shop", "production")

	_, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	var fe *deploy.FrozenError
	if !errors.As(err, &fe) || fe.Freeze.Name != "release" || fe.OverrideIntentID != "" ||
		!fe.Freeze.Until.Equal(time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("Ana's Deploy: %v (%+v), want a *FrozenError without an override", err, fe)
	}
	e.quiet("a frozen deploy")
	if !auditHas(t, e.Store, "deploy", "refused: frozen (release)") {
		t.Error("freeze refusal not audited")
	}
	// Staging is not frozen.
	if res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r2"), e.stack("shop", "staging"), deploy.Params{}); err != nil || res.Watch == nil {
		t.Fatalf("staging Deploy = %+v, %v", res, err)
	}

	_, err = e.svc.Deploy(ctx, origin(boss, "C1", "r3"), shop, deploy.Params{Ref: "hotfix"})
	if !errors.As(err, &fe) || fe.OverrideIntentID == "" {
		t.Fatalf("the admin's Deploy: %v, want a *FrozenError with an override", err)
	}
	if _, err := e.svc.Override(ctx, fe.OverrideIntentID, ana); !errors.Is(err, deploy.ErrNotYours) {
		t.Fatalf("Override by Ana: %v, want ErrNotYours", err)
	}
	res, err := e.svc.Override(ctx, fe.OverrideIntentID, boss)
	if err != nil || res.Confirm == nil || res.Confirm.Params.Ref != "hotfix" {
		t.Fatalf("the admin's Override = %+v, %v; want production's confirmation", res, err)
	}
	if !auditHas(t, e.Store, "freeze.override", "overridden") {
		t.Error("override not audited")
	}
	if _, err := e.svc.Override(ctx, fe.OverrideIntentID, boss); !errors.Is(err, deploy.ErrIntentGone) {
		t.Errorf("a second Override: %v, want ErrIntentGone", err)
	}
	// The confirmation remembers the override: still frozen, it starts.
	w, err := e.svc.Confirm(ctx, res.Confirm.IntentID, boss)
	if err != nil || w.Owner != boss {
		t.Fatalf("Confirm after the override = %+v, %v", w, err)
	}
	if n := e.C66.ActionCount(); n != 2 {
		t.Errorf("ActionCount = %d, want 2 (staging and the override)", n)
	}
}

func TestOverrideNeedsAnAdmin(t *testing.T) {
	t.Parallel()
	// Boss is an admin only through a group, which stops resolving.
	e := newEnv(t, withPolicy(strings.Replace(freezePolicy, "[UBOSS]", "[S0ADMINS]", 1)),
		withGroups(map[string][]string{"UBOSS": {"S0ADMINS"}}))
	ctx := t.Context()
	_, err := e.svc.Deploy(ctx, origin(boss, "C1", "r1"), e.stack("shop", "production"), deploy.Params{})
	var fe *deploy.FrozenError
	if !errors.As(err, &fe) || fe.OverrideIntentID == "" {
		t.Fatalf("Deploy by a group admin: %v, want an override", err)
	}
	e.groups.mu.Lock()
	e.groups.groups = map[string][]string{}
	e.groups.mu.Unlock()
	var pe *deploy.PolicyError
	if _, err := e.svc.Override(ctx, fe.OverrideIntentID, boss); !errors.As(err, &pe) {
		t.Fatalf("Override by a former admin: %v, want a *PolicyError", err)
	}
	if e.C66.ActionCount() != 0 {
		t.Error("deployed without an admin")
	}
}

func TestFreezeBeginsWhileWaiting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(approvalPolicy+`
freeze:
  - name: release
    from: "Tue 10:02"
    to: "Tue 12:00"
    timezone: UTC
    environments: [production]
`))
	ctx := t.Context()

	// A confirmation asked for before the freeze, answered after it began.
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), e.stack("api", "production"), deploy.Params{})
	if err != nil || res.Confirm == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	// An approval request likewise.
	ap, err := e.svc.Deploy(ctx, origin(ana, "C1", "r2"), e.stack("web", "production"), deploy.Params{})
	if err != nil || ap.Approval == nil {
		t.Fatalf("Deploy = %+v, %v", ap, err)
	}
	e.Clock.Advance(3 * time.Minute)

	var fe *deploy.FrozenError
	if _, err := e.svc.Confirm(ctx, res.Confirm.IntentID, ana); !errors.As(err, &fe) || fe.Freeze.Name != "release" {
		t.Fatalf("Confirm after the freeze began: %v, want a *FrozenError", err)
	}
	if !auditHas(t, e.Store, "deploy.confirm", "refused: frozen (release)") {
		t.Error("frozen confirm not audited")
	}
	st, err := e.svc.Approve(ctx, ap.Approval.IntentID, ben)
	if !errors.As(err, &fe) || st.Watch != nil {
		t.Fatalf("the last approval after the freeze began = %+v, %v; want a *FrozenError", st, err)
	}
	up, _ := e.Slack.Last("update", ap.Approval.MessageTS)
	if !strings.Contains(up.Text(), "approved by <@UBEN> — not started: deploys are frozen (release)") {
		t.Errorf("message: %s", up.Text())
	}
	eph, ok := e.Slack.Last("ephemeral", "")
	if !ok || eph.User != "UANA" || !strings.Contains(eph.Text(), "did not start") {
		t.Errorf("the requester was not told: %+v", eph)
	}
	if n := e.C66.ActionCount(); n != 0 {
		t.Errorf("ActionCount = %d, want 0", n)
	}
}

func TestLockTakenWhileWaitingForApproval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(approvalPolicy))
	ctx := t.Context()
	web := e.stack("web", "production")
	res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), web, deploy.Params{})
	if err != nil || res.Approval == nil {
		t.Fatalf("Deploy = %+v, %v", res, err)
	}
	if _, err := e.svc.Lock(ctx, origin(eve, "C1", "r2"), web, "incident"); err != nil {
		t.Fatal(err)
	}
	var le *deploy.LockedError
	if _, err := e.svc.Approve(ctx, res.Approval.IntentID, ben); !errors.As(err, &le) {
		t.Fatalf("Approve on a stack locked meanwhile: %v, want *LockedError", err)
	}
	if e.C66.ActionCount() != 0 {
		t.Error("a stack locked meanwhile was deployed")
	}
}

func TestNilPolicyDecidesAsBefore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, err := e.svc.Decide(t.Context(), origin(ana, "C1", ""), e.stack("shop", "production"), deploy.VerbDeploy)
	if err != nil || !d.Allowed || !d.Confirm || d.Approvals != 0 || d.Freeze != nil {
		t.Errorf("Decide without a policy = %+v, %v", d, err)
	}
	if !e.svc.MayUse(t.Context(), carol, deploy.VerbDeploy) {
		t.Error("without a policy everyone may deploy")
	}
	none := deploy.New(deploy.Config{Protected: []string{}})
	if d, _ := none.Decide(t.Context(), origin(ana, "C1", ""), e.stack("shop", "production"), deploy.VerbDeploy); d.Confirm {
		t.Error("Config.Protected = [] still asks for confirmation")
	}
}
