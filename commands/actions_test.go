package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// fakeDeployer answers every call with its fixed results, or err when set,
// and records which methods ran and, for the verbs' calls, with what.
type fakeDeployer struct {
	mu     sync.Mutex
	calls  []string
	err    error
	result deploy.Result
	unlock deploy.UnlockResult
	cancel *deploy.Confirmation
	// made are the verbs' calls (Change, Rollback, Reboot, the rollback
	// offers), with their arguments.
	made []deployCall
	// confirmed is the watch Confirm returns; nil: a deploy of shop:production.
	confirmed *storage.Watch
	// mayUse are the verbs MayUse allows; nil allows every verb.
	mayUse []deploy.Verb
	// offerFails makes OfferRollback fail for that deployment.
	offerFails string
}

// deployCall is one call of a verb's method and its arguments.
type deployCall struct {
	Method   string
	Origin   deploy.Origin
	Stack    string // name:environment
	Change   deploy.Change
	Target   deploy.RebootTarget
	To       string
	Lock     bool
	IntentID string
}

func (f *fakeDeployer) record(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, method)
	return f.err
}

// recordCall records c, and its method as record does.
func (f *fakeDeployer) recordCall(c deployCall) error {
	f.mu.Lock()
	f.made = append(f.made, c)
	f.mu.Unlock()
	return f.record(c.Method)
}

// verbCalls returns the verbs' calls made so far.
func (f *fakeDeployer) verbCalls() []deployCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.made)
}

func (f *fakeDeployer) Deploy(context.Context, deploy.Origin, cloud66.Stack, deploy.Params) (deploy.Result, error) {
	return f.result, f.record("Deploy")
}

func (f *fakeDeployer) Confirm(_ context.Context, id string, by storage.Identity) (*storage.Watch, error) {
	if f.confirmed != nil {
		w := *f.confirmed
		return &w, f.record("Confirm")
	}
	return &storage.Watch{StackName: "shop", Environment: "production", Owner: by}, f.record("Confirm")
}

func (f *fakeDeployer) Abort(context.Context, string, storage.Identity) (storage.Intent, error) {
	return storage.Intent{}, f.record("Abort")
}

func (f *fakeDeployer) RequestCancel(context.Context, deploy.Origin, cloud66.Stack) (*deploy.Confirmation, error) {
	return f.cancel, f.record("RequestCancel")
}

func (f *fakeDeployer) ConfirmCancel(context.Context, string, storage.Identity) (cloud66.Deployment, error) {
	return cloud66.Deployment{ID: 42, GitRef: "main", GitHash: "abc1234def"}, f.record("ConfirmCancel")
}

func (f *fakeDeployer) Lock(_ context.Context, o deploy.Origin, st cloud66.Stack, reason string) (deploy.LockResult, error) {
	return deploy.LockResult{Lock: storage.Lock{StackName: st.Name, Environment: st.Environment, Owner: o.Identity, Reason: reason}}, f.record("Lock")
}

func (f *fakeDeployer) Unlock(context.Context, deploy.Origin, cloud66.Stack) (deploy.UnlockResult, error) {
	return f.unlock, f.record("Unlock")
}

func (f *fakeDeployer) ConfirmUnlock(context.Context, string, storage.Identity) (storage.Lock, error) {
	return storage.Lock{StackName: "shop", Environment: "production", Owner: storage.Identity{Team: "T1", User: "U9"}}, f.record("ConfirmUnlock")
}

func (f *fakeDeployer) Locks(context.Context, string) ([]storage.Lock, error) {
	return nil, f.record("Locks")
}

func (f *fakeDeployer) Approve(context.Context, string, storage.Identity) (deploy.ApprovalState, error) {
	return deploy.ApprovalState{Approved: []string{"U2"}, Needed: 2}, f.record("Approve")
}

func (f *fakeDeployer) Reject(context.Context, string, storage.Identity) error {
	return f.record("Reject")
}

func (f *fakeDeployer) Override(context.Context, string, storage.Identity) (deploy.Result, error) {
	return deploy.Result{Watch: &storage.Watch{MessageTS: "1.2"}}, f.record("Override")
}

func (f *fakeDeployer) MayUse(_ context.Context, _ storage.Identity, v deploy.Verb) bool {
	return f.mayUse == nil || slices.Contains(f.mayUse, v)
}

func (f *fakeDeployer) Change(_ context.Context, o deploy.Origin, st cloud66.Stack, c deploy.Change) (deploy.Result, error) {
	return f.result, f.recordCall(deployCall{Method: "Change " + string(c.Verb), Origin: o, Stack: stackName(st), Change: c})
}

func (f *fakeDeployer) Rollback(_ context.Context, o deploy.Origin, st cloud66.Stack, to string, lock bool) (deploy.Result, error) {
	return f.result, f.recordCall(deployCall{Method: "Rollback", Origin: o, Stack: stackName(st), To: to, Lock: lock})
}

func (f *fakeDeployer) RollbackFromOffer(_ context.Context, intentID string, o deploy.Origin) (deploy.Result, error) {
	return f.result, f.recordCall(deployCall{Method: "RollbackFromOffer", Origin: o, IntentID: intentID})
}

func (f *fakeDeployer) RetryFromOffer(_ context.Context, intentID string, o deploy.Origin) (deploy.Result, error) {
	return f.result, f.recordCall(deployCall{Method: "RetryFromOffer", Origin: o, IntentID: intentID})
}

// OfferRollback answers "offer-<to>", or fails for offerFails.
func (f *fakeDeployer) OfferRollback(_ context.Context, o deploy.Origin, st cloud66.Stack, to string) (string, error) {
	err := f.recordCall(deployCall{Method: "OfferRollback", Origin: o, Stack: stackName(st), To: to})
	if to == f.offerFails {
		err = errors.New("offers: the store is read-only")
	}
	return "offer-" + to, err
}

func (f *fakeDeployer) Reboot(_ context.Context, o deploy.Origin, st cloud66.Stack, t deploy.RebootTarget) (deploy.Result, error) {
	return f.result, f.recordCall(deployCall{Method: "Reboot", Origin: o, Stack: stackName(st), Target: t})
}

func stackName(st cloud66.Stack) string { return st.Name + ":" + st.Environment }

var _ Deployer = (*fakeDeployer)(nil)

func press(id string) Action {
	return Action{TeamID: "T1", UserID: "U1", ChannelID: "C1", ActionID: id, Value: "intent-1", ResponseURL: "https://hooks.slack.com/x", RequestID: "req7"}
}

// Every button the bot renders is handled by the interaction registered
// for its action id, and a press reaches only the method it needs.
func TestHandleAction(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id, method string
		replace    bool
		public     bool
		want       string
	}{
		{ActionDeployConfirm, "Confirm", true, false, "Confirmed: deploying *shop* · production"},
		{ActionAbort, "Abort", true, false, "Cancelled: nothing was sent to Cloud 66"},
		{ActionOverride, "Override", true, false, "Deployment started"},
		{deploy.ActionApprove, "Approve", false, false, "Your approval is in (1 of 2)"},
		{deploy.ActionReject, "Reject", false, false, "Rejected: nothing was sent"},
		{ActionCancelConfirm, "ConfirmCancel", true, false, "Cancelling the deployment of `main` (`abc1234`)."},
		{ActionUnlockConfirm, "ConfirmUnlock", true, true, "<@U1> removed <@U9>'s lock on *shop* · production"},
	} {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{}
			r, _ := newTestRouter(t, true, &fakeCloud66{}, func(deps *Deps) { deps.Deploy = d })
			reply, handled := r.HandleAction(t.Context(), press(tt.id))
			if !handled {
				t.Fatal("not handled")
			}
			if !slices.Equal(d.calls, []string{tt.method}) {
				t.Errorf("calls %v, want [%s]", d.calls, tt.method)
			}
			if reply.Replace != tt.replace || reply.InChannel != tt.public {
				t.Errorf("Replace %v, InChannel %v; want %v, %v", reply.Replace, reply.InChannel, tt.replace, tt.public)
			}
			if got := replyText(t, reply.Message); !strings.Contains(got, tt.want) {
				t.Errorf("reply lacks %q:\n%s", tt.want, got)
			}
		})
	}
}

// A refused press is answered through the error table: a spent or expired
// confirmation loses its buttons, someone else's click leaves the owner's
// message alone, and an audit failure names what the button would change.
func TestRefusedPressesAnswerThroughTheErrorTable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id      string
		err     error
		replace bool
		want    string
	}{
		{ActionDeployConfirm, fmt.Errorf("deploy: %w", deploy.ErrIntentGone), true, "already confirmed or cancelled"},
		{ActionCancelConfirm, fmt.Errorf("deploy: %w", storage.ErrIntentExpired), true, "This confirmation expired"},
		{ActionUnlockConfirm, deploy.ErrNotYours, false, "belongs to the person who asked"},
		{deploy.ActionApprove, deploy.ErrOwnApproval, false, "Your own approval doesn't count"},
		{ActionDeployConfirm, fmt.Errorf("deploy: start: %w", storage.ErrNotAudited), false, "so I did not deploy."},
		{ActionUnlockConfirm, fmt.Errorf("deploy: %w", storage.ErrNotAudited), false, "so I did not unlock the stack."},
		{ActionCancelConfirm, fmt.Errorf("deploy: %w", storage.ErrNotAudited), false, "so I did not cancel the deployment."},
		{ActionAbort, fmt.Errorf("deploy: %w", storage.ErrNotAudited), false, "so I did not make that change."},
		{ActionOverride, &deploy.LockedError{Lock: storage.Lock{StackName: "shop", Owner: storage.Identity{User: "U9"}}}, false, "is locked by <@U9>"},
		{ActionDeployConfirm, fmt.Errorf("boom"), false, "Something went wrong on my side. Try again; if it keeps happening, give your admin this request id: `req7`"},
	} {
		t.Run(tt.id+" "+tt.err.Error(), func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRouter(t, true, &fakeCloud66{}, func(deps *Deps) { deps.Deploy = &fakeDeployer{err: tt.err} })
			reply, handled := r.HandleAction(t.Context(), press(tt.id))
			if !handled {
				t.Fatal("not handled")
			}
			if reply.Replace != tt.replace {
				t.Errorf("Replace = %v, want %v", reply.Replace, tt.replace)
			}
			if reply.InChannel {
				t.Error("a refusal went to the channel")
			}
			if got := replyText(t, reply.Message); !strings.Contains(got, tt.want) {
				t.Errorf("reply lacks %q:\n%s", tt.want, got)
			}
		})
	}
}

// Link buttons (and anything else not registered) only need the ack.
func TestUnknownActionsAreNotHandled(t *testing.T) {
	t.Parallel()
	d := &fakeDeployer{}
	r, _ := newTestRouter(t, true, &fakeCloud66{}, func(deps *Deps) { deps.Deploy = d })
	for _, id := range []string{"login_open", "stack_open", "", "deploy"} {
		if _, handled := r.HandleAction(t.Context(), press(id)); handled {
			t.Errorf("%q was handled", id)
		}
	}
	if len(d.calls) != 0 {
		t.Errorf("calls %v", d.calls)
	}
}

// buttonIDs are the action ids of the non-link buttons in m.
func buttonIDs(m chat.Message) []string {
	var ids []string
	for _, b := range m.Blocks {
		a, ok := b.(*slack.ActionBlock)
		if !ok {
			continue
		}
		for _, el := range a.Elements.ElementSet {
			if btn, ok := el.(*slack.ButtonBlockElement); ok && btn.URL == "" {
				ids = append(ids, btn.ActionID)
			}
		}
	}
	return ids
}

// Every button the commands render has its interaction in the table, and
// every interaction is one the bot renders (deploy renders Approve and
// Reject on its approval requests).
func TestEveryRenderedButtonIsRegistered(t *testing.T) {
	t.Parallel()
	stacks := testStacks()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	lock := &storage.Lock{StackName: "shop", Environment: "production", Owner: storage.Identity{Team: "T1", User: "U9"}, Since: now}
	d := &fakeDeployer{
		result: deploy.Result{Confirm: &deploy.Confirmation{IntentID: "i1", Stack: stacks[0], ExpiresAt: now}},
		unlock: deploy.UnlockResult{Confirm: &deploy.Confirmation{IntentID: "i2", Stack: stacks[0], Lock: lock, ExpiresAt: now}},
		cancel: &deploy.Confirmation{IntentID: "i3", Stack: stacks[0], ExpiresAt: now},
	}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: stacks}, func(deps *Deps) { deps.Deploy = d })
	// deploy renders Approve and Reject on approval requests, and Retry and
	// Roll back on a failed deploy's card (the deployments list's buttons
	// are section accessories, checked in TestDeploymentsOfferRollbacks).
	rendered := map[string]bool{deploy.ActionApprove: true, deploy.ActionReject: true, deploy.ActionRollback: true, deploy.ActionRetry: true}
	for _, text := range []string{"deploy shop:production", "cancel shop:production", "unlock shop:production"} {
		req := ana
		req.Text = text
		ids := buttonIDs(r.Dispatch(t.Context(), req))
		if len(ids) == 0 {
			t.Errorf("%s rendered no buttons", text)
		}
		for _, id := range ids {
			rendered[id] = true
		}
	}
	frozen := classify(&deploy.FrozenError{OverrideIntentID: "i4"})
	for _, id := range buttonIDs(frozen.reply(t.Context(), r.errors, failure{err: &deploy.FrozenError{OverrideIntentID: "i4"}, req: ana})) {
		rendered[id] = true
	}
	locked := &deploy.LockedError{Lock: *lock, WaitIntentID: "i5"}
	for _, id := range buttonIDs(classify(locked).reply(t.Context(), r.errors, failure{err: locked, req: ana})) {
		rendered[id] = true
	}
	for id := range rendered {
		if _, ok := r.table.interaction(id); !ok {
			t.Errorf("button %q is rendered but no interaction handles it", id)
		}
	}
	// The deploy form's stack picker is a select inside its modal.
	for _, id := range viewActionIDs(deployFormView(formMeta{Channel: "C1"}, nil)) {
		rendered[id] = true
	}
	for k := range r.table.interactions {
		if k.kind == KindButton && !rendered[k.id] {
			t.Errorf("interaction %q is registered but never rendered", k.id)
		}
	}
}

func TestDuplicatesInTheTablePanic(t *testing.T) {
	t.Parallel()
	for name, second := range map[string]*Command{
		"command name": {Name: "stacks"},
		"alias":        {Name: "x", Aliases: []string{"stacks"}},
		"action id":    {Name: "y", Interactions: []*Interaction{{ActionID: ActionAbort}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tb := newTable("/c66")
			tb.add(&Command{Name: "stacks", Interactions: []*Interaction{{ActionID: ActionAbort}}})
			defer func() {
				if recover() == nil {
					t.Errorf("a duplicate %s did not panic", name)
				}
			}()
			tb.add(second)
		})
	}
}

// A command is built with only what it uses, so it runs on its own with
// just that: lock needs a locker and the stack resolver, nothing else.
func TestACommandRunsWithOnlyItsOwnDependencies(t *testing.T) {
	t.Parallel()
	d := &fakeDeployer{}
	res := &resolver{clientFor: func(context.Context, storage.Identity) (Cloud66, error) {
		return &fakeCloud66{stacks: testStacks()}, nil
	},
		now: time.Now}
	lock := lockCommand(d, res, "/x")
	reply, err := lock.Run(t.Context(), &Call{Request: ana, Args: []string{"shop:production", "release"}, Command: lock})
	if err != nil {
		t.Fatal(err)
	}
	if got := replyText(t, reply); !strings.Contains(got, "<@U1> locked *shop* · production: release. Nobody else can deploy it until `/x unlock shop:production`") {
		t.Errorf("lock reply:\n%s", got)
	}
	if !slices.Equal(d.calls, []string{"Lock"}) {
		t.Errorf("calls %v", d.calls)
	}
}

// The confirmation shows the deploy parameters as the card does
// (deploy.Params.Fields), beside what is live.
func TestConfirmationShowsParamsAsTheCardDoes(t *testing.T) {
	t.Parallel()
	p := deploy.Params{Ref: "v2.1", Services: []string{"web:1.2", "<!here>"}, Profile: "fast", Strategy: "rolling"}
	m := deployConfirmation(&deploy.Confirmation{IntentID: "i1", Stack: testStacks()[0], Params: p, LiveHash: "0123456789", LiveRef: "main"})
	js, err := json.Marshal(m.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	got := string(js)
	for _, f := range append([]string{"*Ref to ship*\n`v2.1`"}, append(p.Fields(), "*Live now*\n`0123456` (`main`)")...) {
		want, _ := json.Marshal(f)
		if !strings.Contains(got, strings.Trim(string(want), `"`)) {
			t.Errorf("confirmation lacks %q:\n%s", f, got)
		}
	}
	if strings.Contains(got, "<!here>") {
		t.Errorf("a service name was not escaped:\n%s", got)
	}
}
