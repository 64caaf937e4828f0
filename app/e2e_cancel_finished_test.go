package app_test

import (
	"strings"
	"testing"
)

// Confirm pressed on a cancel after the deployment ended, through the real
// wiring: the prompt names the deployment as its card does, and the press
// says the deployment already deployed (not that the stack is busy),
// replacing the prompt so its buttons go, ephemerally.
func TestE2ECancelPressedAfterTheDeploymentFinished(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.run("U0ANA", "C0GENERAL", "deploy api:staging")
	card := h.card("C0GENERAL", "api")
	_, prompt := h.run("U0ANA", "C0GENERAL", "cancel api:staging")
	mustContain(t, text(prompt), "Cancel the deployment of `", "to *api* · staging, started by <@U0ANA>")

	h.waitCard("C0GENERAL", card.TS, "✅ *Deployed*")
	_, done := h.click("U0ANA", prompt, "cancel_confirm")
	mustContain(t, text(done), "✅ Too late to cancel: the deployment of `", "already finished — it deployed", "Nothing was changed.")
	if got := text(done); strings.Contains(got, "busy") || strings.Contains(got, "Cancelling") {
		t.Errorf("reply to the late press:\n%s", got)
	}
	if !done.ReplaceOriginal || done.ResponseType == "in_channel" {
		t.Errorf("reply replace_original %v, response_type %q; want the prompt replaced, ephemerally", done.ReplaceOriginal, done.ResponseType)
	}
	if strings.Contains(string(done.Blocks), "cancel_confirm") {
		t.Errorf("the reply keeps the buttons: %s", done.Blocks)
	}
	if n := h.c66.RequestCount("DELETE", "/api/3/stacks/"); n != 1 {
		t.Errorf("%d DELETEs, want the one Cloud 66 refused", n)
	}
	if m, _ := h.slack.Message("C0GENERAL", card.TS); !strings.Contains(text(m), "✅ *Deployed*") || strings.Contains(text(m), "Cancelled") {
		t.Errorf("the card changed:\n%s", text(m))
	}
}
