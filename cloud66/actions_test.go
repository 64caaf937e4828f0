package cloud66

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestGetAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		body         string
		wantFinished bool
		wantSuccess  *bool
		wantRef      string
		wantResID    string
		wantResult   string
	}{
		{
			name: "running",
			body: `{"id":3735,"user":"ana@example.com","resource_type":"stack","action":"application_deployment",
				"resource_id":"283","started_via":"api","started_at":"2020-05-01T10:00:00Z","finished_at":null,
				"finished_success":null,"finished_message":null,"finished_result":null,"metadata":{"user_reference":"slack:T1:C1:123.456"}}`,
			wantRef:   "slack:T1:C1:123.456",
			wantResID: "283",
		},
		{
			name: "finished ok",
			body: `{"id":3735,"user":"ana@example.com","resource_type":"stack","action":"application_deployment",
				"resource_id":283,"started_via":"api","started_at":"2020-05-01T10:00:00Z","finished_at":"2020-05-01T10:05:00Z",
				"finished_success":true,"finished_message":"Completed successfully","finished_result":{"deployment_id":7},"metadata":{}}`,
			wantFinished: true,
			wantSuccess:  new(true),
			wantResID:    "283",
			wantResult:   `{"deployment_id":7}`,
		},
		{
			name:         "finished failed, odd metadata",
			body:         `{"id":3735,"finished_at":"2020-05-01T10:05:00Z","finished_success":false,"metadata":{"user_reference":12}}`,
			wantFinished: true,
			wantSuccess:  new(false),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hook hookRecorder
			c, api := setup(t, WithRequestHook(hook.record))
			api.HandleFunc("GET /stacks/st1/actions/3735.json", func(w http.ResponseWriter, r *http.Request) {
				testHeader(t, r, "Authorization", "Bearer "+testToken)
				writeJSON(w, 200, `{"response":`+tt.body+`}`)
			})
			a, err := c.GetAction(context.Background(), "st1", 3735)
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != 3735 || a.Finished() != tt.wantFinished || a.UserReference() != tt.wantRef || a.ResourceID != tt.wantResID || string(a.FinishedResult) != tt.wantResult {
				t.Errorf("action = %+v (finished %v, ref %q)", *a, a.Finished(), a.UserReference())
			}
			switch {
			case tt.wantSuccess == nil && a.FinishedSuccess != nil,
				tt.wantSuccess != nil && (a.FinishedSuccess == nil || *a.FinishedSuccess != *tt.wantSuccess):
				t.Errorf("FinishedSuccess = %v, want %v", a.FinishedSuccess, tt.wantSuccess)
			}
			if infos := hook.all(); len(infos) != 1 || infos[0].Endpoint != "/stacks/{uid}/actions/{id}" {
				t.Errorf("hook = %+v", infos)
			}
		})
	}
}

func TestAsyncActionFields(t *testing.T) {
	t.Parallel()
	var a AsyncAction
	in := `{"id":1,"user":"u@example.com","resource_type":"stack","action":"restart","resource_id":"9","started_via":"web",
		"started_at":"2020-05-01T10:00:00Z","finished_at":"2020-05-01T10:01:00.5Z","finished_success":true,"finished_message":"done"}`
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if a.User != "u@example.com" || a.ResourceType != "stack" || a.Action != "restart" || a.StartedVia != "web" || a.FinishedMessage != "done" ||
		!a.StartedAt.Equal(time.Date(2020, 5, 1, 10, 0, 0, 0, time.UTC)) || !a.FinishedAt.Equal(time.Date(2020, 5, 1, 10, 1, 0, 5e8, time.UTC)) ||
		a.FinishedResult != nil || a.Metadata != nil || a.UserReference() != "" {
		t.Errorf("action = %+v", a)
	}
	if err := json.Unmarshal([]byte(`{"resource_id":{"x":1}}`), &a); err == nil {
		t.Error("object resource_id accepted")
	}
}

func TestListActionsByReference(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks/st1/actions.json", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("user_reference"); got != "slack:T1:U1:C1:r1" {
			t.Errorf("user_reference = %q", got)
		}
		writeJSON(w, 200, `{"response":[{"id":9,"metadata":{"user_reference":"slack:T1:U1:C1:r1"}}],"count":1,"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":1,"pages":1}}`)
	})
	got, err := c.ListActionsByReference(context.Background(), "st1", "slack:T1:U1:C1:r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != 9 || got[0].UserReference() != "slack:T1:U1:C1:r1" {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range []string{"", string(make([]byte, 256))} {
		var ae *ArgError
		if _, err := c.ListActionsByReference(context.Background(), "st1", bad); !errors.As(err, &ae) {
			t.Errorf("ref of %d bytes: err = %v, want *ArgError", len(bad), err)
		}
	}
}

// actionAnswer is an async action as Cloud 66 answers a POST that starts one.
const actionAnswer = `{"response":{"id":3736,"user":"ana@example.com","resource_type":"stack","action":"%s",
	"resource_id":"283","started_via":"api","started_at":"2020-05-01T10:00:00Z","finished_at":null,
	"finished_success":null,"finished_message":null,"metadata":{}}}`

// TestStackActionsSendTheOfficialRequests checks each POST against the path
// and body Cloud 66's official Go client sends.
func TestStackActionsSendTheOfficialRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func(c *Client) (*AsyncAction, error)
		path     string
		endpoint string
		body     string // "" = no body at all
		action   string
	}{
		{
			name: "restart",
			call: func(c *Client) (*AsyncAction, error) {
				return c.RunStackAction(ctx, "st1", StackActionRequest{Command: CommandRestart})
			},
			path: "/stacks/st1/actions.json", endpoint: "/stacks/{uid}/actions",
			body: `{"command":"restart"}`, action: ActionRestart,
		},
		{
			name: "service restart",
			call: func(c *Client) (*AsyncAction, error) {
				return c.RunStackAction(ctx, "st1", StackActionRequest{Command: CommandServiceRestart, ServiceName: "web"})
			},
			path: "/stacks/st1/actions.json", endpoint: "/stacks/{uid}/actions",
			body: `{"command":"service_restart","service_name":"web"}`, action: ActionServiceRestart,
		},
		{
			name: "maintenance on",
			call: func(c *Client) (*AsyncAction, error) { return c.RunStackAction(ctx, "st1", MaintenanceRequest(true)) },
			path: "/stacks/st1/actions.json", endpoint: "/stacks/{uid}/actions",
			body: `{"command":"maintenance_mode","value":1}`, action: ActionMaintenanceMode,
		},
		{
			name: "maintenance off sends the 0",
			call: func(c *Client) (*AsyncAction, error) { return c.RunStackAction(ctx, "st1", MaintenanceRequest(false)) },
			path: "/stacks/st1/actions.json", endpoint: "/stacks/{uid}/actions",
			body: `{"command":"maintenance_mode","value":0}`, action: ActionMaintenanceMode,
		},
		{
			name: "reboot one server",
			call: func(c *Client) (*AsyncAction, error) { return c.RebootServer(ctx, "st1", "sv9") },
			path: "/stacks/st1/servers/sv9/reboot_server.json", endpoint: "/stacks/{uid}/servers/{server_uid}/reboot_server",
			action: ActionServerReboot,
		},
		{
			name: "reboot a group, Cloud 66 choosing the strategy",
			call: func(c *Client) (*AsyncAction, error) { return c.RebootServers(ctx, "st1", RebootRequest{Group: "web"}) },
			path: "/stacks/st1/reboot_servers.json", endpoint: "/stacks/{uid}/reboot_servers",
			body: `{"group":"web","strategy":""}`, action: ActionStackReboot,
		},
		{
			name: "reboot a group in parallel",
			call: func(c *Client) (*AsyncAction, error) {
				return c.RebootServers(ctx, "st1", RebootRequest{Group: "db", Strategy: RebootParallel})
			},
			path: "/stacks/st1/reboot_servers.json", endpoint: "/stacks/{uid}/reboot_servers",
			body: `{"group":"db","strategy":"parallel"}`, action: ActionStackReboot,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hook hookRecorder
			c, api := setup(t, WithRequestHook(hook.record))
			api.HandleFunc(tt.path, func(w http.ResponseWriter, r *http.Request) {
				testMethod(t, r, http.MethodPost)
				testHeader(t, r, "Authorization", "Bearer "+testToken)
				if r.URL.RawQuery != "" {
					t.Errorf("query = %q; parameters belong in the body", r.URL.RawQuery)
				}
				if tt.body == "" {
					testHeader(t, r, "Content-Type", "")
					if b, _ := io.ReadAll(r.Body); len(b) != 0 {
						t.Errorf("body = %q, want none", b)
					}
				} else {
					testHeader(t, r, "Content-Type", "application/json")
					testExactBody(t, r, tt.body)
				}
				writeJSON(w, 200, fmt.Sprintf(actionAnswer, tt.action))
			})
			a, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != 3736 || a.Action != tt.action || a.Finished() || !a.Started() || a.FinishedSuccess != nil {
				t.Errorf("action = %+v", *a)
			}
			if infos := hook.all(); len(infos) != 1 || infos[0].Method != "POST" || infos[0].Endpoint != tt.endpoint {
				t.Errorf("hook = %+v", infos)
			}
		})
	}
}

// testExactBody compares the request body byte for byte: field order and
// omitted fields matter to a test that asserts the official requests.
func testExactBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("body = %s, want %s", b, want)
	}
}

func TestStackActionRefused(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("POST /stacks/st1/actions.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"error":"bad_request","error_description":"Invalid service","details":"No service named api"}`)
	})
	_, err := c.RunStackAction(context.Background(), "st1", StackActionRequest{Command: CommandServiceRestart, ServiceName: "api"})
	var er *ErrorResponse
	if !errors.As(err, &er) || er.StatusCode != 400 || er.Message() != "No service named api" || er.Endpoint != "/stacks/{uid}/actions" {
		t.Fatalf("err = %v", err)
	}
}

func TestListActions(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks/st1/actions.json", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			t.Errorf("query = %q, want none (the first page)", r.URL.RawQuery)
		}
		writeJSON(w, 200, `{"response":[
			{"id":12,"action":"stack_reboot","started_at":null,"finished_at":null},
			{"id":11,"action":"restart","started_at":"2020-05-01T10:00:00Z","finished_at":"2020-05-01T10:02:00Z","finished_success":true}],
			"count":2,"pagination":{"previous":null,"next":2,"current":1,"per_page":30,"count":40,"pages":2}}`)
	})
	got, err := c.ListActions(context.Background(), "st1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != 12 || got[0].Action != ActionStackReboot || got[0].Started() || got[0].Finished() ||
		got[1].Action != ActionRestart || !got[1].Started() || !got[1].Finished() {
		t.Fatalf("got %+v", got)
	}
}
