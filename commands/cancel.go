package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// ActionCancelConfirm is the Confirm of a cancel; its value is an intent id.
const ActionCancelConfirm = "cancel_confirm"

// canceller is what cancel and its Confirm button use.
type canceller interface {
	RequestCancel(ctx context.Context, o deploy.Origin, stack cloud66.Stack) (*deploy.Confirmation, error)
	cancelConfirmer
}

type cancelConfirmer interface {
	ConfirmCancel(ctx context.Context, intentID string, by storage.Identity) (cloud66.Deployment, error)
}

func cancelCommand(d canceller, res *resolver, now func() time.Time) *Command {
	return &Command{
		Name:        "cancel",
		Verb:        string(deploy.VerbDeploy),
		Args:        "<stack>",
		Summary:     "Cancel the running deployment of a stack.",
		Description: "Cancels the deployment running on a stack, after you confirm. Its channel message moves to cancelled.",
		Examples:    []string{"cancel shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Run:          func(ctx context.Context, c *Call) (chat.Message, error) { return runCancel(ctx, c, d, res, now) },
		Interactions: []*Interaction{cancelConfirmButton(d)},
	}
}

func runCancel(ctx context.Context, c *Call, d canceller, res *resolver, now func() time.Time) (chat.Message, error) {
	id := c.Request.Identity()
	_, st, err := res.stackArg(ctx, id, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	cf, err := d.RequestCancel(ctx, c.origin(), st)
	if err != nil {
		return chat.Message{}, res.stackGone(id, st, err)
	}
	running := "the running deployment"
	if cf.Running != nil {
		running = fmt.Sprintf("deployment #%d", cf.Running.ID)
		if cf.Running.TriggeredBy != "" {
			running += " by " + bk.Esc(cf.Running.TriggeredBy)
		}
		if !cf.Running.StartedAt.IsZero() {
			running += ", started " + bk.Ago(now(), cf.Running.StartedAt.Time)
		}
	}
	blocks := []slack.Block{
		bk.Section(fmt.Sprintf(":octagonal_sign: Cancel %s of %s?", running, bk.StackLabel(st))),
		slack.NewActionBlock("cancel_confirm",
			bk.Button(ActionCancelConfirm, cf.IntentID, "Cancel the deployment", slack.StyleDanger),
			bk.Button(ActionAbort, cf.IntentID, "Keep it running", slack.StyleDefault)),
		bk.Context(fmt.Sprintf("Only you can confirm. This expires %s.", bk.Date(cf.ExpiresAt, "{time}"))),
	}
	return chat.Message{Text: "Cancel the deployment of " + bk.Esc(stackRefText(st)) + "?", Blocks: blocks}, nil
}

// cancelConfirmButton is the Confirm of a cancel (runCancel).
func cancelConfirmButton(d cancelConfirmer) *Interaction {
	return &Interaction{ActionID: ActionCancelConfirm, Change: "cancel the deployment", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		dep, err := d.ConfirmCancel(ctx, a.Value, a.Identity())
		if err != nil {
			return ActionReply{}, err
		}
		return ActionReply{Replace: true, Message: ephemeral(fmt.Sprintf(":black_square_for_stop: Cancelling deployment #%d. Its message will say when Cloud 66 has stopped it.", dep.ID))}, nil
	}}
}
