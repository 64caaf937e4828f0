package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

func cancelCommand(d canceller, res *resolver, people PeopleByEmail, now func() time.Time) *Command {
	return &Command{
		Name:        "cancel",
		Verb:        string(deploy.VerbDeploy),
		Args:        "<stack>",
		Summary:     "Cancel the running deployment of a stack.",
		Description: "Cancels the deployment running on a stack, after you confirm. Its channel message moves to cancelled.",
		Examples:    []string{"cancel shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runCancel(ctx, c, d, res, people, now)
		},
		Interactions: []*Interaction{cancelConfirmButton(d)},
	}
}

func runCancel(ctx context.Context, c *Call, d canceller, res *resolver, people PeopleByEmail, now func() time.Time) (chat.Message, error) {
	id := c.Request.Identity()
	_, st, err := res.stackArg(ctx, id, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	cf, err := d.RequestCancel(ctx, c.origin(), st)
	if err != nil {
		return chat.Message{}, res.stackGone(id, st, err)
	}
	prompt := fmt.Sprintf(":octagonal_sign: Cancel %s?", runningPhrase(st, cf.Running, cf.RunningOwner, byWhom(ctx, people, id.Team), now()))
	blocks := []slack.Block{
		bk.Section(prompt),
		slack.NewActionBlock("cancel_confirm",
			bk.Button(ActionCancelConfirm, cf.IntentID, "Cancel the deployment", slack.StyleDanger),
			bk.Button(ActionAbort, cf.IntentID, "Keep it running", slack.StyleDefault)),
		bk.Context(fmt.Sprintf("Only you can confirm. This expires %s.", bk.Date(cf.ExpiresAt, "{time}"))),
	}
	what := "the running deployment of"
	if cf.Running != nil {
		if name := deploymentNameText(*cf.Running); name != "" {
			what = "the deployment of " + name + " to"
		}
	}
	return chat.Message{Text: bk.Fallback("Cancel " + what + " " + bk.Esc(stackRefText(st)) + "?"), Blocks: blocks}, nil
}

// runningPhrase names a running deployment as the deploy card does (its
// ref and short git hash), its stack, who started it and when: "the
// deployment of `main` (`abc1234`) to *shop* · production, started by
// <@U1> 3 min ago". owner is the Slack user who started it through the
// bot, if one did; else Cloud 66's triggered_by is shown.
func runningPhrase(st cloud66.Stack, d *cloud66.Deployment, owner string, who func(email string) string, now time.Time) string {
	out := "the running deployment on " + bk.StackLabel(st)
	if d == nil {
		return out
	}
	if name := deploymentName(*d); name != "" {
		out = "the deployment of " + name + " to " + bk.StackLabel(st)
	}
	by := ""
	switch {
	case owner != "":
		by = "<@" + bk.Esc(owner) + ">"
	case d.TriggeredBy != "":
		by = who(d.TriggeredBy)
	}
	switch {
	case by != "" && !d.StartedAt.IsZero():
		out += ", started by " + by + " " + bk.Ago(now, d.StartedAt.Time)
	case by != "":
		out += ", started by " + by
	case !d.StartedAt.IsZero():
		out += ", started " + bk.Ago(now, d.StartedAt.Time)
	}
	return out
}

// deploymentName is the one name a deployment goes by in the cancel
// replies, the one its card shows: its ref and short git hash as code
// ("`main` (`abc1234`)"), either alone when the other is unknown, else a
// Docker stack's services; "" when Cloud 66 gave none of them.
func deploymentName(d cloud66.Deployment) string {
	switch {
	case d.GitRef != "" && d.GitHash != "":
		return bk.Code(d.GitRef) + " (" + bk.Code(shortHash(d.GitHash)) + ")"
	case d.GitHash != "":
		return bk.Code(shortHash(d.GitHash))
	case d.GitRef != "":
		return bk.Code(d.GitRef)
	case len(d.Services) > 0:
		return codeWordsEscaped(d.Services)
	}
	return ""
}

// deploymentNameText is deploymentName as plain text, for notifications.
func deploymentNameText(d cloud66.Deployment) string {
	return strings.ReplaceAll(deploymentName(d), "`", "")
}

// cancelFinishedReply answers a cancel confirmed after its deployment had
// ended (deploy.FinishedError, a row of errors.go): how it ended, in the
// card's words, and another deployment running by now, left alone.
func cancelFinishedReply(ctx context.Context, e *errorReplies, f failure) chat.Message {
	fe, _ := errors.AsType[*deploy.FinishedError](f.err)
	d := fe.Deployment
	what := "the deployment"
	if name := deploymentName(d); name != "" {
		what += " of " + name
	}
	what += " to " + bk.StackLabel(fe.Stack)
	when := ""
	if !d.FinishedAt.IsZero() {
		when = " " + bk.Ago(e.now(), d.FinishedAt.Time)
	}
	var msg string
	switch {
	case d.Succeeded():
		msg = "✅ Too late to cancel: " + what + " already finished — it deployed" + when + "."
	case d.Failed():
		msg = "❌ Too late to cancel: " + what + " already finished — it failed" + when + "."
	case d.Cancelled():
		msg = "⏹ Too late to cancel: " + what + " was already cancelled" + when + "."
	default:
		msg = ":information_source: " + upperFirst(what) + " is no longer running, so there is nothing to cancel."
	}
	msg += " Nothing was changed."
	if fe.Running != nil {
		msg += fmt.Sprintf(" Another deployment is running now: %s. I left it alone; `%s cancel %s` to stop that one.",
			runningPhrase(fe.Stack, fe.Running, fe.RunningOwner, byWhom(ctx, e.people, f.req.Identity().Team), e.now()), e.slash, bk.Esc(stackRefText(fe.Stack)))
	}
	return ephemeral(msg)
}

// cancelConfirmButton is the Confirm of a cancel (runCancel).
func cancelConfirmButton(d cancelConfirmer) *Interaction {
	return &Interaction{ActionID: ActionCancelConfirm, Change: "cancel the deployment", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		dep, err := d.ConfirmCancel(ctx, a.Value, a.Identity())
		if err != nil {
			return ActionReply{}, err
		}
		what := "the deployment"
		if name := deploymentName(dep); name != "" {
			what += " of " + name
		}
		return ActionReply{Replace: true, Message: ephemeral(":black_square_for_stop: Cancelling " + what + ". Its message will say when Cloud 66 has stopped it.")}, nil
	}}
}
