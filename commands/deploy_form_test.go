package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

// formNow is newTestRouter's clock.
var formNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// viewActionIDs are the action ids of a view's interactive elements.
func viewActionIDs(v slack.ModalViewRequest) []string {
	var ids []string
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.DispatchAction {
			if sel, ok := in.Element.(*slack.SelectBlockElement); ok {
				ids = append(ids, sel.ActionID)
			}
		}
	}
	return ids
}

// viewBlocks are the block ids of a view's input blocks.
func viewBlocks(v slack.ModalViewRequest) []string {
	var ids []string
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok {
			ids = append(ids, in.BlockID)
		}
	}
	return ids
}

func viewStrategies(v slack.ModalViewRequest) []string {
	var out []string
	for _, b := range v.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok && in.BlockID == blockStrategy {
			for _, o := range in.Element.(*slack.SelectBlockElement).Options {
				out = append(out, o.Value)
			}
		}
	}
	return out
}

func TestDeployFormShowsTheOptionsTheStackTypeTakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		stack      *cloud66.Stack
		blocks     []string
		strategies []string
	}{
		{"no stack yet", nil, []string{blockStack}, nil},
		{"rails", &cloud66.Stack{UID: "u1", Name: "shop", Environment: "production", Framework: "rails"},
			[]string{blockStack, blockRef, blockProfile, blockStrategy}, []string{"serial", "parallel", "rolling"}},
		{"rack", &cloud66.Stack{UID: "u2", Name: "site", Framework: "sinatra"},
			[]string{blockStack, blockRef, blockProfile, blockStrategy}, []string{"serial", "parallel", "rolling"}},
		{"docker", &cloud66.Stack{UID: "u3", Name: "api", Framework: "docker"},
			[]string{blockStack, blockServices, blockProfile, blockStrategy}, []string{"serial", "parallel"}},
		{"maestro v2 on kubernetes", &cloud66.Stack{UID: "u4", Name: "api2", Framework: "docker", Backend: "kubernetes"},
			[]string{blockStack, blockServices, blockProfile, blockStrategy}, []string{"serial", "parallel", "fast"}},
		{"kubernetes", &cloud66.Stack{UID: "u5", Name: "kube", Backend: "kubernetes"},
			[]string{blockStack, blockRef, blockProfile, blockStrategy}, []string{"serial", "parallel", "fast"}},
		{"other", &cloud66.Stack{UID: "u6", Name: "node", Framework: "node"},
			[]string{blockStack, blockRef, blockProfile, blockStrategy}, []string{"serial", "parallel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := deployFormView(formMeta{Channel: "C1"}, tc.stack)
			if got := viewBlocks(v); !slices.Equal(got, tc.blocks) {
				t.Errorf("fields %v, want %v", got, tc.blocks)
			}
			if got := viewStrategies(v); !slices.Equal(got, tc.strategies) {
				t.Errorf("strategies %v, want %v", got, tc.strategies)
			}
			if v.CallbackID != ViewDeployForm || decodeFormMeta(v.PrivateMetadata).Channel != "C1" {
				t.Errorf("callback %q, metadata %q", v.CallbackID, v.PrivateMetadata)
			}
			picker := v.Blocks.BlockSet[0].(*slack.InputBlock)
			sel := picker.Element.(*slack.SelectBlockElement)
			if !picker.DispatchAction || sel.Type != slack.OptTypeExternal || sel.MinQueryLength == nil || *sel.MinQueryLength != 0 {
				t.Errorf("the picker is %+v in %+v", sel, picker)
			}
			if tc.stack != nil && (sel.InitialOption == nil || sel.InitialOption.Value != tc.stack.UID) {
				t.Errorf("the picked stack is not kept: %+v", sel.InitialOption)
			}
		})
	}
	// A shortcut's form (no channel) asks where to post.
	if got := viewBlocks(deployFormView(formMeta{}, nil)); !slices.Equal(got, []string{blockStack, blockChannel}) {
		t.Errorf("shortcut form fields %v", got)
	}
}

func manyStacks(n int) []cloud66.Stack {
	var out []cloud66.Stack
	for i := range n {
		out = append(out, cloud66.Stack{UID: fmt.Sprintf("uid-%03d", i), Name: fmt.Sprintf("svc%03d", i), Environment: "staging"})
	}
	return out
}

func optionValues(opts []*slack.OptionBlockObject) []string {
	var out []string
	for _, o := range opts {
		out = append(out, o.Value)
	}
	return out
}

func TestSuggestStacksFilters(t *testing.T) {
	t.Parallel()
	stacks := testStacks()
	for _, tc := range []struct {
		typed string
		want  []string
	}{
		{"", []string{"uid-evil", "uid-api", "uid-shop-p", "uid-shop-s"}},
		{"SHOP", []string{"uid-shop-p", "uid-shop-s"}},
		{"shop:prod", []string{"uid-shop-p"}},
		{"  api ", []string{"uid-api"}},
		{"staging", []string{"uid-shop-s"}},
		{"nothing", nil},
	} {
		if got := optionValues(suggestStacks(stacks, tc.typed)); !slices.Equal(got, tc.want) {
			t.Errorf("%q suggests %v, want %v", tc.typed, got, tc.want)
		}
	}
	if got := suggestStacks(nil, "x"); got == nil {
		t.Error("no options must still be a list, for the ack's JSON")
	}
	if got := len(suggestStacks(manyStacks(250), "svc")); got != maxSuggestions {
		t.Errorf("%d options, want Slack's cap %d", got, maxSuggestions)
	}
	if o := suggestStacks(stacks, "shop:production")[0]; o.Text.Text != "shop:production" {
		t.Errorf("option text %q", o.Text.Text)
	}
}

// listCountingCloud66 counts ListStacks calls.
type listCountingCloud66 struct {
	fakeCloud66
	lists int
}

func (c *listCountingCloud66) ListStacks(ctx context.Context) ([]cloud66.Stack, error) {
	c.lists++
	return c.fakeCloud66.ListStacks(ctx)
}

func formAction(values map[string]string) Action {
	return Action{TeamID: "T1", UserID: "U1", RequestID: "r1", Values: values,
		View: ViewRef{ID: "V1", Hash: "h1", CallbackID: ViewDeployForm, PrivateMetadata: formMeta{Channel: "C1"}.encode()}}
}

func TestDeployFormSuggestionsComeFromTheCache(t *testing.T) {
	t.Parallel()
	c66 := &listCountingCloud66{fakeCloud66: fakeCloud66{stacks: testStacks()}}
	r, _ := newTestRouter(t, true, nil, func(d *Deps) {
		d.Cloud66For = func(context.Context, storage.Identity) (Cloud66, error) { return c66, nil }
	})
	a := formAction(nil)
	a.ActionID, a.Value = ActionFormStack, "sho"
	for range 3 {
		opts, handled := r.HandleSuggestion(t.Context(), a)
		if !handled || !slices.Equal(optionValues(opts), []string{"uid-shop-p", "uid-shop-s"}) {
			t.Fatalf("suggestions %v (handled %v)", optionValues(opts), handled)
		}
	}
	if c66.lists != 1 {
		t.Errorf("%d ListStacks for three keystrokes, want 1 (then the cache)", c66.lists)
	}
	// The cache is what typed commands use too: a name resolves with no call.
	if _, ok := r.stacks.get(newStackKey(ana.Identity(), StackRef{Name: "shop", Environment: "production"}), formNow); !ok {
		t.Error("the listed stacks are not in the stack cache")
	}
	// Cloud 66 failing: no options, no error shown, nothing else.
	c66.err = errors.New("down")
	b := a
	b.UserID = "U2"
	if opts, _ := r.HandleSuggestion(t.Context(), b); len(opts) != 0 || opts == nil {
		t.Errorf("a failing Cloud 66 suggests %v", opts)
	}
}

func TestDeployFormPickRedrawsForTheStackType(t *testing.T) {
	t.Parallel()
	stacks := append(testStacks(), cloud66.Stack{UID: "uid-dock", Name: "api", Environment: "staging", Framework: "docker"})
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: stacks})
	a := formAction(nil)
	a.ActionID, a.Value = ActionFormStack, "uid-dock"
	reply, handled := r.HandleAction(t.Context(), a)
	if !handled || reply.View == nil {
		t.Fatalf("picking a stack answered %+v", reply)
	}
	if got := viewBlocks(*reply.View); !slices.Equal(got, []string{blockStack, blockServices, blockProfile, blockStrategy}) {
		t.Errorf("a Docker stack's form has %v", got)
	}
	if decodeFormMeta(reply.View.PrivateMetadata).Channel != "C1" {
		t.Errorf("the channel was lost: %q", reply.View.PrivateMetadata)
	}
	a.Value = "uid-gone"
	reply, _ = r.HandleAction(t.Context(), a)
	if raw, _ := json.Marshal(reply.View); reply.View == nil || !strings.Contains(string(raw), "couldn't look that stack up") {
		t.Errorf("an unknown stack answered %+v", reply)
	}
}

func TestDeployFormSubmission(t *testing.T) {
	t.Parallel()
	stacks := append(testStacks(), cloud66.Stack{UID: "uid-dock", Name: "api", Environment: "staging", Framework: "docker"})
	for _, tc := range []struct {
		name   string
		values map[string]string
		meta   string
		errors map[string]string // block → a word of its message
		text   string
	}{
		{"no stack", map[string]string{}, "", map[string]string{blockStack: "Pick a stack"}, ""},
		{"bad ref", map[string]string{blockStack: "uid-shop-p", blockRef: "v..2"}, "", map[string]string{blockRef: "isn't a valid git ref"}, ""},
		{"bad service", map[string]string{blockStack: "uid-dock", blockServices: "web:!!"}, "", map[string]string{blockServices: "name:tag"}, ""},
		{"bad profile", map[string]string{blockStack: "uid-dock", blockProfile: "a b"}, "", map[string]string{blockProfile: "profile"}, ""},
		{"ref on docker", map[string]string{blockStack: "uid-dock", blockRef: "main"}, "", map[string]string{blockRef: "Only for stacks that are not Docker stacks"}, ""},
		{"rolling on docker", map[string]string{blockStack: "uid-dock", blockStrategy: "rolling"}, "", map[string]string{blockStrategy: "Rails and Rack"}, ""},
		{"shortcut without a channel", map[string]string{blockStack: "uid-shop-p"}, formMeta{}.encode(), map[string]string{blockChannel: "channel"}, ""},
		{"valid rails", map[string]string{blockStack: "uid-shop-p", blockRef: " v2.1 ", blockStrategy: "rolling"}, "",
			nil, `deploy "uid-shop-p" "ref=v2.1" "strategy=rolling"`},
		{"valid docker", map[string]string{blockStack: "uid-dock", blockServices: "web, worker:1.2"}, "",
			nil, `deploy "uid-dock" "services=web,worker:1.2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRouter(t, true, &fakeCloud66{stacks: stacks})
			// The picker listed the stacks, as it does before anyone submits.
			if _, handled := r.HandleSuggestion(t.Context(), Action{TeamID: "T1", UserID: "U1", ActionID: ActionFormStack}); !handled {
				t.Fatal("no suggestions")
			}
			a := formAction(tc.values)
			if tc.meta != "" {
				a.View.PrivateMetadata = tc.meta
			}
			sub, handled := r.HandleSubmission(t.Context(), a)
			if !handled {
				t.Fatal("the form's submission is not handled")
			}
			if len(sub.Errors) != len(tc.errors) {
				t.Fatalf("errors %v, want on %v", sub.Errors, tc.errors)
			}
			for block, want := range tc.errors {
				if !strings.Contains(sub.Errors[block], want) {
					t.Errorf("error on %s is %q, want %q", block, sub.Errors[block], want)
				}
			}
			if tc.text == "" {
				if sub.Then != nil {
					t.Errorf("a refused form still runs %q", sub.Then.Text)
				}
				return
			}
			if sub.Then == nil || sub.Then.Text != tc.text || sub.Then.ChannelID != "C1" || sub.Then.UserID != "U1" {
				t.Fatalf("runs %+v, want %q in C1", sub.Then, tc.text)
			}
			// What it runs parses as the typed command would.
			words, err := Split(sub.Then.Text)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseDeployArgs(words[1:]); err != nil {
				t.Errorf("%q does not parse: %v", sub.Then.Text, err)
			}
		})
	}
}

// `deploy` with no words opens the form with the command's trigger id and
// posts no reply; where no modal can open, it is the usage as before.
func TestDeployWithNoWordsOpensTheForm(t *testing.T) {
	t.Parallel()
	d := &fakeDeployer{}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()}, func(deps *Deps) { deps.Deploy = d })
	var opened []slack.ModalViewRequest
	req := ana
	req.Text = "deploy"
	req.OpenView = func(_ context.Context, v slack.ModalViewRequest) error {
		opened = append(opened, v)
		return nil
	}
	reply := r.Dispatch(t.Context(), req)
	if reply.Text != "" || len(reply.Blocks) != 0 {
		t.Errorf("opening the form also replied %q", reply.Text)
	}
	if len(opened) != 1 || opened[0].CallbackID != ViewDeployForm || decodeFormMeta(opened[0].PrivateMetadata).Channel != "C1" {
		t.Fatalf("opened %+v", opened)
	}
	if len(r.stacks.stacksOf(ana.Identity(), formNow)) != len(testStacks()) {
		t.Error("opening the form did not list the stacks for the picker")
	}
	if len(d.calls) != 0 {
		t.Errorf("opening the form called %v", d.calls)
	}

	req.OpenView = func(context.Context, slack.ModalViewRequest) error { return errors.New("expired_trigger_id") }
	if got := r.Dispatch(t.Context(), req).Text; !strings.Contains(got, "couldn't open the deploy form") || !strings.Contains(got, "Usage") {
		t.Errorf("a form that cannot open answers %q", got)
	}
	req.OpenView = nil
	if got := r.Dispatch(t.Context(), req).Text; !strings.Contains(got, "Which stack?") {
		t.Errorf("without modals `deploy` answers %q", got)
	}
	req.Text = "help deploy"
	if got := replyText(t, r.Dispatch(t.Context(), req)); !strings.Contains(got, "opens a form") || !strings.Contains(got, "Deploy with c66bot") {
		t.Errorf("help deploy does not mention the form: %s", got)
	}
	// The typed forms are unchanged.
	req.Text = "deploy shop:staging"
	r.Dispatch(t.Context(), req)
	if !slices.Contains(d.calls, "Deploy") {
		t.Errorf("the typed deploy did not deploy: %v", d.calls)
	}
}

func TestDeployFormShortcut(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()})
	reply, handled := r.HandleShortcut(t.Context(), Action{TeamID: "T1", UserID: "U1", ActionID: ShortcutDeploy, TriggerID: "t1"})
	if !handled || reply.View == nil || reply.View.CallbackID != ViewDeployForm {
		t.Fatalf("the shortcut answered %+v", reply)
	}
	if got := viewBlocks(*reply.View); !slices.Contains(got, blockChannel) {
		t.Errorf("the shortcut's form does not ask for the channel: %v", got)
	}
	if _, handled := r.HandleShortcut(t.Context(), Action{ActionID: "other"}); handled {
		t.Error("an unknown shortcut is handled")
	}
}
