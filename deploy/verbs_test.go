package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// fullStack is the stack as Cloud 66 describes it (its framework and
// backend decide which options a change may carry). The fake then forgets
// the requests so far, so a test sees only what the change sent.
func (e *env) fullStack(name, environment string) cloud66.Stack {
	e.t.Helper()
	st, err := e.Client(e.Tokens[ana]).GetStack(context.Background(), e.stack(name, environment).UID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.C66.ResetRequests()
	return *st
}

// deployments is the first page of the stack's deployments, newest first,
// read directly.
func (e *env) deployments(uid string) []cloud66.Deployment {
	e.t.Helper()
	deps, _, err := e.Client(e.Tokens[ana]).ListDeploymentsPage(context.Background(), uid, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	return deps
}

// serverUID is the uid of the stack's server called name, read directly.
func (e *env) serverUID(stackUID, name string) string {
	e.t.Helper()
	servers, err := e.Client(e.Tokens[ana]).ListServers(context.Background(), stackUID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range servers {
		if s.Name == name {
			return s.UID
		}
	}
	e.t.Fatalf("stack %s has no server %s", stackUID, name)
	return ""
}

// changes are the requests that change something in Cloud 66 (everything
// but reads), in order.
func (e *env) changes() []cloud66test.Request {
	var out []cloud66test.Request
	for _, r := range e.C66.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

// noChanges fails the test when anything but a read reached Cloud 66.
func (e *env) noChanges(what string) {
	e.t.Helper()
	if got := e.changes(); len(got) != 0 {
		e.t.Errorf("%s: Cloud 66 got %s, want no change", what, describeRequests(got))
	}
}

// wantOneChange checks that Cloud 66 got exactly one change, POST path
// with the JSON body want ("" = no body), and returns it.
func (e *env) wantOneChange(path, want string) cloud66test.Request {
	e.t.Helper()
	got := e.changes()
	if len(got) != 1 {
		e.t.Fatalf("Cloud 66 got %s, want one POST %s", describeRequests(got), path)
	}
	r := got[0]
	if r.Method != http.MethodPost || r.Path != path {
		e.t.Errorf("request = %s %s, want POST %s", r.Method, r.Path, path)
	}
	if !sameJSON(r.Body, want) {
		e.t.Errorf("body of POST %s = %s, want %s", r.Path, r.Body, want)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); want != "" && mt != "application/json" {
		e.t.Errorf("Content-Type = %q, want application/json", r.Header.Get("Content-Type"))
	}
	return r
}

func describeRequests(rs []cloud66test.Request) string {
	if len(rs) == 0 {
		return "nothing"
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s %s %s", r.Method, r.Path, r.Body)
	}
	return strings.Join(out, "; ")
}

// sameJSON reports whether got is the JSON document want, whatever the
// order of its keys; want "" means an empty body.
func sameJSON(got []byte, want string) bool {
	if want == "" {
		return len(bytes.TrimSpace(got)) == 0
	}
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	return reflect.DeepEqual(g, w)
}

// auditResults are the results of the audit entries of action, in order.
func auditResults(t *testing.T, store *storage.DB, action string) []string {
	t.Helper()
	var out []string
	for _, e := range auditOf(t, store, action) {
		out = append(out, e.Result)
	}
	return out
}

// runOut lets the watch of id poll once, moves the clock past the fake's
// three minutes for an action, and waits for the watch to reach state.
func (e *env) runOut(id string, state storage.WatchState) storage.Watch {
	e.t.Helper()
	e.waitPolls(id, 1)
	e.Clock.Advance(3*time.Minute + time.Second)
	return e.waitState(id, state)
}

// startChange runs start and, when it asks for a confirmation, checks that
// nothing was sent yet and confirms it as ana; it returns the watch.
func (e *env) startChange(verb deploy.Verb, start func() (deploy.Result, error)) *storage.Watch {
	e.t.Helper()
	res, err := start()
	if err != nil {
		e.t.Fatalf("%s: %v", verb, err)
	}
	if res.Confirm != nil {
		if res.Confirm.Verb != verb || res.Confirm.Change.Verb != verb {
			e.t.Errorf("confirmation of a %s = %+v", verb, res.Confirm)
		}
		e.noChanges("before the confirmation")
		w, err := e.svc.Confirm(e.t.Context(), res.Confirm.IntentID, ana)
		if err != nil {
			e.t.Fatalf("Confirm %s: %v", verb, err)
		}
		return w
	}
	if res.Watch == nil {
		e.t.Fatalf("%s = %+v, want a watch or a confirmation", verb, res)
	}
	return res.Watch
}

// Every verb sends its one Cloud 66 request, shows its own card in each
// state, is audited when asked for and when it ends, and is reported to
// OnFinished; a production stack asks for confirmation first.
func TestVerbsAreFollowedToTheEnd(t *testing.T) {
	t.Parallel()
	type verbCase struct {
		name         string
		stack        [2]string
		verb         deploy.Verb
		start        func(e *env, st cloud66.Stack) (deploy.Result, error)
		action       string                                // the fake's action, to make it fail
		path         func(e *env, st cloud66.Stack) string // after /api/3/stacks/<uid>
		body         string
		args         map[string]string // in the audit entry of the request
		fields       []string          // on every card
		running      string            // the card's heading while it runs
		done, failed string
		text         string // the fallback text of a success, after the stack
		maintenance  *bool  // the fake's maintenance flag before; it flips on success
	}
	change := func(c deploy.Change) func(*env, cloud66.Stack) (deploy.Result, error) {
		return func(e *env, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Change(e.t.Context(), origin(ana, "C1", "req-1"), st, c)
		}
	}
	reboot := func(target deploy.RebootTarget) func(*env, cloud66.Stack) (deploy.Result, error) {
		return func(e *env, st cloud66.Stack) (deploy.Result, error) {
			return e.svc.Reboot(e.t.Context(), origin(ana, "C1", "req-1"), st, target)
		}
	}
	path := func(p string) func(*env, cloud66.Stack) string {
		return func(*env, cloud66.Stack) string { return p }
	}
	off, on := false, true
	cases := []verbCase{
		{
			name: "restart", stack: [2]string{"shop", "staging"}, verb: deploy.VerbRestart,
			start: change(deploy.Change{Verb: deploy.VerbRestart}), action: cloud66test.ActionRestart,
			path: path("/actions.json"), body: `{"command":"restart"}`,
			fields:  []string{`*What*\nthe whole stack`},
			running: "🔄 *Restarting*", done: "✅ *Restarted*", failed: "❌ *Restart failed*",
			text: "shop · staging restarted in 3 min 00 s",
		},
		{
			name: "service restart", stack: [2]string{"api", "staging"}, verb: deploy.VerbRestart,
			start: change(deploy.Change{Verb: deploy.VerbRestart, Service: "web"}), action: cloud66test.ActionServiceRestart,
			path: path("/actions.json"), body: `{"command":"service_restart","service_name":"web"}`,
			args:    map[string]string{"service": "web"},
			fields:  []string{"*Service*\\n`web`"},
			running: "🔄 *Restarting*", done: "✅ *Restarted*", failed: "❌ *Restart failed*",
			text: "api · staging restarted in 3 min 00 s",
		},
		{
			name: "maintenance on", stack: [2]string{"shop", "staging"}, verb: deploy.VerbMaintenance,
			start: change(deploy.Change{Verb: deploy.VerbMaintenance, On: true}), action: cloud66test.ActionMaintenanceMode,
			path: path("/actions.json"), body: `{"command":"maintenance_mode","value":1}`,
			args:    map[string]string{"maintenance": "on"},
			fields:  []string{`*Maintenance mode*\non`},
			running: "🚧 *Turning maintenance mode on*", done: "✅ *Maintenance mode on*", failed: "❌ *Maintenance mode change failed*",
			text: "shop · staging turned maintenance mode on in 3 min 00 s", maintenance: &off,
		},
		{
			// The failing stack is in maintenance mode, and in production:
			// confirmed first.
			name: "maintenance off", stack: [2]string{cloud66test.FailingStack, cloud66test.FailingStackEnvironment}, verb: deploy.VerbMaintenance,
			start: change(deploy.Change{Verb: deploy.VerbMaintenance}), action: cloud66test.ActionMaintenanceMode,
			path: path("/actions.json"), body: `{"command":"maintenance_mode","value":0}`,
			args:    map[string]string{"maintenance": "off"},
			fields:  []string{`*Maintenance mode*\noff`},
			running: "🚧 *Turning maintenance mode off*", done: "✅ *Maintenance mode off*", failed: "❌ *Maintenance mode change failed*",
			text: "legacy-crm · production turned maintenance mode off in 3 min 00 s", maintenance: &on,
		},
		{
			// A server is named by its name, in any case.
			name: "reboot a server", stack: [2]string{"shop", "staging"}, verb: deploy.VerbReboot,
			start: reboot(deploy.RebootTarget{Server: "falcon"}), action: cloud66test.ActionServerReboot,
			path: func(e *env, st cloud66.Stack) string {
				return "/servers/" + e.serverUID(st.UID, "Falcon") + "/reboot_server.json"
			},
			args:    map[string]string{"server_name": "Falcon", "servers": "Falcon"},
			fields:  []string{"*Servers*\\n`Falcon`"},
			running: "🔁 *Rebooting*", done: "✅ *Rebooted*", failed: "❌ *Reboot failed*",
			text: "shop · staging rebooted in 3 min 00 s",
		},
		{
			name: "reboot a group", stack: [2]string{"shop", "production"}, verb: deploy.VerbReboot,
			start: reboot(deploy.RebootTarget{Group: "web", Strategy: "serial"}), action: cloud66test.ActionStackReboot,
			path: path("/reboot_servers.json"), body: `{"group":"web","strategy":"serial"}`,
			args:    map[string]string{"group": "web", "reboot_strategy": "serial", "servers": "Lion,Otter"},
			fields:  []string{"*Servers*\\n`Lion`, `Otter`", "*Strategy*\\n`serial`"},
			running: "🔁 *Rebooting*", done: "✅ *Rebooted*", failed: "❌ *Reboot failed*",
			text: "shop · production rebooted in 3 min 00 s",
		},
	}
	for _, tc := range cases {
		for _, succeed := range []bool{true, false} {
			state := storage.WatchSucceeded
			if !succeed {
				state = storage.WatchFailed
			}
			t.Run(tc.name+"/"+string(state), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				finished := withOnFinished(e)
				st := e.fullStack(tc.stack[0], tc.stack[1])
				if !succeed {
					e.C66.SetActionOutcome(st.UID, tc.action, false, "It broke <badly>")
				}
				if tc.maintenance != nil && e.C66.Maintenance(st.UID) != *tc.maintenance {
					t.Fatalf("maintenance mode before = %v, want %v", !*tc.maintenance, *tc.maintenance)
				}

				w := e.startChange(tc.verb, func() (deploy.Result, error) { return tc.start(e, st) })
				e.wantOneChange("/api/3/stacks/"+st.UID+tc.path(e, st), tc.body)
				if w.State != storage.WatchDeploying || w.ActionID == 0 || w.MessageTS == "" || w.Verb != string(tc.verb) || w.Owner != ana {
					t.Errorf("watch = %+v, want ana's %s running under its action", w, tc.verb)
				}

				// The card: posted as starting, edited as running.
				posts := e.Slack.Calls("post")
				if len(posts) != 1 || posts[0].TS != w.MessageTS || !strings.Contains(posts[0].Text(), "⏳ *Starting*") || !deploy.CardInProgress(posts[0].Msg.Text) {
					t.Fatalf("posts = %+v, want one card starting", posts)
				}
				running, ok := e.Slack.Last("update", w.MessageTS)
				if !ok || !strings.Contains(running.Text(), tc.running+" — ") || !deploy.CardInProgress(running.Msg.Text) {
					t.Fatalf("card after the start = %+v, want %q in progress", running, tc.running)
				}
				for _, f := range append([]string{"*Requested by*\\n<@UANA>"}, tc.fields...) {
					if !strings.Contains(running.Text(), f) {
						t.Errorf("running card lacks %s:\n%s", f, running.Text())
					}
				}
				if tc.maintenance != nil && e.C66.Maintenance(st.UID) != *tc.maintenance {
					t.Error("maintenance mode switched before the action finished")
				}

				e.runOut(w.ID, state)
				heading := tc.done
				if !succeed {
					heading = tc.failed
				}
				card := e.waitCard(w.MessageTS, heading+" — ")
				if deploy.CardInProgress(card.Msg.Text) {
					t.Errorf("the final card %q reads as in progress", card.Msg.Text)
				}
				if succeed && card.Msg.Text != "✅ "+tc.text {
					t.Errorf("fallback text = %q, want %q", card.Msg.Text, "✅ "+tc.text)
				}
				if !succeed {
					if !strings.Contains(card.Text(), "Cloud 66: It broke &lt;badly&gt;") {
						t.Errorf("failed card lacks Cloud 66's reason:\n%s", card.Text())
					}
					if strings.Contains(card.Text(), deploy.ActionRollback) {
						t.Errorf("a failed %s offers a rollback:\n%s", tc.verb, card.Text())
					}
				}
				if tc.maintenance != nil {
					want := *tc.maintenance != succeed
					if got := e.C66.Maintenance(st.UID); got != want {
						t.Errorf("maintenance mode after = %v, want %v", got, want)
					}
				}

				requested := auditOf(t, e.Store, string(tc.verb))
				var req *storage.AuditEntry
				for i := range requested {
					if requested[i].Result == "requested" {
						if req != nil {
							t.Fatalf("two %q entries: %+v", "requested", requested)
						}
						req = &requested[i]
					}
				}
				if req == nil || req.User != ana.User || req.StackUID != st.UID || req.Args["user_reference"] == "" {
					t.Fatalf("%s entries = %+v, want one requested by ana", tc.verb, requested)
				}
				for k, v := range tc.args {
					if req.Args[k] != v {
						t.Errorf("requested args[%s] = %q, want %q (%v)", k, req.Args[k], v, req.Args)
					}
				}
				outcome := auditOf(t, e.Store, string(tc.verb)+".finished")
				wantResult := "succeeded"
				if !succeed {
					wantResult = "failed: It broke <badly>"
				}
				if len(outcome) != 1 || outcome[0].Result != wantResult || outcome[0].Cloud66ActionID != w.ActionID {
					t.Errorf("%s.finished = %+v, want one %q of action %d", tc.verb, outcome, wantResult, w.ActionID)
				}
				testenv.Eventually(t, "the outcome reported", func() bool { return len(finished.sorted()) == 1 })
				if got := finished.sorted(); got[0] != string(state) {
					t.Errorf("OnFinished heard %v, want %s", got, state)
				}
				if _, err := e.Store.Watches().ActiveForStack(t.Context(), st.UID); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("the stack is still held: %v", err)
				}
				if n := len(e.changes()); n != 1 {
					t.Errorf("%d changes reached Cloud 66, want 1", n)
				}
			})
		}
	}
}

// A service restart is for Docker stacks; on a Rails stack it is refused
// before anything is sent, naming the stack's type.
func TestServiceRestartIsRefusedOnARailsStack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.fullStack("shop", "staging")
	_, err := e.svc.Change(t.Context(), origin(ana, "C1", "r1"), shop, deploy.Change{Verb: deploy.VerbRestart, Service: "web"})
	oe, ok := errors.AsType[*deploy.OptionError](err)
	if !ok || oe.Problem != "`service` is only for Docker stacks, and shop:staging is a Rails stack" {
		t.Fatalf("service restart on Rails: %v, want an *OptionError naming the stack's type", err)
	}
	e.quiet("a refused service restart")
	if got := auditResults(t, e.Store, "restart"); len(got) != 1 || !strings.Contains(got[0], "only for Docker stacks") {
		t.Errorf("restart audit = %q, want the refusal", got)
	}
}

// The deploy options that do not apply to the stack's type are refused
// before anything is sent, naming the type; those that do go through.
func TestDeployOptionsAreCheckedAgainstTheStackType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stack   [2]string
		params  deploy.Params
		problem string // "" = goes through
		body    string // the redeploy's body when it goes through, without user_reference
	}{
		{name: "services on Rails", stack: [2]string{"shop", "staging"}, params: deploy.Params{Services: []string{"web:1.4.2"}},
			problem: "`services` is only for Docker stacks, and shop:staging is a Rails stack"},
		{name: "ref on Docker", stack: [2]string{"api", "staging"}, params: deploy.Params{Ref: "v2.1"},
			problem: "a git ref is only for stacks that are not Docker stacks, and api:staging is a Docker stack"},
		{name: "rolling on Docker", stack: [2]string{"api", "staging"}, params: deploy.Params{Strategy: "rolling"},
			problem: "`strategy=rolling` is only for Rails and Rack stacks, and api:staging is a Docker stack"},
		{name: "rolling on Node", stack: [2]string{"auth", "staging"}, params: deploy.Params{Strategy: "rolling"},
			problem: "`strategy=rolling` is only for Rails and Rack stacks, and auth:staging is a stack of another kind"},
		{name: "fast on Rails", stack: [2]string{"shop", "staging"}, params: deploy.Params{Ref: "v2.1", Strategy: "fast"},
			problem: "`strategy=fast` is only for stacks on Kubernetes, and shop:staging is a Rails stack"},
		{name: "services on Docker", stack: [2]string{"api", "staging"}, params: deploy.Params{Services: []string{"web:1.4.2"}},
			body: `{"services":["web:1.4.2"]}`},
		{name: "fast on Kubernetes", stack: [2]string{"api", "staging"}, params: deploy.Params{Services: []string{"worker"}, Strategy: "fast"},
			body: `{"services":["worker"],"deploy_strategy":"fast"}`},
		{name: "ref and rolling on Rails", stack: [2]string{"shop", "staging"}, params: deploy.Params{Ref: "v2.1", Strategy: "rolling"},
			body: `{"git_ref":"v2.1","deploy_strategy":"rolling"}`},
		{name: "parallel on Node", stack: [2]string{"auth", "staging"}, params: deploy.Params{Strategy: "parallel"},
			body: `{"deploy_strategy":"parallel"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			st := e.fullStack(tc.stack[0], tc.stack[1])
			res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), st, tc.params)
			if tc.problem != "" {
				oe, ok := errors.AsType[*deploy.OptionError](err)
				if !ok || oe.Problem != tc.problem {
					t.Fatalf("Deploy = %+v, %v; want an *OptionError %q", res, err, tc.problem)
				}
				e.quiet("a refused option")
				return
			}
			if err != nil || res.Watch == nil {
				t.Fatalf("Deploy = %+v, %v; want it started", res, err)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
				t.Fatal(err)
			}
			body["user_reference"] = "c66bot:T1:UANA:C1:r1"
			want, _ := json.Marshal(body)
			e.wantOneChange("/api/3/stacks/"+st.UID+"/deployments.json", string(want))
		})
	}
}

// The verbs Cloud 66 answers with an action each run one at a time per
// stack, deploys included: whatever runs, anything else asked of the stack
// is refused as busy, naming what runs.
func TestOneChangePerStackWhateverTheVerb(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.fullStack("shop", "staging")

	dep, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil || dep.Watch == nil {
		t.Fatalf("Deploy = %+v, %v", dep, err)
	}
	_, err = e.svc.Change(ctx, origin(ben, "C2", "r2"), shop, deploy.Change{Verb: deploy.VerbRestart})
	busy, ok := errors.AsType[*deploy.BusyError](err)
	if !ok || busy.Watch.ID != dep.Watch.ID || deploy.Noun(busy.Watch) != "deployment" {
		t.Fatalf("a restart during a deploy: %v, want a *BusyError naming the deployment", err)
	}
	e.runOut(dep.Watch.ID, storage.WatchSucceeded)

	rs, err := e.svc.Change(ctx, origin(ana, "C1", "r3"), shop, deploy.Change{Verb: deploy.VerbRestart})
	if err != nil || rs.Watch == nil {
		t.Fatalf("the restart after the deploy = %+v, %v", rs, err)
	}
	refusals := map[string]func() (deploy.Result, error){
		"deploy": func() (deploy.Result, error) {
			return e.svc.Deploy(ctx, origin(ana, "C1", "r4"), shop, deploy.Params{})
		},
		"maintenance": func() (deploy.Result, error) {
			return e.svc.Change(ctx, origin(ben, "C2", "r5"), shop, deploy.Change{Verb: deploy.VerbMaintenance, On: true})
		},
		"reboot": func() (deploy.Result, error) {
			return e.svc.Reboot(ctx, origin(ana, "C1", "r6"), shop, deploy.RebootTarget{Server: "Falcon"})
		},
		"rollback": func() (deploy.Result, error) {
			return e.svc.Rollback(ctx, origin(ana, "C1", "r7"), shop, "", true)
		},
	}
	for name, f := range refusals {
		_, err := f()
		busy, ok := errors.AsType[*deploy.BusyError](err)
		if !ok || busy.Watch.ID != rs.Watch.ID || deploy.Noun(busy.Watch) != "restart" || deploy.Doing(busy.Watch) != "restarting" {
			t.Errorf("a %s during a restart: %v, want a *BusyError naming the restart", name, err)
		}
	}
	if got := e.changes(); len(got) != 2 {
		t.Errorf("Cloud 66 got %s, want the deploy and the restart only", describeRequests(got))
	}
	if got := auditResults(t, e.Store, "restart"); !slices.Contains(got, "refused: already deploying") {
		t.Errorf("restart audit = %q, want the busy refusal", got)
	}
}
