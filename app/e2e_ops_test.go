package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/policy"
)

// postsTo returns the bodies of the POSTs the fake Cloud 66 received on path.
func (h *harness) postsTo(path string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, r := range h.c66.Requests() {
		if r.Method == "POST" && r.Path == path {
			body := map[string]any{}
			if len(r.Body) > 0 {
				if err := json.Unmarshal(r.Body, &body); err != nil {
					h.t.Fatalf("POST %s body %q: %v", path, r.Body, err)
				}
			}
			out = append(out, body)
		}
	}
	return out
}

// One card per restart, edited from running to done, and the exact request.
func TestE2ERestartIsOneCardFollowedToTheEnd(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, reply := h.run("U0ANA", "C0GENERAL", "restart shop:staging")
	mustContain(t, text(reply), "Restart started")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Restarting")
	final := h.waitCard("C0GENERAL", card.TS, "Restarted")
	mustContain(t, text(final), "✅", "<@U0ANA>", "the whole stack")
	uid := h.c66.StackUID("shop", "staging")
	if posts := h.postsTo("/api/3/stacks/" + uid + "/actions.json"); len(posts) != 1 || posts[0]["command"] != "restart" || len(posts[0]) != 1 {
		t.Errorf("restart requests = %v, want one {\"command\":\"restart\"}", posts)
	}
	cards := 0
	for _, m := range h.slack.PostsIn("C0GENERAL") {
		if m.ThreadTS == "" {
			cards++
		}
	}
	if cards != 1 {
		t.Errorf("%d messages in the channel, want the one card (its details go in its thread)", cards)
	}
}

// Production maintenance needs the requester's own click; then the stack
// shows the mode.
func TestE2EMaintenanceModeOnProductionIsConfirmedByTheRequesterOnly(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", "ben@example.com")
	_, confirm := h.run("U0ANA", "C0GENERAL", "maintenance shop:production on")
	mustContain(t, text(confirm), "Turn maintenance mode on for", "needs your confirmation")
	if confirm.ResponseType != "ephemeral" {
		t.Errorf("confirmation is %q, want ephemeral", confirm.ResponseType)
	}
	_, refusal := h.click("U0BEN", confirm, commands.ActionDeployConfirm)
	mustContain(t, text(refusal), "belongs to the person who asked")
	uid := h.c66.StackUID("shop", "production")
	if n := len(h.postsTo("/api/3/stacks/" + uid + "/actions.json")); n != 0 {
		t.Fatalf("%d requests after someone else's click", n)
	}
	_, ok := h.click("U0ANA", confirm, commands.ActionDeployConfirm)
	mustContain(t, text(ok), "Confirmed: turning maintenance mode on for")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Maintenance mode on")
	if posts := h.postsTo("/api/3/stacks/" + uid + "/actions.json"); len(posts) != 1 || posts[0]["command"] != "maintenance_mode" || posts[0]["value"] != float64(1) {
		t.Errorf("requests = %v, want maintenance_mode value 1", posts)
	}
	_, stack := h.run("U0ANA", "C0GENERAL", "stack shop:production")
	mustContain(t, text(stack), "Maintenance mode")
}

// The rollback a person picks from the deployments list is confirmed with
// what is live and what it goes back to, redeploys that git hash, and
// leaves the stack locked for them.
func TestE2ERollbackChosenFromTheDeploymentsList(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, list := h.run("U0ANA", "C0GENERAL", "deployments "+cloud66test.FailingStack)
	mustContain(t, text(list), "Roll back to this")
	_, confirm := h.click("U0ANA", list, "rollback_offer")
	mustContain(t, text(confirm), "Roll *legacy-crm* · production back to", "Live now", "Goes back to", "rolled back from")
	if n := h.c66.ActionCount(); n != 0 {
		t.Fatalf("%d actions before the confirmation", n)
	}
	_, started := h.click("U0ANA", confirm, commands.ActionDeployConfirm)
	mustContain(t, text(started), "Confirmed: rolling back")
	card := h.card("C0GENERAL", "legacy-crm")
	final := h.waitCard("C0GENERAL", card.TS, "Rolled back")
	mustContain(t, text(final), "Back to", "From")
	uid := h.c66.StackUID(cloud66test.FailingStack, cloud66test.FailingStackEnvironment)
	posts := h.postsTo("/api/3/stacks/" + uid + "/deployments.json")
	if len(posts) != 1 || posts[0]["git_ref"] == "" || posts[0]["git_ref"] == nil {
		t.Fatalf("rollback requests = %v, want one redeploy of an earlier git hash", posts)
	}
	_, locks := h.run("U0ANA", "C0GENERAL", "locks")
	mustContain(t, text(locks), "legacy-crm", "rolled back from")
	// The lock stops everyone else, for every verb.
	// Ben is on the same Cloud 66 account, which sees the stack.
	h.loginAs("U0BEN", cloud66test.DefaultUser)
	for _, cmd := range []string{"deploy legacy-crm", "restart legacy-crm", "maintenance legacy-crm off", "rollback legacy-crm"} {
		_, refusal := h.run("U0BEN", "C0GENERAL", cmd)
		mustContain(t, text(refusal), "is locked by <@U0ANA>")
	}
}

// A failed deploy's card offers Roll back to anyone in the channel; each
// presser is asked to confirm a rollback made as them.
func TestE2EFailedDeployCardOffersRollBack(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	h.loginAs("U0BEN", cloud66test.DefaultUser) // an account that sees the stack
	_, confirm := h.run("U0ANA", "C0GENERAL", "deploy "+cloud66test.FailingStack)
	h.click("U0ANA", confirm, commands.ActionDeployConfirm)
	card := h.card("C0GENERAL", "legacy-crm")
	failed := h.waitCard("C0GENERAL", card.TS, "Deployment failed")
	mustContain(t, text(failed), "Roll back")
	_, offer := h.clickIn(failed, "U0BEN", "rollback_offer")
	mustContain(t, text(offer), "back to", "needs your confirmation")
	// The confirmation is Ben's: Ana cannot press it.
	_, refusal := h.click("U0ANA", offer, commands.ActionDeployConfirm)
	mustContain(t, text(refusal), "belongs to the person who asked")
}

// Reboots name the servers affected; a group reboot sends group and
// strategy as Cloud 66's client does.
func TestE2ERebootNamesTheServers(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, confirm := h.run("U0ANA", "C0GENERAL", "reboot shop:production group=web strategy=serial")
	mustContain(t, text(confirm), "Servers", "Lion", "Otter")
	if strings.Contains(text(confirm), "Tiger") {
		t.Errorf("a web reboot names the db server Tiger:\n%s", text(confirm))
	}
	h.click("U0ANA", confirm, commands.ActionDeployConfirm)
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Rebooted")
	uid := h.c66.StackUID("shop", "production")
	if posts := h.postsTo("/api/3/stacks/" + uid + "/reboot_servers.json"); len(posts) != 1 || posts[0]["group"] != "web" || posts[0]["strategy"] != "serial" {
		t.Errorf("reboot requests = %v", posts)
	}
	_, unknown := h.run("U0ANA", "C0GENERAL", "reboot shop:staging nosuchserver")
	mustContain(t, text(unknown), "There is no server `nosuchserver` on shop:staging", "Nothing was sent")
}

// A rule that governs only deploys does not let its deployers restart: the
// default decides, naming the verb; help shows only what the policy could
// allow.
func TestE2EPolicyActionsDecidePerVerb(t *testing.T) {
	t.Parallel()
	pol, err := policy.Parse("test.yaml", []byte(`
default: deny
rules:
  - name: deployers
    stacks: "*"
    deployers: [U0ANA]
    actions: [deploy]
`))
	if err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, harnessOptions{policy: pol})
	h.login("U0ANA")
	_, refusal := h.run("U0ANA", "C0GENERAL", "restart shop:staging")
	mustContain(t, text(refusal), "Not allowed", "restarts")
	if n := h.c66.ActionCount(); n != 0 {
		t.Errorf("%d actions after a refusal", n)
	}
	_, help := h.run("U0ANA", "C0GENERAL", "help")
	mustContain(t, text(help), "/c66 deploy <stack>")
	for _, hidden := range []string{"/c66 restart", "/c66 rollback", "/c66 reboot", "/c66 maintenance"} {
		if strings.Contains(text(help), hidden) {
			t.Errorf("help shows %q to someone the policy never lets use it", hidden)
		}
	}
}

// Deploy options are checked against the stack's type before anything is
// sent.
func TestE2EDeployOptionsAreCheckedAgainstTheStackType(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	for cmd, want := range map[string]string{
		"deploy shop:staging services=web:1.2.3": "`services` is only for Docker stacks",
		"deploy api:staging@v2":                  "git ref is only for stacks that are not Docker stacks",
		"deploy api:staging strategy=rolling":    "`strategy=rolling` is only for Rails and Rack stacks",
		"restart shop:staging service=web":       "`service` is only for Docker stacks",
	} {
		_, reply := h.run("U0ANA", "C0GENERAL", cmd)
		mustContain(t, text(reply), want, "Nothing was sent to Cloud 66")
	}
	if n := h.c66.ActionCount(); n != 0 {
		t.Errorf("%d actions reached Cloud 66", n)
	}
}

// Every example the help gives runs in the sandbox's world without a usage
// error or an option Cloud 66 would refuse.
func TestE2EHelpExamplesAreValid(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	r := commands.NewRouter(commands.Deps{})
	for _, c := range r.Commands() {
		for _, ex := range c.Examples {
			if c.Name == "logout" || strings.HasPrefix(ex, "login ") {
				continue // they would unlink, or need a code from a login flow
			}
			_, reply := h.run("U0ANA", "C0GENERAL", ex)
			for _, bad := range []string{"Usage:", "Nothing was sent to Cloud 66. `/c66 help", "I don't know the command", "can't find a stack", "Something went wrong"} {
				if strings.Contains(text(reply), bad) {
					t.Errorf("example %q answers %q:\n%s", ex, bad, text(reply))
				}
			}
			if strings.Contains(text(reply), "needs your confirmation") {
				// Leave nothing parked: the next example may need the stack.
				h.click("U0ANA", reply, commands.ActionAbort)
			}
		}
	}
}
