package cloud66test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type redeployView struct {
	OK            bool   `json:"ok"`
	Message       string `json:"message"`
	AsyncActionID *int   `json:"async_action_id"`
	Queued        bool   `json:"queued"`
}

type actionView struct {
	ID              int               `json:"id"`
	User            string            `json:"user"`
	ResourceType    string            `json:"resource_type"`
	Action          string            `json:"action"`
	StartedVia      string            `json:"started_via"`
	StartedAt       string            `json:"started_at"`
	FinishedAt      *string           `json:"finished_at"`
	FinishedSuccess *bool             `json:"finished_success"`
	FinishedMessage *string           `json:"finished_message"`
	Metadata        map[string]string `json:"metadata"`
}

type deployView struct {
	ID         int     `json:"id"`
	FinishedAt *string `json:"finished_at"`
	GitRef     *string `json:"git_ref"`
	GitHash    string  `json:"git_hash"`
	Outcome    struct {
		Meaning string `json:"meaning"`
	} `json:"outcome"`
	TriggeredBy  string `json:"triggered_by"`
	TriggeredVia struct {
		Meaning string `json:"meaning"`
	} `json:"triggered_via"`
	IsDeploying bool `json:"is_deploying"`
	IsHead      bool `json:"is_head"`
	IsLive      bool `json:"is_live"`
}

type deployEnv struct {
	t   *testing.T
	srv *Server
	clk *Clock
	tok string
	uid string
}

func newDeployEnv(t *testing.T, name, env string, opts ...Option) *deployEnv {
	srv, clk := newServer(t, opts...)
	return &deployEnv{t: t, srv: srv, clk: clk, tok: srv.IssueToken("ana@example.com"), uid: srv.StackUID(name, env)}
}

// postOK sends a POST to the stack's path (after /stacks/{uid}), wants a
// 200 and decodes its response.
func postOK[T any](e *deployEnv, path string, body any) T {
	e.t.Helper()
	r := call(e.t, e.srv, "POST", "/stacks/"+e.uid+path, e.tok, body)
	mustStatus(e.t, r, 200)
	var v T
	r.into(e.t, &v)
	return v
}

func (e *deployEnv) redeploy(body any) redeployView {
	e.t.Helper()
	return postOK[redeployView](e, "/deployments.json", body)
}

// post starts a stack action or a reboot and returns its action.
func (e *deployEnv) post(path string, body any) actionView {
	e.t.Helper()
	return postOK[actionView](e, path, body)
}

func (e *deployEnv) action(id int) actionView {
	e.t.Helper()
	r := call(e.t, e.srv, "GET", fmt.Sprintf("/stacks/%s/actions/%d.json", e.uid, id), e.tok, nil)
	mustStatus(e.t, r, 200)
	var a actionView
	r.into(e.t, &a)
	return a
}

func (e *deployEnv) stack() stackView {
	e.t.Helper()
	r := call(e.t, e.srv, "GET", "/stacks/"+e.uid+".json", e.tok, nil)
	mustStatus(e.t, r, 200)
	var s stackView
	r.into(e.t, &s)
	return s
}

func (e *deployEnv) head() deployView {
	e.t.Helper()
	r := call(e.t, e.srv, "GET", "/stacks/"+e.uid+"/deployments.json", e.tok, nil)
	mustStatus(e.t, r, 200)
	var ds []deployView
	r.into(e.t, &ds)
	return ds[0]
}

func TestDeploymentProgressesWithClock(t *testing.T) {
	e := newDeployEnv(t, "shop", "staging")
	if st := e.stack(); st.Status != 1 || st.IsBusy {
		t.Fatalf("before: %+v", st)
	}
	rd := e.redeploy(map[string]any{"git_ref": "release-42", "user_reference": "slack:T1:C1:123.456"})
	if !rd.OK || rd.Queued || rd.AsyncActionID == nil {
		t.Fatalf("redeploy: %+v", rd)
	}
	a := e.action(*rd.AsyncActionID)
	if a.FinishedAt != nil || a.FinishedSuccess != nil || a.Action != "application_deployment" ||
		a.ResourceType != "stack" || a.StartedVia != "api" || a.User != "ana@example.com" ||
		a.Metadata["user_reference"] != "slack:T1:C1:123.456" || a.StartedAt != isoTime(t0) {
		t.Fatalf("running action: %+v", a)
	}
	if st := e.stack(); st.Status != 6 || !st.IsBusy {
		t.Fatalf("while running: status %d busy %v", st.Status, st.IsBusy)
	}
	h := e.head()
	if !h.IsDeploying || h.FinishedAt != nil || h.Outcome.Meaning != "pending" || *h.GitRef != "release-42" ||
		h.TriggeredVia.Meaning != "api" || !hex40RE.MatchString(h.GitHash) || !h.IsHead || h.IsLive {
		t.Fatalf("running deployment: %+v", h)
	}

	e.clk.Advance(3*time.Minute - time.Second)
	if a := e.action(*rd.AsyncActionID); a.FinishedAt != nil {
		t.Fatal("finished before the deploy duration elapsed")
	}
	e.clk.Advance(time.Second)
	a = e.action(*rd.AsyncActionID)
	if a.FinishedAt == nil || *a.FinishedAt != isoTime(t0.Add(3*time.Minute)) || !*a.FinishedSuccess ||
		*a.FinishedMessage != "Completed successfully" {
		t.Fatalf("finished action: %+v", a)
	}
	if st := e.stack(); st.Status != 1 || st.IsBusy || st.LastActivityISO != isoTime(t0.Add(3*time.Minute)) {
		t.Fatalf("after: %+v", st)
	}
	if h := e.head(); h.IsDeploying || h.Outcome.Meaning != "success" || !h.IsLive {
		t.Fatalf("finished deployment: %+v", h)
	}
	if n := e.srv.ActionCount(); n != 1 {
		t.Fatalf("ActionCount = %d", n)
	}
}

func TestDeploymentFailureOutcome(t *testing.T) {
	e := newDeployEnv(t, "blog", "staging")
	e.srv.SetDeployOutcome(e.uid, false, "Migrations failed")
	rd := e.redeploy(nil)
	e.clk.Advance(time.Hour)
	a := e.action(*rd.AsyncActionID)
	if a.FinishedSuccess == nil || *a.FinishedSuccess || *a.FinishedMessage != "Migrations failed" {
		t.Fatalf("action: %+v", a)
	}
	if st := e.stack(); st.Status != 2 {
		t.Fatalf("stack status %d, want 2", st.Status)
	}
	if h := e.head(); h.Outcome.Meaning != "failed" || h.IsLive {
		t.Fatalf("deployment: %+v", h)
	}
}

func TestQueuedSecondDeployment(t *testing.T) {
	e := newDeployEnv(t, "payments", "staging")
	first := e.redeploy(url.Values{"user_reference": {"first"}})
	second := e.redeploy(url.Values{"user_reference": {"second"}, "git_ref": {"hotfix"}})
	if !second.OK || !second.Queued || second.AsyncActionID == nil || *second.AsyncActionID == *first.AsyncActionID ||
		second.Message != "Stack queued for redeployment" {
		t.Fatalf("second: %+v", second)
	}
	// Its action exists at once, as Cloud 66's docs show, but has not
	// started: no started_at, no deployment yet.
	queued := e.action(*second.AsyncActionID)
	if queued.StartedAt != "" || queued.FinishedAt != nil || queued.Action != "application_deployment" || queued.Metadata["user_reference"] != "second" {
		t.Fatalf("queued action: %+v", queued)
	}
	if !strings.Contains(string(call(t, e.srv, "GET", fmt.Sprintf("/stacks/%s/actions/%d.json", e.uid, *second.AsyncActionID), e.tok, nil).Raw), `"started_at":null`) {
		t.Fatal("a queued action must carry started_at: null")
	}
	if h := e.head(); *h.GitRef == "hotfix" {
		t.Fatal("the queued deployment is listed before it starts")
	}
	third := e.redeploy(nil)
	if n := e.srv.ActionCount(); n != 3 || !third.Queued || third.AsyncActionID == nil {
		t.Fatalf("ActionCount = %d, want 3; third %+v", n, third)
	}

	e.clk.Advance(3 * time.Minute)
	if a := e.action(*first.AsyncActionID); a.FinishedAt == nil {
		t.Fatal("first not finished")
	}
	if a := e.action(*second.AsyncActionID); a.StartedAt != isoTime(t0.Add(3*time.Minute)) || a.FinishedAt != nil {
		t.Fatalf("second, once the first ended: %+v", a)
	}
	if a := e.action(*third.AsyncActionID); a.StartedAt != "" {
		t.Fatalf("third started while the second runs: %+v", a)
	}
	r := call(t, e.srv, "GET", "/stacks/"+e.uid+"/actions.json?user_reference=second", e.tok, nil)
	mustStatus(t, r, 200)
	var acts []actionView
	r.into(t, &acts)
	if len(acts) != 1 || acts[0].FinishedAt != nil || acts[0].StartedAt != isoTime(t0.Add(3*time.Minute)) {
		t.Fatalf("second action after first finished: %+v", acts)
	}
	if h := e.head(); *h.GitRef != "hotfix" || !h.IsDeploying {
		t.Fatalf("head: %+v", h)
	}
	if st := e.stack(); st.Status != 6 || !st.IsBusy {
		t.Fatalf("stack while second runs: %+v", st)
	}

	// One jump over both remaining deployments settles them in order.
	e.clk.Advance(time.Hour)
	r = call(t, e.srv, "GET", "/stacks/"+e.uid+"/actions.json", e.tok, nil)
	r.into(t, &acts)
	if len(acts) != 3 {
		t.Fatalf("%d actions, want 3", len(acts))
	}
	for i, a := range acts {
		if a.FinishedAt == nil || !*a.FinishedSuccess {
			t.Fatalf("action %d not finished: %+v", i, a)
		}
	}
	if acts[0].StartedAt != isoTime(t0.Add(6*time.Minute)) {
		t.Fatalf("third started at %s", acts[0].StartedAt)
	}
	if st := e.stack(); st.Status != 1 || st.IsBusy {
		t.Fatalf("stack after all: %+v", st)
	}
}

func TestCancelDeployment(t *testing.T) {
	e := newDeployEnv(t, "admin", "staging")
	rd := e.redeploy(nil)
	queued := e.redeploy(nil)
	if !queued.Queued {
		t.Fatal("second deploy should queue")
	}
	h := e.head()
	e.clk.Advance(time.Minute)
	path := fmt.Sprintf("/stacks/%s/deployments/%d.json", e.uid, h.ID)
	r := call(t, e.srv, "DELETE", path, e.tok, nil)
	mustStatus(t, r, 200)
	var ok struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	r.into(t, &ok)
	if !ok.OK || ok.Message != "Cancelling deployment" {
		t.Fatalf("cancel reply: %s", r.Raw)
	}
	a := e.action(*rd.AsyncActionID)
	if a.FinishedAt == nil || *a.FinishedAt != isoTime(t0.Add(time.Minute)) || *a.FinishedSuccess || *a.FinishedMessage != "Deployment cancelled" {
		t.Fatalf("cancelled action: %+v", a)
	}
	r = call(t, e.srv, "GET", path, e.tok, nil)
	var d deployView
	r.into(t, &d)
	// Not the bare word "cancelled": clients must read any meaning with
	// "cancel" in it as a cancel.
	if d.Outcome.Meaning != "canceled by user" || d.IsDeploying {
		t.Fatalf("cancelled deployment: %+v", d)
	}
	// The queued deployment starts at once.
	if h2 := e.head(); h2.ID == h.ID || !h2.IsDeploying {
		t.Fatalf("queued deployment did not start: %+v", h2)
	}
	r = call(t, e.srv, "DELETE", path, e.tok, nil)
	if r.Status != 409 || r.Error != "conflict" {
		t.Fatalf("second cancel: %d %s", r.Status, r.Raw)
	}
	e.clk.Advance(time.Hour)
	if st := e.stack(); st.Status != 1 {
		t.Fatalf("status after queued deploy finished: %d", st.Status)
	}
}

func TestSeededRunningDeployment(t *testing.T) {
	e := newDeployEnv(t, "billing", "staging")
	if st := e.stack(); st.Status != 6 || !st.IsBusy {
		t.Fatalf("seeded deploying stack: %+v", st)
	}
	if rd := e.redeploy(nil); !rd.Queued {
		t.Fatalf("POST on busy stack: %+v", rd)
	}
	e.clk.Advance(2 * time.Minute) // seeded deploy started 1 min before t0
	h := e.head()
	if !h.IsDeploying || h.TriggeredVia.Meaning != "api" {
		t.Fatalf("queued deploy should be running now: %+v", h)
	}
}

func TestRedeployParameters(t *testing.T) {
	long := strings.Repeat("x", 256)
	tests := []struct {
		name   string
		body   any
		status int
	}{
		{"empty", nil, 200},
		{"json services array", map[string]any{"services": []string{"web:v2", "worker"}}, 200},
		{"json services string", map[string]any{"services": "web:v2,worker"}, 200},
		{"form services[]", url.Values{"services[]": {"web", "worker"}}, 200},
		{"form comma services", url.Values{"services": {"web,worker"}}, 200},
		{"all strategies", map[string]any{"deploy_strategy": "fast", "rollout_strategy": "canary", "canary_percentage": 25, "deployment_profile": "quick"}, 200},
		{"unknown service", map[string]any{"services": []string{"web:v2", "mailer"}}, 400},
		{"user_reference 255", url.Values{"user_reference": {long[:255]}}, 200},
		{"user_reference 256", url.Values{"user_reference": {long}}, 400},
		{"bad deploy_strategy", map[string]any{"deploy_strategy": "yolo"}, 400},
		{"bad rollout_strategy", url.Values{"rollout_strategy": {"big_bang"}}, 400},
		{"bad canary", map[string]any{"canary_percentage": 101}, 400},
		{"bad services type", map[string]any{"services": 7}, 400},
		{"bad git_ref type", map[string]any{"git_ref": 7}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeployEnv(t, "api", "staging")
			r := call(t, e.srv, "POST", "/stacks/"+e.uid+"/deployments.json", e.tok, tc.body)
			if r.Status != tc.status {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			if tc.status == 400 && (r.Error != "bad_request" || r.Details == "") {
				t.Fatalf("400 body: %s", r.Raw)
			}
			want := 0
			if tc.status == 200 {
				want = 1
			}
			if n := e.srv.ActionCount(); n != want {
				t.Fatalf("ActionCount = %d, want %d", n, want)
			}
		})
	}
}

func TestConcurrentDeploys(t *testing.T) {
	e := newDeployEnv(t, "web", "production")
	var wg sync.WaitGroup
	results := make([]redeployView, 8)
	errs := make(chan error, len(results))
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/3/stacks/"+e.uid+"/deployments.json", nil)
			req.Header.Set("Authorization", "Bearer "+e.tok)
			resp, err := httpc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var env struct{ Response redeployView }
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				errs <- err
				return
			}
			results[i] = env.Response
			e.srv.Requests()
			e.clk.Advance(time.Second)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	started := 0
	for _, r := range results {
		if !r.Queued {
			started++
		}
	}
	if started != 1 || e.srv.ActionCount() != 8 {
		t.Fatalf("%d started immediately (want 1), ActionCount %d", started, e.srv.ActionCount())
	}
}
