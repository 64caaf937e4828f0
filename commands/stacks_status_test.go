package commands

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
)

func outcome(meaning string) cloud66.Deployment {
	return cloud66.Deployment{ID: 1, Outcome: cloud66.CodeMeaning{Meaning: meaning}}
}

// Cloud 66 leaves a stack whose last deployment was cancelled "Deployment
// failed": `stacks` and `stack` read the newest deployment's outcome and
// show it as cancelled, whatever the outcome's wording, and leave every
// other failure failed.
func TestCancelledStackStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		newest []cloud66.Deployment
		depErr error
		want   string
	}{
		{"canceled by user", []cloud66.Deployment{outcome("canceled by user"), outcome("success")}, nil, ":black_square_for_stop: Deployment cancelled"},
		{"Cancelled", []cloud66.Deployment{outcome("Cancelled")}, nil, ":black_square_for_stop: Deployment cancelled"},
		{"failed", []cloud66.Deployment{outcome("failed"), outcome("canceled by user")}, nil, ":x: Deployment failed"},
		{"no deployments", nil, nil, ":x: Deployment failed"},
		{"lookup fails", nil, fmt.Errorf("boom"), ":x: Deployment failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, text := range []string{"stacks", "stack shop:staging"} {
				c66 := &countingCloud66{
					fakeCloud66: &fakeCloud66{stacks: testStacks(), deployments: map[string][]cloud66.Deployment{
						"uid-shop-s": tt.newest,
						// Never asked: shop:production did not fail.
						"uid-shop-p": {outcome("canceled by user")},
					}},
					depErr: map[string]error{"uid-shop-s": tt.depErr},
				}
				r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}})
				req := ana
				req.Text = text
				got := replyText(t, r.Dispatch(t.Context(), req))
				want := tt.want
				if text == "stacks" {
					want = "*shop* · staging — " + tt.want
				}
				if !strings.Contains(got, want) {
					t.Errorf("%s: reply lacks %q:\n%s", text, want, got)
				}
				if text == "stacks" && !strings.Contains(got, "*shop* · production — :white_check_mark: Deployed successfully") {
					t.Errorf("%s: shop:production is not deployed:\n%s", text, got)
				}
				if _, deps := c66.counts(); !slices.Equal(deps, []string{"uid-shop-s"}) {
					t.Errorf("%s: deployments asked of %v, want only the failed uid-shop-s", text, deps)
				}
			}
		})
	}
}

// The fallback text of `stack` says cancelled too.
func TestCancelledStackFallback(t *testing.T) {
	t.Parallel()
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks(), deployments: map[string][]cloud66.Deployment{
		"uid-shop-s": {outcome("canceled by user")},
	}}}
	r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}})
	req := ana
	req.Text = "stack shop:staging"
	if got := r.Dispatch(t.Context(), req).Text; got != "shop · staging: Deployment cancelled, Impaired" {
		t.Errorf("fallback = %q", got)
	}
}

// `stacks` asks for the deployments of at most maxOutcomeLookups failed
// stacks, so a long list of failures does not spend the person's hourly
// allowance.
func TestStacksBoundsOutcomeLookups(t *testing.T) {
	t.Parallel()
	var stacks []cloud66.Stack
	deps := map[string][]cloud66.Deployment{}
	for i := range maxOutcomeLookups + 5 {
		uid := fmt.Sprintf("uid-%02d", i)
		stacks = append(stacks, cloud66.Stack{UID: uid, Name: fmt.Sprintf("s%02d", i), Environment: "production", Status: cloud66.StatusFailed})
		deps[uid] = []cloud66.Deployment{outcome("canceled")}
	}
	stacks = append(stacks, cloud66.Stack{UID: "uid-ok", Name: "ok", Environment: "production", Status: cloud66.StatusDeployed})
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: stacks, deployments: deps}}
	r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}})
	req := ana
	req.Text = "stacks"
	got := replyText(t, r.Dispatch(t.Context(), req))
	_, asked := c66.counts()
	if len(asked) != maxOutcomeLookups || slices.Contains(asked, "uid-ok") {
		t.Errorf("deployments asked of %d stacks (%v), want %d failed ones", len(asked), asked, maxOutcomeLookups)
	}
	if n := strings.Count(got, "Deployment cancelled"); n != maxOutcomeLookups {
		t.Errorf("%d stacks shown cancelled, want %d:\n%s", n, maxOutcomeLookups, got)
	}
}

// A failed stack's outcome is looked up once for its last activity,
// whoever lists it next; a stack with a new last activity (a new
// deployment), or none known, is looked up again.
func TestStacksRemembersOutcomesByLastActivity(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stacks := []cloud66.Stack{
		{UID: "uid-a", Name: "a", Environment: "production", Status: cloud66.StatusFailed, LastActivity: cloud66.Time{Time: t0}},
		{UID: "uid-b", Name: "b", Environment: "production", Status: cloud66.StatusFailed}, // no last activity
	}
	deps := map[string][]cloud66.Deployment{"uid-a": {outcome("canceled")}, "uid-b": {outcome("failed")}}
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: stacks, deployments: deps}}
	r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}})
	list := func() string {
		req := ana
		req.Text = "stacks"
		return replyText(t, r.Dispatch(t.Context(), req))
	}
	first := list()
	if got := list(); got != first {
		t.Errorf("second listing differs:\n%s\nwant\n%s", got, first)
	}
	if !strings.Contains(first, "Deployment cancelled") {
		t.Errorf("a's cancelled deployment not shown:\n%s", first)
	}
	_, asked := c66.counts()
	if want := []string{"uid-a", "uid-b", "uid-b"}; !slices.Equal(sorted(asked), want) {
		t.Errorf("deployments asked %v, want %v (a once, b every time)", asked, want)
	}
	// A new deployment moves last_activity: asked again.
	c66.fakeCloud66.stacks[0].LastActivity = cloud66.Time{Time: t0.Add(time.Minute)}
	deps["uid-a"] = []cloud66.Deployment{outcome("failed")}
	if got := list(); strings.Contains(got, "Deployment cancelled") {
		t.Errorf("the new, failed deployment shows as cancelled:\n%s", got)
	}
	if _, asked := c66.counts(); len(asked) != 5 {
		t.Errorf("deployments asked %v, want a again after its new activity", asked)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
