package commands

import (
	"context"
	"log/slog"

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
}

// Interaction is a button, as data: the action id it answers and what a
// press does. It is registered beside the command whose messages carry the
// button (Command.Interactions), and the router finds it by action id;
// each id is one constant, defined once. Modals will be registered the same
// way, keyed by their view's callback id, with a handler for the
// submission beside Run.
type Interaction struct {
	ActionID string
	// Change names what a press changes, for the refusal when its audit
	// entry cannot be written ("deploy"); "" for "make that change".
	Change string
	Run    func(ctx context.Context, a Action) (ActionReply, error)
}

// HandleAction runs a button press. It reports handled=false for buttons it
// does not own (link buttons, which only need the ack). A refused press is
// answered, counted and logged through the error table, as commands are.
func (r *Router) HandleAction(ctx context.Context, a Action) (reply ActionReply, handled bool) {
	in, ok := r.table.interaction(a.ActionID)
	if !ok {
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
