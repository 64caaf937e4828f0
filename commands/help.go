package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"

	"github.com/slack-go/slack"

	bk "github.com/c66bot/c66bot/internal/blockkit"
)

func helpCommand() *Command {
	return &Command{
		Name:        "help",
		Args:        "[command]",
		Summary:     "What I can do, or how to use one command.",
		Description: "Lists every command, or shows one command's usage, description and examples.",
		Examples:    []string{"help", "help servers"},
		MinArgs:     0, MaxArgs: 1,
		Run: runHelp,
	}
}

func runHelp(ctx context.Context, c *Call) (chat.Message, error) {
	r := c.Router
	if len(c.Args) == 1 {
		cmd, ok := r.Lookup(c.Args[0])
		if !ok {
			return r.unknown(c.Args[0]), nil
		}
		return commandHelp(r, cmd), nil
	}
	var lines []string
	for _, cmd := range r.visible(ctx, c.Request.Identity()) {
		lines = append(lines, fmt.Sprintf("`%s` — %s", r.Usage(cmd), cmd.Summary))
	}
	blocks := []slack.Block{
		bk.Header("Cloud 66 from Slack"),
		bk.Section(strings.Join(lines, "\n")),
		bk.Context(fmt.Sprintf("A `<stack>` is a name, `name:environment` when a name repeats, or a uid. `%s help <command>` shows examples.", r.deps.Command)),
	}
	return chat.Message{Text: "c66bot commands", Blocks: blocks}, nil
}

func commandHelp(r *Router, cmd *Command) chat.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "*`%s`*\n%s", r.Usage(cmd), cmd.Description)
	if len(cmd.Aliases) > 0 {
		fmt.Fprintf(&b, "\nAlso: `%s`", strings.Join(cmd.Aliases, "`, `"))
	}
	if len(cmd.Examples) > 0 {
		b.WriteString("\n*Examples*")
		for _, e := range cmd.Examples {
			fmt.Fprintf(&b, "\n`%s %s`", r.deps.Command, e)
		}
	}
	return chat.Message{Text: r.Usage(cmd), Blocks: []slack.Block{bk.Section(b.String())}}
}

// visible is the command table as this person sees it: commands that
// deploy are hidden from people the policy never lets deploy.
func (r *Router) visible(ctx context.Context, id storage.Identity) []*Command {
	mayDeploy := r.deps.Deploy == nil || r.deps.Deploy.MayDeploySomewhere(ctx, id)
	var out []*Command
	for _, c := range r.commands {
		if c.Deploys && !mayDeploy {
			continue
		}
		out = append(out, c)
	}
	return out
}
