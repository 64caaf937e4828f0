package cloud66test_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

// These tests drive the fake with the real client: each side was written
// from the reference on its own, so what they agree on is what the bot can
// rely on.

var start = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func clientFor(t *testing.T, scopes ...string) (*cloud66.Client, *cloud66test.Server, *cloud66test.Clock) {
	t.Helper()
	clk := cloud66test.NewClock(start)
	srv := cloud66test.Start(t, cloud66test.WithClock(clk))
	c, err := cloud66.NewClient(cloud66.WithBaseURL(srv.URL), cloud66.WithToken(srv.IssueToken(cloud66test.DefaultUser, scopes...)), cloud66.WithRetry(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c, srv, clk
}

func serverNamed(t *testing.T, c *cloud66.Client, stackUID, name string) cloud66.Server {
	t.Helper()
	servers, err := c.ListServers(context.Background(), stackUID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range servers {
		if sv.Name == name {
			return sv
		}
	}
	t.Fatalf("no server %s", name)
	return cloud66.Server{}
}

func TestContractStackActions(t *testing.T) {
	ctx := context.Background()
	c, srv, clk := clientFor(t)
	shop := srv.StackUID("shop", "production")
	api := srv.StackUID("api", "staging")
	otter := serverNamed(t, c, shop, "Otter")
	calls := []struct {
		name, stack, action string
		run                 func() (*cloud66.AsyncAction, error)
	}{
		{"restart", shop, cloud66.ActionRestart, func() (*cloud66.AsyncAction, error) {
			return c.RunStackAction(ctx, shop, cloud66.StackActionRequest{Command: cloud66.CommandRestart})
		}},
		{"service restart", api, cloud66.ActionServiceRestart, func() (*cloud66.AsyncAction, error) {
			return c.RunStackAction(ctx, api, cloud66.StackActionRequest{Command: cloud66.CommandServiceRestart, ServiceName: "web"})
		}},
		{"maintenance on", shop, cloud66.ActionMaintenanceMode, func() (*cloud66.AsyncAction, error) {
			return c.RunStackAction(ctx, shop, cloud66.MaintenanceRequest(true))
		}},
		{"reboot a server", shop, cloud66.ActionServerReboot, func() (*cloud66.AsyncAction, error) { return c.RebootServer(ctx, shop, otter.UID) }},
		{"reboot a group", shop, cloud66.ActionStackReboot, func() (*cloud66.AsyncAction, error) {
			return c.RebootServers(ctx, shop, cloud66.RebootRequest{Group: "db", Strategy: cloud66.RebootSerial})
		}},
	}
	var ids []int64
	for _, call := range calls {
		a, err := call.run()
		if err != nil {
			t.Fatalf("%s: %v", call.name, err)
		}
		if a.Action != call.action || !a.Started() || a.Finished() || !a.StartedAt.Equal(start) {
			t.Fatalf("%s: %+v", call.name, *a)
		}
		ids = append(ids, a.ID)
	}
	clk.Advance(cloud66test.DefaultDeployDuration)
	for i, call := range calls {
		a, err := c.GetAction(ctx, call.stack, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if !a.Finished() || a.FinishedSuccess == nil || !*a.FinishedSuccess {
			t.Errorf("%s did not finish well: %+v", call.name, *a)
		}
	}
	// Found again by name and start time, newest first.
	acts, err := c.ListActions(ctx, shop)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
	}
	if want := []string{cloud66.ActionStackReboot, cloud66.ActionServerReboot, cloud66.ActionMaintenanceMode, cloud66.ActionRestart}; !slices.Equal(names, want) {
		t.Errorf("ListActions = %q, want %q", names, want)
	}
	st, err := c.GetStack(ctx, shop)
	if err != nil || !st.MaintenanceMode {
		t.Errorf("maintenance mode after the action: %v, %v", st, err)
	}

	// Refusals come back as the client's errors, message kept.
	_, err = c.RunStackAction(ctx, api, cloud66.StackActionRequest{Command: cloud66.CommandServiceRestart, ServiceName: "mailer"})
	var er *cloud66.ErrorResponse
	if !errors.As(err, &er) || er.StatusCode != 400 || er.Message() == "" {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := c.RebootServer(ctx, shop, "0123456789abcdef0123456789abcdef"); !errors.Is(err, cloud66.ErrNotFound) {
		t.Errorf("unknown server: %v", err)
	}
}

func TestContractMissingScope(t *testing.T) {
	ctx := context.Background()
	c, srv, _ := clientFor(t, "public")
	shop := srv.StackUID("shop", "staging")
	for name, call := range map[string]func() error{
		"redeploy": func() error { _, err := c.Redeploy(ctx, shop, cloud66.RedeployRequest{}); return err },
		"restart": func() error {
			_, err := c.RunStackAction(ctx, shop, cloud66.StackActionRequest{Command: cloud66.CommandRestart})
			return err
		},
		"reboot": func() error { _, err := c.RebootServers(ctx, shop, cloud66.RebootRequest{Group: "web"}); return err },
	} {
		err := call()
		var er *cloud66.ErrorResponse
		if !errors.Is(err, cloud66.ErrForbidden) || !errors.Is(err, cloud66.ErrInsufficientScope) || !errors.As(err, &er) {
			t.Fatalf("%s: %v", name, err)
		}
		if scope, ok := er.InsufficientScope(); !ok || scope != "redeploy" {
			t.Errorf("%s: InsufficientScope() = %q, %v", name, scope, ok)
		}
	}
	if _, err := c.ListActions(ctx, shop); err != nil {
		t.Errorf("reading needs no redeploy scope: %v", err)
	}
}

func TestContractDeployments(t *testing.T) {
	ctx := context.Background()
	c, srv, clk := clientFor(t)

	// Kinds of the seeded stacks, and the option rules agreeing with the fake.
	for _, tc := range []struct {
		name, env string
		kind      cloud66.StackKind
	}{{"shop", "staging", cloud66.KindRails}, {"api", "staging", cloud66.KindDocker}, {"web", "production", cloud66.KindOther}} {
		st, err := c.GetStack(ctx, srv.StackUID(tc.name, tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if st.Kind() != tc.kind {
			t.Errorf("%s: Kind = %v, want %v", tc.name, st.Kind(), tc.kind)
		}
		for _, req := range []cloud66.RedeployRequest{
			{Services: []string{"web:1"}}, {GitRef: "main"}, {DeployStrategy: "rolling"}, {DeployStrategy: "fast"},
		} {
			clientErr := st.CheckRedeploy(req)
			_, serverErr := c.Redeploy(ctx, st.UID, req)
			if (clientErr == nil) != (serverErr == nil) {
				t.Errorf("%s %+v: client says %v, fake says %v", tc.name, req, clientErr, serverErr)
			}
			clk.Advance(time.Hour)
		}
	}

	// A Docker deployment's image tags go straight back into a redeploy.
	api := srv.StackUID("api", "production")
	deps, _, err := c.ListDeploymentsPage(ctx, api, 1)
	if err != nil {
		t.Fatal(err)
	}
	old := deps[3]
	if len(old.Services) != 2 || !old.Succeeded() || slices.Equal(old.Services, deps[0].Services) {
		t.Fatalf("deployment services: %q (head %q)", old.Services, deps[0].Services)
	}
	if _, err := c.Redeploy(ctx, api, cloud66.RedeployRequest{Services: old.Services}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	deps, _, _ = c.ListDeploymentsPage(ctx, api, 1)
	if !slices.Equal(deps[0].Services, old.Services) || !deps[0].Succeeded() {
		t.Errorf("after the rollback: %q %q", deps[0].Services, deps[0].Outcome.Meaning)
	}

	// Queued: an action id at once, not started until the running one ends.
	shop := srv.StackUID("shop", "staging")
	first, err := c.Redeploy(ctx, shop, cloud66.RedeployRequest{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Redeploy(ctx, shop, cloud66.RedeployRequest{UserReference: "second"})
	if err != nil || !second.Queued || second.AsyncActionID == 0 {
		t.Fatalf("queued redeploy: %+v, %v", second, err)
	}
	a, err := c.GetAction(ctx, shop, second.AsyncActionID)
	if err != nil || a.Started() || a.Finished() || a.UserReference() != "second" {
		t.Fatalf("queued action: %+v, %v", a, err)
	}
	clk.Advance(cloud66test.DefaultDeployDuration)
	if a, _ = c.GetAction(ctx, shop, second.AsyncActionID); !a.Started() || a.Finished() {
		t.Fatalf("the queued action once the first ended: %+v", a)
	}

	// A cancelled deployment reads as cancelled, whatever its wording.
	deps, _, _ = c.ListDeploymentsPage(ctx, shop, 1)
	if _, err := c.CancelDeployment(ctx, shop, deps[0].ID); err != nil {
		t.Fatal(err)
	}
	d, err := c.GetDeployment(ctx, shop, deps[0].ID)
	if err != nil || !d.Cancelled() || d.Failed() || d.Succeeded() {
		t.Fatalf("cancelled deployment: %+v, %v", d, err)
	}
	if a, _ := c.GetAction(ctx, shop, first.AsyncActionID); !a.Finished() || !*a.FinishedSuccess {
		t.Errorf("first: %+v", a)
	}
}
