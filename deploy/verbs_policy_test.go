package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// A rule governs only the verbs of its actions: a restart falls past a
// rule for deploys to the next rule or the default, and a refusal names
// the verb.
func TestRuleForDeploysLeavesRestartsToTheDefault(t *testing.T) {
	t.Parallel()
	t.Run("default deny", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withPolicy(`
default: deny
rules:
  - name: production-deploys
    environments: [production]
    actions: [deploy]
`))
		ctx := t.Context()
		shop := e.stack("shop", "production")
		_, err := e.svc.Change(ctx, origin(ana, "C1", "r1"), shop, deploy.Change{Verb: deploy.VerbRestart})
		pe, ok := errors.AsType[*deploy.PolicyError](err)
		if !ok || pe.Rule != "" || pe.Reason != "no rule matches restarts and the default is deny" {
			t.Fatalf("restart: %v, want the default's refusal naming restarts", err)
		}
		e.quiet("a restart the default denies")
		if !auditHas(t, e.Store, "restart", "refused: no rule matches restarts") {
			t.Error("refusal not audited as a restart")
		}
		res, err := e.svc.Deploy(ctx, origin(ana, "C1", "r2"), shop, deploy.Params{})
		if err != nil || res.Confirm == nil {
			t.Fatalf("deploy under the rule = %+v, %v; want a confirmation", res, err)
		}
		if e.svc.MayUse(ctx, ana, deploy.VerbRestart) || !e.svc.MayUse(ctx, ana, deploy.VerbDeploy) {
			t.Error("MayUse should hide restarts and show deploys")
		}
	})
	t.Run("default allow", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withPolicy(`
rules:
  - name: production-deploys
    environments: [production]
    deployers: [UBEN]
    actions: [deploy]
`))
		ctx := t.Context()
		shop := e.stack("shop", "production")
		_, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
		if pe, ok := errors.AsType[*deploy.PolicyError](err); !ok || pe.Rule != "production-deploys" {
			t.Fatalf("ana's deploy: %v, want the rule's refusal", err)
		}
		for _, c := range []deploy.Change{{Verb: deploy.VerbRestart}, {Verb: deploy.VerbMaintenance, On: true}} {
			res, err := e.svc.Change(ctx, origin(ana, "C1", "r2"), shop, c)
			if err != nil || res.Confirm == nil || res.Confirm.Verb != c.Verb {
				t.Errorf("ana's %s = %+v, %v; want the default's allow (confirmed in production)", c.Verb, res, err)
			}
		}
	})
}

// A freeze stops the verbs of its actions only; one without actions stops
// every verb.
func TestFreezesStopTheVerbsOfTheirActions(t *testing.T) {
	t.Parallel()
	deploysOnly := strings.Replace(freezePolicy, "environments: [production]", "environments: [production]\n    actions: [deploy]", 1)
	e := newEnv(t, withPolicy(deploysOnly))
	ctx := t.Context()
	shop := e.fullStack("shop", "production")
	if _, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{}); !isFrozen(err, deploy.VerbDeploy) {
		t.Fatalf("deploy in a deploy freeze: %v, want a *FrozenError", err)
	}
	res, err := e.svc.Change(ctx, origin(ana, "C1", "r2"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || res.Confirm == nil {
		t.Fatalf("restart in a deploy freeze = %+v, %v; want a confirmation", res, err)
	}

	e = newEnv(t, withPolicy(freezePolicy))
	shop = e.fullStack("shop", "production")
	for _, tc := range []struct {
		verb  deploy.Verb
		start func() (deploy.Result, error)
	}{
		{deploy.VerbRestart, func() (deploy.Result, error) {
			return e.svc.Change(ctx, origin(ana, "C1", "r3"), shop, deploy.Change{Verb: deploy.VerbRestart})
		}},
		{deploy.VerbMaintenance, func() (deploy.Result, error) {
			return e.svc.Change(ctx, origin(ana, "C1", "r4"), shop, deploy.Change{Verb: deploy.VerbMaintenance, On: true})
		}},
		{deploy.VerbReboot, func() (deploy.Result, error) {
			return e.svc.Reboot(ctx, origin(ana, "C1", "r5"), shop, deploy.RebootTarget{Group: "web"})
		}},
		{deploy.VerbRollback, func() (deploy.Result, error) {
			return e.svc.Rollback(ctx, origin(ana, "C1", "r6"), shop, "", true)
		}},
	} {
		res, err := tc.start()
		if !isFrozen(err, tc.verb) {
			t.Errorf("%s in a freeze of every verb = %+v, %v; want a *FrozenError for it", tc.verb, res, err)
		}
		if !auditHas(t, e.Store, string(tc.verb), "refused: frozen (release)") {
			t.Errorf("%s's freeze refusal not audited", tc.verb)
		}
	}
	e.noChanges("frozen changes")
	if n := len(e.Slack.Calls("")); n != 0 {
		t.Errorf("frozen changes reached Slack %d times", n)
	}
}

func isFrozen(err error, v deploy.Verb) bool {
	fe, ok := errors.AsType[*deploy.FrozenError](err)
	return ok && fe.Freeze.Name == "release" && fe.Verb == v
}

// A rule wanting approvals asks for them for a restart too: the request
// names the restart, and the last approval starts it as the requester.
func TestApprovalsForARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(`
rules:
  - name: shop-production
    stacks: shop
    environments: [production]
    deployers: [UANA, UBEN]
    approvals: 1
`))
	ctx := t.Context()
	shop := e.fullStack("shop", "production")

	res, err := e.svc.Change(ctx, origin(ana, "C1", "req-1"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || res.Approval == nil || res.Confirm != nil || res.Watch != nil {
		t.Fatalf("restart = %+v, %v; want an approval request", res, err)
	}
	ar := res.Approval
	if ar.Verb != deploy.VerbRestart || ar.Needed != 1 || ar.MessageTS == "" {
		t.Errorf("approval request = %+v", ar)
	}
	post := e.approvalPost()
	if !strings.Contains(post.Text(), "<@UANA> asks to restart *shop* · production.") || !strings.HasPrefix(post.Msg.Text, "<@UANA> asks to restart *shop* · production") {
		t.Errorf("approval request does not name the restart:\n%s", post.Text())
	}
	e.noChanges("a restart waiting for approval")

	st, err := e.svc.Approve(ctx, ar.IntentID, ben)
	if err != nil || st.Watch == nil {
		t.Fatalf("Ben's approval = %+v, %v; want the restart started", st, err)
	}
	w := st.Watch
	if w.Verb != "restart" || w.Owner != ana || w.State != storage.WatchDeploying {
		t.Errorf("approved restart = %+v, want ana's restart running", w)
	}
	r := e.wantOneChange("/api/3/stacks/"+shop.UID+"/actions.json", `{"command":"restart"}`)
	if r.Token != e.Tokens[ana] {
		t.Error("the approved restart was not made with the requester's token")
	}
	up, _ := e.Slack.Last("update", ar.MessageTS)
	if !strings.Contains(up.Text(), "approved by <@UBEN> — restarting") {
		t.Errorf("approval request after the approval:\n%s", up.Text())
	}
	for _, want := range [][2]string{{"restart", "pending approval: 1 needed"}, {"approve", "approved: 1 of 1"}, {"restart", "requested"}} {
		if !auditHas(t, e.Store, want[0], want[1]) {
			t.Errorf("no %s entry %q", want[0], want[1])
		}
	}
}

// A lock stops every verb for everyone but its owner, before anything is
// sent; the owner's changes go through.
func TestLocksStopEveryVerbButTheOwners(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		verb  deploy.Verb
		start func(e *env, o deploy.Origin, st cloud66.Stack) (deploy.Result, error)
	}{
		{deploy.VerbRestart, func(e *env, o deploy.Origin, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Change(e.t.Context(), o, st, deploy.Change{Verb: deploy.VerbRestart})
		}},
		{deploy.VerbMaintenance, func(e *env, o deploy.Origin, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Change(e.t.Context(), o, st, deploy.Change{Verb: deploy.VerbMaintenance, On: true})
		}},
		{deploy.VerbReboot, func(e *env, o deploy.Origin, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Reboot(e.t.Context(), o, st, deploy.RebootTarget{Server: "Falcon"})
		}},
		{deploy.VerbRollback, func(e *env, o deploy.Origin, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Rollback(e.t.Context(), o, st, "", true)
		}},
		{deploy.VerbDeploy, func(e *env, o deploy.Origin, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Deploy(e.t.Context(), o, st, deploy.Params{})
		}},
	} {
		t.Run(string(tc.verb), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			shop := e.fullStack("shop", "staging")
			if _, err := e.svc.Lock(context.Background(), origin(ana, "C1", "l"), shop, "hotfix"); err != nil {
				t.Fatal(err)
			}
			_, err := tc.start(e, origin(ben, "C2", "r1"), shop)
			le, ok := errors.AsType[*deploy.LockedError](err)
			if !ok || le.Lock.Owner != ana || le.Lock.Reason != "hotfix" {
				t.Fatalf("ben's %s of a stack ana locked: %v, want a *LockedError", tc.verb, err)
			}
			e.noChanges("a change refused by a lock")
			if !auditHas(t, e.Store, string(tc.verb), "refused: locked by UANA") {
				t.Errorf("the lock's refusal of a %s is not audited", tc.verb)
			}
			res, err := tc.start(e, origin(ana, "C1", "r2"), shop)
			if err != nil || (res.Watch == nil && res.Confirm == nil) {
				t.Fatalf("the owner's %s = %+v, %v; want it through", tc.verb, res, err)
			}
			if res.Confirm != nil {
				if _, err := e.svc.Confirm(t.Context(), res.Confirm.IntentID, ana); err != nil {
					t.Fatalf("the owner's confirmation: %v", err)
				}
			}
			if got := e.changes(); len(got) != 1 || got[0].Token != e.Tokens[ana] {
				t.Errorf("Cloud 66 got %s, want the owner's change only", describeRequests(got))
			}
		})
	}
}
