package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"
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
	return newStacksCommand(clientFor, slash, time.Now)
}

// stacksMemory is what `stacks` remembers between listings: each person's
// page count, and everyone's failed stacks' outcomes. Every listing still
// asks Cloud 66 for the stacks themselves.
type stacksMemory struct {
	hints    pageHints
	outcomes outcomeMemo
}

// newStacksCommand is `stacks` with now its clock.
func newStacksCommand(clientFor clientFor, slash string, now func() time.Time) *Command {
	mem := &stacksMemory{}
	footer := bk.Context("`" + slash + " stack <name>` for details · `" + slash + " servers <name>` for servers")
	return &Command{
		Name:    "stacks",
		Args:    "[filter]",
		Summary: "List the stacks you can see.",
		Description: "Lists every stack your Cloud 66 account can see, across all pages, with status and health. " +
			"A filter keeps stacks whose name or environment contains it.",
		Examples: []string{"stacks", "stacks production", "stacks shop"},
		MinArgs:  0, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runStacks(ctx, c, clientFor, mem, now, slash, footer)
		},
	}
}

// pagesLister lists stacks fetching the pages it expects at once;
// *cloud66.Client has it. Without it (a test fake) ListStacks is used.
type pagesLister interface {
	ListStacksPages(ctx context.Context, pages int) ([]cloud66.Stack, int, error)
}

var _ pagesLister = (*cloud66.Client)(nil)

// listStacks is every stack the person sees, sorted as `stacks` shows
// them, with the pages it took (0: unknown). pages is the count of their
// last listing, so a warm listing is one round trip.
func listStacks(ctx context.Context, api Cloud66, pages int) ([]cloud66.Stack, int, error) {
	var (
		stacks []cloud66.Stack
		err    error
	)
	if pl, ok := api.(pagesLister); ok {
		stacks, pages, err = pl.ListStacksPages(ctx, pages)
	} else {
		stacks, err = api.ListStacks(ctx)
		pages = 0
	}
	if err != nil {
		return nil, 0, err
	}
	sortStacks(stacks)
	return stacks, pages, nil
}

// sortStacks orders stacks by name ignoring case, then environment,
// keeping Cloud 66's order among equals. It sorts indexes with each name
// lowered once: comparing Stack values lowered names at every comparison
// and moved 200-byte structs, most of what rendering a list cost.
func sortStacks(stacks []cloud66.Stack) {
	type key struct {
		name string
		i    int
	}
	keys := make([]key, len(stacks))
	for i := range stacks {
		keys[i] = key{strings.ToLower(stacks[i].Name), i}
	}
	slices.SortStableFunc(keys, func(a, b key) int {
		if n := strings.Compare(a.name, b.name); n != 0 {
			return n
		}
		return strings.Compare(stacks[a.i].Environment, stacks[b.i].Environment)
	})
	sorted := make([]cloud66.Stack, len(stacks))
	for j, k := range keys {
		sorted[j] = stacks[k.i]
	}
	copy(stacks, sorted)
}

func runStacks(ctx context.Context, c *Call, clientFor clientFor, mem *stacksMemory, now func() time.Time, slash string, footer slack.Block) (chat.Message, error) {
	id := c.Request.Identity()
	api, err := clientFor(ctx, id)
	if err != nil {
		return chat.Message{}, err
	}
	at := now()
	stacks, pages, err := listStacks(ctx, api, mem.hints.get(id, at))
	if err != nil {
		return chat.Message{}, err
	}
	mem.hints.put(id, pages, at)
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
	cancelled := lastDeployCancelled(ctx, api, stacks, &mem.outcomes, now())
	title := "Stacks (" + strconv.Itoa(len(stacks)) + ")"
	if filter != "" {
		title = "Stacks matching “" + bk.Truncate(c.Args[0], 40) + "” (" + strconv.Itoa(len(stacks)) + ")"
	}
	blocks := make([]slack.Block, 0, 4)
	blocks = append(blocks, bk.Header(title))
	blocks = appendStackSections(blocks, stacks, cancelled, bk.MaxBlocks-2, func(n int) string {
		return fmt.Sprintf("…and %d more. Narrow it with `%s stacks <filter>`.", n, slash)
	})
	blocks = append(blocks, footer)
	return chat.Message{Text: bk.Esc(title), Blocks: blocks}, nil
}

// appendStackSections appends the lines of stacks, packed as listSections
// packs them, each written straight into its section's text.
func appendStackSections(blocks []slack.Block, stacks []cloud66.Stack, cancelledByUID map[string]bool, budget int, more func(n int) string) []slack.Block {
	var (
		p    sectionPacker
		line []byte
	)
	p.budget = budget
	for i, s := range stacks {
		cancelled := s.Status == cloud66.StatusFailed && cancelledByUID[s.UID]
		line = appendStackLine(line[:0], s, cancelled)
		if !p.add(line) {
			p.blocks = append(p.blocks, bk.Context(more(len(stacks)-i)))
			return append(blocks, p.blocks...)
		}
	}
	p.flush()
	return append(blocks, p.blocks...)
}

// appendStackLine appends the line `stacks` shows for s:
// "🟢 *shop* · production — ✅ Deployed successfully · Healthy".
func appendStackLine(b []byte, s cloud66.Stack, cancelled bool) []byte {
	b = append(b, bk.HealthEmoji(s.Health)...)
	b = append(b, ' ')
	b = append(b, '*')
	b = append(b, bk.Esc(s.Name)...)
	b = append(b, '*')
	if s.Environment != "" {
		b = append(b, " · "...)
		b = append(b, bk.Esc(s.Environment)...)
	}
	b = append(b, " — "...)
	if cancelled {
		b = append(b, ":black_square_for_stop: "+statusCancelled...)
	} else {
		b = append(b, bk.StatusEmoji(s.Status)...)
		b = append(b, ' ')
		b = append(b, s.Status.String()...)
	}
	b = append(b, " · "...)
	return append(b, s.Health.String()...)
}

// maxOutcomeLookups bounds the deployment lookups of one `stacks`, and
// outcomeLookupsAtOnce how many run at a time: each costs a request of
// the person's hourly Cloud 66 allowance. Failed stacks past the bound
// show as Cloud 66 says, failed.
const (
	maxOutcomeLookups    = 20
	outcomeLookupsAtOnce = 4
)

// lastDeployCancelled looks up, for the failed stacks among stacks, whether
// their last deployment was cancelled, and returns what
// it found by uid (nil when there was nothing to look up: the common
// case, with no failed stack, costs nothing). Cloud 66 leaves such a
// stack "Deployment failed", and only the deployment's outcome tells the
// two apart, so each costs one request for its newest deployment. A
// lookup that fails leaves its stack as Cloud 66 says, and is not
// recorded: the list is worth showing without it.
//
// Outcomes in memo are used without a request and the new ones put there.
func lastDeployCancelled(ctx context.Context, api Cloud66, stacks []cloud66.Stack, memo *outcomeMemo, now time.Time) map[string]bool {
	var (
		todo  []cloud66.Stack
		found map[string]bool
	)
	for _, s := range stacks {
		if len(todo) == maxOutcomeLookups {
			break
		}
		if s.Status != cloud66.StatusFailed {
			continue
		}
		if cancelled, ok := memo.get(s, now); ok {
			if found == nil {
				found = map[string]bool{}
			}
			found[s.UID] = cancelled
			continue
		}
		todo = append(todo, s)
	}
	if len(todo) == 0 {
		return found
	}
	type answer struct {
		cancelled, ok bool
	}
	answers := make([]answer, len(todo))
	var g errgroup.Group
	g.SetLimit(outcomeLookupsAtOnce)
	for i, st := range todo {
		g.Go(func() error {
			answers[i].cancelled, answers[i].ok = lookupCancelled(ctx, api, st.UID)
			return nil
		})
	}
	_ = g.Wait() // the lookups report no errors
	if found == nil {
		found = make(map[string]bool, len(todo))
	}
	for i, st := range todo {
		if answers[i].ok {
			found[st.UID] = answers[i].cancelled
			memo.put(st, answers[i].cancelled, now)
		}
	}
	return found
}

// newestCancelled reports whether the stack's newest deployment was
// cancelled (cloud66.Deployment.Cancelled, as the watcher and notify read
// it); false when that cannot be known.
func newestCancelled(ctx context.Context, api Cloud66, uid string) bool {
	cancelled, _ := lookupCancelled(ctx, api, uid)
	return cancelled
}

// lookupCancelled is newestCancelled, also saying whether Cloud 66
// answered.
func lookupCancelled(ctx context.Context, api Cloud66, uid string) (cancelled, ok bool) {
	deps, _, err := api.ListDeploymentsPage(ctx, uid, 1)
	if err != nil {
		return false, false
	}
	return len(deps) > 0 && deps[0].Cancelled(), true
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
