package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/storage"
)

// fuzzSlackAPI is the Slack API base the fuzzed bot is configured with; its
// host is, with hooks.slack.com, the only place a response_url may go.
const fuzzSlackAPI = "http://slack.fuzz.invalid/api/"

// fuzzDeployer is a harmless commands.Deployer: it records which button
// methods ran and with what, and sends nothing anywhere. Its results carry
// the untrusted value, so the replies render it.
type fuzzDeployer struct {
	mu    sync.Mutex
	calls []fuzzCall
}

type fuzzCall struct {
	method, value string
	by            storage.Identity
}

func (d *fuzzDeployer) record(method, value string, by storage.Identity) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, fuzzCall{method, value, by})
}

func (d *fuzzDeployer) take() []fuzzCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

var errFuzzRefused = errors.New("fuzz: refused")

func (d *fuzzDeployer) Deploy(context.Context, deploy.Origin, cloud66.Stack, deploy.Params) (deploy.Result, error) {
	d.record("Deploy", "", storage.Identity{})
	return deploy.Result{}, errFuzzRefused
}

func (d *fuzzDeployer) Confirm(_ context.Context, id string, by storage.Identity) (*storage.Watch, error) {
	d.record(commands.ActionDeployConfirm, id, by)
	if len(id)%2 == 0 {
		return nil, deploy.ErrNotYours
	}
	return &storage.Watch{StackName: id, Environment: id, Owner: by}, nil
}

func (d *fuzzDeployer) Abort(_ context.Context, id string, by storage.Identity) (storage.Intent, error) {
	d.record(commands.ActionAbort, id, by)
	return storage.Intent{}, deploy.ErrIntentGone
}

func (d *fuzzDeployer) RequestCancel(context.Context, deploy.Origin, cloud66.Stack) (*deploy.Confirmation, error) {
	d.record("RequestCancel", "", storage.Identity{})
	return nil, errFuzzRefused
}

func (d *fuzzDeployer) ConfirmCancel(_ context.Context, id string, by storage.Identity) (cloud66.Deployment, error) {
	d.record(commands.ActionCancelConfirm, id, by)
	return cloud66.Deployment{ID: int64(len(id))}, nil
}

func (d *fuzzDeployer) Lock(context.Context, deploy.Origin, cloud66.Stack, string) (deploy.LockResult, error) {
	d.record("Lock", "", storage.Identity{})
	return deploy.LockResult{}, errFuzzRefused
}

func (d *fuzzDeployer) Unlock(context.Context, deploy.Origin, cloud66.Stack) (deploy.UnlockResult, error) {
	d.record("Unlock", "", storage.Identity{})
	return deploy.UnlockResult{}, errFuzzRefused
}

func (d *fuzzDeployer) ConfirmUnlock(_ context.Context, id string, by storage.Identity) (storage.Lock, error) {
	d.record(commands.ActionUnlockConfirm, id, by)
	return storage.Lock{StackName: id, Environment: id, Owner: storage.Identity{Team: by.Team, User: id}}, nil
}

func (d *fuzzDeployer) Locks(context.Context, string) ([]storage.Lock, error) {
	d.record("Locks", "", storage.Identity{})
	return nil, errFuzzRefused
}

func (d *fuzzDeployer) Approve(_ context.Context, id string, by storage.Identity) (deploy.ApprovalState, error) {
	d.record(deploy.ActionApprove, id, by)
	return deploy.ApprovalState{Needed: len(id)}, nil
}

func (d *fuzzDeployer) Reject(_ context.Context, id string, by storage.Identity) error {
	d.record(deploy.ActionReject, id, by)
	return deploy.ErrOwnApproval
}

func (d *fuzzDeployer) Override(_ context.Context, id string, by storage.Identity) (deploy.Result, error) {
	d.record(commands.ActionOverride, id, by)
	return deploy.Result{}, storage.ErrIntentExpired
}

func (d *fuzzDeployer) MayUse(context.Context, storage.Identity, deploy.Verb) bool { return true }

func (d *fuzzDeployer) Change(context.Context, deploy.Origin, cloud66.Stack, deploy.Change) (deploy.Result, error) {
	d.record("Change", "", storage.Identity{})
	return deploy.Result{}, errFuzzRefused
}

func (d *fuzzDeployer) Rollback(context.Context, deploy.Origin, cloud66.Stack, string, bool) (deploy.Result, error) {
	d.record("Rollback", "", storage.Identity{})
	return deploy.Result{}, errFuzzRefused
}

func (d *fuzzDeployer) RetryFromOffer(_ context.Context, id string, o deploy.Origin) (deploy.Result, error) {
	d.record(deploy.ActionRetry, id, o.Identity)
	return deploy.Result{}, deploy.ErrIntentGone
}

func (d *fuzzDeployer) RollbackFromOffer(_ context.Context, id string, o deploy.Origin) (deploy.Result, error) {
	d.record(deploy.ActionRollback, id, o.Identity)
	return deploy.Result{}, deploy.ErrIntentGone
}

func (d *fuzzDeployer) OfferRollback(context.Context, deploy.Origin, cloud66.Stack, string) (string, error) {
	return "", errFuzzRefused
}

func (d *fuzzDeployer) Reboot(context.Context, deploy.Origin, cloud66.Stack, deploy.RebootTarget) (deploy.Result, error) {
	d.record("Reboot", "", storage.Identity{})
	return deploy.Result{}, errFuzzRefused
}

// buttonActions are the action ids the router owns.
var buttonActions = map[string]bool{
	commands.ActionDeployConfirm: true, commands.ActionCancelConfirm: true, commands.ActionUnlockConfirm: true,
	commands.ActionAbort: true, deploy.ActionApprove: true, deploy.ActionReject: true, commands.ActionOverride: true,
	deploy.ActionRollback: true, deploy.ActionRetry: true,
	commands.ActionLockNotify: true, commands.ActionLockQueue: true,
}

// fuzzTransport answers every outbound request itself (nothing leaves the
// process) and remembers where each one went.
type fuzzTransport struct {
	mu   sync.Mutex
	reqs []fuzzRequest
}

type fuzzRequest struct {
	url  *url.URL
	body []byte
}

func (f *fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, fuzzRequest{r.URL, body})
	f.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Request: r}, nil
}

func (f *fuzzTransport) take() []fuzzRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reqs
	f.reqs = nil
	return r
}

// newFuzzBot is the real Bot from New (nothing started, nothing dialled),
// with a harmless router in place of the real one.
func newFuzzBot(f *testing.F) (*Bot, *fuzzDeployer, *fuzzTransport) {
	tr := &fuzzTransport{}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	d := &fuzzDeployer{}
	b := New(Config{
		API:         slack.New("xoxb-fuzz", slack.OptionAppLevelToken("xapp-1-A0FUZZ-1-fake"), slack.OptionAPIURL(fuzzSlackAPI), slack.OptionHTTPClient(client)),
		SlackAPIURL: fuzzSlackAPI,
		Router:      commands.NewRouter(commands.Deps{Deploy: d, Command: "/c66"}),
		Replies:     NewReplier(client, fuzzSlackAPI, nil),
		Logger:      slog.New(slog.DiscardHandler),
		Workers:     2, Queue: 64, CommandTimeout: 5 * time.Second, ShutdownTimeout: 10 * time.Second,
	})
	return b, d, tr
}

// responseURLAllowed is the allowlist of DESIGN.md, written apart from
// reply.go: https on hooks.slack.com, or the configured Slack API host.
// Host names compare case-insensitively, as DNS does.
func responseURLAllowed(u *url.URL) bool {
	if u.User != nil {
		return false
	}
	switch {
	case u.Scheme == "https" && strings.EqualFold(u.Host, "hooks.slack.com"):
		return true
	case (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, "slack.fuzz.invalid"):
		return true
	}
	return false
}

// FuzzInteractionPayload feeds arbitrary bytes as the payload of a Socket
// Mode "interactive" envelope through the bot: decoded exactly as slack-go's
// socketmode does, then handleEvent (ack, dedup, the pool, the router, the
// reply). Nothing may panic; only the router's own action ids reach the
// Deployer, each with its button's value and the presser's identity; replies
// go only to allowed response_urls and never carry a broadcast mention.
func FuzzInteractionPayload(f *testing.F) {
	f.Add([]byte(`{"type":"block_actions","user":{"id":"U0ANA","team_id":"T0TEST"},"team":{"id":"T0TEST"},"channel":{"id":"C0GENERAL"},"response_url":"https://hooks.slack.com/actions/T0TEST/1/x","actions":[{"action_id":"deploy_confirm","block_id":"b","value":"<!channel>","type":"button"}]}`))
	f.Add([]byte(`{"type":"block_actions","user":{"id":"U0ANA"},"team":{"id":"T0TEST"},"container":{"channel_id":"C0GENERAL"},"response_url":"http://evil.example/x","actions":[{"action_id":"unlock_confirm","value":"x"},{"action_id":"nope","value":"y"}]}`))
	f.Add([]byte(`{"type":"view_submission","actions":[{"action_id":"deploy_confirm","value":"x"}]}`))
	b, d, tr := newFuzzBot(f)
	var envelope atomic.Int64

	f.Fuzz(func(t *testing.T, payload []byte) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal(payload, &cb); err != nil {
			return // socketmode drops the envelope with an error event
		}
		b.socket = socketmode.New(b.cfg.API) // a fresh ack buffer; nothing reads it
		b.pool = newPool(2, 64, admission.NewGate(1))
		d.take()
		tr.take()
		env := &socketmode.Request{Type: socketmode.RequestTypeInteractive, EnvelopeID: fmt.Sprintf("fuzz-%d", envelope.Add(1)), Payload: payload}
		b.handleEvent(context.Background(), socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb, Request: env})
		if !b.pool.shutdown(10 * time.Second) {
			t.Fatal("an action did not finish within 10 s")
		}

		var want []string
		if cb.Type == slack.InteractionTypeBlockActions {
			for _, a := range cb.ActionCallback.BlockActions {
				if a != nil && buttonActions[a.ActionID] {
					want = append(want, a.ActionID+"\x00"+a.Value)
				}
			}
		}
		calls := d.take()
		if len(calls) != len(want) {
			t.Fatalf("the Deployer ran %d times for %d known buttons: %+v", len(calls), len(want), calls)
		}
		team := cb.User.TeamID
		if team == "" {
			team = cb.Team.ID
		}
		if cb.Enterprise.ID != "" {
			team = cb.Enterprise.ID
		}
		got := map[string]int{}
		for _, c := range calls {
			if _, known := buttonActions[c.method]; !known {
				t.Fatalf("a button ran the Deployer's %s", c.method)
			}
			if c.by.User != cb.User.ID || c.by.Team != team {
				t.Fatalf("%s ran as %+v; the payload's presser is %q of %q", c.method, c.by, cb.User.ID, team)
			}
			got[c.method+"\x00"+c.value]++
		}
		for _, w := range want {
			if got[w] == 0 {
				t.Fatalf("button %q did not reach the Deployer with its value", strings.SplitN(w, "\x00", 2)[0])
			}
			got[w]--
		}

		for _, r := range tr.take() {
			if !responseURLAllowed(r.url) {
				t.Fatalf("the bot sent a request to %q", r.url)
			}
			var msg struct {
				Text   string          `json:"text"`
				Blocks json.RawMessage `json:"blocks"`
			}
			_ = json.Unmarshal(r.body, &msg)
			all := msg.Text + string(bytes.ReplaceAll(bytes.ReplaceAll(msg.Blocks, []byte(`\u003c`), []byte("<")), []byte(`\u003e`), []byte(">")))
			for _, bad := range []string{"<!channel", "<!here", "<!everyone", "<!subteam"} {
				if strings.Contains(all, bad) {
					t.Fatalf("a reply carries %q unescaped: %s", bad, r.body)
				}
			}
		}
	})
}
