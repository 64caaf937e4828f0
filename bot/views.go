package bot

import (
	"context"
	"log/slog"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/metrics"
)

// ModalRouter is what modals need besides Router: a global shortcut, an
// external select's options, a submission; *commands.Router satisfies it.
// A Router without it has no modals (their envelopes are only acked).
type ModalRouter interface {
	HandleShortcut(ctx context.Context, a commands.Action) (commands.ActionReply, bool)
	HandleSuggestion(ctx context.Context, a commands.Action) ([]*slack.OptionBlockObject, bool)
	HandleSubmission(ctx context.Context, a commands.Action) (commands.Submission, bool)
}

// suggestionDeadline bounds the work behind a block_suggestion's ack:
// Slack shows nothing for options that come after 3 s.
const suggestionDeadline = 2500 * time.Millisecond

// answerInAck takes the envelopes whose ack carries the answer (a modal's
// submission, a select's options) and reports whether it did. They are
// acked from the pool, never from the event loop, and within Slack's 3 s.
func (b *Bot) answerInAck(evt socketmode.Event, arrived time.Time) bool {
	cb, ok := evt.Data.(slack.InteractionCallback)
	mr, isModal := b.router.(ModalRouter)
	if evt.Type != socketmode.EventTypeInteractive || !ok || !isModal ||
		(cb.Type != slack.InteractionTypeViewSubmission && cb.Type != slack.InteractionTypeBlockSuggestion) {
		return false
	}
	req := *evt.Request
	acked := false
	ack := func(payload any) {
		if acked {
			return
		}
		acked = true
		var err error
		if payload == nil {
			err = b.socket.Ack(req)
		} else {
			err = b.socket.Ack(req, payload)
		}
		b.metrics.Ack(time.Since(arrived), err != nil)
		b.metrics.Envelope(string(evt.Type))
		if err != nil {
			b.log.Warn("ack failed", "type", string(evt.Type), "error", err.Error())
		}
	}
	act := modalAction(cb)
	env := envelope{id: req.EnvelopeID, typ: string(evt.Type)}
	accepted := b.pool.submit(admission.Urgent, func(ctx context.Context) {
		defer ack(nil) // whatever happens, Slack hears back
		if cb.Type == slack.InteractionTypeBlockSuggestion {
			ctx, cancel := context.WithTimeout(ctx, suggestionDeadline)
			defer cancel()
			if opts, handled := mr.HandleSuggestion(ctx, act); handled {
				// Not slack.OptionsResponse: its omitempty would ack no
				// matches as {}, not the empty list Slack shows as none.
				if opts == nil {
					opts = []*slack.OptionBlockObject{}
				}
				ack(map[string]any{"options": opts})
			}
			return
		}
		ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		defer cancel()
		if !b.firstTime(ctx, env) {
			return
		}
		sub, handled := mr.HandleSubmission(ctx, act)
		if !handled {
			return
		}
		if len(sub.Errors) > 0 {
			ack(slack.NewErrorsViewSubmissionResponse(sub.Errors))
			return
		}
		ack(nil) // closes the modal; the command's reply follows
		if sub.Then != nil {
			b.postReply(ctx, sub.Then.ChannelID, sub.Then.UserID, b.router.Dispatch(ctx, *sub.Then))
		}
	})
	if !accepted {
		b.metrics.QueueFull()
		b.log.Warn("queue full; modal refused", "request_id", act.RequestID)
		if cb.Type == slack.InteractionTypeViewSubmission {
			ack(slack.NewErrorsViewSubmissionResponse(map[string]string{"stack": "I'm very busy right now. Submit again in a few seconds."}))
		} else {
			ack(nil)
		}
	}
	return true
}

// submitShortcut runs a global shortcut on the pool and opens the modal
// it answers with, using the shortcut's trigger id.
func (b *Bot) submitShortcut(env envelope, cb slack.InteractionCallback) {
	mr, ok := b.router.(ModalRouter)
	if !ok {
		return
	}
	act := modalAction(cb)
	act.ActionID = cb.CallbackID
	accepted := b.pool.submit(admission.Urgent, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		defer cancel()
		if !b.firstTime(ctx, env) {
			return
		}
		reply, handled := mr.HandleShortcut(ctx, act)
		if handled && reply.View != nil {
			if err := b.openView(ctx, act.TriggerID, *reply.View); err != nil {
				b.log.Warn("views.open failed", "request_id", act.RequestID, "error", err.Error())
			}
		}
	})
	if !accepted {
		b.metrics.QueueFull()
		b.log.Warn("queue full; shortcut refused", "request_id", act.RequestID)
	}
}

// modalAction is an interaction as package commands reads it, with the
// modal it came from and that modal's state.
func modalAction(cb slack.InteractionCallback) commands.Action {
	team := cb.User.TeamID
	if team == "" {
		team = cb.Team.ID
	}
	a := commands.Action{
		TeamID: team, EnterpriseID: cb.Enterprise.ID, UserID: cb.User.ID, ChannelID: cb.Channel.ID,
		ActionID: cb.ActionID, Value: cb.Value, ResponseURL: cb.ResponseURL, RequestID: newRequestID(),
		TriggerID: cb.TriggerID,
		View:      commands.ViewRef{ID: cb.View.ID, Hash: cb.View.Hash, CallbackID: cb.View.CallbackID, PrivateMetadata: cb.View.PrivateMetadata},
	}
	if cb.View.State != nil {
		a.Values = map[string]string{}
		for block, els := range cb.View.State.Values {
			for _, el := range els {
				a.Values[block] = elementValue(el)
			}
		}
	}
	return a
}

// elementValue is what an element holds: a selected option's value, a
// picked conversation or channel, or typed text.
func elementValue(a slack.BlockAction) string {
	switch {
	case a.SelectedOption.Value != "":
		return a.SelectedOption.Value
	case a.SelectedConversation != "":
		return a.SelectedConversation
	case a.SelectedChannel != "":
		return a.SelectedChannel
	}
	return a.Value
}

// inModal fills in the modal an action inside one came from.
func inModal(act *commands.Action, cb slack.InteractionCallback) {
	if cb.View.ID == "" {
		return
	}
	m := modalAction(cb)
	act.View, act.Values, act.TriggerID = m.View, m.Values, m.TriggerID
}

// viewReply shows an action's reply that is a modal: it replaces the modal
// the action came from (views.update, against its hash so a stale update
// loses), or opens one. It reports whether a message is left to post.
func (b *Bot) viewReply(ctx context.Context, act commands.Action, reply commands.ActionReply) (message bool) {
	if reply.View != nil {
		var err error
		if act.View.ID != "" {
			_, err = b.cfg.API.UpdateViewContext(ctx, *reply.View, "", act.View.Hash, act.View.ID)
			err = trackSlack(b.metrics, metrics.SlackViewsUpdate, err)
		} else {
			err = b.openView(ctx, act.TriggerID, *reply.View)
		}
		if err != nil {
			b.log.Warn("modal update failed", "request_id", act.RequestID, "error", err.Error())
		}
	}
	return reply.Text != "" || len(reply.Blocks) > 0
}

func (b *Bot) openView(ctx context.Context, triggerID string, view slack.ModalViewRequest) error {
	_, err := b.cfg.API.OpenViewContext(ctx, triggerID, view)
	return trackSlack(b.metrics, metrics.SlackViewsOpen, err)
}

// viewOpener is a slash command's OpenView: its trigger id, once.
func (b *Bot) viewOpener(triggerID string) func(ctx context.Context, view slack.ModalViewRequest) error {
	return func(ctx context.Context, view slack.ModalViewRequest) error {
		return b.openView(ctx, triggerID, view)
	}
}

// postReply posts a command's reply where a modal's submission was made,
// for there is no response_url: in the channel when it is for everyone,
// else to the person alone (chat.postEphemeral), falling back to a DM
// where the bot cannot post ephemerally (a channel it is not in).
func (b *Bot) postReply(ctx context.Context, channel, user string, reply chat.Message) {
	private := reply.Private
	reply.Private = nil
	post := func(m chat.Message, inChannel bool) {
		err := withPlainFallback(m, func(m chat.Message, _ bool) error {
			if inChannel {
				_, _, err := b.cfg.API.PostMessageContext(ctx, channel, msgOptions(m)...)
				return trackSlack(b.metrics, metrics.SlackPostMessage, err)
			}
			_, err := b.cfg.API.PostEphemeralContext(ctx, channel, user, msgOptions(m)...)
			return trackSlack(b.metrics, metrics.SlackPostEphemeral, err)
		})
		if err == nil {
			return
		}
		b.log.LogAttrs(ctx, slog.LevelWarn, "modal reply failed; sending it as a DM", slog.String("error", err.Error()))
		ch, _, _, err := b.cfg.API.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
		if err = trackSlack(b.metrics, metrics.SlackConversationOpen, err); err == nil {
			_, _, err = b.cfg.API.PostMessageContext(ctx, ch.ID, msgOptions(m)...)
			err = trackSlack(b.metrics, metrics.SlackPostMessage, err)
		}
		if err != nil {
			b.log.LogAttrs(ctx, slog.LevelWarn, "modal reply lost", slog.String("error", err.Error()))
		}
	}
	if reply.Text != "" || len(reply.Blocks) > 0 {
		post(reply, reply.InChannel)
	}
	if private != nil {
		post(*private, false)
	}
}
