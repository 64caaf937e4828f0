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
	"github.com/c66bot/c66bot/storage"
)

// Card renders the channel message of a deployment: what state it is in,
// who asked, what ships, for how long, and where to look in Cloud 66. It is
// a pure function of the watch, so the same watch always renders the same
// message (the card is edited in place, and golden tests compare it).
func Card(w storage.Watch, now time.Time, cloud66URL string) chat.Message {
	label := bk.StackLabel(cloud66.Stack{Name: w.StackName, Environment: w.Environment})
	emoji, words := stateHeading(w.State)
	p := ParamsFromMap(w.Params)

	blocks := []slack.Block{bk.Section(emoji + " *" + words + "* — " + label)}

	fields := []string{
		"*Requested by*\n" + mention(w.Owner.User),
		"*Ref*\n" + p.RefCode("_branch default_"),
	}
	if w.GitHash != "" {
		hash := bk.Code(shortHash(w.GitHash))
		if len(w.GitHash) > len(shortHash(w.GitHash)) {
			hash += " " + bk.Code(w.GitHash)
		}
		fields = append(fields, "*Git hash*\n"+hash)
	}
	if w.State != storage.WatchStarting {
		fields = append(fields, "*Duration*\n"+bk.Duration(elapsed(w, now)))
	}
	fields = append(fields, p.Fields()...)
	blocks = append(blocks, bk.Fields(fields...))

	stackURL := bk.StackURL(cloud66URL, w.StackUID)
	if detail := cardDetail(w, stackURL); detail != "" {
		blocks = append(blocks, bk.Section(detail))
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

	return chat.Message{Text: bk.Fallback(cardText(w, p, now)), Blocks: blocks, InChannel: true}
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

// stateHeading is the emoji and words of the card's first line.
func stateHeading(state storage.WatchState) (emoji, words string) {
	switch state {
	case storage.WatchStarting:
		return "⏳", "Starting"
	case storage.WatchQueued:
		return "⏳", "Queued behind the running deployment"
	case storage.WatchDeploying:
		return "🚀", "Deploying"
	case storage.WatchSucceeded:
		return "✅", "Deployed"
	case storage.WatchFailed:
		return "❌", "Deployment failed"
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
	for _, st := range []storage.WatchState{storage.WatchStarting, storage.WatchQueued, storage.WatchDeploying} {
		if emoji, _ := stateHeading(st); strings.HasPrefix(text, emoji) {
			return true
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
			return "Cloud 66 refused the deployment: " + msg
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
			msg = "I could not follow this deployment to its end."
		}
		return msg + " " + bk.Link(stackURL, "Check it in Cloud 66") + "."
	}
	return ""
}

// cardText is the plain notification text, e.g.
// "✅ shop · production deployed v2.1 (abc1234) in 3 min 05 s".
func cardText(w storage.Watch, p Params, now time.Time) string {
	stack := bk.Esc(w.StackName)
	if w.Environment != "" {
		stack += " · " + bk.Esc(w.Environment)
	}
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
