package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/internal/chat"
)

func TestPlainFallback(t *testing.T) {
	t.Parallel()
	section := func(s string) slack.Block {
		return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, s, false, false), nil, nil)
	}
	tests := []struct {
		name   string
		text   string
		blocks []slack.Block
		want   []string
		not    []string
	}{
		{"text only", "Deploying *shop*", nil, []string{"Deploying *shop*"}, nil},
		{"the blocks' text wins over the short fallback", "Your stacks", []slack.Block{
			slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Stacks <!channel> & co", false, false)),
			section("*shop* production"),
			slack.NewSectionBlock(nil, []*slack.TextBlockObject{slack.NewTextBlockObject(slack.MarkdownType, "field one", false, false)}, nil),
			slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "2 more", false, false)),
			slack.NewDividerBlock(),
		}, []string{"Stacks &lt;!channel&gt; &amp; co\n*shop* production\nfield one\n2 more"}, []string{"Your stacks", "<!channel>"}},
		{"blocks without text", "Confirm the deploy", []slack.Block{slack.NewDividerBlock()}, []string{"Confirm the deploy"}, nil},
		{"cut to fit", strings.Repeat("é", 50000), nil, []string{strings.Repeat("é", maxFallbackText) + "…"}, []string{strings.Repeat("é", maxFallbackText+1)}},
		{"nothing at all", "", nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := plainFallback(tc.text, tc.blocks)
			if !strings.HasSuffix(got, fallbackNote) {
				t.Errorf("no note at the end: %q", got)
			}
			if n := len([]rune(got)); n > 40000 {
				t.Errorf("%d characters: Slack would refuse this too", n)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(got, w) {
					t.Errorf("%q contains %q", got, w)
				}
			}
		})
	}
}

func TestHookErrorCode(t *testing.T) {
	t.Parallel()
	for answer, want := range map[string]string{
		"ok":                                    "",
		"":                                      "",
		`{"ok":true}`:                           "",
		`{"ok":false,"error":"invalid_blocks"}`: "invalid_blocks",
		"invalid_blocks\n":                      "invalid_blocks",
		"msg_too_long":                          "msg_too_long",
		"<html><body>Bad Request</body></html>": "",
		"no such thing here":                    "",
	} {
		if got := hookErrorCode([]byte(answer)); got != want {
			t.Errorf("hookErrorCode(%q) = %q, want %q", answer, got, want)
		}
	}
}

// Against the fake Slack, which refuses what Slack refuses: a message with
// more than 50 blocks, a section over 3,000 characters or text over 40,000
// is posted, edited or shown as plain text with a note instead of lost.
func TestPosterSendsRefusedMessagesAsPlainText(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 100, Burst: 10})
	defer closeQueue(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()

	many := make([]slack.Block, 60)
	for i := range many {
		many[i] = slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("line %d", i), false, false), nil, nil)
	}
	ts, err := p.Post(ctx, bottest.ChannelGeneral, chat.Message{Text: "60 lines", Blocks: many})
	if err != nil {
		t.Fatalf("post with 60 blocks: %v", err)
	}
	m, ok := srv.Message(bottest.ChannelGeneral, ts)
	if !ok || m.Blocks != nil || !strings.Contains(m.Text, "line 0\nline 1") || !strings.Contains(m.Text, "line 59") || !strings.Contains(m.Text, fallbackNote) {
		t.Errorf("post after invalid_blocks = %+v", m)
	}
	if n := srv.CallCount("chat.postMessage"); n != 2 {
		t.Errorf("%d chat.postMessage calls, want the refused one and the plain one", n)
	}

	// An edit refused for a section too long replaces the old blocks too.
	if _, err := p.Post(ctx, bottest.ChannelPrivBot, chat.Message{Text: "card", Blocks: many[:2]}); err != nil {
		t.Fatal(err)
	}
	card := srv.PostsIn(bottest.ChannelPrivBot)[0]
	long := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("b", 3001), false, false), nil, nil)
	if err := p.Update(ctx, bottest.ChannelPrivBot, card.TS, chat.Message{Text: "card, edited", Blocks: []slack.Block{long}}); err != nil {
		t.Fatalf("update with a 3001-character section: %v", err)
	}
	if m, _ := srv.Message(bottest.ChannelPrivBot, card.TS); m.Blocks != nil || !strings.Contains(m.Text, "bbbb") || !strings.Contains(m.Text, fallbackNote) {
		t.Errorf("card after a refused edit = %+v", m)
	}

	if err := p.Ephemeral(ctx, bottest.ChannelGeneral, "U0ALICE", chat.Message{Text: strings.Repeat("c", 40001)}); err != nil {
		t.Fatalf("ephemeral of 40001 characters: %v", err)
	}
	eph, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Kind == bottest.KindEphemeral })
	if err != nil || !strings.HasSuffix(eph.Text, fallbackNote) || !strings.HasPrefix(eph.Text, "ccc") {
		t.Errorf("ephemeral after msg_too_long = %+v, %v", eph, err)
	}

	// Other refusals are not retried as text.
	srv.FailNext("chat.postMessage", "no_permission", 1)
	if _, err := p.Post(ctx, bottest.ChannelGeneral, chat.Message{Text: "x"}); err == nil {
		t.Error("a no_permission refusal was hidden")
	}
}
