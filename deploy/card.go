package deploy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/gitweb"
	"github.com/c66bot/c66bot/storage"
)

// Card renders the channel message of a deployment: what state it is in,
// who asked, what ships, for how long, and where to look in Cloud 66. It is
// a pure function of the watch, so the same watch always renders the same
// message (the card is edited in place, and golden tests compare it).
func Card(w storage.Watch, now time.Time, cloud66URL string) chat.Message {
	label := bk.StackLabel(cloud66.Stack{Name: w.StackName, Environment: w.Environment})
	c := watchChange(w)
	emoji, words := heading(c, w.State)
	p := c.Params

	blocks := []slack.Block{bk.Section(emoji + " *" + words + "* — " + label)}

	fields := append([]string{"*Requested by*\n" + mention(w.Owner.User)}, c.fields()...)
	if w.GitHash != "" {
		fields = append(fields, "*Git hash*\n"+CommitLink(c.Repo, w.GitHash))
	}
	if label, link := c.changesLink(w.GitHash); link != "" {
		fields = append(fields, "*"+label+"*\n"+link)
	}
	if w.State != storage.WatchStarting {
		fields = append(fields, "*Duration*\n"+bk.Duration(elapsed(w, now)))
	}
	if c.Verb.shipsCode() {
		fields = append(fields, p.Fields()...)
	}
	blocks = append(blocks, bk.Fields(fields...))

	stackURL := bk.StackURL(cloud66URL, w.StackUID)
	if detail := cardDetail(w, stackURL); detail != "" {
		blocks = append(blocks, bk.Section(detail))
	}
	if w.State == storage.WatchFailed {
		// What people do next with a failure, side by side.
		var buttons []slack.BlockElement
		if offer := w.Params[paramRetryOffer]; offer != "" {
			buttons = append(buttons, bk.Button(ActionRetry, offer, "Retry", slack.StylePrimary))
		}
		if offer := w.Params[paramRollbackOffer]; offer != "" {
			buttons = append(buttons, bk.Button(ActionRollback, offer, "Roll back", slack.StyleDanger))
		}
		if len(buttons) > 0 {
			blocks = append(blocks, slack.NewActionBlock("failed_offers", buttons...))
		}
	}

	var ctx []string
	if w.ActionID != 0 {
		ctx = append(ctx, "Cloud 66 action "+strconv.FormatInt(w.ActionID, 10))
	}
	if stackURL != "" {
		ctx = append(ctx, bk.Link(stackURL, "Open in Cloud 66"))
	}
	if len(ctx) > 0 {
		blocks = append(blocks, bk.Context(strings.Join(ctx, " · ")))
	}

	return chat.Message{Text: bk.Fallback(cardText(w, c, now)), Blocks: blocks, InChannel: true}
}

// CommitLink shows a git hash short, linked to the commit when repo (a
// Change's Repo) is on a host gitweb knows, else as code.
func CommitLink(repo, hash string) string {
	if r, ok := gitweb.Parse(repo); ok {
		if u := r.CommitURL(hash); u != "" {
			return bk.Link(u, shortHash(hash))
		}
	}
	return bk.Code(shortHash(hash))
}

// CompareLink links the comparison between from (a hash: what is live)
// and to (a hash, branch or tag: what will ship) on the repository's host,
// labelled "abc1234…main"; "" when there is nothing to link.
func CompareLink(repo, from, to string) string {
	r, ok := gitweb.Parse(repo)
	if !ok {
		return ""
	}
	u := r.CompareURL(from, to)
	if u == "" {
		return ""
	}
	return bk.Link(u, shortHash(from)+"…"+shortHash(to))
}

// changesLink is the card's link to what the change ships, with its
// label: for a deploy, from the hash live when it was asked for to what
// Cloud 66 deploys (its hash once known, else the ref); for a rollback,
// the commits it takes away.
func (c Change) changesLink(deployed string) (label, link string) {
	switch c.Verb {
	case VerbDeploy:
		to := deployed
		if to == "" {
			to = c.Shipping()
		}
		return "Changes", CompareLink(c.Repo, c.LiveHash, to)
	case VerbRollback:
		if deployed == "" {
			deployed = c.Params.Ref
		}
		if gitweb.IsHash(deployed) {
			return "Undoes", CompareLink(c.Repo, deployed, c.From)
		}
	}
	return "", ""
}

// fields are the card's fields that say what the change is, after who
// asked for it.
func (c Change) fields() []string {
	switch c.Verb {
	case VerbRollback:
		to := "_the earlier deployment_"
		if c.Params.Ref != "" {
			to = bk.Code(shortHash(c.Params.Ref))
		}
		if len(c.Params.Services) > 0 {
			to = codeList(c.Params.Services)
		}
		if c.Params.Ref != "" && len(c.Params.Services) == 0 {
			to = CommitLink(c.Repo, c.Params.Ref)
		}
		fs := []string{"*Back to*\n" + to}
		if c.From != "" {
			fs = append(fs, "*From*\n"+CommitLink(c.Repo, c.From))
		}
		return fs
	case VerbRestart:
		if c.Service != "" {
			return []string{"*Service*\n" + bk.Code(c.Service)}
		}
		return []string{"*What*\nthe whole stack"}
	case VerbMaintenance:
		return []string{"*Maintenance mode*\n" + onOff(c.On)}
	case VerbReboot:
		fs := []string{"*Servers*\n" + c.serversText()}
		if c.RebootStrategy != "" {
			fs = append(fs, "*Strategy*\n"+bk.Code(c.RebootStrategy))
		}
		return fs
	}
	return []string{"*Ref*\n" + c.RefText("_branch default_")}
}

// serversText names the servers a reboot affects, as mrkdwn.
func (c Change) serversText() string {
	switch {
	case len(c.Servers) > 0:
		return codeList(c.Servers)
	case c.ServerName != "":
		return bk.Code(c.ServerName)
	case c.Server != "":
		return bk.Code(c.Server)
	}
	return "the " + bk.Code(c.Group) + " servers"
}

// codeList is items as inline code, comma separated.
func codeList(items []string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = bk.Code(it)
	}
	return strings.Join(out, ", ")
}

// Fields renders p's options (services, profile, strategy) as section
// fields, every value as inline code. It is the one way deploy parameters
// are shown, on the card, in an approval request and in a confirmation
// (package commands), so they are escaped alike everywhere. The ref is left
// to the caller, which puts it where its message needs it, with RefCode.
func (p Params) Fields() []string {
	var fields []string
	if len(p.Services) > 0 {
		svcs := make([]string, len(p.Services))
		for i, sv := range p.Services {
			svcs[i] = bk.Code(sv)
		}
		fields = append(fields, "*Services*\n"+strings.Join(svcs, ", "))
	}
	if p.Profile != "" {
		fields = append(fields, "*Profile*\n"+bk.Code(p.Profile))
	}
	if p.Strategy != "" {
		fields = append(fields, "*Strategy*\n"+bk.Code(p.Strategy))
	}
	return fields
}

// RefCode is p's ref as inline code, or none (already mrkdwn) when p has
// no ref and the stack's own branch ships.
func (p Params) RefCode(none string) string {
	if p.Ref == "" {
		return none
	}
	return bk.Code(p.Ref)
}

// wording is how a verb's card names its states.
type wording struct {
	emoji                 string // while it runs
	running, done, failed string // "Deploying", "Deployed", "Deployment failed"
	noun                  string // "deployment", in the plain text
	runningText, doneText string // "deploying", "deployed", in the plain text
}

// wordingOf is c's wording.
func wordingOf(c Change) wording {
	switch c.Verb {
	case VerbRollback:
		return wording{"⏪", "Rolling back", "Rolled back", "Rollback failed", "rollback", "rolling back", "rolled back"}
	case VerbRestart:
		return wording{"🔄", "Restarting", "Restarted", "Restart failed", "restart", "restarting", "restarted"}
	case VerbMaintenance:
		mode := "maintenance mode " + onOff(c.On)
		return wording{"🚧", "Turning " + mode, "Maintenance mode " + onOff(c.On), "Maintenance mode change failed", "maintenance mode change",
			"turning " + mode, "turned " + mode}
	case VerbReboot:
		return wording{"🔁", "Rebooting", "Rebooted", "Reboot failed", "reboot", "rebooting", "rebooted"}
	}
	return wording{"🚀", "Deploying", "Deployed", "Deployment failed", "deployment", "deploying", "deployed"}
}

// heading is the emoji and words of the card's first line.
func heading(c Change, state storage.WatchState) (emoji, words string) {
	wd := wordingOf(c)
	switch state {
	case storage.WatchStarting:
		return "⏳", "Starting"
	case storage.WatchQueued:
		return "⏳", "Queued behind the running deployment"
	case storage.WatchDeploying:
		return wd.emoji, wd.running
	case storage.WatchSucceeded:
		return "✅", wd.done
	case storage.WatchFailed:
		return "❌", wd.failed
	case storage.WatchCancelled:
		return "⏹", "Cancelled"
	}
	return "⚠️", "State unknown"
}

// CardInProgress reports whether text, the fallback text of a message made
// by Card, shows a deployment that has not reached its final state. It
// lets a reader of the messages (the sandbox) follow a card without
// knowing how Card draws states.
func CardInProgress(text string) bool {
	for _, v := range Verbs() {
		for _, st := range []storage.WatchState{storage.WatchStarting, storage.WatchQueued, storage.WatchDeploying} {
			if emoji, _ := heading(Change{Verb: v}, st); strings.HasPrefix(text, emoji) {
				return true
			}
		}
	}
	return false
}

// cardDetail is the optional line under the fields: why the card is in its
// state, in Cloud 66's words where there are some.
func cardDetail(w storage.Watch, stackURL string) string {
	msg := bk.Esc(w.Message)
	switch w.State {
	case storage.WatchStarting:
		return msg
	case storage.WatchQueued:
		// Said plainly, because a silent queue is what leads people to
		// deploy twice.
		return "Cloud 66 queued this deployment behind the deployment already running; it starts when that one ends."
	case storage.WatchFailed:
		if w.ActionID == 0 && w.DeploymentID == 0 {
			return "Cloud 66 refused the " + wordingOf(watchChange(w)).noun + ": " + msg
		}
		if msg != "" {
			return "Cloud 66: " + msg
		}
		return "Cloud 66 gave no reason; " + bk.Link(stackURL, "check the deployment log") + "."
	case storage.WatchCancelled:
		out := ""
		if w.CancelRequestedBy != "" {
			out = "Cancelled by " + mention(w.CancelRequestedBy) + ". "
		}
		if msg != "" {
			out += "Cloud 66: " + msg
		}
		return strings.TrimSpace(out)
	case storage.WatchUnknown:
		if msg == "" {
			msg = "I could not follow this " + wordingOf(watchChange(w)).noun + " to its end."
		}
		return msg + " " + bk.Link(stackURL, "Check it in Cloud 66") + "."
	}
	return ""
}

// cardText is the plain notification text, e.g.
// "✅ shop · production deployed v2.1 (abc1234) in 3 min 05 s".
func cardText(w storage.Watch, c Change, now time.Time) string {
	stack := bk.Esc(w.StackName)
	if w.Environment != "" {
		stack += " · " + bk.Esc(w.Environment)
	}
	if c.Verb != VerbDeploy {
		return changeText(w, c, stack, now)
	}
	p := c.Params
	what := "the default branch"
	if p.Ref != "" {
		what = bk.Esc(p.Ref)
	}
	d := bk.Duration(elapsed(w, now))
	switch w.State {
	case storage.WatchStarting:
		return "⏳ " + stack + ": starting a deployment of " + what
	case storage.WatchQueued:
		return "⏳ " + stack + ": deployment of " + what + " queued behind the running deployment"
	case storage.WatchDeploying:
		return "🚀 " + stack + " deploying " + what
	case storage.WatchSucceeded:
		if w.GitHash != "" {
			what += " (" + bk.Esc(shortHash(w.GitHash)) + ")"
		}
		return "✅ " + stack + " deployed " + what + " in " + d
	case storage.WatchFailed:
		if w.ActionID == 0 && w.DeploymentID == 0 {
			return "❌ " + stack + ": Cloud 66 refused the deployment of " + what
		}
		return "❌ " + stack + " deployment of " + what + " failed after " + d
	case storage.WatchCancelled:
		return "⏹ " + stack + " deployment of " + what + " cancelled"
	}
	return "⚠️ " + stack + ": state of the deployment of " + what + " unknown"
}

// changeText is cardText for the verbs other than deploy, e.g.
// "✅ shop · production restarted in 1 min 10 s".
func changeText(w storage.Watch, c Change, stack string, now time.Time) string {
	wd := wordingOf(c)
	d := bk.Duration(elapsed(w, now))
	switch w.State {
	case storage.WatchStarting:
		return "⏳ " + stack + ": starting a " + wd.noun
	case storage.WatchQueued:
		return "⏳ " + stack + ": " + wd.noun + " queued behind the running deployment"
	case storage.WatchDeploying:
		return wd.emoji + " " + stack + " " + wd.runningText
	case storage.WatchSucceeded:
		return "✅ " + stack + " " + wd.doneText + " in " + d
	case storage.WatchFailed:
		if w.ActionID == 0 && w.DeploymentID == 0 {
			return "❌ " + stack + ": Cloud 66 refused the " + wd.noun
		}
		return "❌ " + stack + " " + wd.noun + " failed after " + d
	case storage.WatchCancelled:
		return "⏹ " + stack + " " + wd.noun + " cancelled"
	}
	return "⚠️ " + stack + ": state of the " + wd.noun + " unknown"
}

// elapsed is how long the deployment has run: from Cloud 66's start (or the
// request) to its end (or now).
func elapsed(w storage.Watch, now time.Time) time.Duration {
	start := w.StartedAt
	if start.IsZero() {
		start = w.RequestedAt
	}
	end := w.FinishedAt
	if end.IsZero() {
		end = now
	}
	if start.IsZero() || end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// mention is a Slack user mention; the id is escaped so a malformed one
// cannot close the mention and start another.
func mention(user string) string {
	if user == "" {
		return "_someone_"
	}
	return "<@" + bk.Esc(user) + ">"
}

// note is a short message for a thread, an ephemeral reply or a DM; text is
// mrkdwn that the caller has already escaped.
func note(text string) chat.Message {
	return chat.Message{Text: bk.Fallback(text), Blocks: []slack.Block{bk.Section(text)}}
}

// stackLabel is "*shop* · production" for a watch.
func stackLabel(name, environment string) string {
	return bk.StackLabel(cloud66.Stack{Name: name, Environment: environment})
}

// minutes renders a duration for the watchdog: "20 min".
func minutes(d time.Duration) string {
	return fmt.Sprintf("%d min", int(d.Minutes()))
}
