package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

func stacksCommand(clientFor clientFor, slash string) *Command {
	return &Command{
		Name:    "stacks",
		Args:    "[filter]",
		Summary: "List the stacks you can see.",
		Description: "Lists every stack your Cloud 66 account can see, across all pages, with status and health. " +
			"A filter keeps stacks whose name or environment contains it.",
		Examples: []string{"stacks", "stacks production", "stacks shop"},
		MinArgs:  0, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) { return runStacks(ctx, c, clientFor, slash) },
	}
}

func runStacks(ctx context.Context, c *Call, clientFor clientFor, slash string) (chat.Message, error) {
	api, err := clientFor(ctx, c.Request.Identity())
	if err != nil {
		return chat.Message{}, err
	}
	stacks, err := api.ListStacks(ctx)
	if err != nil {
		return chat.Message{}, err
	}
	filter := ""
	if len(c.Args) == 1 {
		filter = strings.ToLower(c.Args[0])
		stacks = slices.DeleteFunc(stacks, func(s cloud66.Stack) bool {
			return !strings.Contains(strings.ToLower(s.Name), filter) && !strings.Contains(strings.ToLower(s.Environment), filter)
		})
	}
	if len(stacks) == 0 {
		if filter != "" {
			return ephemeral(fmt.Sprintf(":mag: No stack you can see matches %s. `%s stacks` lists them all.", bk.Code(filter), slash)), nil
		}
		return ephemeral(":mag: Your Cloud 66 account sees no stacks."), nil
	}
	slices.SortStableFunc(stacks, func(a, b cloud66.Stack) int {
		if n := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); n != 0 {
			return n
		}
		return strings.Compare(a.Environment, b.Environment)
	})
	lines := make([]string, 0, len(stacks))
	for _, s := range stacks {
		lines = append(lines, fmt.Sprintf("%s %s — %s · %s", bk.HealthEmoji(s.Health), bk.StackLabel(s), bk.StatusText(s.Status), s.Health))
	}
	title := fmt.Sprintf("Stacks (%d)", len(stacks))
	if filter != "" {
		title = fmt.Sprintf("Stacks matching “%s” (%d)", bk.Truncate(c.Args[0], 40), len(stacks))
	}
	blocks := []slack.Block{bk.Header(title)}
	blocks = append(blocks, listSections(lines, bk.MaxBlocks-2, func(n int) string {
		return fmt.Sprintf("…and %d more. Narrow it with `%s stacks <filter>`.", n, slash)
	})...)
	blocks = append(blocks, bk.Context(fmt.Sprintf("`%s stack <name>` for details · `%s servers <name>` for servers", slash, slash)))
	return chat.Message{Text: bk.Esc(title), Blocks: blocks}, nil
}

func stackCommand(res *resolver, locks lockLister, slash, cloud66URL string, now func() time.Time) *Command {
	return &Command{
		Name:        "stack",
		Args:        "<stack>",
		Summary:     "One stack: status, health, git, last activity.",
		Description: "Shows one stack's status, health, environment, framework, git branch and last activity, and who locked it if anyone did, with a link to it in Cloud 66.",
		Examples:    []string{"stack shop:production", "stack api"},
		MinArgs:     1, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runStack(ctx, c, res, locks, slash, cloud66URL, now)
		},
	}
}

func runStack(ctx context.Context, c *Call, res *resolver, locks lockLister, slash, cloud66URL string, now func() time.Time) (chat.Message, error) {
	id := c.Request.Identity()
	api, err := res.client(ctx, id)
	if err != nil {
		return chat.Message{}, err
	}
	// A cached or listed stack may be minutes old; this one is current.
	s, err := res.resolveFreshStack(ctx, api, id, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	lock, locked, err := stackLock(ctx, locks, id.Team, s.UID)
	if err != nil {
		return chat.Message{}, err
	}
	title := s.Name
	if s.Environment != "" {
		title += " · " + s.Environment
	}
	git := "—"
	if s.GitBranch != "" {
		git = bk.Code(s.GitBranch)
	}
	if s.Git != "" {
		git += " of " + bk.Esc(s.Git)
	}
	activity := "—"
	if !s.LastActivity.IsZero() {
		activity = bk.Date(s.LastActivity.Time, "{date_short_pretty} {time}") + " (" + bk.Ago(now(), s.LastActivity.Time) + ")"
	}
	kind := bk.Esc(s.Framework)
	if !strings.EqualFold(s.Language, s.Framework) {
		// Docker stacks report "docker" as both.
		kind = strings.TrimSpace(kind + " " + bk.Esc(s.Language))
	}
	if kind == "" {
		kind = "—"
	}
	fields := []string{
		"*Status*\n" + bk.StatusText(s.Status),
		"*Health*\n" + bk.HealthText(s.Health),
		"*Environment*\n" + orDash(bk.Esc(s.Environment)),
		"*Framework*\n" + kind,
		"*Git*\n" + git,
		"*Last activity*\n" + activity,
	}
	if s.MaintenanceMode {
		fields = append(fields, "*Maintenance mode*\n:construction: on")
	}
	if s.Cloud != "" {
		fields = append(fields, "*Cloud*\n"+bk.Esc(s.Cloud))
	}
	blocks := []slack.Block{bk.Header(title), bk.Fields(fields...)}
	fallback := fmt.Sprintf("%s: %s, %s", title, s.Status, s.Health)
	if locked {
		blocks = append(blocks, bk.Section(":lock: Locked by "+lockHolder(lock, now())))
		fallback += ", locked"
	}
	blocks = append(blocks,
		slack.NewActionBlock("stack_links", bk.LinkButton("stack_open", "Open in Cloud 66", bk.StackURL(cloud66URL, s.UID), false)),
		bk.Context(fmt.Sprintf("uid `%s` · `%s servers %s` lists its servers", bk.Esc(s.UID), slash, bk.Esc(stackRefText(s)))))
	return chat.Message{Text: bk.Esc(fallback), Blocks: blocks}, nil
}

// stackLock is the lock on the stack with this uid in team, if any. No
// lister (a router built without deploys) knows no locks.
func stackLock(ctx context.Context, locks lockLister, team, uid string) (storage.Lock, bool, error) {
	if locks == nil {
		return storage.Lock{}, false, nil
	}
	all, err := locks.Locks(ctx, team)
	if err != nil {
		return storage.Lock{}, false, err
	}
	for _, l := range all {
		if l.StackUID == uid {
			return l, true, nil
		}
	}
	return storage.Lock{}, false, nil
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
