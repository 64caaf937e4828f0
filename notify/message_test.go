package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/notify"
)

func TestMessage(t *testing.T) {
	const base = "https://app.cloud66.com"
	link := "<https://app.cloud66.com/stacks/" + shopUID + "|Open in Cloud 66>"
	at := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	ev := func(kind, source string, edit func(*notify.Event)) notify.Event {
		e := notify.Event{Kind: kind, StackUID: shopUID, StackName: "shop", Environment: "production",
			GitRef: "v2.1", GitHash: "6507918c2e5b", TriggeredBy: "ana@example.com", At: at, Source: source}
		if edit != nil {
			edit(&e)
		}
		return e
	}
	tests := []struct {
		name     string
		ev       notify.Event
		fallback string
		blocks   []string
	}{
		{
			"succeeded", ev(notify.DeploySucceeded, notify.SourceWebhook, nil),
			"✅ shop · production deployed v2.1 (6507918) by ana@example.com",
			[]string{"✅ *shop* · production deployed `v2.1` (`6507918`) by ana@example.com", "Cloud 66 webhook · " + link},
		},
		{
			"started, polled", ev(notify.DeployStarted, notify.SourcePoll, nil),
			"🚀 shop · production deployment of v2.1 (6507918) started by ana@example.com",
			[]string{"🚀 *shop* · production deployment of `v2.1` (`6507918`) started by ana@example.com", "Cloud 66 deployment history · " + link},
		},
		{
			"failed with Cloud 66's text", ev(notify.DeployFailed, notify.SourceWebhook, func(e *notify.Event) { e.Text = "Migration failed: <boom>" }),
			"❌ shop · production deployment of v2.1 (6507918) by ana@example.com failed",
			[]string{"❌ *shop* · production deployment of `v2.1` (`6507918`) by ana@example.com failed", "Cloud 66: Migration failed: &lt;boom&gt;", "Cloud 66 webhook · " + link},
		},
		{
			"cancelled, nothing known", ev(notify.DeployCancelled, notify.SourcePoll, func(e *notify.Event) { e.GitRef, e.GitHash, e.TriggeredBy = "", "", "" }),
			"⏹ shop · production deployment cancelled",
			[]string{"⏹ *shop* · production deployment cancelled", "Cloud 66 deployment history · " + link},
		},
		{
			"server stopped", ev(notify.ServerStopped, notify.SourceWebhook, func(e *notify.Event) { e.Server = "lion" }),
			"🔴 shop · production: server lion stopped",
			[]string{"🔴 *shop* · production: server lion stopped", "Cloud 66 webhook · " + link},
		},
		{
			"server back without names", ev(notify.ServerBack, notify.SourceWebhook, func(e *notify.Event) { e.Server, e.StackName, e.Environment = "lion", "", "" }),
			"🟢 " + shopUID + ": server lion is back",
			[]string{"🟢 `" + shopUID + "`: server lion is back", "Cloud 66 webhook · " + link},
		},
		{
			"API event shows its text", ev(notify.DeploySucceeded, notify.SourceAPI, func(e *notify.Event) {
				e.GitHash, e.TriggeredBy, e.Text = "", "", "Release 42 is live, see <https://evil.example|here>"
			}),
			"✅ shop · production deployed v2.1",
			[]string{"✅ *shop* · production deployed `v2.1`", "Release 42 is live, see &lt;https://evil.example|here&gt;", "c66bot API · " + link},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := notify.Message(tt.ev, base)
			if m.Text != tt.fallback {
				t.Errorf("fallback\n got %q\nwant %q", m.Text, tt.fallback)
			}
			got := blockTexts(m.Blocks)
			if strings.Join(got, "\n") != strings.Join(tt.blocks, "\n") {
				t.Errorf("blocks\n got %q\nwant %q", got, tt.blocks)
			}
			if !m.InChannel {
				t.Error("not in channel")
			}
		})
	}
}

func TestMessageEscapesEverything(t *testing.T) {
	ev := notify.Event{
		Kind:        notify.DeployFailed,
		StackUID:    shopUID,
		StackName:   "<!channel> & <@U0BOSS>",
		Environment: "prod\n<!here>",
		GitRef:      "`<https://evil.example|click>`",
		GitHash:     "<!everyone>",
		TriggeredBy: "<@U0BOSS|boss>",
		Text:        "<!subteam^S123> please look",
		Source:      notify.SourceWebhook,
	}
	m := notify.Message(ev, "https://app.cloud66.com")
	all := append([]string{m.Text}, blockTexts(m.Blocks)...)
	joined := strings.Join(all, "\n")
	if n := strings.Count(joined, "<"); n != 1 {
		t.Errorf("%d raw '<' (only the dashboard link may have one):\n%s", n, joined)
	}
	for _, want := range []string{"&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;", "&lt;!subteam^S123&gt;", "prod &lt;!here&gt;"} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing %q in\n%s", want, joined)
		}
	}
	if strings.Contains(all[1], "\n") {
		t.Errorf("a newline in the environment broke the heading: %q", all[1])
	}
}

// Cloud 66's message stays on one line of the notice; the API caller's
// text keeps its lines; a uid that is not a Cloud 66 uid gets no link.
func TestMessageLinesAndLinks(t *testing.T) {
	ev := notify.Event{Kind: notify.DeployFailed, StackUID: shopUID, StackName: "shop", Environment: "production",
		Text: "tests broke\n✅ *shop* · production deployed", Source: notify.SourceWebhook}
	got := blockTexts(notify.Message(ev, "https://app.cloud66.com").Blocks)
	if len(got) != 3 || got[1] != "Cloud 66: tests broke ✅ *shop* · production deployed" {
		t.Errorf("Cloud 66's message is not one line: %q", got)
	}

	ev.Source, ev.Text = notify.SourceAPI, "Release 42\n<!here> notes: <https://evil.example|here>"
	got = blockTexts(notify.Message(ev, "https://app.cloud66.com").Blocks)
	if len(got) != 3 || got[1] != "Release 42\n&lt;!here&gt; notes: &lt;https://evil.example|here&gt;" {
		t.Errorf("the API text lost its lines or its escaping: %q", got)
	}

	for _, uid := range []string{"x|<!channel>", "x><https://evil.example|Open in Cloud 66", "a/../b", ""} {
		ev := notify.Event{Kind: notify.DeploySucceeded, StackUID: uid, StackName: "shop", Source: notify.SourceWebhook}
		got := blockTexts(notify.Message(ev, "https://app.cloud66.com").Blocks)
		if ctx := got[len(got)-1]; ctx != "Cloud 66 webhook" {
			t.Errorf("uid %q: context %q, want no link", uid, ctx)
		}
	}
}
