package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

// fakePeople knows people by workspace and e-mail (trimmed, case ignored),
// as accounts does.
type fakePeople map[[2]string]storage.Identity

func (f fakePeople) PersonByEmail(_ context.Context, team, email string) (storage.Identity, bool) {
	p, ok := f[[2]string{team, strings.ToLower(strings.TrimSpace(email))}]
	return p, ok
}

var testPeople = fakePeople{
	{"T1", "ana@example.com"}: {Team: "T1", User: "UANA"},
	{"T2", "ben@example.com"}: {Team: "T2", User: "UBEN2"}, // another workspace's ben
}

func TestMessageForNamesPeople(t *testing.T) {
	t.Parallel()
	ev := func(by string) notify.Event {
		return notify.Event{Kind: notify.DeploySucceeded, StackUID: shopUID, StackName: "shop", Environment: "production",
			GitRef: "v2.1", TriggeredBy: by, At: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC), Source: notify.SourceWebhook}
	}
	for _, tt := range []struct {
		name   string
		people notify.PeopleByEmail
		by     string
		want   string // the heading's tail, in the fallback and the first block
	}{
		{"known in this workspace", testPeople, "Ana@Example.com", "deployed `v2.1` by <@UANA>"},
		{"unknown stays, escaped", testPeople, "eve<!here>@example.com", "deployed `v2.1` by eve&lt;!here&gt;@example.com"},
		{"another workspace's person never", testPeople, "ben@example.com", "deployed `v2.1` by ben@example.com"},
		{"nil people", nil, "ana@example.com", "deployed `v2.1` by ana@example.com"},
	} {
		m := notify.MessageFor(t.Context(), ev(tt.by), "https://app.cloud66.com", tt.people, "T1")
		blocks := blockTexts(m.Blocks)
		if len(blocks) == 0 || !strings.HasSuffix(blocks[0], tt.want) {
			t.Errorf("%s: first block %q, want it to end %q", tt.name, blocks, tt.want)
		}
		if plain := strings.ReplaceAll(tt.want, "`", ""); !strings.HasSuffix(m.Text, plain) {
			t.Errorf("%s: fallback %q, want it to end %q", tt.name, m.Text, plain)
		}
	}
	if got, want := notify.Message(ev("ana@example.com"), ""), notify.MessageFor(t.Context(), ev("ana@example.com"), "", nil, ""); got.Text != want.Text {
		t.Errorf("Message %q differs from MessageFor without people %q", got.Text, want.Text)
	}
}

// A delivered notification names the person in the channel's workspace.
func TestDeliveredNotificationNamesPeople(t *testing.T) {
	e := newEnv(t, withConfig(func(c *notify.Config) { c.People = testPeople }))
	e.subscribe(ana, "CSHOP", "shop", "production")
	e.start()
	e.accept(e.event(notify.DeploySucceeded, "shop", "production")) // triggered by ana@example.com
	e.drained()
	posts := e.waitPosts("CSHOP", 1)
	if got := posts[0].Msg.Text; !strings.HasSuffix(got, "by <@UANA>") {
		t.Errorf("posted %q, want it to name <@UANA>", got)
	}
}
