package cloud66

import (
	"context"
	"errors"
	"net/http"
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
	if *d != want {
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
