package accounts_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/storage"
)

// Linking, logging out and a link the bot drops are each in the audit log,
// written with the change, and no token or code is.
func TestLinkLogoutAndDropAreAudited(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	svc, _, store := setup(t, "")
	link := func() string {
		t.Helper()
		start, err := svc.BeginLogin(ctx, accounts.LoginRequest{Identity: ana, Channel: "C1"})
		if err != nil {
			t.Fatal(err)
		}
		code, _ := authorize(t, start.AuthorizeURL)
		if _, err := svc.CompleteOutOfBand(ctx, ana, code); err != nil {
			t.Fatal(err)
		}
		return code
	}
	codes := []string{link()}
	if existed, err := svc.Unlink(ctx, ana); err != nil || !existed {
		t.Fatalf("Unlink = %v, %v", existed, err)
	}
	codes = append(codes, link())
	l, err := svc.Link(ctx, ana)
	if err != nil {
		t.Fatal(err)
	}
	if existed, err := svc.DropLink(ctx, ana, "Cloud 66 answered 401"); err != nil || !existed {
		t.Fatalf("DropLink = %v, %v", existed, err)
	}
	// Nothing to forget, nothing to audit.
	if existed, err := svc.Unlink(ctx, ana); err != nil || existed {
		t.Fatalf("Unlink of no link = %v, %v", existed, err)
	}

	var got []storage.AuditEntry
	if err := store.Audit().Scan(ctx, time.Time{}, func(e storage.AuditEntry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ action, result, detail string }{
		{"login", "linked", ""}, {"logout", "unlinked", ""}, {"login", "linked", ""}, {"unlink", "dropped", "Cloud 66 answered 401"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit = %+v, want %d entries", got, len(want))
	}
	for i, w := range want {
		e := got[i]
		if e.Action != w.action || e.Result != w.result || e.Detail != w.detail || e.Team != ana.Team || e.User != ana.User {
			t.Errorf("entry %d = %+v, want %s %s by ana", i, e, w.action, w.result)
		}
	}
	if e := got[0]; e.Channel != "C1" || e.Args["scopes"] != "public redeploy" || e.Args["account"] != "Acme" || e.Args["flow"] != "out-of-band" {
		t.Errorf("login entry = %+v, want the channel, scopes, account and flow", e)
	}
	raw, _ := json.Marshal(got)
	for _, secret := range append(codes, l.AccessToken, l.RefreshToken) {
		if secret != "" && strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds a secret: %s", raw)
		}
	}
}
