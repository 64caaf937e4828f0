package commands

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// fakePeople knows people by workspace and e-mail, as accounts does
// (trimmed, case ignored); wrongTeam answers every lookup with a person
// of another workspace, which must never be shown.
type fakePeople struct {
	people    map[[2]string]storage.Identity
	wrongTeam bool
}

func (f fakePeople) PersonByEmail(_ context.Context, team, email string) (storage.Identity, bool) {
	if f.wrongTeam {
		return storage.Identity{Team: "T-other", User: "U0EVE"}, true
	}
	p, ok := f.people[[2]string{team, strings.ToLower(strings.TrimSpace(email))}]
	return p, ok
}

var testPeople = fakePeople{people: map[[2]string]storage.Identity{
	{"T1", "ana@example.com"}: {Team: "T1", User: "U0ANA"},
	{"T2", "ben@example.com"}: {Team: "T2", User: "U0BEN"}, // another workspace's ben
}}

func TestByWhom(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		people PeopleByEmail
		email  string
		want   string
	}{
		{"known in this workspace", testPeople, "ana@example.com", "<@U0ANA>"},
		{"case and spaces ignored", testPeople, " ANA@example.com ", "<@U0ANA>"},
		{"unknown e-mail stays, escaped", testPeople, "carol<!here>@example.com", "carol&lt;!here&gt;@example.com"},
		{"another workspace's person never", testPeople, "ben@example.com", "ben@example.com"},
		{"a lookup answering with another workspace is ignored", fakePeople{wrongTeam: true}, "ana@example.com", "ana@example.com"},
		{"nil shows the e-mail", nil, "ana@example.com", "ana@example.com"},
		{"nobody", testPeople, "", "—"},
	} {
		if got := byWhom(t.Context(), tt.people, "T1")(tt.email); got != tt.want {
			t.Errorf("%s: %q → %q, want %q", tt.name, tt.email, got, tt.want)
		}
	}
}

// `deployments` names the Slack person who linked the Cloud 66 account
// that triggered a deployment, in the asker's workspace only.
func TestDeploymentsNamePeople(t *testing.T) {
	t.Parallel()
	byAna, byBen, byCarol := dep(1003, "success", "aaaa003"), dep(1002, "success", "aaaa002"), dep(1001, "failed", "aaaa001")
	byAna.TriggeredBy, byBen.TriggeredBy, byCarol.TriggeredBy = "Ana@Example.com", "ben@example.com", "carol@example.com"
	for _, tt := range []struct {
		name   string
		people PeopleByEmail
		want   []string
		not    []string
	}{
		{"with people", testPeople,
			[]string{"<@U0ANA>", "ben@example.com", "carol@example.com"}, []string{"Ana@Example.com", "U0BEN"}},
		{"without", nil, []string{"Ana@Example.com", "ben@example.com", "carol@example.com"}, []string{"<@"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c66 := &fakeCloud66{stacks: testStacks(), deployments: map[string][]cloud66.Deployment{"uid-shop-p": {byAna, byBen, byCarol}}}
			r, _ := newTestRouter(t, true, c66, func(deps *Deps) { deps.People = tt.people })
			got := replyText(t, send(t, r, "deployments shop:production"))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("reply has %q:\n%s", n, got)
				}
			}
		})
	}
}

// The cancel prompt names the person behind a deployment started in
// Cloud 66, when they linked that account here.
func TestCancelPromptNamesPeople(t *testing.T) {
	t.Parallel()
	started := cloud66.Time{Time: cancelNow.Add(-3 * time.Minute)}
	for _, tt := range []struct{ by, want string }{
		{"ana@example.com", "started by <@U0ANA> 3 min ago?"},
		{"ben@example.com", "started by ben@example.com 3 min ago?"},
	} {
		stacks := testStacks()
		d := &fakeDeployer{cancel: &deploy.Confirmation{IntentID: "i3", Kind: "cancel", Stack: stacks[0],
			Running: &cloud66.Deployment{ID: 1, GitRef: "main", TriggeredBy: tt.by, StartedAt: started}, ExpiresAt: cancelNow.Add(5 * time.Minute)}}
		r, _ := newTestRouter(t, true, &fakeCloud66{stacks: stacks}, func(deps *Deps) { deps.Deploy, deps.People = d, testPeople })
		if got := replyText(t, send(t, r, "cancel shop:production")); !strings.Contains(got, tt.want) {
			t.Errorf("prompt lacks %q:\n%s", tt.want, got)
		}
	}
}

// The "too late to cancel" reply names the person behind the other
// deployment running by now, when Cloud 66 names them by a linked e-mail.
func TestCancelTooLateNamesPeople(t *testing.T) {
	t.Parallel()
	shop := testStacks()[0]
	d := &fakeDeployer{err: &deploy.FinishedError{Stack: shop,
		Deployment: cloud66.Deployment{ID: 1, GitRef: "main", Outcome: cloud66.CodeMeaning{Meaning: "success"}},
		Running:    &cloud66.Deployment{ID: 2, GitRef: "v2", TriggeredBy: "ana@example.com"}}}
	r, _ := newTestRouter(t, true, &fakeCloud66{}, func(deps *Deps) { deps.Deploy, deps.People = d, testPeople })
	reply, _ := r.HandleAction(t.Context(), press(ActionCancelConfirm))
	if got := replyText(t, reply.Message); !strings.Contains(got, "the deployment of `v2` to *shop* · production, started by <@U0ANA>.") {
		t.Errorf("reply does not name ana:\n%s", got)
	}
}
