package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
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
func (a Action) Identity() storage.Identity {
	return Request{TeamID: a.TeamID, EnterpriseID: a.EnterpriseID, UserID: a.UserID}.Identity()
}

// ActionReply is the answer to a button press. Replace swaps the message
// the button was on (the confirmation) for this one; otherwise it is a new
// ephemeral message to whoever pressed.
type ActionReply struct {
	chat.Message
	Replace bool
}

// HandleAction runs a button press. It reports handled=false for buttons it
// does not own (link buttons, which only need the ack).
func (r *Router) HandleAction(ctx context.Context, a Action) (reply ActionReply, handled bool) {
	by := a.Identity()
	log := r.deps.Logger.With("request_id", a.RequestID, "team", by.Team, "user", a.UserID, "action", a.ActionID)
	var err error
	switch a.ActionID {
	case ActionDeployConfirm:
		var w *storage.Watch
		if w, err = r.deps.Deploy.Confirm(ctx, a.Value, by); err == nil {
			reply = ActionReply{Replace: true, Message: done(fmt.Sprintf(":rocket: Confirmed: deploying %s. Follow it in the channel message.", watchLabel(w)))}
		}
	case ActionCancelConfirm:
		var d cloud66.Deployment
		if d, err = r.deps.Deploy.ConfirmCancel(ctx, a.Value, by); err == nil {
			reply = ActionReply{Replace: true, Message: done(fmt.Sprintf(":black_square_for_stop: Cancelling deployment #%d. Its message will say when Cloud 66 has stopped it.", d.ID))}
		}
	case ActionUnlockConfirm:
		var l storage.Lock
		if l, err = r.deps.Deploy.ConfirmUnlock(ctx, a.Value, by); err == nil {
			msg := fmt.Sprintf(":unlock: <@%s> removed <@%s>'s lock on *%s* · %s.", bk.Esc(a.UserID), bk.Esc(l.Owner.User), bk.Esc(l.StackName), bk.Esc(l.Environment))
			reply = ActionReply{Replace: true, Message: chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}}
		}
	case ActionApprove:
		var st deploy.ApprovalState
		if st, err = r.deps.Deploy.Approve(ctx, a.Value, by); err == nil {
			msg := fmt.Sprintf(":white_check_mark: Your approval is in (%d of %d).", len(st.Approved), st.Needed)
			if st.Watch != nil {
				msg = ":rocket: Your approval was the last one needed: the deploy is starting."
			}
			reply = ActionReply{Message: done(msg)}
		}
	case ActionReject:
		if err = r.deps.Deploy.Reject(ctx, a.Value, by); err == nil {
			reply = ActionReply{Message: done(":no_entry: Rejected: nothing was sent to Cloud 66.")}
		}
	case ActionOverride:
		var res deploy.Result
		if res, err = r.deps.Deploy.Override(ctx, a.Value, by); err == nil {
			reply = ActionReply{Replace: true, Message: deployResultReply(&r.deps, res)}
		}
	case ActionAbort:
		if _, err = r.deps.Deploy.Abort(ctx, a.Value, by); err == nil {
			reply = ActionReply{Replace: true, Message: done(":wave: Cancelled: nothing was sent to Cloud 66.")}
		}
	default:
		return ActionReply{}, false
	}
	if err != nil {
		log.LogAttrs(ctx, levelFor(err), "button refused", slog.String("error", err.Error()))
		return ActionReply{Message: r.actionError(ctx, a, err), Replace: replaceOnError(err)}, true
	}
	log.Info("button done")
	return reply, true
}

func done(s string) chat.Message {
	return chat.Message{Text: bk.Fallback(s), Blocks: []slack.Block{bk.Section(s)}}
}

func watchLabel(w *storage.Watch) string {
	if w == nil {
		return "the stack"
	}
	return "*" + bk.Esc(w.StackName) + "* · " + bk.Esc(w.Environment)
}

// replaceOnError: a spent or expired confirmation is replaced so its
// buttons disappear; someone else's click must not touch the owner's message.
func replaceOnError(err error) bool {
	return errors.Is(err, deploy.ErrIntentGone) || errors.Is(err, storage.ErrIntentExpired)
}

// actionError maps a refused button press to what the presser reads.
func (r *Router) actionError(ctx context.Context, a Action, err error) chat.Message {
	switch {
	case errors.Is(err, deploy.ErrOwnApproval):
		return errorText(":raised_hand: Your own approval doesn't count: someone else has to approve your deploy.")
	case errors.Is(err, deploy.ErrNotYours):
		return errorText(":no_entry_sign: This button belongs to the person who asked for it. Nothing was sent.")
	case errors.Is(err, deploy.ErrIntentGone):
		return errorText(":information_source: This was already confirmed or cancelled. Nothing more was sent.")
	case errors.Is(err, storage.ErrIntentExpired):
		return errorText(":hourglass: This confirmation expired (they last 5 minutes). Nothing was sent; run the command again.")
	}
	req := Request{TeamID: a.TeamID, EnterpriseID: a.EnterpriseID, UserID: a.UserID, ChannelID: a.ChannelID, ResponseURL: a.ResponseURL, RequestID: a.RequestID}
	return r.errorReply(ctx, &Call{Request: req, Command: &Command{Name: a.ActionID}, Router: r, Deps: &r.deps}, err)
}
