package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/policy"
)

const testPolicy = `
admins: [U0BOSS]
protected_environments: [production]
default: allow
rules:
  - name: shop-production
    stacks: "shop*"
    environments: [production]
    deployers: [U0ANA, S0OPS]
    channels: [C0GENERAL]
    approvals: 1
  - name: nobody-deploys-legacy
    stacks: "legacy-*"
    deployers: [U0NOONE]
freeze:
  - name: weekend
    from: "Fri 16:00"
    to: "Mon 08:00"
    timezone: Europe/London
    environments: [production]
    stacks: "api"
`

func mustPolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// saturdayNoon is inside the weekend freeze.
func saturdayNoon(t *testing.T) time.Time {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return time.Date(2026, 11, 28, 12, 0, 0, 0, london)
}

func TestE2EPolicyRefusalsNameTheRule(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{policy: mustPolicy(t, testPolicy)})
	h.login("U0ANA")
	h.login("U0CAROL")
	_, msg := h.run("U0CAROL", "C0GENERAL", "deploy shop:production")
	mustContain(t, text(msg), "Not allowed by policy rule *shop-production*")
	_, msg = h.run("U0ANA", "C0PUBLIC", "deploy shop:production")
	mustContain(t, text(msg), "Not allowed by policy rule *shop-production*", "C0GENERAL")
	_, msg = h.run("U0ANA", "C0GENERAL", "deploy legacy-crm:production")
	mustContain(t, text(msg), "nobody-deploys-legacy")
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("refused deploys reached Cloud 66 (%d)", n)
	}
}

func TestE2ETwoPersonApproval(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{policy: mustPolicy(t, testPolicy)})
	h.slack.AddUserGroup("S0OPS", "U0BEN")
	h.login("U0ANA")
	_, msg := h.run("U0ANA", "C0GENERAL", "deploy shop:production@v3")
	mustContain(t, text(msg), "needs 1 approval")
	request := h.waitPosts("C0GENERAL", 1)[0]
	mustContain(t, text(request), "shop", "v3", "<@U0ANA>")

	// The requester's own click never counts; an outsider may not approve.
	_, own := h.clickIn(request, "U0ANA", "deploy_approve")
	mustContain(t, text(own), "own approval doesn't count")
	_, outsider := h.clickIn(request, "U0CAROL", "deploy_approve")
	mustContain(t, text(outsider), "Not allowed")
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("deployed before an approval (%d)", n)
	}
	// Ben is in the ops group the rule names: his approval starts it.
	_, ok := h.clickIn(request, "U0BEN", "deploy_approve")
	mustContain(t, text(ok), "starting")
	card := h.card("C0GENERAL", "starting a deployment")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	if n := h.c66.ActionCount(); n != 1 {
		t.Errorf("%d deployments, want 1", n)
	}
	updated, _ := h.slack.Message("C0GENERAL", request.TS)
	mustContain(t, text(updated), "<@U0BEN>")
	assertManifestCovers(t, h)
}

func TestE2EFreezeAndAdminOverride(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{policy: mustPolicy(t, testPolicy), start: saturdayNoon(t)})
	h.login("U0ANA")
	h.login("U0BOSS")
	_, msg := h.run("U0ANA", "C0GENERAL", "deploy api:production")
	mustContain(t, text(msg), "frozen (*weekend*) until", "An admin can override")
	_, msg = h.run("U0BOSS", "C0GENERAL", "deploy api:production")
	mustContain(t, text(msg), "Override the freeze")
	_, confirm := h.click("U0BOSS", msg, "freeze_override")
	mustContain(t, text(confirm), "needs your confirmation")
	h.click("U0BOSS", confirm, "deploy_confirm")
	card := h.card("C0GENERAL", "api")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	var buf syncBuffer
	if err := writeAuditFromBot(t, h, &buf); err != nil {
		t.Fatal(err)
	}
	mustContain(t, buf.String(), `"freeze.override"`, "U0BOSS")
}

func TestE2EHelpHidesWhatYouMayNotRun(t *testing.T) {
	t.Parallel()
	pol := mustPolicy(t, "default: deny\nrules:\n  - name: only-ana\n    deployers: [U0ANA]\n")
	h := startHarness(t, harnessOptions{policy: pol})
	_, msg := h.run("U0CAROL", "C0GENERAL", "help")
	if strings.Contains(text(msg), "/c66 deploy <stack>") || strings.Contains(text(msg), "/c66 lock <stack>") {
		t.Errorf("help shows deploy to someone the policy never lets deploy:\n%s", text(msg))
	}
	_, msg = h.run("U0ANA", "C0GENERAL", "help")
	mustContain(t, text(msg), "/c66 deploy <stack>", "/c66 lock <stack>")
}

// clickIn presses a button on an in-channel message.
func (h *harness) clickIn(m bottest.Message, user, actionID string) (string, bottest.Message) {
	h.t.Helper()
	blockID, value := buttonValue(h.t, m, actionID)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := h.slack.SendBlockAction(ctx, bottest.BlockAction{UserID: user, ChannelID: m.Channel, ActionID: actionID, BlockID: blockID, Value: value, MessageTS: m.TS})
	if err != nil {
		h.t.Fatal(err)
	}
	reply, err := h.slack.WaitMessage(ctx, func(x bottest.Message) bool {
		return x.Kind == bottest.MessageKind("response_url") && x.EnvelopeID == id
	})
	if err != nil {
		h.t.Fatalf("no reply to %s's click: %v", user, err)
	}
	return id, reply
}
