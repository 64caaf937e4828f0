package notify_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/notify"
)

const shopUID = "5999b763474b0eafa5fafb64bff0ba80"

func TestDecodeWebhook(t *testing.T) {
	started := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	finished := time.Date(2024, 1, 1, 12, 30, 45, 0, time.UTC)
	stamp := time.Unix(1704112245, 0).UTC()
	stackEvent := func(typ, outcome string) string {
		return `{"timestamp": 1704112245, "event_type": "` + typ + `", "uid": "` + shopUID + `", "name": "shop",
			"environment": "production", "status": 1, "health": 3,
			"deploy_context": {"triggered_by": "ana@example.com", "outcome": "` + outcome + `",
			"started_at": "2024-01-01T12:00:00Z", "finished_at": "2024-01-01T12:30:45Z"}}`
	}
	deploy := func(kind string) notify.Event {
		return notify.Event{Kind: kind, StackUID: shopUID, StackName: "shop", Environment: "production",
			TriggeredBy: "ana@example.com", At: stamp, StartedAt: started, Source: notify.SourceWebhook}
	}
	server := func(kind string) notify.Event {
		return notify.Event{Kind: kind, StackUID: shopUID, StackName: "shop", Environment: "production",
			Server: "Lion", At: stamp, Source: notify.SourceWebhook}
	}

	tests := []struct {
		name    string
		body    string
		want    notify.Event
		wantErr error // nil: success; errAny: some error
	}{
		{"redeploy ok", stackEvent("stack.redeploy.ok", "success"), deploy(notify.DeploySucceeded), nil},
		{"account redeploy ok", stackEvent("account.redeploy.ok", "success"), deploy(notify.DeploySucceeded), nil},
		{"redeploy fail", stackEvent("stack.redeploy.fail", "failed"), deploy(notify.DeployFailed), nil},
		{"account redeploy fail", stackEvent("account.redeploy.fail", "failed"), deploy(notify.DeployFailed), nil},
		{"cancelled", stackEvent("stack.redeploy.fail", "cancelled"), deploy(notify.DeployCancelled), nil},
		{"canceled as {code, meaning}", strings.Replace(stackEvent("stack.redeploy.fail", ""), `"outcome": ""`, `"outcome": {"code": 3, "meaning": "Canceled"}`, 1), deploy(notify.DeployCancelled), nil},
		{"deploy started", stackEvent("stack.deploy.started", "pending"), deploy(notify.DeployStarted), nil},
		{"account deploy started", stackEvent("account.deploy.started", "pending"), deploy(notify.DeployStarted), nil},
		{"event type case and spaces", stackEvent(" Stack.Redeploy.OK ", "success"), deploy(notify.DeploySucceeded), nil},
		{
			"server stopped, server object",
			`{"timestamp": 1704112245, "event_type": "server.stopped", "uid": "aaa111", "status": 1,
			  "server": {"uid": "aaa111", "name": "Lion", "stack_uid": "` + shopUID + `", "stack_name": "shop", "environment": "production"}}`,
			server(notify.ServerStopped), nil,
		},
		{
			"server back, stack nested",
			`{"timestamp": "1704112245", "event_type": "server.backon", "uid": "aaa111", "name": "Lion",
			  "stack": {"uid": "` + shopUID + `", "name": "shop", "environment": "production"}}`,
			server(notify.ServerBack), nil,
		},
		{
			"string ISO timestamp",
			strings.Replace(stackEvent("stack.redeploy.ok", "success"), `"timestamp": 1704112245`, `"timestamp": "2024-01-01T12:30:45Z"`, 1),
			deploy(notify.DeploySucceeded), nil,
		},
		{
			"no timestamp: finished_at",
			strings.Replace(stackEvent("stack.redeploy.ok", "success"), `"timestamp": 1704112245,`, ``, 1),
			func() notify.Event { ev := deploy(notify.DeploySucceeded); ev.At = finished; return ev }(), nil,
		},
		{
			"garbage timestamp: finished_at",
			strings.Replace(stackEvent("stack.redeploy.ok", "success"), `"timestamp": 1704112245`, `"timestamp": {"x": 1}`, 1),
			func() notify.Event { ev := deploy(notify.DeploySucceeded); ev.At = finished; return ev }(), nil,
		},
		{
			"optional git fields and deployment id",
			`{"timestamp": 1704112245, "event_type": "stack.redeploy.ok", "uid": "` + shopUID + `", "name": "shop", "environment": "production",
			  "git_ref": "main", "deploy_context": {"triggered_by": "ana@example.com", "outcome": "success", "started_at": "2024-01-01T12:00:00Z",
			  "git_hash": "6507918abc", "deployment_id": "10001", "message": "Completed successfully"}}`,
			func() notify.Event {
				ev := deploy(notify.DeploySucceeded)
				ev.GitRef, ev.GitHash, ev.DeploymentID, ev.Text = "main", "6507918abc", 10001, "Completed successfully"
				return ev
			}(), nil,
		},
		{
			"hostile stack name kept raw (Message escapes it)",
			strings.Replace(stackEvent("stack.redeploy.ok", "success"), `"name": "shop"`, `"name": "<!channel> & <@U123|boss>"`, 1),
			func() notify.Event {
				ev := deploy(notify.DeploySucceeded)
				ev.StackName = "<!channel> & <@U123|boss>"
				return ev
			}(), nil,
		},
		{"ignored type", `{"event_type": "stack.created", "uid": "` + shopUID + `"}`, notify.Event{}, notify.ErrIgnored},
		{"ignored type without uid", `{"event_type": "job.fail"}`, notify.Event{}, notify.ErrIgnored},
		{"malformed JSON", `{"event_type": "stack.redeploy.ok", "uid": `, notify.Event{}, errAny},
		{"not an object", `["stack.redeploy.ok"]`, notify.Event{}, errAny},
		{"empty", ``, notify.Event{}, errAny},
		{"no event type", `{"uid": "` + shopUID + `"}`, notify.Event{}, errAny},
		{"missing stack uid", `{"event_type": "stack.redeploy.ok", "name": "shop"}`, notify.Event{}, notify.ErrNoStack},
		{
			"documented server payload has no stack",
			`{"timestamp": 1640995200, "event_type": "server.stopped", "uid": "550e8400-e29b-41d4-a716-446655440001", "status": 1, "server": "550e8400-e29b-41d4-a716-446655440001"}`,
			notify.Event{}, notify.ErrNoStack,
		},
		{"hostile uid", `{"event_type": "stack.redeploy.ok", "uid": "abc|<!channel>"}`, notify.Event{}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := notify.DecodeWebhook([]byte(tt.body))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == nil:
				if !equalEvents(got, tt.want) {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
			case err == nil:
				t.Fatalf("no error, got %+v", got)
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

func equalEvents(a, b notify.Event) bool {
	return a.At.Equal(b.At) && a.StartedAt.Equal(b.StartedAt) &&
		a.Kind == b.Kind && a.StackUID == b.StackUID && a.StackName == b.StackName && a.Environment == b.Environment &&
		a.DeploymentID == b.DeploymentID && a.GitHash == b.GitHash && a.GitRef == b.GitRef && a.TriggeredBy == b.TriggeredBy &&
		a.Server == b.Server && a.Text == b.Text && a.Source == b.Source && a.Team == b.Team
}

func TestDocumentedServerPayloadCanBeCompletedByTheHandler(t *testing.T) {
	body := `{"timestamp": 1640995200, "event_type": "server.backon", "uid": "550e8400-e29b-41d4-a716-446655440001", "status": 1, "server": "550e8400-e29b-41d4-a716-446655440001"}`
	ev, err := notify.DecodeWebhook([]byte(body))
	if !errors.Is(err, notify.ErrNoStack) {
		t.Fatalf("error %v, want ErrNoStack", err)
	}
	if ev.Kind != notify.ServerBack || ev.Server != "550e8400-e29b-41d4-a716-446655440001" || ev.At.Unix() != 1640995200 {
		t.Errorf("partial event %+v", ev)
	}
}

// TestKeyJoinsWebhookAndPoll: the webhook and the deployments list report
// the same deployment with the same key, whatever else differs.
func TestKeyJoinsWebhookAndPoll(t *testing.T) {
	e := newEnv(t, fastPolling)
	uid := e.uid("shop", "production")
	e.subscribe(ana, "C1", "shop", "production")
	e.Clock.Advance(time.Minute)
	e.redeploy(uid, "v2.1")
	e.Clock.Advance(4 * time.Minute)
	deps, _, err := e.Client(e.Tokens[ana]).ListDeploymentsPage(t.Context(), uid, 1)
	if err != nil {
		t.Fatal(err)
	}
	d := deps[0]

	polled := notify.Event{Kind: notify.DeploySucceeded, StackUID: uid, DeploymentID: d.ID, GitHash: d.GitHash,
		At: d.FinishedAt.Time, StartedAt: d.StartedAt.Time, Source: notify.SourcePoll}
	body := webhookJSON("stack.redeploy.ok", uid, "shop", "production", d.StartedAt.Time, d.FinishedAt.Time.Add(2*time.Second), "success")
	hooked, err := notify.DecodeWebhook(body)
	if err != nil {
		t.Fatal(err)
	}
	if polled.Key() != hooked.Key() {
		t.Errorf("keys differ:\npoll    %s\nwebhook %s", polled.Key(), hooked.Key())
	}
	if want := "deploy:" + uid + ":"; !strings.HasPrefix(hooked.Key(), want) {
		t.Errorf("key %s", hooked.Key())
	}

	// Sub-second differences in how the start is printed do not matter.
	withMillis := webhookJSON("stack.redeploy.ok", uid, "shop", "production", d.StartedAt.Time.Add(400*time.Millisecond), d.FinishedAt.Time, "success")
	hooked2, _ := notify.DecodeWebhook(withMillis)
	if hooked2.Key() != polled.Key() {
		t.Errorf("key changed with milliseconds: %s", hooked2.Key())
	}
	other := hooked
	other.Kind = notify.DeployStarted
	if other.Key() == hooked.Key() {
		t.Error("started and succeeded share a key")
	}
}

func TestKeyFallbacks(t *testing.T) {
	at := time.Date(2025, 3, 4, 10, 7, 30, 0, time.UTC)
	byID := notify.Event{Kind: notify.DeployFailed, StackUID: "u1", DeploymentID: 42, At: at}
	if got := byID.Key(); got != "deploy:u1:42:deploy.failed" {
		t.Errorf("by id: %s", got)
	}
	a := notify.Event{Kind: notify.DeploySucceeded, StackUID: "u1", At: at, Source: notify.SourceAPI}
	b := a
	b.At = at.Add(time.Nanosecond)
	if a.Key() == b.Key() {
		t.Error("two API calls share a key")
	}
	s1 := notify.Event{Kind: notify.ServerStopped, StackUID: "u1", Server: "Lion", At: at}
	s2 := s1
	s2.At = at.Add(2 * time.Minute)
	if s1.Key() != s2.Key() || s1.Key() != "server:u1:Lion:server.stopped:"+strconv.FormatInt(time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC).Unix(), 10) {
		t.Errorf("server keys %s, %s", s1.Key(), s2.Key())
	}
}

// FuzzDecodeWebhook checks that no body panics DecodeWebhook or what
// follows it, and that a decoded event is always deliverable.
func FuzzDecodeWebhook(f *testing.F) {
	f.Add([]byte(`{"timestamp":1640995200,"event_type":"stack.redeploy.ok","uid":"abc123def456","name":"shop","environment":"production","deploy_context":{"triggered_by":"user@example.com","outcome":"success","started_at":"2024-01-01T12:00:00Z","finished_at":"2024-01-01T12:30:45Z"}}`))
	f.Add([]byte(`{"timestamp":"1640995200","event_type":"server.stopped","uid":"s1","server":{"name":"Lion","stack_uid":"abc"}}`))
	f.Add([]byte(`{"event_type":"stack.redeploy.fail","uid":"a","deploy_context":{"outcome":{"code":3,"meaning":"cancelled"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := notify.DecodeWebhook(body)
		if err != nil {
			return
		}
		if ev.Source != notify.SourceWebhook || ev.StackUID == "" || ev.Key() == "" {
			t.Fatalf("decoded event incomplete: %+v", ev)
		}
		valid := false
		for _, k := range notify.AllEvents {
			valid = valid || k == ev.Kind
		}
		if !valid {
			t.Fatalf("kind %q", ev.Kind)
		}
		// The only '<' a post may hold is the dashboard link's: anything
		// else from the body would be a mention or a link Slack acts on.
		m := notify.Message(ev, cloud66.DefaultBaseURL)
		texts := append([]string{m.Text}, blockTexts(m.Blocks)...)
		if n := strings.Count(strings.Join(texts, "\n"), "<"); n != 1 {
			t.Fatalf("%d '<' in %q", n, texts)
		}
	})
}
