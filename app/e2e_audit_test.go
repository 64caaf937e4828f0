package app_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/storage"
)

// Every change a person makes from Slack is in the audit log, as `c66bot
// audit` reads it from the running bot: linking, subscribing and
// unsubscribing, locking and unlocking, logging out, and the link the bot
// drops when Cloud 66 refuses its token. No token or webhook secret is.
func TestE2EEveryChangeIsAudited(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:production failed")
	_, msg := h.run("U0ANA", "C0GENERAL", "unsubscribe shop:production")
	mustContain(t, text(msg), "no longer follows")
	_, msg = h.run("U0ANA", "C0GENERAL", "lock shop:staging release checks")
	mustContain(t, text(msg), "locked")
	_, msg = h.run("U0ANA", "C0GENERAL", "unlock shop:staging")
	mustContain(t, text(msg), "unlock")
	_, msg = h.run("U0ANA", "C0GENERAL", "logout")
	mustContain(t, text(msg), "no longer hold a Cloud 66 token")
	h.login("U0ANA")
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "Stacks")
	tokens := h.tokensUsed()
	h.c66.Revoke(tokens[len(tokens)-1])
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "expired or was revoked")

	var buf syncBuffer
	if err := writeAuditFromBot(t, h, &buf); err != nil {
		t.Fatal(err)
	}
	var got []storage.AuditEntry
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e storage.AuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if e.User == "U0ANA" {
			got = append(got, e)
		}
	}
	want := []struct{ action, result, stack string }{
		{"login", "linked", ""},
		{"subscribe", "subscribed", "shop:production"},
		{"unsubscribe", "unsubscribed", "shop:production"},
		{"lock", "locked", "shop:staging"},
		{"unlock", "unlocked", "shop:staging"},
		{"logout", "unlinked", ""},
		{"login", "linked", ""},
		{"unlink", "dropped", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("ana's audit entries:\n%s\nwant %d: %v", buf.String(), len(want), want)
	}
	for i, w := range want {
		if e := got[i]; e.Action != w.action || e.Result != w.result || e.StackName != w.stack {
			t.Errorf("entry %d = %s %q on %q, want %s %q on %q", i, e.Action, e.Result, e.StackName, w.action, w.result, w.stack)
		}
	}
	if got[1].Args["events"] != "deploy.failed" {
		t.Errorf("subscribe entry args = %v, want the events", got[1].Args)
	}
	secret := hook[strings.LastIndex(hook, "/")+1:]
	for _, s := range append(tokens, secret) {
		if strings.Contains(buf.String(), s) {
			t.Errorf("the audit log holds a secret:\n%s", buf.String())
		}
	}
}
