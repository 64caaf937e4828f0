package app_test

import (
	"strings"
	"testing"
	"time"
)

// Ben's Cloud 66 account sees shop:staging but not payments:production:
// `locks` shows him Ana's lock on the one and nothing of the other, and
// `stack` shows the lock too. Ana locking again changes nothing, and says so.
func TestE2ELocksShowOnlyStacksTheAskerCanSee(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	h.run("U0ANA", "C0GENERAL", "lock shop:staging release freeze")
	h.run("U0ANA", "C0GENERAL", "lock payments:production secret audit")
	h.clock.Advance(2*time.Hour + time.Minute)

	_, msg := h.run("U0BEN", "C0GENERAL", "locks")
	got := text(msg)
	mustContain(t, got, "Locked stacks (1)", "*shop* · staging — <@U0ANA> 2 h ago: release freeze")
	for _, hidden := range []string{"payments", "secret audit", "(2)"} {
		if strings.Contains(got, hidden) {
			t.Errorf("ben's locks show %q:\n%s", hidden, got)
		}
	}
	_, msg = h.run("U0ANA", "C0GENERAL", "locks")
	mustContain(t, text(msg), "Locked stacks (2)", "payments", "secret audit")

	_, msg = h.run("U0BEN", "C0GENERAL", "stack shop:staging")
	mustContain(t, text(msg), ":lock: Locked by <@U0ANA> 2 h ago: release freeze")

	_, msg = h.run("U0ANA", "C0GENERAL", "lock shop:staging")
	mustContain(t, text(msg), "You already hold the lock on *shop* · staging (since ", "): release freeze. Nothing changed")
	if msg.ResponseType == "in_channel" {
		t.Error("a re-lock that changed nothing went to the channel")
	}
	_, msg = h.run("U0ANA", "C0GENERAL", "unlock shop:staging")
	mustContain(t, text(msg), "unlocked")
	_, msg = h.run("U0ANA", "C0GENERAL", "unlock shop:staging")
	mustContain(t, text(msg), "*shop* · staging isn't locked.")
}

// The fake Cloud 66, like the real one, leaves a stack whose deployment
// was cancelled "Deployment failed"; `stacks` shows it cancelled.
func TestE2ECancelledDeployShowsCancelledInStacks(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.run("U0ANA", "C0GENERAL", "deploy api:staging")
	card := h.card("C0GENERAL", "api")
	_, confirm := h.run("U0ANA", "C0GENERAL", "cancel api:staging")
	h.click("U0ANA", confirm, "cancel_confirm")
	h.waitCard("C0GENERAL", card.TS, "Cancelled")

	_, msg := h.run("U0ANA", "C0GENERAL", "stacks api")
	got := text(msg)
	mustContain(t, got, "*api* · staging — :black_square_for_stop: Deployment cancelled")
	if strings.Contains(got, "*api* · staging — :x:") {
		t.Errorf("a cancelled deploy shows as failed:\n%s", got)
	}
}
