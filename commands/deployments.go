package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
)

func deploymentsCommand(res *resolver, cloud66URL string, now func() time.Time) *Command {
	return &Command{
		Name:        "deployments",
		Args:        "<stack>",
		Summary:     "Recent deployments of a stack.",
		Description: "The most recent deployments of a stack, newest first: outcome, who, when, how long, and the ref or git hash.",
		Examples:    []string{"deployments shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			return runDeployments(ctx, c, res, cloud66URL, now())
		},
	}
}

const deploymentsShown = 10

func runDeployments(ctx context.Context, c *Call, res *resolver, cloud66URL string, now time.Time) (chat.Message, error) {
	id := c.Request.Identity()
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
	var lines []string
	for _, d := range deps {
		lines = append(lines, deploymentLine(d, now))
	}
	blocks := []slack.Block{bk.Header(title), bk.Section(strings.Join(lines, "\n")),
		bk.Context("Newest first · " + bk.Link(bk.StackURL(cloud66URL, st.UID), "Open in Cloud 66"))}
	return chat.Message{Text: bk.Esc(title), Blocks: blocks}, nil
}

func deploymentLine(d cloud66.Deployment, now time.Time) string {
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
	who := bk.Esc(orDash(d.TriggeredBy))
	return fmt.Sprintf("%s *%s* · %s · %s%s · %s", emoji, word, when, who, took, orDash(what))
}

// outcomeWords reads the outcome by its meaning: Cloud 66 documents only
// one example of the numeric codes.
func outcomeWords(d cloud66.Deployment) (string, string) {
	if d.IsDeploying {
		return ":rocket:", "Deploying"
	}
	switch strings.ToLower(d.Outcome.Meaning) {
	case "success", "succeeded":
		return ":white_check_mark:", "Deployed"
	case "failed", "failure":
		return ":x:", "Failed"
	case "cancelled", "canceled":
		return ":black_square_for_stop:", "Cancelled"
	case "pending":
		return ":hourglass_flowing_sand:", "Pending"
	}
	return ":grey_question:", orDash(bk.Esc(d.Outcome.Meaning))
}
