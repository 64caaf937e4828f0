package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// deployGate is what help asks of the deploy workflow: whether the policy
// could ever let this person use a verb.
type deployGate interface {
	MayUse(ctx context.Context, id storage.Identity, verb deploy.Verb) bool
}

// helpCommand renders help from the table it is part of. gate may be nil
// (no deploy workflow): then every command is shown.
func helpCommand(t *table, gate deployGate) *Command {
	return &Command{
		Name:        "help",
		Args:        "[command]",
		Summary:     "What I can do, or how to use one command.",
		Description: "Lists every command, or shows one command's usage, description and examples.",
		Examples:    []string{"help", "help servers"},
		MinArgs:     0, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			if len(c.Args) == 1 {
				cmd, ok := t.lookup(c.Args[0])
				if !ok {
					return t.unknown(c.Args[0]), nil
				}
				return commandHelp(t.slash, cmd), nil
			}
			var lines []string
			for _, cmd := range visible(ctx, t, gate, c.Request.Identity()) {
				lines = append(lines, fmt.Sprintf("`%s` — %s", usage(t.slash, cmd), cmd.Summary))
			}
			blocks := []slack.Block{
				bk.Header("Cloud 66 from Slack"),
				bk.Section(strings.Join(lines, "\n")),
				bk.Context(fmt.Sprintf("A `<stack>` is a name, `name:environment` when a name repeats, or a uid. `%s help <command>` shows examples.", t.slash)),
			}
			return chat.Message{Text: "c66bot commands", Blocks: blocks}, nil
		},
	}
}

func commandHelp(slash string, cmd *Command) chat.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "*`%s`*\n%s", usage(slash, cmd), cmd.Description)
	if len(cmd.Aliases) > 0 {
		fmt.Fprintf(&b, "\nAlso: `%s`", strings.Join(cmd.Aliases, "`, `"))
	}
	if ex := examples(slash, cmd); len(ex) > 0 {
		b.WriteString("\n*Examples*")
		for _, e := range ex {
			fmt.Fprintf(&b, "\n`%s`", e)
		}
	}
	return chat.Message{Text: usage(slash, cmd), Blocks: []slack.Block{bk.Section(b.String())}}
}

// examples are cmd's examples as typed ("/c66 locks"), without those
// that only repeat the usage line: `locks` shown under `/c66 locks`
// teaches nothing.
func examples(slash string, cmd *Command) []string {
	var out []string
	u := usage(slash, cmd)
	for _, e := range cmd.Examples {
		if typed := slash + " " + e; typed != u {
			out = append(out, typed)
		}
	}
	return out
}

// visible is the command table as this person sees it: a command of a
// verb is hidden from people the policy never lets use that verb.
func visible(ctx context.Context, t *table, gate deployGate, id storage.Identity) []*Command {
	may := map[string]bool{}
	var out []*Command
	for _, c := range t.commands {
		if c.Verb != "" && gate != nil {
			ok, asked := may[c.Verb]
			if !asked {
				ok = gate.MayUse(ctx, id, deploy.Verb(c.Verb))
				may[c.Verb] = ok
			}
			if !ok {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}
