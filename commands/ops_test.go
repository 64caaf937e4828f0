package commands

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// anaOrigin is the origin of a command ana sends.
var anaOrigin = deploy.Origin{Identity: ana.Identity(), Channel: ana.ChannelID, ResponseURL: ana.ResponseURL, RequestID: ana.RequestID}

// opsRouter is a router over the test stacks with d as the deploy
// workflow, and the outcomes Deps.Observe heard.
func opsRouter(t *testing.T, d *fakeDeployer) (*Router, *outcomes) {
	t.Helper()
	heard := &outcomes{}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()}, func(deps *Deps) {
		deps.Deploy = d
		deps.Observe = heard.add
	})
	return r, heard
}

// outcomes records what Deps.Observe hears, as "command outcome".
type outcomes struct {
	mu   sync.Mutex
	seen []string
}

func (o *outcomes) add(command, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, command+" "+outcome)
}

func (o *outcomes) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) == 0 {
		return ""
	}
	return o.seen[len(o.seen)-1]
}

// send dispatches text as ana.
func send(t *testing.T, r *Router, text string) chat.Message {
	t.Helper()
	req := ana
	req.Text = text
	return r.Dispatch(t.Context(), req)
}

// inJSON is s as it reads in replyText's JSON of the blocks.
func inJSON(s string) string { return strings.ReplaceAll(s, "\n", `\n`) }

// hasAll fails t unless got holds each of want and none of notWant.
func hasAll(t *testing.T, got string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("reply lacks %q:\n%s", w, got)
		}
	}
	for _, w := range notWant {
		if strings.Contains(got, w) {
			t.Errorf("reply has %q:\n%s", w, got)
		}
	}
}

// buttons are the non-link buttons of m, in action blocks and as section
// accessories.
func buttons(m chat.Message) []*slack.ButtonBlockElement {
	var out []*slack.ButtonBlockElement
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *slack.ActionBlock:
			for _, el := range b.Elements.ElementSet {
				if btn, ok := el.(*slack.ButtonBlockElement); ok && btn.URL == "" {
					out = append(out, btn)
				}
			}
		case *slack.SectionBlock:
			if b.Accessory != nil && b.Accessory.ButtonElement != nil && b.Accessory.ButtonElement.URL == "" {
				out = append(out, b.Accessory.ButtonElement)
			}
		}
	}
	return out
}

// Each command passes the deploy workflow exactly what was asked, as the
// person who asked, on the stack the words name.
func TestOpsCommandsCallTheDeployerWithWhatWasAsked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text string
		want deployCall
	}{
		{"restart shop:production", deployCall{Method: "Change restart", Stack: "shop:production", Change: deploy.Change{Verb: deploy.VerbRestart}}},
		{"restart api service=web", deployCall{Method: "Change restart", Stack: "api:production", Change: deploy.Change{Verb: deploy.VerbRestart, Service: "web"}}},
		{"restart shop env=staging", deployCall{Method: "Change restart", Stack: "shop:staging", Change: deploy.Change{Verb: deploy.VerbRestart}}},
		{"maintenance shop:production on", deployCall{Method: "Change maintenance", Stack: "shop:production", Change: deploy.Change{Verb: deploy.VerbMaintenance, On: true}}},
		{"maintenance shop:production OFF", deployCall{Method: "Change maintenance", Stack: "shop:production", Change: deploy.Change{Verb: deploy.VerbMaintenance, On: false}}},
		{"maintenance shop On env=staging", deployCall{Method: "Change maintenance", Stack: "shop:staging", Change: deploy.Change{Verb: deploy.VerbMaintenance, On: true}}},
		{"reboot shop:production web1", deployCall{Method: "Reboot", Stack: "shop:production", Target: deploy.RebootTarget{Server: "web1"}}},
		{"reboot shop:production group=web strategy=serial", deployCall{Method: "Reboot", Stack: "shop:production", Target: deploy.RebootTarget{Group: "web", Strategy: "serial"}}},
		{"reboot api group=db", deployCall{Method: "Reboot", Stack: "api:production", Target: deploy.RebootTarget{Group: "db"}}},
		{"rollback shop:production", deployCall{Method: "Rollback", Stack: "shop:production", Lock: true}},
		{"rollback shop:production to=1002 lock=no", deployCall{Method: "Rollback", Stack: "shop:production", To: "1002"}},
		{"rollback shop:production lock=No", deployCall{Method: "Rollback", Stack: "shop:production"}},
		{"rollback shop:production to=abc1234 lock=YES", deployCall{Method: "Rollback", Stack: "shop:production", To: "abc1234", Lock: true}},
	} {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{result: deploy.Result{Watch: &storage.Watch{MessageTS: "1.2"}}}
			r, heard := opsRouter(t, d)
			send(t, r, tt.text)
			tt.want.Origin = anaOrigin
			if got := d.verbCalls(); len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Fatalf("calls %+v\nwant [%+v]", got, tt.want)
			}
			if !slices.Equal(d.calls, []string{tt.want.Method}) {
				t.Errorf("methods %v, want [%s]", d.calls, tt.want.Method)
			}
			if got, want := heard.last(), strings.Fields(tt.text)[0]+" "+OutcomeOK; got != want {
				t.Errorf("observed %q, want %q", got, want)
			}
		})
	}
}

// Words that don't fit are answered with what was wrong and the usage, and
// reach no deploy call.
func TestOpsUsageErrorsReachNoDeployer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text string
		want []string
	}{
		{"restart shop:production web", []string{"I don't understand `web`.", "Usage: `/c66 restart <stack> [service=<name>]`"}},
		{"restart shop:production service=", []string{"`service` is empty.", "Usage: `/c66 restart"}},
		{"restart shop:production env=staging", []string{"environment is given twice", "Usage: `/c66 restart"}},
		{"maintenance shop:production maybe", []string{"Maintenance mode is `on` or `off`, not `maybe`.", "Usage: `/c66 maintenance <stack> on|off`"}},
		{"maintenance shop:production", []string{"Usage: `/c66 maintenance <stack> on|off`"}},
		{"maintenance shop:production on off", []string{"I don't understand `off`.", "Usage: `/c66 maintenance"}},
		{"reboot shop:production web1 group=web", []string{"not both", "Usage: `/c66 reboot"}},
		{"reboot shop:production strategy=serial", []string{"Which server?", "Usage: `/c66 reboot"}},
		{"reboot shop:production web1 strategy=serial", []string{"`strategy` is for a group of servers", "Usage: `/c66 reboot"}},
		{"reboot shop:production", []string{"Usage: `/c66 reboot"}},
		{"rollback shop:production lock=maybe", []string{"`lock` is `yes` or `no`, not `maybe`.", "Usage: `/c66 rollback"}},
		{"rollback shop:production to=1 to=2", []string{"`to` is given twice.", "Usage: `/c66 rollback"}},
		{"rollback shop:production colour=red", []string{"Unknown option `colour`; the keys are `to`, `lock`, `env`.", "Usage: `/c66 rollback"}},
		{"rollback to=1002", []string{"Which stack?", "Usage: `/c66 rollback"}},
	} {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{}
			r, heard := opsRouter(t, d)
			got := replyText(t, send(t, r, tt.text))
			hasAll(t, got, tt.want, nil)
			if len(d.calls) != 0 {
				t.Errorf("the deployer was called: %v", d.calls)
			}
			if got, want := heard.last(), strings.Fields(tt.text)[0]+" "+OutcomeUsage; got != want {
				t.Errorf("observed %q, want %q", got, want)
			}
		})
	}
}

// What the requester reads back for each kind of result, for each verb.
func TestOpsRepliesForEachResult(t *testing.T) {
	t.Parallel()
	stack := testStacks()[0]
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		text   string
		result deploy.Result
		want   []string
	}{
		{"restart shop:production", deploy.Result{Approval: &deploy.ApprovalRequest{IntentID: "a1", Verb: deploy.VerbRestart, Needed: 2}},
			[]string{"This restart needs 2 approval(s); I asked in the channel."}},
		{"maintenance shop:production on", deploy.Result{Approval: &deploy.ApprovalRequest{IntentID: "a1", Verb: deploy.VerbMaintenance, Needed: 1}},
			[]string{"This maintenance mode change needs 1 approval(s)"}},
		{"reboot shop:production web1", deploy.Result{Approval: &deploy.ApprovalRequest{IntentID: "a1", Verb: deploy.VerbReboot, Needed: 3}},
			[]string{"This reboot needs 3 approval(s)"}},
		{"rollback shop:production", deploy.Result{Approval: &deploy.ApprovalRequest{IntentID: "a1", Verb: deploy.VerbRollback, Needed: 1}},
			[]string{"This rollback needs 1 approval(s)"}},
		{"restart shop:production", deploy.Result{Watch: &storage.Watch{Verb: "restart", MessageTS: "1.2"}},
			[]string{"Restart started: follow it in the channel message."}},
		{"restart shop:production", deploy.Result{Watch: &storage.Watch{Verb: "restart"}},
			[]string{"Restart started. I couldn't post in this channel, so I'll send you the result here when it finishes (or in a DM if it runs long).", "`/invite @c66bot`"}},
		{"maintenance shop:production off", deploy.Result{Watch: &storage.Watch{Verb: "maintenance", MessageTS: "1.2"}},
			[]string{"Maintenance mode change started: follow it in the channel message."}},
		{"reboot shop:production group=web", deploy.Result{Watch: &storage.Watch{Verb: "reboot", MessageTS: "1.2"}},
			[]string{"Reboot started: follow it in the channel message."}},
		{"rollback shop:production", deploy.Result{Watch: &storage.Watch{Verb: "rollback"}},
			[]string{"Rollback started. I couldn't post in this channel, so I'll send you the result here when it finishes (or in a DM if it runs long).", "`/invite @c66bot`"}},
		{"restart shop:production", deploy.Result{Confirm: &deploy.Confirmation{IntentID: "c1", Kind: "deploy", Verb: deploy.VerbRestart,
			Change: deploy.Change{Verb: deploy.VerbRestart}, Stack: stack, ExpiresAt: now}},
			[]string{"Restart *shop* · production? This needs your confirmation.", "Restart production"}},
		{"reboot shop:production group=web", deploy.Result{Confirm: &deploy.Confirmation{IntentID: "c1", Kind: "deploy", Verb: deploy.VerbReboot,
			Change: deploy.Change{Verb: deploy.VerbReboot, Group: "web", Servers: []string{"web1", "web2"}}, Stack: stack, ExpiresAt: now}},
			[]string{"Reboot `web1`, `web2` of *shop* · production?", inJSON("*Servers*\n`web1`, `web2`")}},
	} {
		t.Run(tt.text+" "+tt.want[0], func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{result: tt.result}
			r, _ := opsRouter(t, d)
			reply := send(t, r, tt.text)
			got := replyText(t, reply)
			hasAll(t, got, tt.want, nil)
			if reply.InChannel {
				t.Error("the reply went to the channel")
			}
			if reply.Text == "" {
				t.Error("no fallback text")
			}
			if tt.result.Confirm != nil {
				checkConfirmButtons(t, reply, "c1")
			}
		})
	}
}

// checkConfirmButtons fails t unless m's buttons are Confirm
// (ActionDeployConfirm) and Cancel (ActionAbort), both carrying intentID.
func checkConfirmButtons(t *testing.T, m chat.Message, intentID string) {
	t.Helper()
	bs := buttons(m)
	if len(bs) != 2 || bs[0].ActionID != ActionDeployConfirm || bs[1].ActionID != ActionAbort ||
		bs[0].Value != intentID || bs[1].Value != intentID || bs[1].Text.Text != "Cancel" {
		var got []string
		for _, b := range bs {
			got = append(got, b.ActionID+"="+b.Value+" "+b.Text.Text)
		}
		t.Errorf("buttons %q, want %s and %s (Cancel) carrying %s", got, ActionDeployConfirm, ActionAbort, intentID)
	}
}

// A change's confirmation says what it does, with its verb's details: a
// rollback what is live and what it goes back to, and whether the stack is
// locked afterwards; a reboot the servers affected.
func TestChangeConfirmation(t *testing.T) {
	t.Parallel()
	stack := testStacks()[0]
	expires := time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC)
	liveAt := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	targetAt := time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)
	live := &cloud66.Deployment{ID: 1009, GitHash: "0123456789abcdef", GitRef: "main", TriggeredBy: "Ben <!here>", FinishedAt: cloud66.Time{Time: liveAt}}
	target := &cloud66.Deployment{ID: 1002, GitHash: "abcdef0123456789", GitRef: "v2.0", TriggeredBy: "Ana", StartedAt: cloud66.Time{Time: targetAt}}
	rollback := func(lock bool) *deploy.Confirmation {
		return &deploy.Confirmation{IntentID: "i1", Kind: "deploy", Verb: deploy.VerbRollback, Stack: stack, ExpiresAt: expires, Live: live, Target: target,
			Change: deploy.Change{Verb: deploy.VerbRollback, Params: deploy.Params{Ref: target.GitHash}, From: live.GitHash, Lock: lock}}
	}
	for _, tt := range []struct {
		name    string
		cf      *deploy.Confirmation
		button  string
		want    []string
		notWant []string
	}{
		{"rollback locked", rollback(true), "Roll back production", []string{
			"Roll *shop* · production back to `abcdef0`? This needs your confirmation.",
			inJSON("*Live now*\n`0123456` (`main`)\nby Ben &lt;!here&gt;, <!date^" + unix(liveAt) + "^{date_short_pretty} {time}|2026-11-22 09:30 UTC>"),
			inJSON("*Goes back to*\n`abcdef0` (`v2.0`)\nby Ana, <!date^" + unix(targetAt) + "^{date_short_pretty} {time}|2026-11-20 16:00 UTC>"),
			inJSON("*Afterwards*\nLocked for you: “rolled back from `0123456`”. `unlock` removes it."),
			"Only you can confirm. This expires <!date^" + unix(expires) + "^{time}|2026-11-23 12:05 UTC>",
		}, []string{"Not locked", "<!here>"}},
		{"rollback lock=no", rollback(false), "Roll back production", []string{inJSON("*Afterwards*\nNot locked (`lock=no`).")}, []string{"Locked for you"}},
		{"rollback of unknown deployments", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbRollback, Stack: stack, ExpiresAt: expires,
			Target: &cloud66.Deployment{ID: 77}, Change: deploy.Change{Verb: deploy.VerbRollback, Params: deploy.Params{Services: []string{"web:1.2"}}}},
			"Roll back production", []string{"back to `web:1.2`?", inJSON("*Live now*\n_unknown_"), inJSON("*Goes back to*\n#77"), inJSON("Afterwards*\nNot locked")}, nil},
		{"restart", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbRestart, Stack: stack, ExpiresAt: expires, Change: deploy.Change{Verb: deploy.VerbRestart}},
			"Restart production", []string{"Restart *shop* · production? This needs your confirmation."}, []string{"*Live now*"}},
		{"restart a service", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbRestart, Stack: stack, ExpiresAt: expires, Change: deploy.Change{Verb: deploy.VerbRestart, Service: "web"}},
			"Restart production", []string{"Restart the service `web` of *shop* · production?"}, nil},
		{"maintenance on", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbMaintenance, Stack: stack, ExpiresAt: expires, Change: deploy.Change{Verb: deploy.VerbMaintenance, On: true}},
			"Turn it on", []string{"Turn maintenance mode on for *shop* · production?"}, nil},
		{"maintenance off", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbMaintenance, Stack: stack, ExpiresAt: expires, Change: deploy.Change{Verb: deploy.VerbMaintenance}},
			"Turn it off", []string{"Turn maintenance mode off for *shop* · production?"}, nil},
		{"reboot one server", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbReboot, Stack: stack, ExpiresAt: expires,
			Change: deploy.Change{Verb: deploy.VerbReboot, Server: "s-1", ServerName: "web1", Servers: []string{"web1"}}},
			"Reboot", []string{"Reboot `web1` of *shop* · production?", inJSON("*Servers*\n`web1`")}, []string{"*Strategy*"}},
		{"reboot a group", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbReboot, Stack: stack, ExpiresAt: expires,
			Change: deploy.Change{Verb: deploy.VerbReboot, Group: "web", RebootStrategy: "serial", Servers: []string{"web1", "<!channel>"}}},
			"Reboot", []string{inJSON("*Servers*\n`web1`, `&lt;!channel&gt;`"), inJSON("*Strategy*\n`serial`")}, []string{"<!channel>"}},
		{"reboot a group with no servers", &deploy.Confirmation{IntentID: "i1", Verb: deploy.VerbReboot, Stack: stack, ExpiresAt: expires,
			Change: deploy.Change{Verb: deploy.VerbReboot, Group: "db"}},
			"Reboot", []string{"Reboot the `db` servers of *shop* · production?", inJSON("*Servers*\nthe `db` servers (Cloud 66 lists none in that group for you)")}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := changeConfirmation(tt.cf)
			got := replyText(t, m)
			hasAll(t, got, tt.want, tt.notWant)
			checkConfirmButtons(t, m, "i1")
			if bs := buttons(m); len(bs) > 0 && bs[0].Text.Text != tt.button {
				t.Errorf("Confirm reads %q, want %q", bs[0].Text.Text, tt.button)
			}
			if m.Text == "" || m.InChannel {
				t.Errorf("fallback %q, in channel %v", m.Text, m.InChannel)
			}
		})
	}
}

// unix is t as Slack's date tokens carry it.
func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// Confirm says what the change does now, in its verb's words.
func TestConfirmButtonSaysWhatStarts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		watch storage.Watch
		want  string
	}{
		{storage.Watch{Verb: "restart", MessageTS: "1.2"}, ":rocket: Confirmed: restarting *shop* · production. Follow it in the channel message."},
		// No message in the channel (the bot is not in it): where the
		// result comes instead, and no promise about the channel.
		{storage.Watch{Verb: "restart", Channel: "C9"}, ":rocket: Confirmed: restarting *shop* · production. I couldn't post in <#C9>, so I'll send you the result here"},
		{storage.Watch{Verb: "rollback"}, "Confirmed: rolling back *shop* · production."},
		{storage.Watch{Verb: "maintenance", Params: map[string]string{"maintenance": "on"}}, "Confirmed: turning maintenance mode on for *shop* · production."},
		{storage.Watch{Verb: "maintenance", Params: map[string]string{"maintenance": "off"}}, "Confirmed: turning maintenance mode off for *shop* · production."},
		{storage.Watch{Verb: "reboot"}, "Confirmed: rebooting *shop* · production."},
		{storage.Watch{}, "Confirmed: deploying *shop* · production."},
	} {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			w := tt.watch
			w.StackName, w.Environment = "shop", "production"
			d := &fakeDeployer{confirmed: &w}
			r, _ := opsRouter(t, d)
			reply, handled := r.HandleAction(t.Context(), press(ActionDeployConfirm))
			if !handled || !reply.Replace {
				t.Errorf("handled %v, Replace %v: want both", handled, reply.Replace)
			}
			if got := replyText(t, reply.Message); !strings.Contains(got, tt.want) {
				t.Errorf("reply lacks %q:\n%s", tt.want, got)
			}
			if !slices.Equal(d.calls, []string{"Confirm"}) {
				t.Errorf("calls %v", d.calls)
			}
		})
	}
}

// "Roll back" on a failed card and "Roll back to this" in the deployments
// list ask the presser, whoever they are, to confirm a rollback made as
// them, answered where they pressed.
func TestRollbackOfferButton(t *testing.T) {
	t.Parallel()
	stack := testStacks()[0]
	cf := &deploy.Confirmation{IntentID: "c9", Verb: deploy.VerbRollback, Stack: stack, ExpiresAt: time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC),
		Target: &cloud66.Deployment{ID: 1002, GitHash: "abcdef0123"}, Change: deploy.Change{Verb: deploy.VerbRollback, Params: deploy.Params{Ref: "abcdef0123"}, Lock: true}}
	d := &fakeDeployer{result: deploy.Result{Confirm: cf}}
	r, _ := opsRouter(t, d)
	a := Action{TeamID: "T1", EnterpriseID: "E1", UserID: "U7", ChannelID: "C5", ActionID: deploy.ActionRollback, Value: "offer-1002",
		ResponseURL: "https://hooks.slack.com/y", RequestID: "req8"}
	reply, handled := r.HandleAction(t.Context(), a)
	if !handled {
		t.Fatal("not handled")
	}
	want := deployCall{Method: "RollbackFromOffer", IntentID: "offer-1002",
		Origin: deploy.Origin{Identity: storage.Identity{Team: "E1", User: "U7"}, Channel: "C5", ResponseURL: "https://hooks.slack.com/y", RequestID: "req8"}}
	if got := d.verbCalls(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("calls %+v\nwant [%+v]", got, want)
	}
	if reply.Replace || reply.InChannel {
		t.Errorf("Replace %v, InChannel %v: the card or list the button is on must stay, and the confirmation is the presser's", reply.Replace, reply.InChannel)
	}
	if got := replyText(t, reply.Message); !strings.Contains(got, "Roll *shop* · production back to `abcdef0`? This needs your confirmation.") {
		t.Errorf("reply is not the rollback's confirmation:\n%s", got)
	}
	checkConfirmButtons(t, reply.Message, "c9")
}

// The refusals the verbs bring are answered through the error table: an
// option Cloud 66 would refuse, nothing to roll back to, a scope the link
// lacks (reboot's pages name one more), a freeze named by its verb.
func TestOpsRefusalReplies(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	frozen := func(v deploy.Verb) error {
		return fmt.Errorf("deploy: %w", &deploy.FrozenError{Verb: v, Freeze: policy.FreezeHit{Name: "weekend", Until: until}})
	}
	scope := &cloud66.ErrorResponse{StatusCode: 403, Code: "insufficient_scope", Scope: "redeploy", Description: "needs redeploy"}
	for _, tt := range []struct {
		text    string
		err     error
		outcome string
		want    []string
		notWant []string
	}{
		{"restart api service=web", &deploy.OptionError{Problem: "`service` is only for Docker stacks, and api:production is a Rails stack"}, OutcomeUsage,
			[]string{":no_entry_sign: `service` is only for Docker stacks, and api:production is a Rails stack. Nothing was sent to Cloud 66. `/c66 help restart` shows the options."}, nil},
		{"reboot shop:production group=webz", fmt.Errorf("deploy: %w", &deploy.OptionError{Problem: "unknown server group \"webz\": want one of all, web"}), OutcomeUsage,
			[]string{"Unknown server group", "`/c66 help reboot` shows the options."}, nil},
		{"rollback shop:production", &deploy.RollbackError{Problem: "there is no successful deployment older than what is live to go back to; `deployments` lists them"}, OutcomeRefused,
			[]string{":rewind: I can't roll back: there is no successful deployment older than what is live to go back to; `deployments` lists them. Nothing was sent to Cloud 66."}, nil},
		{"restart shop:production", fmt.Errorf("deploy: restart: %w", scope), OutcomeForbidden,
			[]string{"lacks the `redeploy` scope this needs.", "Cloud 66 said: _needs redeploy_", "Run `/c66 login` again to grant it. Nothing was changed."}, []string{"`reboot` scope"}},
		{"maintenance shop:production on", &cloud66.ErrorResponse{StatusCode: 403, Description: "token lacks required scope redeploy"}, OutcomeForbidden,
			[]string{"lacks the `redeploy` scope", "login` again to grant it"}, []string{"`reboot` scope"}},
		{"reboot shop:production web1", scope, OutcomeForbidden,
			[]string{"lacks the `redeploy` scope", "login` again to grant it", "Cloud 66's reboot pages also mention a `reboot` scope", "CLOUD66_SCOPES"}, nil},
		{"reboot shop:production web1", &cloud66.ErrorResponse{StatusCode: 403, Code: "insufficient_scope", Scope: "reboot"}, OutcomeForbidden,
			[]string{"lacks the `reboot` scope", "login` again to grant it"}, nil},
		{"restart shop:production", frozen(deploy.VerbRestart), OutcomeRefused, []string{":ice_cube: Restarts are frozen (*weekend*) until <!date^", "An admin can override it."}, []string{"Deploys"}},
		{"rollback shop:production", frozen(deploy.VerbRollback), OutcomeRefused, []string{"Rollbacks are frozen (*weekend*)"}, nil},
		{"maintenance shop:production off", frozen(deploy.VerbMaintenance), OutcomeRefused, []string{"Maintenance mode changes are frozen (*weekend*)"}, nil},
		{"reboot shop:production group=web", frozen(deploy.VerbReboot), OutcomeRefused, []string{"Reboots are frozen (*weekend*)"}, nil},
	} {
		t.Run(tt.text+" "+tt.err.Error(), func(t *testing.T) {
			t.Parallel()
			r, heard := opsRouter(t, &fakeDeployer{err: tt.err})
			reply := send(t, r, tt.text)
			got := replyText(t, reply)
			hasAll(t, got, tt.want, tt.notWant)
			if reply.InChannel {
				t.Error("a refusal went to the channel")
			}
			if want := strings.Fields(tt.text)[0] + " " + tt.outcome; heard.last() != want {
				t.Errorf("observed %q, want %q", heard.last(), want)
			}
		})
	}
}

// A rollback offer pressed when there is nothing to go back to is answered
// the same way, to the presser.
func TestRollbackOfferRefusal(t *testing.T) {
	t.Parallel()
	r, _ := opsRouter(t, &fakeDeployer{err: &deploy.RollbackError{Problem: "deployment #1002 is what is live"}})
	reply, handled := r.HandleAction(t.Context(), press(deploy.ActionRollback))
	if !handled || reply.Replace || reply.InChannel {
		t.Errorf("handled %v, Replace %v, InChannel %v", handled, reply.Replace, reply.InChannel)
	}
	if got := replyText(t, reply.Message); !strings.Contains(got, "I can't roll back: deployment #1002 is what is live. Nothing was sent") {
		t.Errorf("reply:\n%s", got)
	}
}
