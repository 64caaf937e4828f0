package commands

import (
	"context"
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

// Deployer is the deployment workflow the commands drive.
type Deployer interface {
	Deploy(ctx context.Context, o deploy.Origin, stack cloud66.Stack, p deploy.Params) (deploy.Result, error)
	Confirm(ctx context.Context, intentID string, by storage.Identity) (*storage.Watch, error)
	Abort(ctx context.Context, intentID string, by storage.Identity) (storage.Intent, error)
	RequestCancel(ctx context.Context, o deploy.Origin, stack cloud66.Stack) (*deploy.Confirmation, error)
	ConfirmCancel(ctx context.Context, intentID string, by storage.Identity) (cloud66.Deployment, error)
	Lock(ctx context.Context, o deploy.Origin, stack cloud66.Stack, reason string) (storage.Lock, error)
	Unlock(ctx context.Context, o deploy.Origin, stack cloud66.Stack) (deploy.UnlockResult, error)
	ConfirmUnlock(ctx context.Context, intentID string, by storage.Identity) (storage.Lock, error)
	Locks(ctx context.Context, team string) ([]storage.Lock, error)
	Approve(ctx context.Context, intentID string, by storage.Identity) (deploy.ApprovalState, error)
	Reject(ctx context.Context, intentID string, by storage.Identity) error
	Override(ctx context.Context, intentID string, by storage.Identity) (deploy.Result, error)
	MayDeploySomewhere(ctx context.Context, id storage.Identity) bool
}

// Button action ids. A button's value is always an intent id.
const (
	ActionDeployConfirm = "deploy_confirm"
	ActionCancelConfirm = "cancel_confirm"
	ActionUnlockConfirm = "unlock_confirm"
	ActionAbort         = "intent_abort"
	ActionApprove       = "deploy_approve"
	ActionReject        = "deploy_reject"
	ActionOverride      = "freeze_override"
)

func (c *Call) origin() deploy.Origin {
	return deploy.Origin{Identity: c.Request.Identity(), Channel: c.Request.ChannelID, ResponseURL: c.Request.ResponseURL, RequestID: c.Request.RequestID}
}

func deployCommand() *Command {
	return &Command{
		Name:    "deploy",
		Deploys: true,
		Aliases: []string{"redeploy"},
		Args:    "<stack>[@ref] [key=value…]",
		Summary: "Redeploy a stack; production asks you to confirm.",
		Description: "Redeploys a stack as you. Options: `ref` (branch, tag or commit; also `stack@ref`), `services` (`web,worker:1.2`), " +
			"`profile` (a deployment profile), `strategy` (serial, parallel, rolling or fast), `env` (the environment, for names that repeat). " +
			"Protected environments (production) show what will ship and what is live, with Confirm and Cancel buttons only you can press. " +
			"The deployment gets one message in the channel that follows it to the end.",
		Examples: []string{"deploy shop:staging", "deploy shop:production@v2.1", "deploy api services=web:1.4.2 strategy=rolling"},
		MinArgs:  1, MaxArgs: 6,
		Run: runDeploy,
	}
}

func runDeploy(ctx context.Context, c *Call) (chat.Message, error) {
	da, err := ParseDeployArgs(c.Args)
	if err != nil {
		return chat.Message{}, err
	}
	_, st, err := c.stackArg(ctx, da.Stack)
	if err != nil {
		return chat.Message{}, err
	}
	res, err := c.Deps.Deploy.Deploy(ctx, c.origin(), st, da.Params)
	if err != nil {
		return chat.Message{}, c.stackGone(st, err)
	}
	return deployResultReply(c.Deps, res), nil
}

// deployResultReply tells the requester what happens next.
func deployResultReply(d *Deps, res deploy.Result) chat.Message {
	if res.Confirm != nil {
		return deployConfirmation(d, res.Confirm)
	}
	if res.Approval != nil {
		msg := fmt.Sprintf(":raised_hand: This deploy needs %d approval(s); I asked in the channel. It starts as soon as they are in.", res.Approval.Needed)
		return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}
	}
	if res.Watch != nil && res.Watch.MessageTS == "" {
		// The deployment message went through response_url already.
		return chat.Message{Text: "Deployment started.", Blocks: []slack.Block{bk.Context(":rocket: Deployment started; I'll keep this channel posted.")}}
	}
	return chat.Message{Text: "Deployment started", Blocks: []slack.Block{bk.Context(":rocket: Deployment started: follow it in the channel message.")}}
}

func deployConfirmation(d *Deps, cf *deploy.Confirmation) chat.Message {
	live := "_unknown_"
	if cf.LiveHash != "" {
		live = bk.Code(shortHash(cf.LiveHash))
		if cf.LiveRef != "" {
			live += " (" + bk.Code(cf.LiveRef) + ")"
		}
	}
	title := fmt.Sprintf(":warning: Deploy %s? This stack needs your confirmation.", bk.StackLabel(cf.Stack))
	fields := append([]string{"*Ref to ship*\n" + cf.Params.RefCode("_the stack's branch_")}, cf.Params.Fields()...)
	fields = append(fields, "*Live now*\n"+live)
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

func deploymentsCommand() *Command {
	return &Command{
		Name:        "deployments",
		Args:        "<stack>",
		Summary:     "Recent deployments of a stack.",
		Description: "The most recent deployments of a stack, newest first: outcome, who, when, how long, and the ref or git hash.",
		Examples:    []string{"deployments shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Run: runDeployments,
	}
}

const deploymentsShown = 10

func runDeployments(ctx context.Context, c *Call) (chat.Message, error) {
	api, st, err := c.stackArg(ctx, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	deps, _, err := api.ListDeploymentsPage(ctx, st.UID, 1)
	if err != nil {
		return chat.Message{}, c.stackGone(st, err)
	}
	title := fmt.Sprintf("Deployments of %s", stackRefText(st))
	if len(deps) == 0 {
		return chat.Message{Text: bk.Esc(title), Blocks: []slack.Block{bk.Section(fmt.Sprintf(":scroll: %s has no deployments yet.", bk.StackLabel(st)))}}, nil
	}
	if len(deps) > deploymentsShown {
		deps = deps[:deploymentsShown]
	}
	now := c.Deps.Now()
	var lines []string
	for _, d := range deps {
		lines = append(lines, deploymentLine(d, now))
	}
	blocks := []slack.Block{bk.Header(title), bk.Section(strings.Join(lines, "\n")),
		bk.Context("Newest first · " + bk.Link(bk.StackURL(c.Deps.Cloud66URL, st.UID), "Open in Cloud 66"))}
	return chat.Message{Text: bk.Esc(title), Blocks: blocks}, nil
}

func deploymentLine(d cloud66.Deployment, now time.Time) string {
	emoji, word := outcomeWords(d)
	what := ""
	if d.GitRef != "" {
		what = bk.Code(d.GitRef)
	}
	if d.GitHash != "" {
		what = strings.TrimSpace(what + " " + bk.Code(shortHash(d.GitHash)))
	}
	when := "—"
	if !d.StartedAt.IsZero() {
		when = bk.Date(d.StartedAt.Time, "{date_short_pretty} {time}") + " (" + bk.Ago(now, d.StartedAt.Time) + ")"
	}
	took := ""
	switch {
	case !d.FinishedAt.IsZero() && !d.StartedAt.IsZero():
		took = " · " + bk.Duration(d.FinishedAt.Sub(d.StartedAt.Time))
	case d.IsDeploying && !d.StartedAt.IsZero():
		took = " · running " + bk.Duration(now.Sub(d.StartedAt.Time))
	}
	who := bk.Esc(orDash(d.TriggeredBy))
	return fmt.Sprintf("%s *%s* · %s · %s%s · %s", emoji, word, when, who, took, orDash(what))
}

// outcomeWords reads the outcome by its meaning: Cloud 66 documents only
// one example of the numeric codes.
func outcomeWords(d cloud66.Deployment) (string, string) {
	if d.IsDeploying {
		return ":rocket:", "Deploying"
	}
	switch strings.ToLower(d.Outcome.Meaning) {
	case "success", "succeeded":
		return ":white_check_mark:", "Deployed"
	case "failed", "failure":
		return ":x:", "Failed"
	case "cancelled", "canceled":
		return ":black_square_for_stop:", "Cancelled"
	case "pending":
		return ":hourglass_flowing_sand:", "Pending"
	}
	return ":grey_question:", orDash(bk.Esc(d.Outcome.Meaning))
}

func cancelCommand() *Command {
	return &Command{
		Name:        "cancel",
		Deploys:     true,
		Args:        "<stack>",
		Summary:     "Cancel the running deployment of a stack.",
		Description: "Cancels the deployment running on a stack, after you confirm. Its channel message moves to cancelled.",
		Examples:    []string{"cancel shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Run: runCancel,
	}
}

func runCancel(ctx context.Context, c *Call) (chat.Message, error) {
	_, st, err := c.stackArg(ctx, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	cf, err := c.Deps.Deploy.RequestCancel(ctx, c.origin(), st)
	if err != nil {
		return chat.Message{}, c.stackGone(st, err)
	}
	running := "the running deployment"
	if cf.Running != nil {
		running = fmt.Sprintf("deployment #%d", cf.Running.ID)
		if cf.Running.TriggeredBy != "" {
			running += " by " + bk.Esc(cf.Running.TriggeredBy)
		}
		if !cf.Running.StartedAt.IsZero() {
			running += ", started " + bk.Ago(c.Deps.Now(), cf.Running.StartedAt.Time)
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
