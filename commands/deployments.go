package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// PeopleByEmail finds the Slack person of a workspace who linked the Cloud
// 66 account with an e-mail; *accounts.Service satisfies it. Nil leaves
// Cloud 66's e-mails as they are.
type PeopleByEmail interface {
	PersonByEmail(ctx context.Context, team, email string) (storage.Identity, bool)
}

// byWhom renders who Cloud 66 says did something, for a reply in team's
// workspace: the Slack person (<@U…>) who linked that e-mail there, else
// the e-mail escaped ("—" for none).
func byWhom(ctx context.Context, people PeopleByEmail, team string) func(email string) string {
	return func(email string) string {
		if people != nil && email != "" {
			if p, ok := people.PersonByEmail(ctx, team, email); ok && p.Team == team && p.User != "" {
				return "<@" + bk.Esc(p.User) + ">"
			}
		}
		return bk.Esc(orDash(email))
	}
}

func deploymentsCommand(res *resolver, offers rollbackOfferer, people PeopleByEmail, cloud66URL string, now func() time.Time) *Command {
	return &Command{
		Name:    "deployments",
		Args:    "<stack>",
		Summary: "Recent deployments of a stack.",
		Description: "The most recent deployments of a stack, newest first: outcome, who, when, how long, and the ref or git hash. " +
			"Earlier successful ones carry a \"Roll back to this\" button (you confirm it next).",
		Examples: []string{"deployments shop:production"},
		MinArgs:  1, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runDeployments(ctx, c, res, offers, people, cloud66URL, now())
		},
	}
}

const (
	deploymentsShown = 10
	// rollbackOffersShown bounds the "Roll back to this" buttons (each is a
	// stored offer).
	rollbackOffersShown = 5
)

func runDeployments(ctx context.Context, c *Call, res *resolver, offers rollbackOfferer, people PeopleByEmail, cloud66URL string, now time.Time) (chat.Message, error) {
	id := c.Request.Identity()
	who := byWhom(ctx, people, id.Team)
	api, st, err := res.stackArg(ctx, id, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	deps, _, err := api.ListDeploymentsPage(ctx, st.UID, 1)
	if err != nil {
		return chat.Message{}, res.stackGone(id, st, err)
	}
	title := fmt.Sprintf("Deployments of %s", stackRefText(st))
	if len(deps) == 0 {
		return chat.Message{Text: bk.Esc(title), Blocks: []slack.Block{bk.Section(fmt.Sprintf(":scroll: %s has no deployments yet.", bk.StackLabel(st)))}}, nil
	}
	if len(deps) > deploymentsShown {
		deps = deps[:deploymentsShown]
	}
	blocks := []slack.Block{bk.Header(title)}
	var lines []string
	flush := func() {
		if len(lines) > 0 {
			blocks = append(blocks, bk.Section(strings.Join(lines, "\n")))
			lines = nil
		}
	}
	offered, live := 0, liveIndex(deps)
	// One offer per git hash: going back to either of two deployments of
	// one hash ships the same code.
	offeredHash := map[string]bool{}
	for i, d := range deps {
		line := deploymentLineBy(d, now, who)
		if offers == nil || i <= live || !d.Succeeded() || d.GitHash == "" || offered >= rollbackOffersShown ||
			live >= 0 && d.GitHash == deps[live].GitHash || offeredHash[d.GitHash] {
			lines = append(lines, line)
			continue
		}
		id, err := offers.OfferRollback(ctx, c.origin(), st, strconv.FormatInt(d.ID, 10))
		if err != nil {
			// The list is worth showing without its buttons.
			lines = append(lines, line)
			continue
		}
		offered++
		offeredHash[d.GitHash] = true
		flush()
		blocks = append(blocks, slack.NewSectionBlock(bk.Mrkdwn(line), nil,
			slack.NewAccessory(bk.Button(deploy.ActionRollback, id, "Roll back to this", slack.StyleDefault))))
	}
	flush()
	blocks = append(blocks, bk.Context("Newest first · "+bk.Link(bk.StackURL(cloud66URL, st.UID), "Open in Cloud 66")))
	return chat.Message{Text: bk.Esc(title), Blocks: blocks}, nil
}

// liveIndex is the index of the live deployment in deps (newest first):
// the is_live one, else the newest successful one; -1 when none.
func liveIndex(deps []cloud66.Deployment) int {
	for i := range deps {
		if deps[i].IsLive {
			return i
		}
	}
	for i := range deps {
		if deps[i].Succeeded() {
			return i
		}
	}
	return -1
}

func deploymentLine(d cloud66.Deployment, now time.Time) string {
	return deploymentLineBy(d, now, byWhom(context.Background(), nil, ""))
}

// deploymentLineBy is deploymentLine with who rendering Cloud 66's
// triggered_by.
func deploymentLineBy(d cloud66.Deployment, now time.Time, who func(email string) string) string {
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
	return fmt.Sprintf("%s *%s* · %s · %s%s · %s", emoji, word, when, who(d.TriggeredBy), took, orDash(what))
}

// outcomeWords reads the outcome by its meaning: Cloud 66 documents only
// one example of the numeric codes.
func outcomeWords(d cloud66.Deployment) (string, string) {
	if d.IsDeploying {
		return ":rocket:", "Deploying"
	}
	switch {
	case d.Succeeded():
		return ":white_check_mark:", "Deployed"
	case d.Cancelled():
		return ":black_square_for_stop:", "Cancelled"
	case d.Failed():
		return ":x:", "Failed"
	case strings.EqualFold(d.Outcome.Meaning, "pending"):
		return ":hourglass_flowing_sand:", "Pending"
	}
	return ":grey_question:", orDash(bk.Esc(d.Outcome.Meaning))
}
