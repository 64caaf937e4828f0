package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

var (
	ana   = storage.Identity{Team: "T1", User: "UANA"}
	ben   = storage.Identity{Team: "T1", User: "UBEN"}
	dan   = storage.Identity{Team: "T1", User: "UDAN"}
	eve   = storage.Identity{Team: "T1", User: "UEVE"}
	boss  = storage.Identity{Team: "T1", User: "UBOSS"}
	carol = storage.Identity{Team: "T1", User: "UCAROL"} // never linked
	t0    = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	hooks = "https://hooks.slack.com/commands/T1/1/abc"
)

// call is one recorded Slack call.
type call struct {
	Kind    string // post, update, thread, respond, ephemeral, dm
	Channel string
	TS      string // post: the ts returned; update/thread: the ts addressed
	User    string // ephemeral: the user; dm: the recipient
	URL     string // respond
	Msg     chat.Message
}

// text is everything a person could read in the call: the fallback and the
// blocks as JSON.
func (c call) text() string {
	return c.Msg.Text + "\n" + blocksJSON(c.Msg.Blocks)
}

// blocksJSON is blocks as JSON with Go's HTML escapes (\u003c for <, and
// so on) undone, so tests see the mrkdwn exactly as Slack will read it.
// Some slack-go blocks marshal themselves and escape regardless of the
// encoder's setting, hence the replacer.
func blocksJSON(blocks any) string {
	b, err := json.Marshal(blocks)
	if err != nil {
		return "!" + err.Error()
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// fakeSlack records every call under a mutex. Channels in cannot answer
// Post with ErrCannotPost, as for a channel the bot is not in.
type fakeSlack struct {
	mu     sync.Mutex
	cannot map[string]bool
	calls  []call
	seq    int
}

func newFakeSlack() *fakeSlack { return &fakeSlack{cannot: map[string]bool{}} }

func (f *fakeSlack) record(c call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeSlack) Post(_ context.Context, channel string, m chat.Message) (string, error) {
	f.mu.Lock()
	if f.cannot[channel] {
		f.mu.Unlock()
		return "", fmt.Errorf("%w (not_in_channel)", chat.ErrCannotPost)
	}
	f.seq++
	ts := fmt.Sprintf("1741082400.%06d", f.seq)
	f.mu.Unlock()
	f.record(call{Kind: "post", Channel: channel, TS: ts, Msg: m})
	return ts, nil
}

func (f *fakeSlack) Update(_ context.Context, channel, ts string, m chat.Message) error {
	f.record(call{Kind: "update", Channel: channel, TS: ts, Msg: m})
	return nil
}

func (f *fakeSlack) Thread(_ context.Context, channel, ts string, m chat.Message) error {
	f.record(call{Kind: "thread", Channel: channel, TS: ts, Msg: m})
	return nil
}

func (f *fakeSlack) Respond(_ context.Context, url string, m chat.Message) error {
	f.record(call{Kind: "respond", URL: url, Msg: m})
	return nil
}

func (f *fakeSlack) Ephemeral(_ context.Context, channel, user string, m chat.Message) error {
	f.mu.Lock()
	cannot := f.cannot[channel]
	f.mu.Unlock()
	if cannot {
		return chat.ErrCannotPost
	}
	f.record(call{Kind: "ephemeral", Channel: channel, User: user, Msg: m})
	return nil
}

func (f *fakeSlack) DM(_ context.Context, to storage.Identity, m chat.Message) error {
	f.record(call{Kind: "dm", User: to.User, Msg: m})
	return nil
}

// of returns the recorded calls of kind ("" = all).
func (f *fakeSlack) of(kind string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if kind == "" || c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// last returns the newest call of kind addressing ts ("" = any), and
// whether there is one.
func (f *fakeSlack) last(kind, ts string) (call, bool) {
	calls := f.of(kind)
	for i := len(calls) - 1; i >= 0; i-- {
		if ts == "" || calls[i].TS == ts {
			return calls[i], true
		}
	}
	return call{}, false
}

// env is one test's world: a fake Cloud 66 on a frozen clock, a real store,
// a recording Slack and a Service running.
type env struct {
	t      *testing.T
	c66    *cloud66test.Server
	clock  *cloud66test.Clock
	store  *storage.DB
	key    []byte // the store's sealing key
	slack  *fakeSlack
	tokens map[storage.Identity]string
	svc    *deploy.Service
	stop   func() // stops Run and waits for it
	copts  []cloud66.Option
	groups *fakeGroups
}

type envOpt func(*envConfig)

type envConfig struct {
	duration time.Duration
	poll     deploy.PollConfig
	sleep    func(*env) func(context.Context, time.Duration) error
	copts    []cloud66.Option
	policy   string              // policy file YAML; "" = Config.Policy nil
	groups   map[string][]string // user id -> user-group ids
}

func withDuration(d time.Duration) envOpt { return func(c *envConfig) { c.duration = d } }
func withPoll(p deploy.PollConfig) envOpt { return func(c *envConfig) { c.poll = p } }
func withClientOptions(o ...cloud66.Option) envOpt {
	return func(c *envConfig) { c.copts = o }
}
func withSleep(f func(*env) func(context.Context, time.Duration) error) envOpt {
	return func(c *envConfig) { c.sleep = f }
}

// withPolicy runs the service under a real policy parsed from yaml.
func withPolicy(yaml string) envOpt { return func(c *envConfig) { c.policy = yaml } }

// withGroups puts users in Slack user groups, through Config.Groups.
func withGroups(g map[string][]string) envOpt { return func(c *envConfig) { c.groups = g } }

// fakeGroups is Config.Groups: user groups from a map, or err for every
// lookup when set.
type fakeGroups struct {
	mu     sync.Mutex
	groups map[string][]string
	err    error
	calls  int
}

func (f *fakeGroups) lookup(_ context.Context, user string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return f.groups[user], nil
}

func (f *fakeGroups) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// fastPoll polls every few milliseconds and never runs out of budget.
var fastPoll = deploy.PollConfig{Initial: 2 * time.Millisecond, Max: 8 * time.Millisecond, BudgetPerHour: 10_000_000}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	cfg := envConfig{duration: 3 * time.Minute, poll: fastPoll}
	for _, o := range opts {
		o(&cfg)
	}
	clock := cloud66test.NewClock(t0)
	e := &env{
		t:     t,
		clock: clock,
		c66:   cloud66test.Start(t, cloud66test.WithClock(clock), cloud66test.WithDeployDuration(cfg.duration)),
		slack: newFakeSlack(),
		copts: cfg.copts,
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	store, err := storage.Open(storage.Options{Path: filepath.Join(t.TempDir(), "c66bot.db"), Keys: [][]byte{key}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e.store, e.key = store, key
	e.tokens = map[storage.Identity]string{
		ana: e.c66.IssueToken("ana@example.com"),
		ben: e.c66.IssueToken("ben@example.com"),
		// The fake's seeded users other than ana see few stacks; the
		// policy's people share her Cloud 66 account, as colleagues
		// sharing a login would (each still acts with a token of their own).
		dan:  e.c66.IssueToken("ana@example.com"),
		eve:  e.c66.IssueToken("ana@example.com"),
		boss: e.c66.IssueToken("ana@example.com"),
	}
	if cfg.groups != nil {
		e.groups = &fakeGroups{groups: cfg.groups}
	}
	e.svc = e.newService(cfg)
	e.stop = e.run(e.svc)
	t.Cleanup(e.stop)
	return e
}

// storesOf returns the stores of db that deploy uses.
func storesOf(db *storage.DB) deploy.Stores {
	return deploy.Stores{Intents: db.Intents(), Locks: db.Locks(), Watches: db.Watches(), Audit: db.Audit()}
}

func (e *env) newService(cfg envConfig) *deploy.Service {
	dc := deploy.Config{
		Stores:     storesOf(e.store),
		Cloud66For: e.client,
		Slack:      e.slack,
		Cloud66URL: e.c66.URL,
		Command:    "/c66",
		Now:        e.clock.Now,
		Poll:       cfg.poll,
	}
	if cfg.policy != "" {
		pol, err := policy.Parse("test.yaml", []byte(cfg.policy))
		if err != nil {
			e.t.Fatal(err)
		}
		dc.Policy = pol
	}
	if e.groups != nil {
		dc.Groups = e.groups.lookup
	}
	svc := deploy.New(dc)
	if cfg.sleep != nil {
		deploy.SetSleep(svc, cfg.sleep(e))
	}
	return svc
}

// client is Config.Cloud66For: the person's own client, without the
// client's own GET retries so the watcher's backoff is what is tested.
func (e *env) client(_ context.Context, id storage.Identity) (deploy.Cloud66, error) {
	tok, ok := e.tokens[id]
	if !ok {
		return nil, accounts.ErrNotLinked
	}
	return e.rawClient(tok), nil
}

func (e *env) rawClient(tok string) *cloud66.Client {
	opts := append([]cloud66.Option{cloud66.WithBaseURL(e.c66.URL), cloud66.WithToken(tok), cloud66.WithRetry(0, 0)}, e.copts...)
	c, err := cloud66.NewClient(opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run starts svc.Run and returns a func that stops it and waits.
func (e *env) run(svc *deploy.Service) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				e.t.Error("Run did not return after its context ended")
			}
		})
	}
}

func (e *env) stack(name, environment string) cloud66.Stack {
	uid := e.c66.StackUID(name, environment)
	if uid == "" {
		e.t.Fatalf("no seeded stack %s:%s", name, environment)
	}
	return cloud66.Stack{UID: uid, Name: name, Environment: environment}
}

func origin(id storage.Identity, channel, request string) deploy.Origin {
	return deploy.Origin{Identity: id, Channel: channel, ResponseURL: hooks, RequestID: request}
}

// posts counts redeploy POSTs received by the fake Cloud 66.
func (e *env) posts() int { return e.c66.RequestCount("POST", "/api/3/stacks/") }

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitState waits until the stored watch id reaches state.
func (e *env) waitState(id string, state storage.WatchState) storage.Watch {
	e.t.Helper()
	var w storage.Watch
	eventually(e.t, "watch "+id+" to be "+string(state), func() bool {
		got, err := e.store.Watches().Get(context.Background(), id)
		w = got
		return err == nil && got.State == state
	})
	return w
}

// waitCard waits until the newest update of the card ts contains all of want.
func (e *env) waitCard(ts string, want ...string) call {
	e.t.Helper()
	var c call
	eventually(e.t, fmt.Sprintf("card %s to show %q", ts, want), func() bool {
		got, ok := e.slack.last("update", ts)
		c = got
		return ok && containsAll(got.text(), want...)
	})
	return c
}

// waitPolls waits until the watcher has polled n more times than now.
func (e *env) waitPolls(id string, n int) {
	e.t.Helper()
	start := e.c66.RequestCount("GET", "/api/3/stacks/")
	eventually(e.t, "more polls", func() bool { return e.c66.RequestCount("GET", "/api/3/stacks/") >= start+n })
}

func containsAll(s string, want ...string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// liveHash is the git hash of the stack's is_live deployment, read directly.
func (e *env) liveHash(uid string) string {
	deps, _, err := e.rawClient(e.tokens[ana]).ListDeploymentsPage(context.Background(), uid, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range deps {
		if d.IsLive {
			return d.GitHash
		}
	}
	return ""
}

// newestDeployment is the newest deployment of the stack, read directly.
func (e *env) newestDeployment(uid string) cloud66.Deployment {
	deps, _, err := e.rawClient(e.tokens[ana]).ListDeploymentsPage(context.Background(), uid, 1)
	if err != nil || len(deps) == 0 {
		e.t.Fatalf("deployments of %s: %v", uid, err)
	}
	return deps[0]
}
