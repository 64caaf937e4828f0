package notify

import (
	"context"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Message renders the channel post for ev, for example
//
//	✅ *shop* · production deployed `v2.1` (`6507918`) by ana@example.com
//	Cloud 66 webhook · <https://app.cloud66.com/stacks/…|Open in Cloud 66>
//
// Everything that came from Cloud 66 or from a person is escaped, so a stack
// named "<!channel>" cannot ping a channel. It is a pure function of its
// arguments, so golden tests can pin it down.
func Message(ev Event, cloud66URL string) chat.Message {
	return MessageFor(context.Background(), ev, cloud66URL, nil, "")
}

// PeopleByEmail finds the Slack person of a workspace who linked the Cloud
// 66 account with an e-mail; *accounts.Service satisfies it.
type PeopleByEmail interface {
	PersonByEmail(ctx context.Context, team, email string) (storage.Identity, bool)
}

// MessageFor is Message for a channel of workspace team: who triggered a
// deployment is shown as the Slack person (<@U…>) who linked that Cloud 66
// e-mail in team, else as the e-mail, escaped. A nil people shows e-mails.
func MessageFor(ctx context.Context, ev Event, cloud66URL string, people PeopleByEmail, team string) chat.Message {
	who := func(email string) string {
		if people != nil {
			if p, ok := people.PersonByEmail(ctx, team, email); ok && team != "" && p.Team == team && p.User != "" {
				return "<@" + bk.Esc(p.User) + ">"
			}
		}
		return bk.Esc(email)
	}
	blocks := []slack.Block{bk.Section(heading(ev, true, who))}
	if detail := detailLine(ev); detail != "" {
		blocks = append(blocks, bk.Section(detail))
	}
	footer := sourceLabel(ev.Source)
	if stackURL := bk.StackURL(cloud66URL, ev.StackUID); stackURL != "" {
		footer += " · " + bk.Link(stackURL, "Open in Cloud 66")
	}
	blocks = append(blocks, bk.Context(footer))
	return chat.Message{Text: bk.Fallback(heading(ev, false, who)), Blocks: blocks, InChannel: true}
}

// heading is the first line: emoji, stack, what happened. rich chooses
// mrkdwn formatting (bold stack, code refs) over the plain notification
// text; both are escaped. who renders Cloud 66's triggered_by.
func heading(ev Event, rich bool, who func(email string) string) string {
	label := stackLabel(ev, rich)
	code := bk.Code
	if !rich {
		code = func(s string) string { return bk.Esc(s) }
	}
	var what string
	ref, hash := oneLine(ev.GitRef), shortHash(oneLine(ev.GitHash))
	switch {
	case ref != "" && hash != "":
		what = code(ref) + " (" + code(hash) + ")"
	case ref != "":
		what = code(ref)
	case hash != "":
		what = code(hash)
	}
	by := ""
	if email := oneLine(ev.TriggeredBy); email != "" {
		by = " by " + who(email)
	}
	of := ""
	if what != "" {
		of = " of " + what
	}
	server := bk.Esc(oneLine(ev.Server))
	if server == "" {
		server = "a server"
	} else {
		server = "server " + server
	}

	switch ev.Kind {
	case DeployStarted:
		if by != "" {
			return "🚀 " + label + " deployment" + of + " started" + by
		}
		return "🚀 " + label + " deployment" + of + " started"
	case DeploySucceeded:
		if what != "" {
			what = " " + what
		}
		return "✅ " + label + " deployed" + what + by
	case DeployFailed:
		return "❌ " + label + " deployment" + of + by + " failed"
	case DeployCancelled:
		return "⏹ " + label + " deployment" + of + by + " cancelled"
	case ServerStopped:
		return "🔴 " + label + ": " + server + " stopped"
	case ServerBack:
		return "🟢 " + label + ": " + server + " is back"
	}
	return "ℹ️ " + label + ": " + bk.Esc(oneLine(ev.Kind))
}

// detailLine is the text under the heading: Cloud 66's message, on one
// line so it cannot fake more of the notice, or the API caller's own
// words, whose lines are theirs to keep.
func detailLine(ev Event) string {
	text := strings.TrimSpace(ev.Text)
	if text == "" {
		return ""
	}
	if ev.Source == SourceAPI {
		return bk.EscText(text)
	}
	return "Cloud 66: " + bk.Esc(text)
}

// stackLabel is "*shop* · production", or the uid in code when the name is
// unknown.
func stackLabel(ev Event, rich bool) string {
	name, env := oneLine(ev.StackName), oneLine(ev.Environment)
	if !rich {
		label := bk.Esc(name)
		if label == "" {
			label = bk.Esc(ev.StackUID)
		}
		if env != "" {
			label += " · " + bk.Esc(env)
		}
		return label
	}
	if name == "" {
		label := bk.Code(ev.StackUID)
		if env != "" {
			label += " · " + bk.Esc(env)
		}
		return label
	}
	return bk.StackLabel(cloud66.Stack{Name: name, Environment: env})
}

// sourceLabel says where the news came from, so a reader can tell a
// webhook from a poll when something looks off.
func sourceLabel(source string) string {
	switch source {
	case SourceWebhook:
		return "Cloud 66 webhook"
	case SourcePoll:
		return "Cloud 66 deployment history"
	case SourceAPI:
		return "c66bot API"
	}
	return "Cloud 66"
}

// oneLine turns control characters (newlines included) into spaces and
// trims: a name is shown inside one line of text.
func oneLine(s string) string {
	return strings.TrimSpace(bk.OneLine(s))
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// pauseNotice is the DM to a subscriber whose subscriptions in channel were
// paused because the bot may not post there. It names the commands that
// subscribe again, so they can be pasted after inviting the bot.
func pauseNotice(channel, reason, command string, subs []storage.Subscription) chat.Message {
	var cmds []string
	for _, sub := range subs {
		cmds = append(cmds, "`"+strings.ReplaceAll(command+" subscribe "+subscribeArgs(sub), "`", "'")+"`")
	}
	again := "`" + command + " subscribe …`"
	if len(cmds) > 0 {
		again = strings.Join(cmds, " and ")
	}
	text := "I can't post in <#" + bk.Esc(channel) + "> (" + bk.Esc(reason) + "), so I paused its subscriptions. " +
		"Invite me with `/invite @c66bot` and run " + again + " again."
	return chat.Message{Text: bk.Fallback(text), Blocks: []slack.Block{bk.Section(text)}}
}

// shortWords are the names ParseEvents reads back, for subscribeArgs.
var shortWords = map[string]string{
	DeployStarted:   "started",
	DeploySucceeded: "succeeded",
	DeployFailed:    "failed",
	DeployCancelled: "cancelled",
	ServerStopped:   "stopped",
	ServerBack:      "back",
}

// subscribeArgs rebuilds the arguments of the `subscribe` that made sub:
// "shop:production failed env=production only=failures". Text from the
// subscription is escaped; it is shown inside inline code.
func subscribeArgs(sub storage.Subscription) string {
	ref := "all"
	if sub.StackUID != "" {
		ref = bk.StackRef(oneLine(sub.StackName), oneLine(sub.Environment))
		if sub.StackName == "" {
			ref = sub.StackUID
		}
	}
	parts := []string{bk.Esc(ref)}
	if len(sub.Events) > 0 && !equalSets(sub.Events, DefaultEvents()) {
		for _, k := range AllEvents {
			if slices.Contains(sub.Events, k) {
				parts = append(parts, shortWords[k])
			}
		}
	}
	if sub.EnvFilter != "" {
		parts = append(parts, "env="+bk.Esc(oneLine(sub.EnvFilter)))
	}
	if sub.OnlyFailures {
		parts = append(parts, "only=failures")
	}
	return strings.Join(parts, " ")
}

func equalSets(a, b []string) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	for _, v := range b {
		if !slices.Contains(a, v) {
			return false
		}
	}
	return true
}
