package commands

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
)

// The deploy form: `/c66 deploy` with no arguments, or the global shortcut,
// opens a modal whose submission runs the typed `deploy` (Router.Dispatch
// with the words the form's fields make), so policy, confirmation, lock
// and card are the typed command's own.
const (
	// ViewDeployForm is the modal's callback id.
	ViewDeployForm = "deploy_form"
	// ShortcutDeploy is the global shortcut's callback id (the manifest's
	// features.shortcuts).
	ShortcutDeploy = slackapp.DeployShortcut
	// ActionFormStack is the stack picker: an external select whose
	// options come from block_suggestion, and whose choice (dispatch_action)
	// redraws the form with the options that stack's type takes.
	ActionFormStack = "deploy_form_stack"
)

// Block ids of the form's fields; an error is shown on the field by its
// block id. Each block holds one element, whose action id is the same.
const (
	blockStack    = "stack"
	blockChannel  = "channel"
	blockRef      = "ref"
	blockServices = "services"
	blockProfile  = "profile"
	blockStrategy = "strategy"
)

const (
	// maxSuggestions is Slack's cap on an external select's options.
	maxSuggestions = 100
	// suggestTimeout bounds the one Cloud 66 call a suggestion may make
	// when the person's stacks are not cached: Slack waits 3 s for the
	// ack that carries the options.
	suggestTimeout = 2 * time.Second
)

// formMeta is the modal's private_metadata: where the reply goes, since a
// modal has no response_url. Empty for a global shortcut, whose form then
// asks for the channel.
type formMeta struct {
	Channel string `json:"channel,omitempty"`
}

func (m formMeta) encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

func decodeFormMeta(s string) formMeta {
	var m formMeta
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

// formFields are the options a stack's type takes, asked of deploy's own
// rule (cloud66.Stack.CheckRedeploy) rather than restated here.
type formFields struct {
	Ref, Services bool
	Strategies    []string
}

func fieldsFor(st cloud66.Stack) formFields {
	f := formFields{
		Ref:      st.CheckRedeploy(cloud66.RedeployRequest{GitRef: "main"}) == nil,
		Services: st.CheckRedeploy(cloud66.RedeployRequest{Services: []string{"web"}}) == nil,
	}
	for _, s := range strategies {
		if st.CheckRedeploy(cloud66.RedeployRequest{DeployStrategy: s}) == nil {
			f.Strategies = append(f.Strategies, s)
		}
	}
	return f
}

// deployFormView renders the form. Until a stack is picked (st nil) it
// shows only the picker (and the channel, for a shortcut): which options
// apply depends on the stack's type. The profile applies to every stack.
func deployFormView(meta formMeta, st *cloud66.Stack) slack.ModalViewRequest {
	picker := slack.NewOptionsSelectBlockElement(slack.OptTypeExternal, bk.Plain("Type to search your stacks", 150), ActionFormStack)
	zero := 0
	picker.MinQueryLength = &zero
	if st != nil {
		picker.InitialOption = stackOption(*st)
	}
	stackBlock := slack.NewInputBlock(blockStack, bk.Plain("Stack", 2000), nil, picker)
	stackBlock.DispatchAction = true
	blocks := []slack.Block{stackBlock}
	if meta.Channel == "" {
		ch := slack.NewOptionsSelectBlockElement(slack.OptTypeConversations, bk.Plain("Where to post", 150), blockChannel)
		ch.DefaultToCurrentConversation = true
		blocks = append(blocks, slack.NewInputBlock(blockChannel, bk.Plain("Channel for the deployment message", 2000), nil, ch))
	}
	if st == nil {
		blocks = append(blocks, bk.Context("Pick a stack to see the options its type takes."))
	} else {
		f := fieldsFor(*st)
		text := func(block, label, placeholder, hint string) *slack.InputBlock {
			in := slack.NewInputBlock(block, bk.Plain(label, 2000), bk.Plain(hint, 2000),
				slack.NewPlainTextInputBlockElement(bk.Plain(placeholder, 150), block))
			in.Optional = true
			return in
		}
		if f.Ref {
			blocks = append(blocks, text(blockRef, "Ref", "main, v2.1 or a commit", "A branch, tag or commit; empty ships the stack's branch."))
		}
		if f.Services {
			blocks = append(blocks, text(blockServices, "Services", "web,worker:1.2", "Services to deploy, each `name` or `name:tag`; empty deploys them all."))
		}
		blocks = append(blocks, text(blockProfile, "Profile", "a deployment profile", "A deployment profile of the stack; empty uses its default."))
		if len(f.Strategies) > 0 {
			var opts []*slack.OptionBlockObject
			for _, s := range f.Strategies {
				opts = append(opts, slack.NewOptionBlockObject(s, bk.Plain(s, 75), nil))
			}
			sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, bk.Plain("The stack's default", 150), blockStrategy, opts...)
			in := slack.NewInputBlock(blockStrategy, bk.Plain("Strategy", 2000), nil, sel)
			in.Optional = true
			blocks = append(blocks, in)
		}
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      ViewDeployForm,
		Title:           bk.Plain("Deploy", 24),
		Submit:          bk.Plain("Deploy", 24),
		Close:           bk.Plain("Cancel", 24),
		PrivateMetadata: meta.encode(),
		Blocks:          slack.Blocks{BlockSet: blocks},
	}
}

// stackOption is a stack as the picker shows it; its value is the uid, so
// the submission names the stack unambiguously.
func stackOption(st cloud66.Stack) *slack.OptionBlockObject {
	return slack.NewOptionBlockObject(st.UID, bk.Plain(bk.StackRef(st.Name, st.Environment), 75), nil)
}

// deployForm answers the form's interactions with the person's own Cloud
// 66 client and stack cache.
type deployForm struct {
	res *resolver
	// listed remembers, per person, when every stack they see was put in
	// the stack cache (so the cache is the whole list, not only the names
	// they typed); it is reset when it grows past stackCacheSize.
	mu     sync.Mutex
	listed map[storage.Identity]time.Time
}

func newDeployForm(res *resolver) *deployForm {
	return &deployForm{res: res, listed: map[storage.Identity]time.Time{}}
}

// open is `deploy` with no words: the form, opened with the command's
// trigger id. It then lists the person's stacks into the cache (within the
// command's own time), so the picker's first suggestions need no Cloud 66
// call. Success posts no reply: the modal is the answer.
func (f *deployForm) open(ctx context.Context, c *Call) (chat.Message, error) {
	if c.Request.OpenView == nil {
		return chat.Message{}, &UsageError{Problem: "Which stack?"}
	}
	if err := c.Request.OpenView(ctx, deployFormView(formMeta{Channel: c.Request.ChannelID}, nil)); err != nil {
		return chat.Message{}, &UsageError{Problem: "I couldn't open the deploy form; say the stack instead."}
	}
	f.warm(ctx, c.Request.Identity())
	return chat.Message{}, nil
}

// warm lists the person's stacks into the cache unless it holds them;
// errors are left for the suggestion or the deploy to meet and explain.
func (f *deployForm) warm(ctx context.Context, id storage.Identity) {
	_, _ = f.stacks(ctx, id)
}

// stacks is every stack the person sees: from the cache when they were
// listed less than stackCacheTTL ago, else one ListStacks, cached per
// `name:environment` (only names that are unique in the list, so the cache
// never answers an ambiguous name).
func (f *deployForm) stacks(ctx context.Context, id storage.Identity) ([]cloud66.Stack, error) {
	now := f.res.now()
	f.mu.Lock()
	at, ok := f.listed[id]
	f.mu.Unlock()
	if ok && now.Sub(at) < stackCacheTTL {
		return f.res.cache.stacksOf(id, now), nil
	}
	api, err := f.res.client(ctx, id)
	if err != nil {
		return nil, err
	}
	all, err := api.ListStacks(ctx)
	if err != nil {
		return nil, err
	}
	count := map[stackKey]int{}
	for _, st := range all {
		count[newStackKey(id, StackRef{Name: st.Name, Environment: st.Environment})]++
	}
	for _, st := range all {
		if k := newStackKey(id, StackRef{Name: st.Name, Environment: st.Environment}); count[k] == 1 {
			f.res.cache.put(k, st, now)
		}
	}
	f.mu.Lock()
	if len(f.listed) >= stackCacheSize {
		clear(f.listed)
	}
	f.listed[id] = now
	f.mu.Unlock()
	return all, nil
}

// stackByUID is the stack with this uid among the person's: from the
// cache, else one GetStack.
func (f *deployForm) stackByUID(ctx context.Context, id storage.Identity, uid string) (cloud66.Stack, error) {
	for _, st := range f.res.cache.stacksOf(id, f.res.now()) {
		if st.UID == uid {
			return st, nil
		}
	}
	api, err := f.res.client(ctx, id)
	if err != nil {
		return cloud66.Stack{}, err
	}
	st, err := api.GetStack(ctx, uid)
	if err != nil {
		return cloud66.Stack{}, err
	}
	return *st, nil
}

// suggest answers the picker: the person's stacks whose `name:environment`
// contains what they typed (ignoring case), by name then environment, at
// most maxSuggestions. A cold cache costs one ListStacks bounded by
// suggestTimeout; if that fails, no options (Slack says "no results"), and
// the next keystroke tries again.
func (f *deployForm) suggest(ctx context.Context, a Action) []*slack.OptionBlockObject {
	ctx, cancel := context.WithTimeout(ctx, suggestTimeout)
	defer cancel()
	all, err := f.stacks(ctx, a.Identity())
	if err != nil {
		return []*slack.OptionBlockObject{}
	}
	return suggestStacks(all, a.Value)
}

func suggestStacks(all []cloud66.Stack, typed string) []*slack.OptionBlockObject {
	q := strings.ToLower(strings.TrimSpace(typed))
	var hits []cloud66.Stack
	for _, st := range all {
		if strings.Contains(strings.ToLower(st.Name+":"+st.Environment), q) {
			hits = append(hits, st)
		}
	}
	slices.SortFunc(hits, func(a, b cloud66.Stack) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.UID, b.UID))
	})
	opts := []*slack.OptionBlockObject{}
	for _, st := range hits[:min(len(hits), maxSuggestions)] {
		opts = append(opts, stackOption(st))
	}
	return opts
}

// picked redraws the form for the stack just chosen.
// A stack it cannot look up is said in the form itself: an action inside
// a modal has nowhere else to answer.
func (f *deployForm) picked(ctx context.Context, a Action) (ActionReply, error) {
	meta := decodeFormMeta(a.View.PrivateMetadata)
	st, err := f.stackByUID(ctx, a.Identity(), a.Value)
	if err != nil {
		view := deployFormView(meta, nil)
		view.Blocks.BlockSet = append(view.Blocks.BlockSet, bk.Context(":warning: I couldn't look that stack up in Cloud 66 just now; pick it again, or type the deploy instead."))
		return ActionReply{View: &view}, nil
	}
	view := deployFormView(meta, &st)
	return ActionReply{View: &view}, nil
}

// submit checks the form field by field with deploy's own parser and the
// stack type's rule, and turns it into the typed command.
func (f *deployForm) submit(ctx context.Context, a Action) Submission {
	errs := map[string]string{}
	uid := a.Values[blockStack]
	if uid == "" {
		errs[blockStack] = "Pick a stack."
	}
	channel := decodeFormMeta(a.View.PrivateMetadata).Channel
	if channel == "" {
		if channel = a.Values[blockChannel]; channel == "" {
			errs[blockChannel] = "Pick the channel for the deployment message."
		}
	}
	words := []string{uid}
	for _, key := range []string{blockRef, blockServices, blockProfile, blockStrategy} {
		v := strings.TrimSpace(a.Values[key])
		if key == blockServices {
			v = strings.Join(strings.Fields(v), "")
		}
		if v == "" {
			continue
		}
		word := key + "=" + v
		if _, err := ParseDeployArgs([]string{"stack", word}); err != nil {
			errs[key] = fieldProblem(err)
			continue
		}
		words = append(words, word)
	}
	if len(errs) > 0 {
		return Submission{Errors: errs}
	}
	da, _ := ParseDeployArgs(words)
	// The stack's type, when known without asking Cloud 66 (the picker
	// cached it); otherwise the deploy itself checks it and says so.
	for _, st := range f.res.cache.stacksOf(a.Identity(), f.res.now()) {
		if st.UID != uid {
			continue
		}
		err := st.CheckRedeploy(cloud66.RedeployRequest{GitRef: da.Params.Ref, Services: da.Params.Services, DeployStrategy: da.Params.Strategy})
		if oe, ok := errors.AsType[*cloud66.DeployOptionError](err); ok {
			block := map[string]string{"services": blockServices, "git_ref": blockRef, "deploy_strategy": blockStrategy}[oe.Option]
			return Submission{Errors: map[string]string{block: "Only for " + oe.AppliesTo + ", and " + bk.StackRef(st.Name, st.Environment) + " is " + oe.Kind.String() + "."}}
		}
	}
	var text strings.Builder
	text.WriteString("deploy")
	for _, w := range words {
		text.WriteString(` "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`)
	}
	return Submission{Then: &Request{
		TeamID: a.TeamID, EnterpriseID: a.EnterpriseID, UserID: a.UserID, ChannelID: channel,
		Text: text.String(), RequestID: a.RequestID,
	}}
}

// fieldProblem is a parse error as a field shows it: plain text.
func fieldProblem(err error) string {
	var ue *UsageError
	if !errors.As(err, &ue) {
		return "That isn't valid."
	}
	return strings.NewReplacer("`", "", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(ue.Problem)
}

// formInteractions are the form's entries in the interaction table.
func (f *deployForm) interactions() []*Interaction {
	return []*Interaction{
		{ActionID: ShortcutDeploy, Kind: KindShortcut, Run: func(ctx context.Context, a Action) (ActionReply, error) {
			// Not warmed first: the trigger id lasts 3 s, and the first
			// suggestion lists the stacks within its own bound.
			view := deployFormView(formMeta{}, nil)
			return ActionReply{View: &view}, nil
		}},
		{ActionID: ActionFormStack, Kind: KindSuggestion, Suggest: f.suggest},
		{ActionID: ActionFormStack, Run: f.picked},
		{ActionID: ViewDeployForm, Kind: KindSubmission, Submit: f.submit},
	}
}

// stacksOf is every fresh stack cached for id, once each.
func (c *stackCache) stacksOf(id storage.Identity, now time.Time) []cloud66.Stack {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []cloud66.Stack
	seen := map[string]bool{}
	for el := c.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*stackEntry)
		if e.key.id != id || !now.Before(e.expires) || seen[e.stack.UID] {
			continue
		}
		seen[e.stack.UID] = true
		out = append(out, e.stack)
	}
	return out
}
