package app_test

import (
	"strings"
	"testing"
	"time"
)

// Cloud 66 names who deployed by e-mail. Once ana has deployed through the
// bot, Cloud 66 has told it which e-mail is hers (it has no "who am I"),
// and `deployments` shows her deployments, the bot's and the dashboard's,
// as <@U0ANA>, to her and to ben of her workspace, also after a restart;
// someone who never linked stays an e-mail.
func TestE2ECloud66EmailsShownAsSlackPeople(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA") // ana@example.com
	h.loginAs("U0BEN", "ben@example.com")
	uid := h.c66.StackUID("shop", "staging")
	if !h.c66.DashboardDeploy(uid, "carol@example.com") {
		t.Fatal("no shop:staging")
	}
	h.clock.Advance(4 * time.Minute) // carol's deployment finishes

	_, before := h.run("U0ANA", "C0GENERAL", "deployments shop:staging")
	if strings.Contains(text(before), "<@U0ANA>") {
		t.Fatalf("ana named before Cloud 66 told her e-mail:\n%s", text(before))
	}

	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	if !h.c66.DashboardDeploy(uid, "ana@example.com") {
		t.Fatal("no shop:staging")
	}

	check := func(asker string) {
		t.Helper()
		_, msg := h.run(asker, "C0GENERAL", "deployments shop:staging")
		got := text(msg)
		if n := strings.Count(got, "<@U0ANA>"); n < 2 {
			t.Errorf("%s: ana's two deployments name <@U0ANA> %d time(s):\n%s", asker, n, got)
		}
		if strings.Contains(got, "ana@example.com") {
			t.Errorf("%s: ana still shown by e-mail:\n%s", asker, got)
		}
		if !strings.Contains(got, "carol@example.com") {
			t.Errorf("%s: carol, never linked, is not shown by e-mail:\n%s", asker, got)
		}
	}
	check("U0ANA")
	check("U0BEN")

	// The e-mail is on ana's stored link: after a restart, her own next
	// command brings it back.
	h.restart()
	check("U0ANA")
}
