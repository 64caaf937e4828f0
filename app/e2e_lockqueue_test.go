package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

// Ben's deploy of shop:staging is refused by Ana's lock; he asks to be
// told when it's free and to have the deploy run then. Ana unlocks: Ben
// gets the DM, and his deploy starts with its card in the channel.
func TestE2ELockQueue(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	_, msg := h.run("U0ANA", "C0GENERAL", "lock shop:staging for=2h migrating")
	mustContain(t, text(msg), "<@U0ANA> locked *shop* · staging until <!date^", ": migrating. Nobody else can deploy it until then")

	_, refusal := h.run("U0BEN", "C0GENERAL", "deploy shop:staging")
	mustContain(t, text(refusal), "*shop* · staging is locked by <@U0ANA>", "until <!date^", "Tell me when it's free", "Deploy when it's free")
	if refusal.ResponseType == "in_channel" {
		t.Error("the refusal went to the channel")
	}
	_, value := buttonValue(t, refusal, "lock_wait_deploy")
	if strings.Contains(value, "shop") || strings.Contains(value, "staging") || strings.Contains(value, "{") {
		t.Errorf("the button carries %q, want an opaque id", value)
	}
	_, told := h.click("U0BEN", refusal, "lock_wait_notify")
	mustContain(t, text(told), "I'll DM you when *shop* · staging is free")
	_, queued := h.click("U0BEN", refusal, "lock_wait_deploy")
	mustContain(t, text(queued), "Queued: when *shop* · staging is free")

	// Only Ben may queue from Ben's refusal.
	_, foreign := h.click("U0ANA", refusal, "lock_wait_deploy")
	mustContain(t, text(foreign), "This button belongs to the person who asked for it")

	_, msg = h.run("U0ANA", "C0GENERAL", "unlock shop:staging")
	mustContain(t, text(msg), "unlocked")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("post") && m.Channel == "D0BEN" && strings.Contains(text(m), "*shop* · staging is free: <@U0ANA> unlocked it.")
	})
	if err != nil {
		t.Fatalf("no DM to ben saying shop · staging is free: %v", err)
	}
	card := h.card("C0GENERAL", "shop")
	mustContain(t, text(card), "staging")
	h.waitCard("C0GENERAL", card.TS, "deployed")
	if _, err := h.slack.WaitMessage(ctx, func(m bottest.Message) bool {
		return m.Kind == bottest.MessageKind("post") && m.Channel == "D0BEN" && strings.Contains(text(m), "your queued deploy started")
	}); err != nil {
		t.Errorf("no DM to ben saying his queued deploy started: %v", err)
	}
	if n := h.c66.RequestCount("POST", "/api/3/stacks/"); n != 1 {
		t.Errorf("%d POSTs to Cloud 66, want ben's one deploy", n)
	}
}
