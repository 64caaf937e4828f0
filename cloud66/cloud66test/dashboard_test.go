package cloud66test

import (
	"testing"
	"time"
)

func TestDashboardDeploy(t *testing.T) {
	e := newDeployEnv(t, "shop", "staging")
	if !e.srv.DashboardDeploy(e.uid, "carol@example.com") {
		t.Fatal("DashboardDeploy of a seeded stack reported no stack")
	}
	h := e.head()
	if !h.IsDeploying || h.TriggeredVia.Meaning != "web" || h.TriggeredBy != "carol@example.com" {
		t.Fatalf("running dashboard deployment: %+v", h)
	}
	if n := e.srv.ActionCount(); n != 0 {
		t.Errorf("ActionCount = %d, want 0: no API request was made", n)
	}
	// A second one waits for the first, then starts, still from the web.
	e.srv.DashboardDeploy(e.uid, "")
	e.clk.Advance(3 * time.Minute)
	if h2 := e.head(); h2.ID == h.ID || !h2.IsDeploying || h2.TriggeredVia.Meaning != "web" || h2.TriggeredBy != DefaultUser {
		t.Fatalf("queued dashboard deployment: %+v", h2)
	}
	if e.srv.DashboardDeploy("no-such-stack", "") {
		t.Error("DashboardDeploy of an unknown stack reported one")
	}
}

func TestDashboardDeployOfTheFailingStackFails(t *testing.T) {
	e := newDeployEnv(t, FailingStack, FailingStackEnvironment)
	e.srv.DashboardDeploy(e.uid, "")
	e.clk.Advance(time.Hour)
	if h := e.head(); h.IsDeploying || h.Outcome.Meaning != "failed" {
		t.Fatalf("dashboard deployment of the failing stack: %+v", h)
	}
}
