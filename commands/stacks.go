package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

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
	cancelled := lastDeployCancelled(ctx, api, stacks)
	lines := make([]string, 0, len(stacks))
	for i, s := range stacks {
		lines = append(lines, fmt.Sprintf("%s %s — %s · %s", bk.HealthEmoji(s.Health), bk.StackLabel(s), statusText(s, cancelled[i]), s.Health))
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

// maxOutcomeLookups bounds the deployment lookups of one `stacks`, and
// outcomeLookupsAtOnce how many run at a time: each costs a request of
// the person's hourly Cloud 66 allowance. Failed stacks past the bound
// show as Cloud 66 says, failed.
const (
	maxOutcomeLookups    = 20
	outcomeLookupsAtOnce = 4
)

// lastDeployCancelled reports, for each stack, whether its last deployment
// was cancelled. Cloud 66 leaves such a stack "Deployment failed", and
// only the deployment's outcome tells the two apart, so each failed stack
// costs one request for its newest deployment; the others cost nothing.
// A lookup that fails leaves its stack as Cloud 66 says: the list is
// worth showing without it.
func lastDeployCancelled(ctx context.Context, api Cloud66, stacks []cloud66.Stack) []bool {
	cancelled := make([]bool, len(stacks))
	var g errgroup.Group
	g.SetLimit(outcomeLookupsAtOnce)
	looked := 0
	for i, s := range stacks {
		if s.Status != cloud66.StatusFailed || looked == maxOutcomeLookups {
			continue
		}
		looked++
		g.Go(func() error {
			cancelled[i] = newestCancelled(ctx, api, s.UID)
			return nil
		})
	}
	_ = g.Wait() // the lookups report no errors
	return cancelled
}

// newestCancelled reports whether the stack's newest deployment was
// cancelled (cloud66.Deployment.Cancelled, as the watcher and notify read
// it); false when that cannot be known.
func newestCancelled(ctx context.Context, api Cloud66, uid string) bool {
	deps, _, err := api.ListDeploymentsPage(ctx, uid, 1)
	return err == nil && len(deps) > 0 && deps[0].Cancelled()
}

// statusText is the stack's status with its emoji, a failed one whose last
// deployment was cancelled reading as cancelled.
func statusText(s cloud66.Stack, cancelled bool) string {
	if cancelled {
		return ":black_square_for_stop: " + statusCancelled
	}
	return bk.StatusText(s.Status)
}

// statusCancelled is the status of a stack whose last deployment was
// cancelled, worded like Cloud 66's "Deployment failed".
const statusCancelled = "Deployment cancelled"

func stackCommand(res *resolver, locks lockLister, slash, cloud66URL string, now func() time.Time) *Command {
	return &Command{
		Name:        "stack",
		Args:        "<stack>",
		Summary:     "One stack: status, health, git, last activity.",
		Description: "Shows one stack's status, health, environment, framework, git branch and last activity, and who locked it if anyone did, with a link to it in Cloud 66.",
		Examples:    []string{"stack shop:production", "stack api:production"},
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
	cancelled := s.Status == cloud66.StatusFailed && newestCancelled(ctx, api, s.UID)
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
		"*Status*\n" + statusText(s, cancelled),
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
	status := s.Status.String()
	if cancelled {
		status = statusCancelled
	}
	fallback := fmt.Sprintf("%s: %s, %s", title, status, s.Health)
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
