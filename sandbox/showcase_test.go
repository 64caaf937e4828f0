package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadPolicy(t *testing.T) {
	t.Parallel()
	demo, err := LoadPolicy("")
	if err != nil || demo == nil || demo.Source != demoPolicySource {
		t.Fatalf("LoadPolicy(\"\") = %+v, %v; want the demo policy", demo, err)
	}
	if len(demo.Rules) != 1 || demo.Rules[0].Name != "shop-production" || len(demo.Freezes) != 2 {
		t.Errorf("demo policy: rules %+v, freezes %+v", demo.Rules, demo.Freezes)
	}
	// The two windows leave no minute of the week unfrozen.
	for m := time.Duration(0); m < 7*24*time.Hour; m += time.Minute {
		at := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).Add(m) // a Monday
		on0, _ := demo.Freezes[0].Active(at)
		on1, _ := demo.Freezes[1].Active(at)
		if !on0 && !on1 {
			t.Fatalf("payments:staging is not frozen at %s", at.Format("Mon 15:04"))
		}
	}
	if p, err := LoadPolicy(PolicyNone); p != nil || err != nil {
		t.Errorf("LoadPolicy(none) = %+v, %v; want no policy", p, err)
	}

	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("default: deny\n"), 0o600)
	os.WriteFile(bad, []byte("default: allow\nadmin: [U0ANA]\n"), 0o600)
	if p, err := LoadPolicy(good); err != nil || p.DefaultAllow || p.Source != good {
		t.Errorf("LoadPolicy(good) = %+v, %v", p, err)
	}
	_, err = LoadPolicy(bad)
	if want := "policy: " + bad + `:2: unknown key "admin" (did you mean "admins"?)`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("LoadPolicy(bad) error = %v, want it to start with %q", err, want)
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "cannot read the policy file") {
		t.Errorf("LoadPolicy(missing) error = %v", err)
	}
}

func TestConsoleDemoPolicy(t *testing.T) {
	t.Parallel()
	tm, sb := startConsoleWith(t, func(o *Options) { o.Policy = DemoPolicy() })
	tm.expect("/c66 deploy shop:production@v2.1", "needs another's approval",
		"Policy: the built-in demo policy", "payments:staging is always frozen", "ana in #general> ")

	tm.login()
	tm.typeLine("/c66 deploy shop:production@v2.1")
	tm.expect("[#general] msg 1\n  ✋ @ana asks to deploy `v2.1` to shop · production.", "Needs 1 approval from @ben. Rule `shop-production`.",
		"[1] Approve  [2] Reject")
	if n := sb.Cloud66.ActionCount(); n != 0 {
		t.Fatalf("deployed before the approval (%d)", n)
	}
	tm.typeLine(":user ben")
	tm.expect("ben in #general> ")
	tm.typeLine("1")
	tm.expect("(@ben pressed “Approve”)", "✅ approved by @ben")
	tm.expect("✅ Deployed — shop · production", "Requested by: @ana")

	tm.login()
	tm.typeLine("/c66 deploy payments:staging")
	if got := tm.expect("🧊 Deploys are frozen (demo-freeze", "ben in #general> "); strings.Contains(got, "Override") {
		t.Errorf("ben, no admin, may override the freeze:\n%s", got)
	}
	tm.typeLine(":user ana")
	tm.expect("ana in #general> ")
	tm.typeLine("/c66 deploy payments:staging")
	tm.expect("🧊 Deploys are frozen (demo-freeze", "an admin: you may override the freeze", "[1] Override the freeze")
	tm.typeLine("1")
	tm.expect("(@ana pressed “Override the freeze”)", "✅ Deployed — payments · staging")
}

func TestConsoleWithoutPolicySaysSo(t *testing.T) {
	t.Parallel()
	tm, _ := startConsole(t)
	tm.expect("production asks first", "Policy: none (as without C66BOT_POLICY)", "ana in #general> ")
}

func TestConsoleFailingStack(t *testing.T) {
	t.Parallel()
	tm, _ := startConsole(t)
	tm.expect("/c66 deploy legacy-crm", "a stack whose deploys fail", "ana in #general> ")
	tm.login()
	tm.typeLine("/c66 deploy legacy-crm")
	tm.expect("Deploy legacy-crm · production?", "[1] Deploy production  [2] Cancel")
	tm.typeLine("1")
	tm.expect("[#general] msg 1 (edited)\n  ❌ ", "legacy-crm · production", "PG::UndefinedColumn")
}

func TestConsoleDashboardDeploy(t *testing.T) {
	t.Parallel()
	tm, sb := startConsole(t)
	tm.expect(":dashboard-deploy", "carol@example.com", "ana in #general> ")

	for _, tc := range []struct{ line, want string }{
		{":dashboard-deploy", "Say which stack"},
		{":dashboard-deploy shop", "shop is in more than one environment: say which, shop:production or shop:staging"},
		{":dashboard-deploy shop:qa", "no stack shop:qa; there are shop:production, shop:staging"},
		{":dashboard-deploy nope", `Cloud 66 has no stack named "nope"`},
		{":dashboard-deploy blog nobody", `"nobody" is neither a person here`},
	} {
		tm.typeLine(tc.line)
		tm.expect(tc.want)
	}

	tm.login()
	tm.typeLine("/c66 subscribe shop:staging")
	tm.expect("🔔 #general now follows shop · staging")
	tm.typeLine(":dashboard-deploy shop:staging")
	tm.expect("(Cloud 66 dashboard) carol@example.com deploys shop:staging; channels subscribed to it hear of it soon.",
		"[#general] msg 2\n  ✅ shop · staging deployed `staging`", "by carol@example.com")
	tm.typeLine(":dashboard-deploy blog ben")
	tm.expect("(Cloud 66 dashboard) ben@example.com deploys blog:staging;")
	if n := sb.Cloud66.ActionCount(); n != 0 {
		t.Errorf("the bot deployed %d times; the dashboard did", n)
	}
}

// login links the current person's Cloud 66 account: a command typed
// before that only gets the link.
func (tm *term) login() {
	tm.t.Helper()
	tm.typeLine("/c66 login")
	tm.expect("✅ Linked to Cloud 66 account Acme", "> ")
}
