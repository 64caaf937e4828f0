package commands

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// viewText flattens a Home view to its JSON, for assertions.
func viewText(t *testing.T, v slack.HomeTabViewRequest) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(string(b))
}

func TestRenderHome(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	me := storage.Identity{Team: "T1", User: "U1"}
	tests := []struct {
		name      string
		data      HomeData
		want, not []string
	}{
		{
			name: "not linked: a Log in button",
			data: HomeData{LoginURL: "https://bot.example/login/start?state=S"},
			want: []string{"haven't linked", `"action_id":"home_login"`, `"url":"https://bot.example/login/start?state=S"`, "Log in", "10 minutes"},
			not:  []string{"running actions", "Your locks"},
		},
		{
			name: "not linked, out of band: the code goes back as login <code>",
			data: HomeData{LoginURL: "https://c66.example/oauth/authorize", OutOfBand: true},
			want: []string{"Log in", "/c66 login <code>"},
		},
		{
			name: "not linked, no login possible: the command to run",
			data: HomeData{},
			want: []string{"Run `/c66 login`"},
			not:  []string{"home_login"},
		},
		{
			name: "nothing yet: friendly empty states",
			data: HomeData{Linked: true, Account: "Acme"},
			want: []string{"Linked to Cloud 66 account *Acme*", "Nothing running", "You hold no locks", "No requests wait for you", "No subscriptions of yours"},
			not:  []string{"home_login"},
		},
		{
			name: "linked with everything",
			data: HomeData{
				Linked: true, Account: "Acme & Co",
				Running: []storage.Watch{{Owner: me, Channel: "C0DEPLOYS", MessageTS: "1700000000.000100", StackName: "shop", Environment: "production",
					Verb: "deploy", State: storage.WatchDeploying, RequestedAt: now.Add(-2 * time.Minute)}},
				Locks: []storage.Lock{{StackName: "api", Environment: "staging", Owner: me, Reason: "migrating <db>", Since: now.Add(-time.Hour)}},
				Approvals: []deploy.PendingApproval{{StackName: "shop", Environment: "production", Noun: "deploy", Requester: storage.Identity{Team: "T1", User: "U2"},
					Channel: "C0DEPLOYS", MessageTS: "1700000001.000200", Approved: 0, Needed: 1, ExpiresAt: now.Add(20 * time.Minute)}},
				Deploys: []HomeDeploy{
					{StackName: "shop", Environment: "staging", Last: &cloud66.Deployment{GitRef: "main", GitHash: "abcdef1234567", TriggeredBy: "ana"}},
					{StackName: "new", Environment: "qa"},
				},
			},
			want: []string{
				"Acme &amp; Co",
				"*shop* · production, deploying", "https://slack.com/archives/C0DEPLOYS/p1700000000000100|its message",
				":lock: *api* · staging", "migrating &lt;db&gt;",
				"<@U2> asks to deploy *shop* · production (0 of 1 approvals)", "https://slack.com/archives/C0DEPLOYS/p1700000001000200|the request",
				"*shop* · staging: ", "`main`", "*new* · qa: no deployments yet",
			},
			not: []string{"Nothing running", "You hold no locks", "No requests wait", "No subscriptions"},
		},
		{
			name: "a card that went through a response_url: the channel instead of a link",
			data: HomeData{Linked: true, Running: []storage.Watch{{Owner: me, Channel: "C0DEPLOYS", StackName: "shop", Environment: "production", Verb: "deploy", State: storage.WatchQueued}}},
			want: []string{"in <#C0DEPLOYS>"},
			not:  []string{"its message"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := RenderHome(tt.data, "/c66", now)
			if v.Type != slack.VTHomeTab {
				t.Errorf("type %q, want home", v.Type)
			}
			if n := len(v.Blocks.BlockSet); n == 0 || n > 100 {
				t.Errorf("%d blocks: a Home holds 1 to 100", n)
			}
			got := viewText(t, v)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("view lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("view has %q:\n%s", w, got)
				}
			}
		})
	}
}

// homeStores are the stores a Home reads, in memory.
type homeStores struct {
	watches []storage.Watch
	locks   []storage.Lock
	subs    []storage.Subscription
}

func (h *homeStores) Active(context.Context) ([]storage.Watch, error) { return h.watches, nil }
func (h *homeStores) List(_ context.Context, team string) ([]storage.Lock, error) {
	var out []storage.Lock
	for _, l := range h.locks {
		if l.Team == team {
			out = append(out, l)
		}
	}
	return out, nil
}
func (h *homeStores) All(context.Context) ([]storage.Subscription, error) { return h.subs, nil }

func TestHomeShowsOnlyWhatIsThePersons(t *testing.T) {
	t.Parallel()
	me, ben := ana.Identity(), storage.Identity{Team: "T1", User: "U2"}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c66 := &fakeCloud66{stacks: testStacks(), deployments: map[string][]cloud66.Deployment{
		"uid-shop-s": {{GitRef: "release-7", TriggeredBy: "ana"}},
	}}
	l := &fakeLinker{links: map[storage.Identity]storage.Link{me: {Identity: me, Account: "Acme"}}}
	st := &homeStores{
		watches: []storage.Watch{
			{Owner: me, StackName: "shop", Environment: "production", Verb: "deploy", State: storage.WatchDeploying},
			{Owner: ben, StackName: "secret-ben", Environment: "production", Verb: "deploy", State: storage.WatchDeploying},
		},
		locks: []storage.Lock{
			{Team: "T1", StackName: "api", Environment: "production", Owner: me},
			{Team: "T1", StackName: "locked-by-ben", Environment: "qa", Owner: ben},
		},
		subs: []storage.Subscription{
			{Team: "T1", Channel: "C1", StackUID: "uid-shop-s", StackName: "shop", Environment: "staging", Subscriber: me},
			{Team: "T1", Channel: "C1", StackUID: "uid-hidden", StackName: "hidden", Environment: "qa", Subscriber: me},
			{Team: "T1", Channel: "C1", StackUID: "uid-bens", StackName: "bens-sub", Environment: "qa", Subscriber: ben},
		},
	}
	h := NewHome(HomeDeps{
		Accounts: l, Watches: st, Locks: st, Subscriptions: st,
		Cloud66For: func(context.Context, storage.Identity) (Cloud66, error) { return c66, nil },
		Approvals: func(context.Context, storage.Identity) ([]deploy.PendingApproval, error) {
			return []deploy.PendingApproval{
				{StackUID: "uid-api", StackName: "api", Environment: "production", Noun: "deploy", Requester: ben, Needed: 1},
				{StackUID: "uid-unseen", StackName: "unseen-by-ana", Environment: "production", Noun: "deploy", Requester: ben, Needed: 1},
			}, nil
		},
		Command: "/c66", Now: func() time.Time { return now },
	})
	v, err := h.View(context.Background(), me)
	if err != nil {
		t.Fatal(err)
	}
	got := viewText(t, v)
	for _, w := range []string{"*shop* · production, deploying", ":lock: *api* · production", "release-7", "asks to deploy *api* · production"} {
		if !strings.Contains(got, w) {
			t.Errorf("view lacks %q:\n%s", w, got)
		}
	}
	// Others' actions, locks and subscriptions, stacks the token cannot
	// read and approvals on stacks it cannot see stay out.
	for _, w := range []string{"secret-ben", "locked-by-ben", "bens-sub", "hidden", "unseen-by-ana"} {
		if strings.Contains(got, w) {
			t.Errorf("view shows %q:\n%s", w, got)
		}
	}

	// Someone not linked gets the Log in button, from a fresh login.
	v, err = h.View(context.Background(), storage.Identity{Team: "T1", User: "U9"})
	if err != nil {
		t.Fatal(err)
	}
	if got := viewText(t, v); !strings.Contains(got, `"action_id":"home_login"`) || !strings.Contains(got, "oauth/authorize?state=STATE") || l.begun != 1 {
		t.Errorf("not linked: %s (logins begun %d)", got, l.begun)
	}
}
