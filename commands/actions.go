package commands

import (
	"context"
	"log/slog"

	"github.com/slack-go/slack"

	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Action is one button press.
type Action struct {
	TeamID       string
	EnterpriseID string
	UserID       string
	ChannelID    string
	ActionID     string
	// Value is the button's value: an intent id.
	Value       string
	ResponseURL string
	RequestID   string

	// Modals (deploy_form.go). TriggerID lets the answer open a modal (a
	// shortcut's); View is the modal the interaction came from (a select
	// inside it, a suggestion, a submission); Values is its state, block
	// id → the value of its one element (the selected option's value, the
	// conversation picked, the text typed). For a block_suggestion, Value
	// is what the person has typed so far.
	TriggerID string
	View      ViewRef
	Values    map[string]string
}

// ViewRef names an open modal, for views.update and its metadata.
type ViewRef struct {
	ID, Hash, CallbackID, PrivateMetadata string
}

// Identity is who pressed the button.
func (a Action) Identity() storage.Identity { return a.request().Identity() }

// request is the press as the request it answers, for the error table.
func (a Action) request() Request {
	return Request{TeamID: a.TeamID, EnterpriseID: a.EnterpriseID, UserID: a.UserID, ChannelID: a.ChannelID,
		ResponseURL: a.ResponseURL, RequestID: a.RequestID}
}

// ActionReply is the answer to a button press. Replace swaps the message
// the button was on (the confirmation) for this one; otherwise it is a new
// ephemeral message to whoever pressed.
type ActionReply struct {
	chat.Message
	Replace bool
	// View, when set, is a modal: opened with the trigger id (a shortcut),
	// or replacing the modal the action came from (views.update). A reply
	// with a View and no Message posts nothing.
	View *slack.ModalViewRequest
}

// InteractionKind is what Slack sends for an Interaction: which of its
// handlers runs, and what its ActionID keys.
type InteractionKind int

const (
	// KindButton is block_actions, keyed by the element's action id (a
	// button, or a select inside a modal); Run answers it.
	KindButton InteractionKind = iota
	// KindSuggestion is block_suggestion, an external select asking for
	// options, keyed by the select's action id; Suggest answers it within
	// Slack's 3 s, in the ack.
	KindSuggestion
	// KindSubmission is view_submission, keyed by the view's callback id;
	// Submit answers it in the ack.
	KindSubmission
	// KindShortcut is a global shortcut, keyed by its callback id; Run
	// answers it, usually with a View to open.
	KindShortcut
)

// Submission is the answer to a modal's submission: Errors (block id →
// what is wrong) keep the modal open with them shown on the fields;
// otherwise it closes and Then, when set, runs as if the person had typed
// it, its reply going to Then's channel (no response_url comes with a
// modal).
type Submission struct {
	Errors map[string]string
	Then   *Request
}

// Interaction is a button, as data: the action id it answers and what a
// press does. It is registered beside the command whose messages carry the
// button (Command.Interactions), and the router finds it by action id;
// each id is one constant, defined once. Modals are registered the same
// way: Kind says what ActionID keys (a view's callback id, a shortcut's)
// and which handler answers.
type Interaction struct {
	ActionID string
	Kind     InteractionKind
	// Change names what a press changes, for the refusal when its audit
	// entry cannot be written ("deploy"); "" for "make that change".
	Change string
	Run    func(ctx context.Context, a Action) (ActionReply, error)
	// Suggest lists an external select's options (KindSuggestion).
	Suggest func(ctx context.Context, a Action) []*slack.OptionBlockObject
	// Submit checks a modal's submission (KindSubmission).
	Submit func(ctx context.Context, a Action) Submission
}

// HandleAction runs a button press. It reports handled=false for buttons it
// does not own (link buttons, which only need the ack). A refused press is
// answered, counted and logged through the error table, as commands are.
func (r *Router) HandleAction(ctx context.Context, a Action) (reply ActionReply, handled bool) {
	return r.handle(ctx, KindButton, a)
}

// HandleShortcut runs a global shortcut, as HandleAction runs a button.
func (r *Router) HandleShortcut(ctx context.Context, a Action) (reply ActionReply, handled bool) {
	return r.handle(ctx, KindShortcut, a)
}

// HandleSuggestion lists the options of an external select (a.ActionID)
// for what was typed (a.Value); handled is false for selects it does not
// own.
func (r *Router) HandleSuggestion(ctx context.Context, a Action) (options []*slack.OptionBlockObject, handled bool) {
	in, ok := r.table.interactionOf(KindSuggestion, a.ActionID)
	if !ok || in.Suggest == nil {
		return nil, false
	}
	return in.Suggest(ctx, a), true
}

// HandleSubmission checks a modal's submission (a.View.CallbackID).
func (r *Router) HandleSubmission(ctx context.Context, a Action) (sub Submission, handled bool) {
	in, ok := r.table.interactionOf(KindSubmission, a.View.CallbackID)
	if !ok || in.Submit == nil {
		return Submission{}, false
	}
	sub = in.Submit(ctx, a)
	r.log.Info("modal submitted", "request_id", a.RequestID, "team", a.Identity().Team, "user", a.UserID,
		"view", a.View.CallbackID, "errors", len(sub.Errors))
	return sub, true
}

func (r *Router) handle(ctx context.Context, kind InteractionKind, a Action) (reply ActionReply, handled bool) {
	in, ok := r.table.interactionOf(kind, a.ActionID)
	if !ok || in.Run == nil {
		return ActionReply{}, false
	}
	log := r.log.With("request_id", a.RequestID, "team", a.Identity().Team, "user", a.UserID, "action", a.ActionID)
	reply, err := in.Run(ctx, a)
	if err != nil {
		class := classify(err)
		log.LogAttrs(ctx, class.level, "button refused", slog.String("outcome", class.outcome), slog.String("error", err.Error()))
		return ActionReply{Message: class.reply(ctx, r.errors, failure{err: err, req: a.request(), change: in.Change}), Replace: class.replace}, true
	}
	log.Info("button done")
	return reply, true
}

func watchLabel(w *storage.Watch) string {
	if w == nil {
		return "the stack"
	}
	return "*" + bk.Esc(w.StackName) + "* · " + bk.Esc(w.Environment)
}
