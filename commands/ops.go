package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Running the stack from Slack: rollback, restart, maintenance and reboot.
// Each is a deploy.Change on the deploy workflow's machinery (policy,
// lock, confirmation, approvals, freeze, audit, one card followed to the
// end); these commands only read the words and show the answer. Their
// confirmations are confirmed with the deploy Confirm button
// (ActionDeployConfirm), which starts whatever change was parked.

// changer starts a change (restart, maintenance).
type changer interface {
	Change(ctx context.Context, o deploy.Origin, stack cloud66.Stack, c deploy.Change) (deploy.Result, error)
}

// rollbacker rolls a stack back, and answers the rollback offers on
// failed cards and in the deployments list.
type rollbacker interface {
	Rollback(ctx context.Context, o deploy.Origin, stack cloud66.Stack, to string, lock bool) (deploy.Result, error)
	rollbackOfferTaker
}

type rollbackOfferTaker interface {
	RollbackFromOffer(ctx context.Context, intentID string, o deploy.Origin) (deploy.Result, error)
}

// rollbackOfferer stores the offers the deployments list's buttons carry.
type rollbackOfferer interface {
	OfferRollback(ctx context.Context, o deploy.Origin, stack cloud66.Stack, to string) (string, error)
}

type rebooter interface {
	Reboot(ctx context.Context, o deploy.Origin, stack cloud66.Stack, t deploy.RebootTarget) (deploy.Result, error)
}

func rollbackCommand(d rollbacker, res *resolver) *Command {
	return &Command{
		Name:    "rollback",
		Verb:    string(deploy.VerbRollback),
		Args:    "<stack> [to=<deployment id|git hash>] [lock=no]",
		Summary: "Roll a stack back to an earlier deployment; always asks you to confirm.",
		Description: "Redeploys the git hash of an earlier successful deployment (on Docker stacks, its image tags): by default the newest " +
			"one older than what is live, or the one `to=` names by id or git hash. The confirmation shows what is live and what it goes back to. " +
			"Afterwards the stack is locked for you (\"rolled back from <hash>\") so nobody redeploys the bad commit by reflex; `lock=no` leaves it unlocked. " +
			"A failed deploy's message and the `deployments` list offer it as a button too.",
		Examples: []string{"rollback shop:production", "rollback shop:staging to=10006", "rollback shop:production lock=no"},
		MinArgs:  1, MaxArgs: 4,
		Change: "roll back",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			oa, err := ParseOpsArgs(deploy.VerbRollback, c.Args)
			if err != nil {
				return chat.Message{}, err
			}
			id := c.Request.Identity()
			_, st, err := res.stackArg(ctx, id, oa.Stack)
			if err != nil {
				return chat.Message{}, err
			}
			result, err := d.Rollback(ctx, c.origin(), st, oa.Options["to"], strings.ToLower(oa.Options["lock"]) != "no")
			if err != nil {
				return chat.Message{}, res.stackGone(id, st, err)
			}
			return resultReply(result, deploy.VerbRollback), nil
		},
		Interactions: []*Interaction{rollbackOfferButton(d)},
	}
}

// rollbackOfferButton is "Roll back" on a failed card and "Roll back to
// this" in the deployments list: it asks the presser to confirm a
// rollback, made as them.
func rollbackOfferButton(d rollbackOfferTaker) *Interaction {
	return &Interaction{ActionID: deploy.ActionRollback, Change: "roll back", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		o := deploy.Origin{Identity: a.Identity(), Channel: a.ChannelID, ResponseURL: a.ResponseURL, RequestID: a.RequestID}
		res, err := d.RollbackFromOffer(ctx, a.Value, o)
		if err != nil {
			return ActionReply{}, err
		}
		return ActionReply{Message: resultReply(res, deploy.VerbRollback)}, nil
	}}
}

func restartCommand(d changer, res *resolver) *Command {
	return &Command{
		Name:        "restart",
		Verb:        string(deploy.VerbRestart),
		Args:        "<stack> [service=<name>]",
		Summary:     "Restart a stack, or one of its services.",
		Description: "Restarts every component of a stack (web and app servers, workers), or on Docker stacks one service with `service=`. Follows it to the end in one channel message.",
		Examples:    []string{"restart shop:staging", "restart api:staging service=web"},
		MinArgs:     1, MaxArgs: 3,
		Change: "restart",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			oa, err := ParseOpsArgs(deploy.VerbRestart, c.Args)
			if err != nil {
				return chat.Message{}, err
			}
			return runChange(ctx, c, d, res, oa.Stack, deploy.Change{Verb: deploy.VerbRestart, Service: oa.Options["service"]})
		},
	}
}

func maintenanceCommand(d changer, res *resolver) *Command {
	return &Command{
		Name:        "maintenance",
		Verb:        string(deploy.VerbMaintenance),
		Args:        "<stack> on|off",
		Summary:     "Put a stack into maintenance mode, or take it out.",
		Description: "Turns the stack's maintenance page on or off (during a migration, say). `stack <stack>` shows which it is.",
		Examples:    []string{"maintenance shop:production on", "maintenance shop:production off"},
		MinArgs:     2, MaxArgs: 3,
		Change: "change maintenance mode",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			oa, err := ParseOpsArgs(deploy.VerbMaintenance, c.Args)
			if err != nil {
				return chat.Message{}, err
			}
			return runChange(ctx, c, d, res, oa.Stack, deploy.Change{Verb: deploy.VerbMaintenance, On: strings.EqualFold(oa.Words[0], "on")})
		},
	}
}

func rebootCommand(d rebooter, res *resolver) *Command {
	return &Command{
		Name:    "reboot",
		Verb:    string(deploy.VerbReboot),
		Args:    "<stack> <server> | <stack> group=<web|db|all…> [strategy=serial|parallel]",
		Summary: "Reboot one server of a stack, or a group of its servers.",
		Description: "Reboots one server (by name), or a group (`group=web`, `db`, `all`…) one after another (`strategy=serial`) or all at once (`parallel`). " +
			"The confirmation and the channel message name the servers affected.",
		Examples: []string{"reboot shop:staging Falcon", "reboot shop:production group=web strategy=serial"},
		MinArgs:  2, MaxArgs: 4,
		Change: "reboot",
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			oa, err := ParseOpsArgs(deploy.VerbReboot, c.Args)
			if err != nil {
				return chat.Message{}, err
			}
			id := c.Request.Identity()
			_, st, err := res.stackArg(ctx, id, oa.Stack)
			if err != nil {
				return chat.Message{}, err
			}
			t := deploy.RebootTarget{Group: oa.Options["group"], Strategy: oa.Options["strategy"]}
			if len(oa.Words) == 1 {
				t.Server = oa.Words[0]
			}
			result, err := d.Reboot(ctx, c.origin(), st, t)
			if err != nil {
				return chat.Message{}, res.stackGone(id, st, err)
			}
			return resultReply(result, deploy.VerbReboot), nil
		},
	}
}

// runChange resolves the stack and starts ch on it.
func runChange(ctx context.Context, c *Call, d changer, res *resolver, stack string, ch deploy.Change) (chat.Message, error) {
	id := c.Request.Identity()
	_, st, err := res.stackArg(ctx, id, stack)
	if err != nil {
		return chat.Message{}, err
	}
	result, err := d.Change(ctx, c.origin(), st, ch)
	if err != nil {
		return chat.Message{}, res.stackGone(id, st, err)
	}
	return resultReply(result, ch.Verb), nil
}

// resultReply tells the requester what happens next with a change of verb.
func resultReply(res deploy.Result, verb deploy.Verb) chat.Message {
	noun := deploy.NounOf(deploy.Change{Verb: verb})
	if verb == deploy.VerbDeploy {
		noun = "deploy"
	}
	switch {
	case res.Confirm != nil:
		return changeConfirmation(res.Confirm)
	case res.Approval != nil:
		msg := fmt.Sprintf(":raised_hand: This %s needs %d approval(s); I asked in the channel. It starts as soon as they are in.", noun, res.Approval.Needed)
		return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}
	}
	started := strings.ToUpper(noun[:1]) + noun[1:] + " started"
	if verb == deploy.VerbDeploy {
		started = "Deployment started"
	}
	if res.Watch != nil && res.Watch.MessageTS == "" {
		msg := ":rocket: " + started + ". " + noChannelMessage(*res.Watch)
		return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}
	}
	return chat.Message{Text: started, Blocks: []slack.Block{bk.Context(":rocket: " + started + ": follow it in the channel message.")}}
}

// noChannelMessage tells the requester of a change whose message the bot
// could not post in the channel (it went through the response_url, or a DM)
// where its result will come, and what lets the bot follow the next one in
// the channel. Package deploy delivers the result the same way: through the
// response_url while Slack honours it, else in a DM.
func noChannelMessage(w storage.Watch) string {
	where := "this channel"
	if w.Channel != "" {
		where = "<#" + bk.Esc(w.Channel) + ">"
	}
	return "I couldn't post in " + where + ", so I'll send you the result here when it finishes (or in a DM if it runs long). " +
		"If I'm not in that channel, `/invite @c66bot` lets me keep a message there up to date next time."
}

// changeConfirmation asks the requester to confirm a parked change, with
// what it is and, for a rollback, what is live and what it goes back to;
// Confirm (ActionDeployConfirm) and Cancel only they can press.
func changeConfirmation(cf *deploy.Confirmation) chat.Message {
	if cf.Verb == "" || cf.Verb == deploy.VerbDeploy {
		return deployConfirmation(cf)
	}
	label := bk.StackLabel(cf.Stack)
	var fields []string
	button := "Confirm"
	switch cf.Verb {
	case deploy.VerbRollback:
		fields = append(fields, "*Live now*\n"+deploymentSummary(cf.Live), "*Goes back to*\n"+deploymentSummary(cf.Target))
		after := "Not locked (`lock=no`)."
		if cf.Change.Lock {
			after = "Locked for you: “rolled back"
			if cf.Change.From != "" {
				after += " from " + bk.Code(shortHash(cf.Change.From))
			}
			after += "”. `unlock` removes it."
		}
		fields = append(fields, "*Afterwards*\n"+after)
		button = "Roll back " + cf.Stack.Environment
	case deploy.VerbRestart:
		button = "Restart " + cf.Stack.Environment
	case deploy.VerbMaintenance:
		button = "Turn it " + map[bool]string{true: "on", false: "off"}[cf.Change.On]
	case deploy.VerbReboot:
		fields = append(fields, "*Servers*\n"+rebootServers(cf.Change))
		if cf.Change.RebootStrategy != "" {
			fields = append(fields, "*Strategy*\n"+bk.Code(cf.Change.RebootStrategy))
		}
		button = "Reboot"
	}
	phrase := cf.Change.Phrase(label)
	blocks := []slack.Block{bk.Section(fmt.Sprintf(":warning: %s? This needs your confirmation.", strings.ToUpper(phrase[:1])+phrase[1:]))}
	if len(fields) > 0 {
		blocks = append(blocks, bk.Fields(fields...))
	}
	blocks = append(blocks,
		slack.NewActionBlock("change_confirm",
			bk.Button(ActionDeployConfirm, cf.IntentID, strings.TrimSpace(button), slack.StyleDanger),
			bk.Button(ActionAbort, cf.IntentID, "Cancel", slack.StyleDefault)),
		bk.Context(fmt.Sprintf("Only you can confirm. This expires %s.", bk.Date(cf.ExpiresAt, "{time}"))))
	return chat.Message{Text: bk.Fallback(strings.ToUpper(phrase[:1]) + phrase[1:] + "? Confirm or cancel."), Blocks: blocks}
}

// deploymentSummary is a deployment as one field: its hash and ref, who
// deployed it and when; "_unknown_" for none.
func deploymentSummary(d *cloud66.Deployment) string {
	if d == nil {
		return "_unknown_"
	}
	out := bk.Code(shortHash(d.GitHash))
	if d.GitHash == "" {
		out = fmt.Sprintf("#%d", d.ID)
	}
	if d.GitRef != "" {
		out += " (" + bk.Code(d.GitRef) + ")"
	}
	if len(d.Services) > 0 {
		out += " " + codeWordsEscaped(d.Services)
	}
	if d.TriggeredBy != "" {
		out += "\nby " + bk.Esc(d.TriggeredBy)
	}
	if at := d.FinishedAt; !at.IsZero() {
		out += ", " + bk.Date(at.Time, "{date_short_pretty} {time}")
	} else if at := d.StartedAt; !at.IsZero() {
		out += ", " + bk.Date(at.Time, "{date_short_pretty} {time}")
	}
	return out
}

// rebootServers names a reboot's servers.
func rebootServers(c deploy.Change) string {
	if len(c.Servers) == 0 {
		return "the " + bk.Code(c.Group) + " servers (Cloud 66 lists none in that group for you)"
	}
	return codeWordsEscaped(c.Servers)
}

// codeWordsEscaped is items from Cloud 66 as inline code, comma separated.
func codeWordsEscaped(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = bk.Code(it)
	}
	return strings.Join(out, ", ")
}
