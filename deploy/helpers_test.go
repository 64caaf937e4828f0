package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
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

// env is one test's world (a fake Cloud 66 on a frozen clock, a real
// store, a recording Slack) with a deploy Service running.
type env struct {
	*testenv.World
	t      *testing.T
	svc    *deploy.Service
	stop   func()                                                          // stops Run and waits for it
	client func(context.Context, storage.Identity) (deploy.Cloud66, error) // Config.Cloud66For
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
	e := &env{World: testenv.New(t, t0, cfg.duration), t: t}
	// The watcher's own backoff is what is tested, so the clients do not
	// retry (testenv's Client), and a test may add options of its own.
	e.ClientOptions = cfg.copts
	e.client = testenv.Cloud66For[deploy.Cloud66](e.World)
	e.Link(ana, "ana@example.com")
	e.Link(ben, "ben@example.com")
	// The fake's seeded users other than ana see few stacks; the policy's
	// people share her Cloud 66 account, as colleagues sharing a login
	// would (each still acts with a token of their own).
	for _, id := range []storage.Identity{dan, eve, boss} {
		e.Link(id, "ana@example.com")
	}
	if cfg.groups != nil {
		e.groups = &fakeGroups{groups: cfg.groups}
	}
	e.svc = e.newService(cfg)
	e.stop = testenv.Run(t, e.svc.Run)
	t.Cleanup(e.stop)
	return e
}

// storesOf returns the stores of db that deploy uses.
func storesOf(db *storage.DB) deploy.Stores {
	return deploy.Stores{Intents: db.Intents(), Locks: db.Locks(), Watches: db.Watches(), Audit: db.Audit()}
}

func (e *env) newService(cfg envConfig) *deploy.Service {
	dc := deploy.Config{
		Stores:     storesOf(e.Store),
		Cloud66For: e.client,
		Slack:      e.Slack,
		Cloud66URL: e.C66.URL,
		Command:    "/c66",
		Now:        e.Clock.Now,
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

func (e *env) stack(name, environment string) cloud66.Stack {
	uid := e.C66.StackUID(name, environment)
	if uid == "" {
		e.t.Fatalf("no seeded stack %s:%s", name, environment)
	}
	return cloud66.Stack{UID: uid, Name: name, Environment: environment}
}

func origin(id storage.Identity, channel, request string) deploy.Origin {
	return deploy.Origin{Identity: id, Channel: channel, ResponseURL: hooks, RequestID: request}
}

// posts counts redeploy POSTs received by the fake Cloud 66.
func (e *env) posts() int { return e.C66.RequestCount("POST", "/api/3/stacks/") }

// waitState waits until the stored watch id reaches state.
func (e *env) waitState(id string, state storage.WatchState) storage.Watch {
	e.t.Helper()
	var w storage.Watch
	testenv.Eventually(e.t, "watch "+id+" to be "+string(state), func() bool {
		got, err := e.Store.Watches().Get(context.Background(), id)
		w = got
		return err == nil && got.State == state
	})
	return w
}

// waitCard waits until the newest update of the card ts contains all of want.
func (e *env) waitCard(ts string, want ...string) testenv.Call {
	e.t.Helper()
	var c testenv.Call
	testenv.Eventually(e.t, fmt.Sprintf("card %s to show %q", ts, want), func() bool {
		got, ok := e.Slack.Last("update", ts)
		c = got
		return ok && containsAll(got.Text(), want...)
	})
	return c
}

// waitPolls waits until the watcher has polled n more times than now.
func (e *env) waitPolls(id string, n int) {
	e.t.Helper()
	start := e.C66.RequestCount("GET", "/api/3/stacks/")
	testenv.Eventually(e.t, "more polls", func() bool { return e.C66.RequestCount("GET", "/api/3/stacks/") >= start+n })
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
	deps, _, err := e.Client(e.Tokens[ana]).ListDeploymentsPage(context.Background(), uid, 1)
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
	deps, _, err := e.Client(e.Tokens[ana]).ListDeploymentsPage(context.Background(), uid, 1)
	if err != nil || len(deps) == 0 {
		e.t.Fatalf("deployments of %s: %v", uid, err)
	}
	return deps[0]
}
