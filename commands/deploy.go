package commands

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Deployer is the deployment workflow the commands drive; *deploy.Service
// satisfies it. Each command and button is built with only the part of it
// that it uses, declared beside it.
type Deployer interface {
	deployFlow
	canceller
	lockTaker
	unlockFlow
	lockLister
	deployGate
	changer
	rollbacker
	rollbackOfferer
	rebooter
}

// Action ids of the buttons that answer a deploy; a button's value is
// always an intent id. The approval request's Approve and Reject are
// rendered by package deploy, which defines their ids
// (deploy.ActionApprove, deploy.ActionReject).
const (
	ActionDeployConfirm = "deploy_confirm"
	// ActionAbort is the Cancel of every confirmation: a deploy's, a
	// cancel's, an unlock's. It drops the parked request.
	ActionAbort    = "intent_abort"
	ActionOverride = "freeze_override"
)

// deployFlow is what deploy and its buttons use: starting a deploy, and
// answering the confirmation, the approval request and the freeze override
// it may lead to.
type deployFlow interface {
	deployStarter
	confirmer
	aborter
	overrider
	approver
	rejecter
	retryOfferTaker
}

type deployStarter interface {
	Deploy(ctx context.Context, o deploy.Origin, stack cloud66.Stack, p deploy.Params) (deploy.Result, error)
}

type confirmer interface {
	Confirm(ctx context.Context, intentID string, by storage.Identity) (*storage.Watch, error)
}

type aborter interface {
	Abort(ctx context.Context, intentID string, by storage.Identity) (storage.Intent, error)
}

type overrider interface {
	Override(ctx context.Context, intentID string, by storage.Identity) (deploy.Result, error)
}

type approver interface {
	Approve(ctx context.Context, intentID string, by storage.Identity) (deploy.ApprovalState, error)
}

type rejecter interface {
	Reject(ctx context.Context, intentID string, by storage.Identity) error
}

func (c *Call) origin() deploy.Origin {
	return deploy.Origin{Identity: c.Request.Identity(), Channel: c.Request.ChannelID, ResponseURL: c.Request.ResponseURL, RequestID: c.Request.RequestID}
}

func deployCommand(d deployFlow, res *resolver) *Command {
	form := newDeployForm(res)
	return &Command{
		Name:    "deploy",
		Verb:    string(deploy.VerbDeploy),
		Aliases: []string{"redeploy"},
		Args:    "<stack>[@ref] [key=value…]",
		Summary: "Redeploy a stack; production asks you to confirm.",
		Description: "Redeploys a stack as you. Options: `ref` (branch, tag or commit; also `stack@ref`), `services` (`web,worker:1.2`), " +
			"`profile` (a deployment profile), `strategy` (serial, parallel, rolling or fast), `env` (the environment, for names that repeat). " +
			"Protected environments (production) show what will ship and what is live, with Confirm and Cancel buttons only you can press. " +
			"The deployment gets one message in the channel that follows it to the end. " +
			"With no stack, `deploy` opens a form (so does the shortcut *Deploy with c66bot*): pick the stack, and it offers the options that stack's type takes.",
		Examples: []string{"deploy shop:staging", "deploy shop:production@v2.1", "deploy api:staging services=web:1.4.2", "deploy shop:staging strategy=rolling"},
		MinArgs:  0, MaxArgs: 6,
		Change: "deploy",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			if len(c.Args) == 0 {
				return form.open(ctx, c)
			}
			da, err := ParseDeployArgs(c.Args)
			if err != nil {
				return chat.Message{}, err
			}
			id := c.Request.Identity()
			_, st, err := res.stackArg(ctx, id, da.Stack)
			if err != nil {
				return chat.Message{}, err
			}
			result, err := d.Deploy(ctx, c.origin(), st, da.Params)
			if err != nil {
				return chat.Message{}, res.stackGone(id, st, err)
			}
			return resultReply(result, deploy.VerbDeploy), nil
		},
		Interactions: append([]*Interaction{
			deployConfirmButton(d), abortButton(d), overrideButton(d), approveButton(d), rejectButton(d),
			retryButton(d),
		}, form.interactions()...),
	}
}

// deployConfirmButton is the Confirm of a protected deploy (deployConfirmation).
func deployConfirmButton(d confirmer) *Interaction {
	return &Interaction{ActionID: ActionDeployConfirm, Change: "deploy", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		w, err := d.Confirm(ctx, a.Value, a.Identity())
		if err != nil {
			return ActionReply{}, err
		}
		doing, next := "deploying", "Follow it in the channel message."
		if w != nil {
			doing = deploy.Doing(*w)
			if w.MessageTS == "" {
				next = noChannelMessage(*w)
			}
		}
		return ActionReply{Replace: true, Message: ephemeral(fmt.Sprintf(":rocket: Confirmed: %s %s. %s", doing, watchLabel(w), next))}, nil
	}}
}

// retryOfferTaker answers Retry on a failed deploy's card.
type retryOfferTaker interface {
	RetryFromOffer(ctx context.Context, intentID string, o deploy.Origin) (deploy.Result, error)
}

// retryButton is Retry on a failed deploy's card: the same deploy again,
// as the presser, through the normal path (policy, lock, confirmation).
func retryButton(d retryOfferTaker) *Interaction {
	return &Interaction{ActionID: deploy.ActionRetry, Change: "deploy", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		o := deploy.Origin{Identity: a.Identity(), Channel: a.ChannelID, ResponseURL: a.ResponseURL, RequestID: a.RequestID}
		res, err := d.RetryFromOffer(ctx, a.Value, o)
		if err != nil {
			return ActionReply{}, err
		}
		return ActionReply{Message: resultReply(res, deploy.VerbDeploy)}, nil
	}}
}

// abortButton is the Cancel of every confirmation (ActionAbort).
func abortButton(d aborter) *Interaction {
	return &Interaction{ActionID: ActionAbort, Run: func(ctx context.Context, a Action) (ActionReply, error) {
		if _, err := d.Abort(ctx, a.Value, a.Identity()); err != nil {
			return ActionReply{}, err
		}
		return ActionReply{Replace: true, Message: ephemeral(":wave: Cancelled: nothing was sent to Cloud 66.")}, nil
	}}
}

// overrideButton is an admin's override of a freeze (frozenReply offers it).
func overrideButton(d overrider) *Interaction {
	return &Interaction{ActionID: ActionOverride, Change: "deploy", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		res, err := d.Override(ctx, a.Value, a.Identity())
		if err != nil {
			return ActionReply{}, err
		}
		return ActionReply{Replace: true, Message: resultReply(res, res.Verb())}, nil
	}}
}

// approveButton is Approve on an approval request posted by package deploy.
func approveButton(d approver) *Interaction {
	return &Interaction{ActionID: deploy.ActionApprove, Change: "deploy", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		st, err := d.Approve(ctx, a.Value, a.Identity())
		if err != nil {
			return ActionReply{}, err
		}
		msg := fmt.Sprintf(":white_check_mark: Your approval is in (%d of %d).", len(st.Approved), st.Needed)
		if st.Watch != nil {
			msg = ":rocket: Your approval was the last one needed: the deploy is starting."
		}
		return ActionReply{Message: ephemeral(msg)}, nil
	}}
}

// rejectButton is Reject on an approval request posted by package deploy.
func rejectButton(d rejecter) *Interaction {
	return &Interaction{ActionID: deploy.ActionReject, Run: func(ctx context.Context, a Action) (ActionReply, error) {
		if err := d.Reject(ctx, a.Value, a.Identity()); err != nil {
			return ActionReply{}, err
		}
		return ActionReply{Message: ephemeral(":no_entry: Rejected: nothing was sent to Cloud 66.")}, nil
	}}
}

// deployConfirmation shows what will ship beside what is live, with the
// Confirm and Cancel buttons only the requester can press.
func deployConfirmation(cf *deploy.Confirmation) chat.Message {
	change := cf.Change
	change.Params = cf.Params
	live := "_unknown_"
	if cf.LiveHash != "" {
		live = deploy.CommitLink(change.Repo, cf.LiveHash)
		if cf.LiveRef != "" {
			live += " (" + bk.Code(cf.LiveRef) + ")"
		}
	}
	title := fmt.Sprintf(":warning: Deploy %s? This stack needs your confirmation.", bk.StackLabel(cf.Stack))
	fields := append([]string{"*Ref to ship*\n" + change.RefText("_the stack's branch_")}, cf.Params.Fields()...)
	fields = append(fields, "*Live now*\n"+live)
	if link := change.ChangesLink(); link != "" {
		fields = append(fields, "*What will ship*\n"+link)
	}
	blocks := []slack.Block{
		bk.Section(title),
		bk.Fields(fields...),
		slack.NewActionBlock("deploy_confirm",
			bk.Button(ActionDeployConfirm, cf.IntentID, "Deploy "+cf.Stack.Environment, slack.StyleDanger),
			bk.Button(ActionAbort, cf.IntentID, "Cancel", slack.StyleDefault)),
		bk.Context(fmt.Sprintf("Only you can confirm. This expires %s.", bk.Date(cf.ExpiresAt, "{time}"))),
	}
	return chat.Message{Text: bk.Fallback(fmt.Sprintf("Deploy %s? Confirm or cancel.", bk.Esc(bk.StackRef(cf.Stack.Name, cf.Stack.Environment)))), Blocks: blocks}
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}
