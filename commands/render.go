package commands

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
)

// Block Kit limits (Slack's reference): we cut before Slack refuses.
const (
	maxBlocks      = 50
	maxSectionText = 3000
	maxHeaderText  = 150
	maxFieldText   = 2000
	maxButtonText  = 75
)

// esc makes a string from a person or from Cloud 66 safe inside mrkdwn:
// `<!channel>`, `<@U…>` and `<url|label>` only work with a raw '<', and '&'
// must not start an entity.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// code renders s as inline code, escaped; backticks inside would end it.
func code(s string) string {
	return "`" + esc(strings.ReplaceAll(s, "`", "'")) + "`"
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// slackDate renders t in each reader's own time zone; the fallback is UTC
// for clients that can't.
func slackDate(t time.Time, format string) string {
	return fmt.Sprintf("<!date^%d^%s|%s>", t.Unix(), format, t.UTC().Format("2006-01-02 15:04 UTC"))
}

// ago renders a coarse age: "3 h ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, maxSectionText), false, false)
}

func plain(s string, max int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(s, max), true, false)
}

func section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(s), nil, nil)
}

func header(s string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(plain(s, maxHeaderText))
}

func contextLine(s string) *slack.ContextBlock {
	return slack.NewContextBlock("", mrkdwn(s))
}

func fieldsSection(fields ...string) *slack.SectionBlock {
	var objs []*slack.TextBlockObject
	for _, f := range fields {
		if f == "" || len(objs) == 10 {
			continue
		}
		objs = append(objs, slack.NewTextBlockObject(slack.MarkdownType, truncate(f, maxFieldText), false, false))
	}
	return slack.NewSectionBlock(nil, objs, nil)
}

func linkButton(actionID, label, url string, primary bool) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, "", plain(label, maxButtonText))
	b.URL = url
	if primary {
		b.Style = slack.StylePrimary
	}
	return b
}

// errorText is an ephemeral reply of one section.
func errorText(s string) Reply {
	return Reply{Text: plainFallback(s), Blocks: []slack.Block{section(s)}}
}

// plainFallback is the notification text: mrkdwn is fine there, but keep it short.
func plainFallback(s string) string {
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return truncate(s, 300)
}

// listSections packs lines into as few sections as fit, leaving room for
// the blocks around them; lines that don't fit are counted in a last line.
func listSections(lines []string, budget int, more func(n int) string) []slack.Block {
	var (
		blocks []slack.Block
		cur    strings.Builder
	)
	flush := func() {
		if cur.Len() > 0 {
			blocks = append(blocks, section(cur.String()))
			cur.Reset()
		}
	}
	for i, l := range lines {
		if cur.Len()+len(l)+1 > maxSectionText {
			flush()
		}
		if len(blocks) >= budget-1 && cur.Len() == 0 {
			blocks = append(blocks, contextLine(more(len(lines)-i)))
			return blocks
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(l)
	}
	flush()
	return blocks
}

// Status and health are shown as words with an emoji, never as codes.

func statusText(s cloud66.StackStatus) string {
	return statusEmoji(s) + " " + s.String()
}

func statusEmoji(s cloud66.StackStatus) string {
	switch s {
	case cloud66.StatusDeployed:
		return ":white_check_mark:"
	case cloud66.StatusFailed:
		return ":x:"
	case cloud66.StatusTerminalFailure:
		return ":no_entry:"
	case cloud66.StatusDeploying:
		return ":rocket:"
	case cloud66.StatusQueued, cloud66.StatusQueuedForDeploying:
		return ":hourglass_flowing_sand:"
	case cloud66.StatusAnalysing, cloud66.StatusAnalysed:
		return ":mag:"
	}
	return ":grey_question:"
}

func healthText(h cloud66.Health) string {
	return healthEmoji(h) + " " + h.String()
}

func healthEmoji(h cloud66.Health) string {
	switch h {
	case cloud66.HealthOK:
		return ":large_green_circle:"
	case cloud66.HealthImpaired:
		return ":large_yellow_circle:"
	case cloud66.HealthFailed:
		return ":red_circle:"
	case cloud66.HealthBuilding:
		return ":hammer:"
	}
	return ":white_circle:"
}

// stackLabel is "shop · production".
func stackLabel(s cloud66.Stack) string {
	if s.Environment == "" {
		return "*" + esc(s.Name) + "*"
	}
	return "*" + esc(s.Name) + "* · " + esc(s.Environment)
}

// stackRef is how a person names this stack unambiguously.
func stackRefText(s cloud66.Stack) string {
	if s.Environment == "" {
		return s.Name
	}
	return s.Name + ":" + s.Environment
}

func stackURL(base string, s cloud66.Stack) string {
	return strings.TrimRight(base, "/") + "/stacks/" + s.UID
}
