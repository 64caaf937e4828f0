package cloud66

import (
	"context"
	"encoding/json"
	"errors"
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
