package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/bot/bottest"
)

// openHome sends app_home_opened for user over the WebSocket, checks the
// ack, and returns the view published after it that contains want.
func (h *harness) openHome(user string, want ...string) bottest.HomeView {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := h.slack.SendAppHomeOpened(ctx, user)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slack.WaitAck(ctx, id); err != nil {
		h.t.Fatalf("app_home_opened not acked: %v", err)
	}
	return h.waitHome(user, want...)
}

// waitHome waits for user's Home to show every string of want.
func (h *harness) waitHome(user string, want ...string) bottest.HomeView {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := h.slack.WaitHomeView(ctx, user, func(v bottest.HomeView) bool {
		got := unescapeJSON(string(v.Blocks))
		for _, w := range want {
			if !strings.Contains(got, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		last, _ := h.slack.HomeView(user)
		h.t.Fatalf("%s's Home never showed %q: %v\nlast: %s", user, want, err, unescapeJSON(string(last.Blocks)))
	}
	return v
}

// fastHome lets a test see each republish without waiting out the
// production gap between two publishes of one Home.
func fastHome(_ *harness, c *app.Config) { c.Tuning.HomeMinGap = time.Millisecond }

func TestE2EAppHomeFollowsTheDeploysAndLocks(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{tweak: fastHome})
	h.openHome("U0ANA", "haven't linked", "home_login", "Log in")

	h.login("U0ANA")
	h.openHome("U0ANA", "Linked to Cloud 66", "Nothing running", "You hold no locks", "No requests wait for you")

	h.run("U0ANA", "C0GENERAL", "deploy api:staging")
	card := h.card("C0GENERAL", "api")
	link := "https://slack.com/archives/C0GENERAL/p" + strings.ReplaceAll(card.TS, ".", "")
	h.waitHome("U0ANA", "deployment of *api* · staging", link+"|its message")

	h.run("U0ANA", "C0GENERAL", "lock shop:staging release freeze")
	h.waitHome("U0ANA", ":lock: *shop* · staging", "release freeze")

	h.clock.Advance(4 * time.Minute)
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	h.waitHome("U0ANA", "Nothing running", ":lock: *shop* · staging")

	h.run("U0ANA", "C0GENERAL", "unlock shop:staging")
	h.waitHome("U0ANA", "Nothing running", "You hold no locks")
	// Nobody else opened their Home, so nobody else's was published.
	for _, v := range h.slack.Calls() {
		if v.Method == "views.publish" && v.Form.Get("user_id") != "U0ANA" {
			t.Errorf("published a Home for %s", v.Form.Get("user_id"))
		}
	}
}

func TestE2EAppHomeShowsApprovalsWaiting(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{policy: mustPolicy(t, testPolicy), tweak: fastHome})
	h.slack.AddUserGroup("S0OPS", "U0BEN")
	h.login("U0ANA")
	h.login("U0BEN")
	h.openHome("U0BEN", "No requests wait for you")
	before := h.openHome("U0ANA", "No requests wait for you")

	h.run("U0ANA", "C0GENERAL", "deploy shop:production@v3")
	request := h.waitPosts("C0GENERAL", 1)[0]
	h.waitHome("U0BEN", "<@U0ANA> asks to deploy *shop* · production (0 of 1 approvals)",
		"https://slack.com/archives/C0GENERAL/p"+strings.ReplaceAll(request.TS, ".", "")+"|the request")
	// Ana's Home was republished too, but her own request is not hers to
	// approve.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := h.slack.WaitHomeView(ctx, "U0ANA", func(v bottest.HomeView) bool { return v.Seq > before.Seq })
	if err != nil {
		t.Fatalf("ana's Home was not republished: %v", err)
	}
	if got := unescapeJSON(string(v.Blocks)); strings.Contains(got, "asks to deploy") || !strings.Contains(got, "No requests wait for you") {
		t.Errorf("ana's Home after her request:\n%s", got)
	}

	h.clickIn(request, "U0BEN", "deploy_approve")
	h.waitHome("U0BEN", "No requests wait for you")
	h.waitHome("U0ANA", "deployment of *shop* · production")
}
