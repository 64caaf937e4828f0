package cloud66test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func (e *deployEnv) serverUID(name string) string {
	e.t.Helper()
	r := call(e.t, e.srv, "GET", "/stacks/"+e.uid+"/servers.json", e.tok, nil)
	mustStatus(e.t, r, 200)
	var servers []serverJSON
	r.into(e.t, &servers)
	for _, sv := range servers {
		if sv.Name == name {
			return sv.UID
		}
	}
	e.t.Fatalf("no server %s", name)
	return ""
}

// TestStackActionsRunOnTheClock drives each new endpoint with the body
// Cloud 66's official client sends and follows its action to the end.
func TestStackActionsRunOnTheClock(t *testing.T) {
	tests := []struct {
		name, stack, env string
		path             string
		body             any // nil: no body
		action, resource string
	}{
		{"restart", "shop", "staging", "/actions.json", map[string]any{"command": "restart"}, ActionRestart, "stack"},
		{"service restart", "api", "staging", "/actions.json", map[string]any{"command": "service_restart", "service_name": "worker"}, ActionServiceRestart, "stack"},
		{"maintenance on", "shop", "staging", "/actions.json", map[string]any{"command": "maintenance_mode", "value": 1}, ActionMaintenanceMode, "stack"},
		{"maintenance on, as a form", "shop", "staging", "/actions.json", url.Values{"command": {"maintenance_mode"}, "value": {"1"}}, ActionMaintenanceMode, "stack"},
		{"reboot a server", "shop", "production", "/servers/{Otter}/reboot_server.json", nil, ActionServerReboot, "server"},
		{"reboot web, Cloud 66 choosing", "shop", "production", "/reboot_servers.json", map[string]any{"group": "web", "strategy": ""}, ActionStackReboot, "stack"},
		{"reboot db serially", "shop", "production", "/reboot_servers.json", map[string]any{"group": "db", "strategy": "serial"}, ActionStackReboot, "stack"},
		{"reboot all in parallel", "api", "production", "/reboot_servers.json", map[string]any{"group": "all", "strategy": "parallel"}, ActionStackReboot, "stack"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeployEnv(t, tc.stack, tc.env)
			path := tc.path
			if i := strings.Index(path, "{"); i >= 0 {
				j := strings.Index(path, "}")
				path = path[:i] + e.serverUID(path[i+1:j]) + path[j+1:]
			}
			e.srv.ResetRequests()
			a := e.post(path, tc.body)
			if a.Action != tc.action || a.ResourceType != tc.resource || a.StartedAt != isoTime(t0) || a.FinishedAt != nil ||
				a.FinishedSuccess != nil || a.User != "ana@example.com" || a.StartedVia != "api" {
				t.Fatalf("started action: %+v", a)
			}
			reqs := e.srv.Requests()
			if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/api/3/stacks/"+e.uid+path || reqs[0].Status != 200 {
				t.Fatalf("recorded %+v", reqs)
			}
			if got := e.action(a.ID); got.ID != a.ID || got.FinishedAt != nil {
				t.Fatalf("GET the action: %+v", got)
			}
			if st := e.stack(); !st.IsBusy {
				t.Error("stack not busy while the action runs")
			}
			e.clk.Advance(DefaultDeployDuration - time.Second)
			if got := e.action(a.ID); got.FinishedAt != nil {
				t.Fatal("finished early")
			}
			e.clk.Advance(time.Second)
			got := e.action(a.ID)
			if got.FinishedAt == nil || *got.FinishedAt != isoTime(t0.Add(DefaultDeployDuration)) || !*got.FinishedSuccess ||
				*got.FinishedMessage != "Completed successfully" {
				t.Fatalf("finished action: %+v", got)
			}
			if st := e.stack(); st.IsBusy {
				t.Error("stack still busy")
			}
			// The list is newest first and holds it.
			r := call(t, e.srv, "GET", "/stacks/"+e.uid+"/actions.json", e.tok, nil)
			var acts []actionView
			r.into(t, &acts)
			if len(acts) == 0 || acts[0].ID != a.ID || acts[0].Action != tc.action {
				t.Fatalf("actions list: %+v", acts)
			}
			if n := e.srv.ActionCount(); n != 0 {
				t.Errorf("ActionCount = %d: stack actions are not deployments", n)
			}
		})
	}
}

func TestMaintenanceModeFlipsWhenTheActionSucceeds(t *testing.T) {
	e := newDeployEnv(t, "shop", "staging", WithActionDuration(ActionMaintenanceMode, time.Minute))
	maintenance := func() bool {
		t.Helper()
		r := call(t, e.srv, "GET", "/stacks/"+e.uid+".json", e.tok, nil)
		var st stackJSON
		r.into(t, &st)
		if st.MaintenanceMode != e.srv.Maintenance(e.uid) {
			t.Fatalf("Maintenance() disagrees with the stack: %v", st.MaintenanceMode)
		}
		return st.MaintenanceMode
	}
	if maintenance() {
		t.Fatal("seeded in maintenance")
	}
	e.post("/actions.json", map[string]any{"command": "maintenance_mode", "value": 1})
	if maintenance() {
		t.Fatal("on before the action finished")
	}
	e.clk.Advance(time.Minute)
	if !maintenance() {
		t.Fatal("not on after the action")
	}
	// Two switches in flight: the one that ends last wins.
	e.post("/actions.json", map[string]any{"command": "maintenance_mode", "value": 0})
	e.srv.SetActionDuration(ActionMaintenanceMode, 30*time.Second)
	e.post("/actions.json", map[string]any{"command": "maintenance_mode", "value": 1})
	e.clk.Advance(time.Hour)
	if maintenance() {
		t.Fatal("the off that ended last should win")
	}
	// A failed switch leaves it as it was.
	e.srv.SetActionOutcome(e.uid, ActionMaintenanceMode, false, "Load balancer unreachable")
	a := e.post("/actions.json", map[string]any{"command": "maintenance_mode", "value": 1})
	e.clk.Advance(time.Hour)
	if got := e.action(a.ID); *got.FinishedSuccess || *got.FinishedMessage != "Load balancer unreachable" || maintenance() {
		t.Fatalf("failed switch: %+v, maintenance %v", got, maintenance())
	}
	// The seeded failing stack starts in maintenance.
	if !e.srv.Maintenance(e.srv.StackUID(FailingStack, FailingStackEnvironment)) {
		t.Error("legacy-crm is not in maintenance")
	}
}

func TestActionDurationsAndOutcomes(t *testing.T) {
	e := newDeployEnv(t, "shop", "production", WithDeployDuration(time.Minute), WithActionDuration(ActionRestart, 10*time.Minute))
	restart := e.post("/actions.json", map[string]any{"command": "restart"})
	group := e.post("/reboot_servers.json", map[string]any{"group": "web", "strategy": "serial"})
	e.clk.Advance(time.Minute)
	if e.action(restart.ID).FinishedAt != nil || e.action(group.ID).FinishedAt == nil {
		t.Fatal("a restart set to 10 min or a reboot defaulting to the deploy duration is off")
	}
	e.clk.Advance(9 * time.Minute)
	if e.action(restart.ID).FinishedAt == nil {
		t.Fatal("the 10-minute restart did not finish")
	}
	e.srv.SetActionOutcome(e.uid, ActionServerReboot, false, "")
	a := e.post("/servers/"+e.serverUID("Otter")+"/reboot_server.json", nil)
	e.clk.Advance(time.Minute)
	if got := e.action(a.ID); *got.FinishedSuccess || *got.FinishedMessage != "Action failed" {
		t.Fatalf("failing reboot: %+v", got)
	}
	// Other kinds and other stacks are untouched by that outcome.
	if got := e.post("/actions.json", map[string]any{"command": "restart"}); got.ID == 0 {
		t.Fatal("restart")
	}
	infos := e.srv.Actions(e.uid)
	if len(infos) != 4 || infos[0].Action != ActionRestart || infos[1].Action != ActionStackReboot || infos[2].Action != ActionServerReboot ||
		infos[2].Success || infos[2].Message != "Action failed" || !infos[0].Success || !infos[3].Finished.IsZero() {
		t.Fatalf("Actions() = %+v", infos)
	}
}

// TestStackActionRefusals: what Cloud 66 would refuse is answered with a
// 4xx and a message, and starts nothing.
func TestStackActionRefusals(t *testing.T) {
	tests := []struct {
		name, stack, env, path string
		body                   any
		status                 int
		errCode, details       string
	}{
		{"no command", "shop", "staging", "/actions.json", map[string]any{}, 400, "bad_request", "command is required"},
		{"unknown command", "shop", "staging", "/actions.json", map[string]any{"command": "self_destruct"}, 400, "bad_request", "must be one of"},
		{"service restart on Rails", "shop", "staging", "/actions.json", map[string]any{"command": "service_restart", "service_name": "web"}, 400, "bad_request", "only applies to Docker stacks"},
		{"service restart without a service", "api", "staging", "/actions.json", map[string]any{"command": "service_restart"}, 400, "bad_request", "needs a service_name"},
		{"unknown service", "api", "staging", "/actions.json", map[string]any{"command": "service_restart", "service_name": "mailer"}, 400, "bad_request", `no service named "mailer"; its services are web, worker`},
		{"maintenance without value", "shop", "staging", "/actions.json", map[string]any{"command": "maintenance_mode"}, 400, "bad_request", "value 1 (on) or 0 (off)"},
		{"maintenance value 2", "shop", "staging", "/actions.json", map[string]any{"command": "maintenance_mode", "value": 2}, 400, "bad_request", "value 1 (on) or 0 (off)"},
		{"maintenance value true", "shop", "staging", "/actions.json", map[string]any{"command": "maintenance_mode", "value": true}, 400, "bad_request", "value 1 (on) or 0 (off)"},
		{"object command", "shop", "staging", "/actions.json", map[string]any{"command": map[string]any{}}, 400, "bad_request", "must be a string"},
		{"unknown server", "shop", "production", "/servers/" + strings.Repeat("0", 32) + "/reboot_server.json", nil, 404, "not_found", ""},
		{"unknown group", "shop", "production", "/reboot_servers.json", map[string]any{"group": "workers"}, 400, "bad_request", "group must be one of all, web"},
		{"group without servers", "shop", "staging", "/reboot_servers.json", map[string]any{"group": "haproxy"}, 400, "bad_request", "no servers in group haproxy"},
		{"db on a one-server Docker stack", "api", "staging", "/reboot_servers.json", map[string]any{"group": "db"}, 400, "bad_request", "no servers in group db"},
		{"rolling reboot", "shop", "production", "/reboot_servers.json", map[string]any{"group": "web", "strategy": "rolling"}, 400, "bad_request", "serial or parallel"},
		{"text body", "shop", "staging", "/actions.json", "restart", 400, "bad_request", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeployEnv(t, tc.stack, tc.env)
			before := len(e.srv.Actions(e.uid))
			r := call(t, e.srv, "POST", "/stacks/"+e.uid+tc.path, e.tok, tc.body)
			if r.Status != tc.status || r.Error != tc.errCode || !strings.Contains(r.Details, tc.details) || r.Description == "" {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			if n := len(e.srv.Actions(e.uid)); n != before {
				t.Fatalf("a refused request made an action (%d → %d)", before, n)
			}
		})
	}
}

// TestStackActionFaults: injected faults refuse one command, or fail the
// endpoints with a 5xx, and are recorded like any request.
func TestStackActionFaults(t *testing.T) {
	e := newDeployEnv(t, "shop", "staging")
	e.srv.InjectFault(Fault{Command: "maintenance_mode", Status: http.StatusConflict, Description: "Stack is busy", Times: 1})
	r := call(t, e.srv, "POST", "/stacks/"+e.uid+"/actions.json", e.tok, map[string]any{"command": "maintenance_mode", "value": 1})
	if r.Status != 409 || r.Error != "conflict" || r.Description != "Stack is busy" {
		t.Fatalf("refused maintenance: %d %s", r.Status, r.Raw)
	}
	// The fault is for that command only, and used up.
	e.post("/actions.json", url.Values{"command": {"restart"}})
	e.post("/actions.json", map[string]any{"command": "maintenance_mode", "value": 1})

	e.srv.InjectFault(Fault{PathPrefix: "/api/3/stacks/" + e.uid + "/reboot_servers", Status: http.StatusBadGateway, Times: 1})
	if r := call(t, e.srv, "POST", "/stacks/"+e.uid+"/reboot_servers.json", e.tok, map[string]any{"group": "web"}); r.Status != 502 {
		t.Fatalf("injected 502: %d %s", r.Status, r.Raw)
	}
	var bodies []string
	for _, req := range e.srv.Requests() {
		if req.Method == "POST" {
			bodies = append(bodies, fmt.Sprintf("%d %s %s", req.Status, strings.TrimPrefix(req.Path, "/api/3/stacks/"+e.uid), req.Body))
		}
	}
	want := []string{
		`409 /actions.json {"command":"maintenance_mode","value":1}`,
		`200 /actions.json command=restart`,
		`200 /actions.json {"command":"maintenance_mode","value":1}`,
		`502 /reboot_servers.json {"group":"web"}`,
	}
	if !slices.Equal(bodies, want) {
		t.Fatalf("recorded POSTs:\n%s\nwant\n%s", strings.Join(bodies, "\n"), strings.Join(want, "\n"))
	}
}

// TestRedeployOptionsAgainstStackType: Cloud 66's CLI rules, enforced by the
// fake as the server would.
func TestRedeployOptionsAgainstStackType(t *testing.T) {
	tests := []struct {
		name, stack, env string
		body             map[string]any
		status           int
		details          string
	}{
		{"services on Docker", "api", "staging", map[string]any{"services": []string{"web:1.4.2"}}, 200, ""},
		{"services on Rails", "shop", "staging", map[string]any{"services": []string{"web:1.4.2"}}, 400, "services only applies to Docker stacks"},
		{"services on Node", "web", "production", map[string]any{"services": "web"}, 400, "services only applies to Docker stacks"},
		{"git_ref on Rails", "shop", "staging", map[string]any{"git_ref": "v2.1"}, 200, ""},
		{"git_ref on Docker", "api", "staging", map[string]any{"git_ref": "v2.1"}, 400, "git_ref does not apply to Docker stacks"},
		{"rolling on Rails", "shop", "staging", map[string]any{"deploy_strategy": "rolling"}, 200, ""},
		{"rolling on Docker", "api", "staging", map[string]any{"deploy_strategy": "rolling"}, 400, `"rolling" deploy strategy only applies to Rails/Rack stacks`},
		{"rolling on Node", "web", "production", map[string]any{"deploy_strategy": "rolling"}, 400, "Rails/Rack"},
		{"fast on Docker on Kubernetes", "api", "staging", map[string]any{"deploy_strategy": "fast"}, 200, ""},
		{"fast on Rails", "shop", "staging", map[string]any{"deploy_strategy": "fast"}, 400, `"fast" deploy strategy only applies to Kubernetes stacks`},
		{"the old help example", "api", "production", map[string]any{"services": []string{"web:1.4.2"}, "deploy_strategy": "rolling"}, 400, "Rails/Rack"},
		{"unknown service", "api", "staging", map[string]any{"services": []string{"web:1", "mailer:2"}}, 400, `no service named "mailer"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeployEnv(t, tc.stack, tc.env)
			r := call(t, e.srv, "POST", "/stacks/"+e.uid+"/deployments.json", e.tok, tc.body)
			if r.Status != tc.status || !strings.Contains(r.Details, tc.details) {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.status == 200]; e.srv.ActionCount() != want {
				t.Fatalf("ActionCount = %d", e.srv.ActionCount())
			}
		})
	}
}

type taggedDeployView struct {
	deployView
	Services []serviceTagJSON `json:"services"`
}

func (e *deployEnv) deployments() []taggedDeployView {
	e.t.Helper()
	r := call(e.t, e.srv, "GET", "/stacks/"+e.uid+"/deployments.json", e.tok, nil)
	mustStatus(e.t, r, 200)
	var ds []taggedDeployView
	r.into(e.t, &ds)
	return ds
}

func tagsOf(d taggedDeployView) []string {
	var out []string
	for _, s := range d.Services {
		out = append(out, s.Name+":"+s.ImageTag)
	}
	return out
}

// TestDockerDeploymentsCarryImageTags: a rollback by image tags can be
// tried, because every Docker deployment says what it shipped.
func TestDockerDeploymentsCarryImageTags(t *testing.T) {
	e := newDeployEnv(t, "api", "staging")
	history := e.deployments()
	if len(history) != 3 {
		t.Fatalf("%d deployments", len(history))
	}
	seen := map[string]bool{}
	for _, d := range history {
		tags := tagsOf(d)
		if len(tags) != 2 || !strings.HasPrefix(tags[0], "web:1.") || !strings.HasPrefix(tags[1], "worker:1.") ||
			d.Services[0].ImageName != "registry.acme.example/acme/api-web" || seen[tags[0]] {
			t.Fatalf("deployment %d services %+v", d.ID, d.Services)
		}
		seen[tags[0]] = true
	}
	// Some services at a tag: the others keep what is live.
	live := tagsOf(history[0])
	e.redeploy(map[string]any{"services": []string{"web:2.0.0"}})
	e.clk.Advance(time.Hour)
	if got := tagsOf(e.deployments()[0]); !slices.Equal(got, []string{"web:2.0.0", live[1]}) {
		t.Fatalf("after deploying web:2.0.0: %q (live was %q)", got, live)
	}
	// Back to an earlier deployment's tags.
	old := tagsOf(history[2])
	e.redeploy(map[string]any{"services": old})
	e.clk.Advance(time.Hour)
	if h := e.deployments()[0]; !slices.Equal(tagsOf(h), old) || h.Outcome.Meaning != "success" {
		t.Fatalf("rolled back: %+v %q, want %q", h, tagsOf(h), old)
	}
	// Every service redeployed without tags is built anew.
	e.redeploy(nil)
	e.clk.Advance(time.Hour)
	if got := tagsOf(e.deployments()[0]); got[0] == old[0] || got[0] != strings.Replace(got[1], "worker", "web", 1) {
		t.Fatalf("fresh build: %q", got)
	}
	// Rails deployments say nothing of services.
	if raw := string(call(t, e.srv, "GET", "/stacks/"+e.srv.StackUID("shop", "staging")+"/deployments.json", e.tok, nil).Raw); strings.Contains(raw, `"services"`) {
		t.Fatalf("a Rails deployment lists services: %s", raw)
	}
}

// TestFailingStackRollsBack: legacy-crm's deploys fail, except a rollback to
// an earlier successful deployment's hash.
func TestFailingStackRollsBack(t *testing.T) {
	e := newDeployEnv(t, FailingStack, FailingStackEnvironment)
	history := e.deployments()
	var outcomes []string
	hashes := map[string]bool{}
	for _, d := range history {
		outcomes = append(outcomes, d.Outcome.Meaning)
		hashes[d.GitHash] = true
	}
	if !slices.Equal(outcomes, []string{"failed", "success", "success"}) || len(hashes) != 3 ||
		!history[1].IsLive || !history[0].IsHead {
		t.Fatalf("history %q, %d hashes", outcomes, len(hashes))
	}
	if st := e.stack(); st.Status != statusFailed {
		t.Fatalf("status %d", st.Status)
	}

	// A plain redeploy (the broken head) fails with the message.
	rd := e.redeploy(nil)
	e.clk.Advance(time.Hour)
	if a := e.action(*rd.AsyncActionID); *a.FinishedSuccess || *a.FinishedMessage != FailingDeployMessage {
		t.Fatalf("redeploy of the head: %+v", a)
	}
	// So does a ref that is not an earlier good hash.
	rd = e.redeploy(map[string]any{"git_ref": history[0].GitHash})
	e.clk.Advance(time.Hour)
	if a := e.action(*rd.AsyncActionID); *a.FinishedSuccess {
		t.Fatal("the hash of a failed deployment deployed fine")
	}
	// The hash (or its short form) of an earlier successful one succeeds,
	// and runs that commit again rather than a hash of its own.
	for _, back := range []struct{ ref, hash string }{
		{history[2].GitHash, history[2].GitHash},
		{history[1].GitHash[:12], history[1].GitHash},
	} {
		rd = e.redeploy(map[string]any{"git_ref": back.ref})
		e.clk.Advance(time.Hour)
		if a := e.action(*rd.AsyncActionID); !*a.FinishedSuccess || *a.FinishedMessage != "Completed successfully" {
			t.Fatalf("rollback to %s: %+v", back.ref, a)
		}
		if h := e.head(); *h.GitRef != back.ref || h.GitHash != back.hash || h.Outcome.Meaning != "success" || !h.IsLive {
			t.Fatalf("head after the rollback to %s: %+v, want it running %s", back.ref, h, back.hash)
		}
	}
	// SetDeployOutcome still wins.
	e.srv.SetDeployOutcome(e.uid, true, "")
	rd = e.redeploy(nil)
	e.clk.Advance(time.Hour)
	if a := e.action(*rd.AsyncActionID); !*a.FinishedSuccess {
		t.Fatal("SetDeployOutcome did not override the failing stack")
	}
}

// TestSeedHasServerGroups: the sandbox's reboot examples have servers in
// the web and db groups.
func TestSeedHasServerGroups(t *testing.T) {
	srv, _ := newServer(t)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, tc := range []struct {
		stack, env, group string
		want              []string
	}{
		{"shop", "production", "web", []string{"Lion", "Otter"}},
		{"shop", "production", "db", []string{"Tiger", "Falcon"}},
		{"shop", "production", "all", []string{"Lion", "Tiger", "Otter", "Falcon"}},
		{FailingStack, FailingStackEnvironment, "web", []string{"Falcon"}},
		{"api", "production", "web", []string{"Lynx"}},
	} {
		var got []string
		for _, sv := range srv.stackByUID[hexID(32, "stack", tc.stack, tc.env)].group(tc.group) {
			got = append(got, sv.name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s group %s = %q, want %q", tc.stack, tc.env, tc.group, got, tc.want)
		}
	}
}
