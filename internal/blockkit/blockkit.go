// Package blockkit holds the Block Kit and mrkdwn helpers shared by the
// command replies (package commands) and the deployment messages (package
// deploy): escaping, Slack's limits, dates, and how Cloud 66 states look.
package blockkit

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
)

// Block Kit limits (Slack's reference): text is cut before Slack refuses it.
const (
	MaxBlocks      = 50
	MaxSectionText = 3000
	MaxHeaderText  = 150
	MaxFieldText   = 2000
	MaxButtonText  = 75
	MaxFields      = 10
)

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Esc makes a string from a person or from Cloud 66 safe inside one line
// of mrkdwn: `<!channel>`, `<@U…>` and `<url|label>` only work with a raw
// '<', and '&' must not start an entity. New lines and other control or
// line-breaking characters become spaces, so a name cannot fake a new line
// of a card. Text meant to keep its lines goes through EscText.
func Esc(s string) string { return escaper.Replace(OneLine(s)) }

// EscText is Esc for text deliberately shown on several lines, such as
// Cloud 66's message about a deployment in its thread: line breaks are
// kept (as '\n'), every other control character becomes a space.
func EscText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r' || r == '\u2028' || r == '\u2029':
			return '\n'
		case breaksLine(r):
			return ' '
		}
		return r
	}, s)
	return escaper.Replace(s)
}

// OneLine replaces every character that could break or reorder a line of
// text (control characters, line and paragraph separators, bidirectional
// overrides) with a space. It is Esc without the mrkdwn escaping, for
// plain_text and for values compared before escaping.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if breaksLine(r) {
			return ' '
		}
		return r
	}, s)
}

// breaksLine reports whether r can start a new line or reorder the rest of
// one: C0/C1 controls (new lines among them), U+2028/U+2029, and the
// bidirectional embeddings, overrides and isolates.
func breaksLine(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// Code renders s as inline code, escaped; a backtick inside would end it.
func Code(s string) string {
	return "`" + Esc(strings.ReplaceAll(s, "`", "'")) + "`"
}

// Truncate cuts s to at most n runes, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Date renders t in each reader's own time zone with a Slack date token
// such as "{time}" or "{date_short_pretty} {time}"; the fallback is UTC.
func Date(t time.Time, format string) string {
	return fmt.Sprintf("<!date^%d^%s|%s>", t.Unix(), format, t.UTC().Format("2006-01-02 15:04 UTC"))
}

// Ago renders a coarse age: "3 h ago".
func Ago(now, t time.Time) string {
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

// Duration renders an elapsed time for people: "4 min 05 s", "1 h 02 min".
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

// Mrkdwn is a mrkdwn text object, cut to the section limit.
func Mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, Truncate(s, MaxSectionText), false, false)
}

// Plain is a plain_text object on one line (headers and buttons have no
// second line to fake), cut to max runes.
func Plain(s string, max int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, Truncate(OneLine(s), max), true, false)
}

// Section is a mrkdwn section.
func Section(s string) *slack.SectionBlock {
	return slack.NewSectionBlock(Mrkdwn(s), nil, nil)
}

// Header is a header block.
func Header(s string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(Plain(s, MaxHeaderText))
}

// Context is a one-line context block.
func Context(s string) *slack.ContextBlock {
	return slack.NewContextBlock("", Mrkdwn(s))
}

// Fields is a section of up to ten mrkdwn fields; empty ones are skipped.
func Fields(fields ...string) *slack.SectionBlock {
	var objs []*slack.TextBlockObject
	for _, f := range fields {
		if f == "" || len(objs) == MaxFields {
			continue
		}
		objs = append(objs, slack.NewTextBlockObject(slack.MarkdownType, Truncate(f, MaxFieldText), false, false))
	}
	return slack.NewSectionBlock(nil, objs, nil)
}

// LinkButton opens url in the browser (Slack still sends an action payload).
func LinkButton(actionID, label, url string, primary bool) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, "", Plain(label, MaxButtonText))
	b.URL = url
	if primary {
		b.Style = slack.StylePrimary
	}
	return b
}

// Button is an action button carrying value (an opaque id, never parameters).
func Button(actionID, value, label string, style slack.Style) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, Plain(label, MaxButtonText))
	b.Style = style
	return b
}

// Fallback is a notification text: the first line, short.
func Fallback(s string) string {
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return Truncate(s, 300)
}

// Status and health are shown as words with an emoji, never as codes.

// StatusText is "✅ Deployed successfully".
func StatusText(s cloud66.StackStatus) string { return StatusEmoji(s) + " " + s.String() }

// StatusEmoji is the emoji of a stack status.
func StatusEmoji(s cloud66.StackStatus) string {
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

// HealthText is "🟢 Healthy".
func HealthText(h cloud66.Health) string { return HealthEmoji(h) + " " + h.String() }

// HealthEmoji is the emoji of a health state.
func HealthEmoji(h cloud66.Health) string {
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

// StackLabel is "*shop* · production", escaped.
func StackLabel(s cloud66.Stack) string {
	if s.Environment == "" {
		return "*" + Esc(s.Name) + "*"
	}
	return "*" + Esc(s.Name) + "* · " + Esc(s.Environment)
}

// StackRef is how a person names a stack unambiguously: "shop:production".
func StackRef(name, environment string) string {
	if environment == "" {
		return name
	}
	return name + ":" + environment
}

// StackURL is the stack's page in the Cloud 66 dashboard, with the uid
// path-escaped; it is "" when uid is not a Cloud 66 uid (say, from a record
// older than the check at decode), and Link then shows its label unlinked.
func StackURL(base, uid string) string {
	if base == "" || !cloud66.ValidUID(uid) {
		return ""
	}
	return strings.TrimRight(base, "/") + "/stacks/" + url.PathEscape(uid)
}
