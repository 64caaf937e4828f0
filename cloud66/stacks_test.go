package cloud66

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const stackJSON = `{
	"uid": "5999b763474b0eafa5fafb64bff0ba80",
	"name": "Awesome App",
	"git": "git://github.com/cloud66-samples/awesome-app.git",
	"git_branch": "fig",
	"environment": "production",
	"cloud": "DigitalOcean",
	"fqdn": "awesome-app.dev.c66.me",
	"language": "ruby",
	"framework": "rails",
	"status": 1,
	"health": 3,
	"last_activity": "2014-08-14 15:03:51 UTC",
	"last_activity_iso": "2014-08-14T15:03:51Z",
	"maintenance_mode": false,
	"has_loadbalancer": true,
	"created_at": "2014-08-14 14:11:23 UTC",
	"updated_at": "2014-08-14 15:03:51 UTC",
	"created_at_iso": "2014-08-14T14:11:23.000+00:00",
	"updated_at_iso": "2014-08-14T15:03:51Z",
	"deploy_directory": "/var/deploy/awesome_app",
	"cloud_status": "partial",
	"redeploy_hook": "https://hooks.cloud66.com/stacks/redeploy/SECRET-HOOK/abc",
	"account_id": 4655,
	"account_name": "Acme",
	"backend": "kubernetes",
	"version": "2.0",
	"is_busy": true,
	"namespaces": ["default"]
}`

func TestGetStack(t *testing.T) {
	t.Parallel()
	var hook hookRecorder
	c, api := setup(t, WithRequestHook(hook.record))
	api.HandleFunc("GET /stacks/5999b763474b0eafa5fafb64bff0ba80.json", func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		testHeader(t, r, "Accept", "application/json")
		writeJSON(w, 200, `{"response":`+stackJSON+`}`)
	})
	s, err := c.GetStack(context.Background(), "5999b763474b0eafa5fafb64bff0ba80")
	if err != nil {
		t.Fatal(err)
	}
	want := Stack{
		UID: "5999b763474b0eafa5fafb64bff0ba80", Name: "Awesome App", Environment: "production",
		AccountName: "Acme", Git: "git://github.com/cloud66-samples/awesome-app.git", GitBranch: "fig",
		Cloud: "DigitalOcean", FQDN: "awesome-app.dev.c66.me", Language: "ruby", Framework: "rails",
		CloudStatus: "partial", Backend: "kubernetes", Version: "2.0", AccountID: 4655,
		Status: StatusDeployed, Health: HealthOK, HasLoadBalancer: true, IsBusy: true,
		LastActivity: Time{time.Date(2014, 8, 14, 15, 3, 51, 0, time.UTC)},
		CreatedAt:    Time{time.Date(2014, 8, 14, 14, 11, 23, 0, time.UTC)},
		UpdatedAt:    Time{time.Date(2014, 8, 14, 15, 3, 51, 0, time.UTC)},
	}
	if !stacksEqual(*s, want) {
		t.Errorf("stack =\n%+v\nwant\n%+v", *s, want)
	}
	// The redeploy hook is a secret and must never be held.
	b, _ := json.Marshal(s)
	if dump := fmt.Sprintf("%+v %s", *s, b); strings.Contains(dump, "SECRET-HOOK") || strings.Contains(dump, "redeploy_hook") {
		t.Errorf("redeploy_hook was decoded: %s", dump)
	}
	if infos := hook.all(); len(infos) != 1 || infos[0].Endpoint != "/stacks/{uid}" || infos[0].Method != "GET" || infos[0].StatusCode != 200 {
		t.Errorf("hook = %+v", infos)
	}
}

func stacksEqual(a, b Stack) bool {
	times := a.LastActivity.Equal(b.LastActivity.Time) && a.CreatedAt.Equal(b.CreatedAt.Time) && a.UpdatedAt.Equal(b.UpdatedAt.Time)
	a.LastActivity, a.CreatedAt, a.UpdatedAt = Time{}, Time{}, Time{}
	b.LastActivity, b.CreatedAt, b.UpdatedAt = Time{}, Time{}, Time{}
	return times && a == b
}

func TestListStacksSinglePage(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("page"); got != "1" {
			t.Errorf("page = %q, want 1", got)
		}
		writeJSON(w, 200, `{"response":[`+stackJSON+`,{"uid":"b","git":null,"git_branch":null,"status":6,"health":1}],"count":2,
			"pagination":{"previous":null,"next":null,"current":1,"per_page":30,"count":2,"pages":1}}`)
	})
	stacks, err := c.ListStacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) != 2 || stacks[1].UID != "b" || stacks[1].Status != StatusDeploying || stacks[1].Health != HealthBuilding || stacks[1].Git != "" {
		t.Errorf("stacks = %+v", stacks)
	}
}

func TestStackTimestampFallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     time.Time // for all three fields
	}{
		{"iso only", `{"last_activity_iso":"2020-01-02T03:04:05Z","created_at_iso":"2020-01-02T03:04:05Z","updated_at_iso":"2020-01-02T03:04:05Z"}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"legacy only", `{"last_activity":"2020-01-02 03:04:05 UTC","created_at":"2020-01-02 03:04:05 UTC","updated_at":"2020-01-02 03:04:05 UTC"}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"iso null uses legacy", `{"last_activity_iso":null,"last_activity":"2020-01-02 03:04:05 UTC","created_at_iso":"","created_at":"2020-01-02 03:04:05 UTC","updated_at":"2020-01-02 03:04:05 UTC"}`, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"iso wins", `{"last_activity_iso":"2021-01-01T00:00:00Z","last_activity":"2020-01-02 03:04:05 UTC","created_at_iso":"2021-01-01T00:00:00Z","created_at":"x","updated_at_iso":"2021-01-01T00:00:00Z"}`, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"unparsable legacy ignored", `{"last_activity":"last tuesday","created_at":"soon","updated_at":7}`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s Stack
			if err := json.Unmarshal([]byte(tt.in), &s); err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string]Time{"LastActivity": s.LastActivity, "CreatedAt": s.CreatedAt, "UpdatedAt": s.UpdatedAt} {
				if !got.Equal(tt.want) {
					t.Errorf("%s = %v, want %v", name, got, tt.want)
				}
			}
		})
	}
	var s Stack
	if err := json.Unmarshal([]byte(`{"created_at_iso":"garbage"}`), &s); err == nil {
		t.Error("unparsable *_iso accepted silently")
	}
}

func TestStackRoundTrip(t *testing.T) {
	t.Parallel()
	in := Stack{UID: "u", Name: "n", Status: StatusFailed, Health: HealthFailed, CreatedAt: Time{time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC)}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Stack
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !stacksEqual(in, out) {
		t.Errorf("round trip: %+v -> %s -> %+v", in, b, out)
	}
}

func TestStackStatusString(t *testing.T) {
	t.Parallel()
	tests := map[StackStatus]string{
		StatusQueued:             "Pending analysis",
		StatusDeployed:           "Deployed successfully",
		StatusFailed:             "Deployment failed",
		StatusAnalysing:          "Analyzing",
		StatusAnalysed:           "Analyzed",
		StatusQueuedForDeploying: "Queued for deployment",
		StatusDeploying:          "Deploying",
		StatusTerminalFailure:    "Unable to analyze",
		8:                        "Unknown (8)",
		-1:                       "Unknown (-1)",
	}
	for s, want := range tests {
		if got := s.String(); got != want {
			t.Errorf("StackStatus(%d) = %q, want %q", int(s), got, want)
		}
	}
}

func TestHealthString(t *testing.T) {
	t.Parallel()
	tests := map[Health]string{
		HealthUnknown:  "Unknown",
		HealthBuilding: "Building",
		HealthImpaired: "Impaired",
		HealthOK:       "Healthy",
		HealthFailed:   "Failed",
		5:              "Unknown (5)",
	}
	for h, want := range tests {
		if got := h.String(); got != want {
			t.Errorf("Health(%d) = %q, want %q", int(h), got, want)
		}
	}
}
