package cloud66

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const deploymentJSON = `{
	"id": 7,
	"triggered_by": "ana@example.com",
	"triggered_via": {"code": 0, "meaning": "web"},
	"started_at": "2014-09-01T19:08:05Z",
	"finished_at": "2014-09-01T19:14:05Z",
	"outcome": {"code": 1, "meaning": "success"},
	"git_hash": "abc123",
	"git_ref": "main",
	"deploy_session": "asd456",
	"deploy_type": {"code": 0, "meaning": "build"},
	"is_head": true,
	"is_live": true,
	"reverted": null,
	"is_deploying": false,
	"commit_url": "https://github.com/acme/app/commit/abc123"
}`

func TestGetDeployment(t *testing.T) {
	t.Parallel()
	var hook hookRecorder
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("GET /stacks/st1/deployments/7.json", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		writeJSON(w, 200, `{"response":`+deploymentJSON+`}`)
	})
	d, err := c.GetDeployment(context.Background(), "st1", 7)
	if err != nil {
		t.Fatal(err)
	}
	want := Deployment{
		ID: 7, TriggeredBy: "ana@example.com",
		TriggeredVia: CodeMeaning{0, "web"}, Outcome: CodeMeaning{1, "success"}, DeployType: CodeMeaning{0, "build"},
		StartedAt:  Time{time.Date(2014, 9, 1, 19, 8, 5, 0, time.UTC)},
		FinishedAt: Time{time.Date(2014, 9, 1, 19, 14, 5, 0, time.UTC)},
		GitHash:    "abc123", GitRef: "main", DeploySession: "asd456",
		CommitURL: "https://github.com/acme/app/commit/abc123", IsHead: true, IsLive: true,
	}
	if !reflect.DeepEqual(*d, want) {
		t.Errorf("deployment =\n%+v\nwant\n%+v", *d, want)
	}
	if infos := hook.all(); len(infos) != 1 || infos[0].Endpoint != "/stacks/{uid}/deployments/{id}" {
		t.Errorf("hook = %+v", infos)
	}
}

func TestListDeploymentsPageNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		page     int
		wantPage string
	}{{0, "1"}, {-3, "1"}, {1, "1"}, {4, "4"}}
	for _, tt := range tests {
		t.Run(tt.wantPage, func(t *testing.T) {
			t.Parallel()
			c, api := setup(t)
			api.HandleFunc("GET /stacks/st1/deployments.json", func(w http.ResponseWriter, r *http.Request) {
				if got := r.URL.Query().Get("page"); got != tt.wantPage {
					t.Errorf("page = %q, want %q", got, tt.wantPage)
				}
				writeJSON(w, 200, `{"response":[`+deploymentJSON+`],"count":1,"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":1,"pages":1}}`)
			})
			d, p, err := c.ListDeploymentsPage(context.Background(), "st1", tt.page)
			if err != nil {
				t.Fatal(err)
			}
			if len(d) != 1 || d[0].Outcome.Meaning != "success" || p.Pages != 1 || p.Current != 1 {
				t.Errorf("got %+v, %+v", d, p)
			}
		})
	}
}

func TestRedeploy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      RedeployRequest
		wantBody string
		resp     string
		want     RedeployResult
	}{
		{
			name:     "defaults",
			req:      RedeployRequest{},
			wantBody: `{}`,
			resp:     `{"ok":true,"message":"Stack queued for redeployment","async_action_id":null,"queued":true}`,
			want:     RedeployResult{OK: true, Message: "Stack queued for redeployment", Queued: true},
		},
		{
			name: "all fields",
			req: RedeployRequest{GitRef: "v1.2", Services: []string{"web:1.2", "worker"}, DeploymentProfile: "fast",
				DeployStrategy: "rolling", UserReference: strings.Repeat("r", 255)},
			wantBody: `{"git_ref":"v1.2","services":["web:1.2","worker"],"deployment_profile":"fast","deploy_strategy":"rolling","user_reference":"` + strings.Repeat("r", 255) + `"}`,
			resp:     `{"ok":true,"message":"Stack starting redeployment","async_action_id":3735,"queued":false}`,
			want:     RedeployResult{OK: true, Message: "Stack starting redeployment", AsyncActionID: 3735},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hook hookRecorder
			c, api := setup(t, WithRequestHook(hook.record))
			api.HandleFunc("/stacks/st1/deployments.json", func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, http.MethodPost)
				testHeader(t, r, "Content-Type", "application/json")
				testHeader(t, r, "Accept", "application/json")
				testHeader(t, r, "Authorization", "Bearer "+testToken)
				if r.URL.RawQuery != "" {
					t.Errorf("query = %q; parameters belong in the body", r.URL.RawQuery)
				}
				testJSONBody(t, r, tt.wantBody)
				writeJSON(w, 200, `{"response":`+tt.resp+`}`)
			})
			got, err := c.Redeploy(context.Background(), "st1", tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("result = %+v, want %+v", *got, tt.want)
			}
			if infos := hook.all(); len(infos) != 1 || infos[0].Method != "POST" || infos[0].Endpoint != "/stacks/{uid}/deployments" {
				t.Errorf("hook = %+v", infos)
			}
		})
	}
}

func TestRedeployUserReferenceTooLong(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	c, api := setup(t)
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	_, err := c.Redeploy(context.Background(), "st1", RedeployRequest{UserReference: strings.Repeat("é", 128)}) // 256 bytes
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Arg != "user reference" {
		t.Fatalf("err = %v, want *ArgError for user reference", err)
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests sent", hits.Load())
	}
}

func TestCancelDeployment(t *testing.T) {
	t.Parallel()
	var hook hookRecorder
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("/stacks/st1/deployments/42.json", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodDelete)
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		testHeader(t, r, "Content-Type", "")
		writeJSON(w, 200, `{"response":{"ok":true,"message":"Cancelling deployment"}}`)
	})
	r, err := c.CancelDeployment(context.Background(), "st1", 42)
	if err != nil {
		t.Fatal(err)
	}
	if *r != (Result{OK: true, Message: "Cancelling deployment"}) {
		t.Errorf("result = %+v", *r)
	}
	if infos := hook.all(); len(infos) != 1 || infos[0].Method != "DELETE" || infos[0].Endpoint != "/stacks/{uid}/deployments/{id}" {
		t.Errorf("hook = %+v", infos)
	}
}

func TestRedeployConflict(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("POST /stacks/st1/deployments.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 409, `{"error":"conflict","error_description":"Stack is busy"}`)
	})
	_, err := c.Redeploy(context.Background(), "st1", RedeployRequest{})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if got, want := err.Error(), "cloud66: POST /stacks/{uid}/deployments: 409 conflict: Stack is busy"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDeploymentServicesDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		services string // the "services" member, "" = absent
		want     []string
	}{
		{"absent", "", nil},
		{"null", `null`, nil},
		{"name:tag strings", `["web:1.4.2"," worker ","api:sha-abc"]`, []string{"web:1.4.2", "worker", "api:sha-abc"}},
		{"comma separated string", `"web:1.4.2, worker,,"`, []string{"web:1.4.2", "worker"}},
		{"objects with image_tag", `[{"name":"web","image_name":"acme/web","image_tag":"1.4.2"},{"name":"worker","image_tag":""}]`,
			[]string{"web:1.4.2", "worker"}},
		{"objects with tag", `[{"name":"web","tag":"1.4.2"}]`, []string{"web:1.4.2"}},
		{"objects with an image reference", `[{"name":"web","image":"registry.acme.io:5000/acme/web:1.4.2"},{"name":"db","image":"registry.acme.io:5000/postgres"}]`,
			[]string{"web:1.4.2", "db"}},
		{"image_name with a tag", `[{"name":"web","image_name":"acme/web:2.0"}]`, []string{"web:2.0"}},
		{"digest is not a tag", `[{"name":"web","image":"acme/web@sha256:0123"}]`, []string{"web"}},
		{"git_ref as the last resort", `[{"name":"web","git_ref":"v3"}]`, []string{"web:v3"}},
		{"unreadable items are skipped", `[7,null,{"image_tag":"1"},{"name":""},"web:1",[1]]`, []string{"web:1"}},
		{"a number", `42`, nil},
		{"an object", `{"web":"1.4.2"}`, nil},
		{"an array of arrays", `[[1,2]]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := `{"id":7,"outcome":{"code":1,"meaning":"success"}`
			if tt.services != "" {
				body += `,"services":` + tt.services
			}
			body += `}`
			var d Deployment
			if err := json.Unmarshal([]byte(body), &d); err != nil {
				t.Fatalf("decoding fails: %v", err)
			}
			if d.ID != 7 || !slices.Equal(d.Services, tt.want) {
				t.Errorf("Services = %q, want %q", d.Services, tt.want)
			}
		})
	}
	// A rollback hands them straight back to a redeploy.
	d := Deployment{Services: ServiceTags{"web:1.4.2"}}
	if req := (RedeployRequest{Services: d.Services}); req.Services[0] != "web:1.4.2" {
		t.Error("ServiceTags is not a []string")
	}
}

func TestDeploymentOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		meaning                      string
		succeeded, failed, cancelled bool
	}{
		{"success", true, false, false},
		{"Succeeded", true, false, false},
		{" OK ", true, false, false},
		{"failed", false, true, false},
		{"Failure", false, true, false},
		{"error", false, true, false},
		{"cancelled", false, false, true},
		{"canceled", false, false, true},
		{"Canceled by user", false, false, true},
		{"failed: cancelled", false, false, true},
		{"pending", false, false, false},
		{"", false, false, false},
		{"deploying", false, false, false},
	}
	for _, tt := range tests {
		d := Deployment{Outcome: CodeMeaning{Code: 9, Meaning: tt.meaning}}
		if d.Succeeded() != tt.succeeded || d.Failed() != tt.failed || d.Cancelled() != tt.cancelled {
			t.Errorf("%q: Succeeded %v Failed %v Cancelled %v, want %v %v %v", tt.meaning,
				d.Succeeded(), d.Failed(), d.Cancelled(), tt.succeeded, tt.failed, tt.cancelled)
		}
	}
}
