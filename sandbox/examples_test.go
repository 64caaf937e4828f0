package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

// example is one command the docs show, with who types it where and the
// reply the docs show after it ("" when they show none).
type example struct {
	from          string // where it was found, for failures
	user, channel string // a person's name and a channel's name
	text          string // without the slash command
	shown         string
}

// brokenReplies are the replies that mean an example does not work as
// written: the words do not fit (usage, unknown command), the stack or
// server is not there for that person (ambiguous, not found), an option or
// target the stack refuses, or no link. Refusals that are the example's
// point (a lock, a confirmation, nothing to cancel) are answers, not these.
var brokenReplies = []struct{ kind, marker string }{
	{"usage", "Usage: `"},
	{"usage", "Try `/c66 help`"},
	{"unknown command", "I don't know the command"},
	{"ambiguous", " stacks; say which one"},
	{"not found", "I can't find a "},
	{"not found", "Cloud 66 says that doesn't exist"},
	{"refused option", "` shows the options."},
	{"no rollback target", "I can't roll back"},
	{"not linked", "haven't linked"},
	{"error", "Something went wrong"},
}

// brokenKind is the kind of broken reply text is, or "".
func brokenKind(text string) string {
	for _, b := range brokenReplies {
		if strings.Contains(text, b.marker) {
			return b.kind
		}
	}
	return ""
}

var (
	// A transcript's prompt: "ana in #general> /c66 deploy shop:staging".
	promptLine = regexp.MustCompile(`^(\w+) in #([\w-]+)> /c66(?: (.*))?$`)
	// `c66bot try [--press N] "servers shop:production"`, run as ana.
	tryLine = regexp.MustCompile(`c66bot try (?:--\w+ \S+ )*"([^"]+)"`)
	// An inline `/c66 …` in prose, without placeholders.
	inlineCommand = regexp.MustCompile("`/c66 ([^`<>]+)`")
)

// readmeExamples are the commands README.md shows: every prompt of its
// transcripts (as the person shown, with the reply shown under it), every
// `c66bot try` line, and every `/c66 …` in its prose.
func readmeExamples(t *testing.T) []example {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	inBlock := false
	current := -1 // the transcript prompt whose reply is being read
	for n, line := range strings.Split(string(b), "\n") {
		from := "README.md:" + strconv.Itoa(n+1)
		if strings.HasPrefix(line, "```") {
			inBlock, current = !inBlock, -1
			continue
		}
		if !inBlock {
			for _, m := range inlineCommand.FindAllStringSubmatch(line, -1) {
				out = append(out, example{from: from, user: "ana", channel: "general", text: strings.TrimSpace(m[1])})
			}
			continue
		}
		if m := promptLine.FindStringSubmatch(line); m != nil {
			out = append(out, example{from: from, user: m[1], channel: m[2], text: strings.TrimSpace(m[3])})
			current = len(out) - 1
			continue
		}
		if m := tryLine.FindStringSubmatch(line); m != nil {
			out = append(out, example{from: from, user: "ana", channel: "general", text: m[1]})
			continue
		}
		if current >= 0 {
			out[current].shown += line + "\n"
		}
	}
	return out
}

// replyText is everything a person reads in m: its text and every text of
// its blocks.
func replyText(m bottest.Message) string {
	var b strings.Builder
	b.WriteString(m.Text)
	var blocks any
	if len(m.Blocks) > 0 && json.Unmarshal(m.Blocks, &blocks) == nil {
		var walk func(any)
		walk = func(v any) {
			switch t := v.(type) {
			case map[string]any:
				for k, x := range t {
					if s, ok := x.(string); ok && k == "text" {
						b.WriteString("\n" + s)
						continue
					}
					walk(x)
				}
			case []any:
				for _, x := range t {
					walk(x)
				}
			}
		}
		walk(blocks)
	}
	return b.String()
}

// send runs ex in sb and returns the reply's text.
func send(ctx context.Context, t *testing.T, sb *Sandbox, ex example) string {
	t.Helper()
	user, _, err := sb.resolveUser(ex.user)
	if err != nil {
		t.Fatalf("%s: %v", ex.from, err)
	}
	channel, _, err := sb.resolveChannel(ex.channel)
	if err != nil {
		t.Fatalf("%s: %v", ex.from, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	id, err := sb.Send(ctx, user, channel, ex.text)
	if err != nil {
		t.Fatalf("%s: send %q: %v", ex.from, ex.text, err)
	}
	reply, err := sb.Reply(ctx, id)
	if err != nil {
		t.Fatalf("%s: no reply to %q: %v", ex.from, ex.text, err)
	}
	return replyText(reply)
}

// linkedSandbox is a sandbox where ana and ben have linked Cloud 66.
func linkedSandbox(t *testing.T) *Sandbox {
	t.Helper()
	sb := startSandbox(t, fastOptions(io.Discard))
	for _, p := range People() {
		if err := sb.Link(t.Context(), p.SlackID, DefaultChannel); err != nil {
			t.Fatalf("link %s: %v", p.Name, err)
		}
	}
	return sb
}

// Every command README.md shows works as written in the sandbox, as the
// person it shows typing it: the reply is the kind the README shows (a
// transcript that shows the unknown-command reply gets it), and otherwise
// no usage, unknown-command, ambiguous, not-found or refused-option reply.
func TestREADMEExamplesWork(t *testing.T) {
	t.Parallel()
	examples := readmeExamples(t)
	if len(examples) < 8 {
		t.Fatalf("found only %d examples in README.md: %+v", len(examples), examples)
	}
	sb := linkedSandbox(t)
	for _, ex := range examples {
		got := send(t.Context(), t, sb, ex)
		if want, kind := brokenKind(ex.shown), brokenKind(got); kind != want {
			t.Errorf("%s: `/c66 %s` as %s in #%s answered (%s, README shows %q):\n%s", ex.from, ex.text, ex.user, ex.channel, orWorks(kind), orWorks(want), got)
		}
	}
}

// Every example of the generated help (`help <command>` for each command
// `help` lists) works as written in the sandbox, typed by ana in #general.
func TestHelpExamplesWork(t *testing.T) {
	t.Parallel()
	sb := linkedSandbox(t)
	ctx := t.Context()
	ask := func(text string) string {
		return send(ctx, t, sb, example{from: "help", user: "ana", channel: "general", text: text})
	}
	names := regexp.MustCompile("(?m)^`/c66 ([a-z]+)[^`]*` — ").FindAllStringSubmatch(ask("help"), -1)
	if len(names) < 15 {
		t.Fatalf("help lists %d commands", len(names))
	}
	exampleLine := regexp.MustCompile("(?m)^`/c66 ([^`]+)`$")
	count := 0
	for _, n := range names {
		help := ask("help " + n[1])
		_, after, _ := strings.Cut(help, "*Examples*")
		for _, m := range exampleLine.FindAllStringSubmatch(after, -1) {
			count++
			ex := example{from: "help " + n[1], user: "ana", channel: "general", text: m[1]}
			if got := send(ctx, t, sb, ex); brokenKind(got) != "" {
				t.Errorf("%s: `/c66 %s` answered (%s):\n%s", ex.from, ex.text, brokenKind(got), got)
			}
		}
	}
	if count < 20 {
		t.Errorf("ran %d examples from help, want them all (more than 20)", count)
	}
}

func orWorks(kind string) string {
	if kind == "" {
		return "works"
	}
	return kind
}
