package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// fakeLinker is an in-memory account service.
type fakeLinker struct {
	mu       sync.Mutex
	links    map[storage.Identity]storage.Link
	oob      bool
	begun    int
	unlinked int
	dropped  []string // why, of each DropLink
	// unlinkErr fails Unlink and DropLink, as a store that cannot write.
	unlinkErr error
}

func (f *fakeLinker) BeginLogin(_ context.Context, r accounts.LoginRequest) (accounts.LoginStart, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begun++
	return accounts.LoginStart{State: "STATE", AuthorizeURL: "https://c66.example/oauth/authorize?state=STATE", OutOfBand: f.oob}, nil
}

func (f *fakeLinker) CompleteOutOfBand(_ context.Context, id storage.Identity, code string) (accounts.Linked, error) {
	if code != "good-code" {
		return accounts.Linked{}, accounts.ErrCodeRejected
	}
	return accounts.Linked{Identity: id, Account: "Acme", Stacks: 3, Scopes: []string{"public", "redeploy"}}, nil
}

func (f *fakeLinker) Link(_ context.Context, id storage.Identity) (storage.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[id]
	if !ok {
		return storage.Link{}, accounts.ErrNotLinked
	}
	return l, nil
}

func (f *fakeLinker) Unlink(_ context.Context, id storage.Identity) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unlinkErr != nil {
		return false, f.unlinkErr
	}
	_, ok := f.links[id]
	delete(f.links, id)
	f.unlinked++
	return ok, nil
}

func (f *fakeLinker) DropLink(ctx context.Context, id storage.Identity, why string) (bool, error) {
	f.mu.Lock()
	f.dropped = append(f.dropped, why)
	f.mu.Unlock()
	return f.Unlink(ctx, id)
}

func (f *fakeLinker) OutOfBand() bool { return f.oob }

// fakeCloud66 answers from fixed data, or with err when set.
type fakeCloud66 struct {
	stacks      []cloud66.Stack
	servers     map[string][]cloud66.Server
	deployments map[string][]cloud66.Deployment
	err         error
}

func (f *fakeCloud66) ListStacks(context.Context) ([]cloud66.Stack, error) {
	if f.err != nil {
		return nil, f.err
	}
	return append([]cloud66.Stack(nil), f.stacks...), nil
}

func (f *fakeCloud66) GetStack(_ context.Context, uid string) (*cloud66.Stack, error) {
	for _, s := range f.stacks {
		if s.UID == uid {
			return &s, nil
		}
	}
	return nil, &cloud66.ErrorResponse{StatusCode: 404, Code: "not_found"}
}

func (f *fakeCloud66) ListDeploymentsPage(_ context.Context, uid string, _ int) ([]cloud66.Deployment, cloud66.Pagination, error) {
	if f.err != nil {
		return nil, cloud66.Pagination{}, f.err
	}
	return f.deployments[uid], cloud66.Pagination{Current: 1}, nil
}

func (f *fakeCloud66) ListServers(_ context.Context, uid string) ([]cloud66.Server, error) {
	return f.servers[uid], nil
}

func (f *fakeCloud66) GetServer(_ context.Context, uid, suid string) (*cloud66.Server, error) {
	for _, s := range f.servers[uid] {
		if s.UID == suid {
			return &s, nil
		}
	}
	return nil, &cloud66.ErrorResponse{StatusCode: 404, Code: "not_found"}
}

var ana = Request{TeamID: "T1", UserID: "U1", ChannelID: "C1", ResponseURL: "https://hooks.slack.com/x", RequestID: "req1"}

func testStacks() []cloud66.Stack {
	return []cloud66.Stack{
		{UID: "uid-shop-p", Name: "shop", Environment: "production", AccountName: "Acme", Status: cloud66.StatusDeployed, Health: cloud66.HealthOK, Framework: "rails"},
		{UID: "uid-shop-s", Name: "shop", Environment: "staging", AccountName: "Acme", Status: cloud66.StatusFailed, Health: cloud66.HealthImpaired},
		{UID: "uid-api", Name: "api", Environment: "production", AccountName: "Acme", Status: cloud66.StatusDeploying, Health: cloud66.HealthBuilding},
		{UID: "uid-evil", Name: "<!channel> pwn", Environment: "qa", AccountName: "Acme & Co", Status: cloud66.StatusDeployed, Health: cloud66.HealthFailed},
	}
}

// newTestRouter is a Router over a fake account service and c66; opts
// change its Deps before it is built.
func newTestRouter(t *testing.T, linked bool, c66 *fakeCloud66, opts ...func(*Deps)) (*Router, *fakeLinker) {
	t.Helper()
	l := &fakeLinker{links: map[storage.Identity]storage.Link{}}
	if linked {
		l.links[ana.Identity()] = storage.Link{Identity: ana.Identity(), Scopes: []string{"public", "redeploy"}, LinkedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	deps := Deps{
		Accounts: l,
		Cloud66For: func(ctx context.Context, id storage.Identity) (Cloud66, error) {
			if _, err := l.Link(ctx, id); err != nil {
				return nil, err
			}
			return c66, nil
		},
		Cloud66URL: "https://app.cloud66.example",
		Now:        func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) },
	}
	for _, o := range opts {
		o(&deps)
	}
	return NewRouter(deps), l
}

// replyText flattens a reply to what a reader sees (JSON of the blocks).
func replyText(t *testing.T, r chat.Message) string {
	t.Helper()
	b, err := json.Marshal(r.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	// Unescape JSON string escapes so assertions read naturally.
	_ = json.Unmarshal([]byte(fmt.Sprintf("%q", string(b))), &s)
	return r.Text + "\n" + strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(string(b))
}

func TestDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		linked  bool
		c66err  error
		want    []string
		notWant []string
		public  bool
	}{
		{name: "empty is help", text: "", want: []string{"/c66 stacks [filter]", "/c66 server <stack> <server>", "/c66 login [code]"}},
		{name: "help lists every command", text: "help", want: []string{"/c66 help [command]", "/c66 logout", "/c66 whoami", "/c66 stack <stack>", "/c66 servers <stack>"}},
		{name: "help one command", text: "help servers", want: []string{"/c66 servers <stack>", "Examples", "/c66 servers shop:production"}},
		{name: "help unknown", text: "help nope", want: []string{"I don't know the command `nope`"}},
		{name: "unknown suggests", text: "stakcs", want: []string{"I don't know the command `stakcs`", "Did you mean `/c66 stacks`?"}},
		{name: "unknown escaped", text: "<!channel>", want: []string{"&lt;!channel&gt;"}, notWant: []string{"`<!channel>`"}},
		{name: "case-insensitive name", text: "STACKS", linked: true, want: []string{"Stacks (4)"}},
		{name: "too many args", text: "servers a b c", want: []string{"Usage: `/c66 servers <stack>`"}},
		{name: "too few args", text: "server shop", want: []string{"Usage: `/c66 server <stack> <server>`"}},
		{name: "unterminated quote", text: `stacks "shop`, want: []string{"unterminated quote"}},
		{name: "not linked gets a link button", text: "stacks", want: []string{"haven't linked", "Link Cloud 66 account", "https://c66.example/oauth/authorize?state=STATE"}},
		{name: "stacks lists all with words", text: "stacks", linked: true, want: []string{"Stacks (4)", "Deployed successfully", "Deployment failed", "Healthy", "Impaired", "*shop* · production", "*shop* · staging"}},
		{name: "stacks escapes names", text: "stacks", linked: true, want: []string{"&lt;!channel&gt; pwn"}, notWant: []string{"<!channel>"}},
		{name: "stacks filter", text: "stacks staging", linked: true, want: []string{"(1)", "*shop* · staging"}, notWant: []string{"production"}},
		{name: "stacks filter no match", text: "stacks zzz", linked: true, want: []string{"No stack you can see matches `zzz`"}},
		{name: "ambiguous name lists candidates", text: "stack shop", linked: true, want: []string{"`shop` matches 2 stacks", "/c66 stack shop:production", "/c66 stack shop:staging"}},
		{name: "name:env picks one", text: "stack shop:staging", linked: true, want: []string{"shop · staging", "Deployment failed", "Open in Cloud 66", "https://app.cloud66.example/stacks/uid-shop-s"}},
		{name: "uid works", text: "stack uid-api", linked: true, want: []string{"api · production", "Deploying", "Building"}},
		{name: "case-insensitive stack", text: "stack API", linked: true, want: []string{"api · production"}},
		{name: "not found suggests", text: "stack apl", linked: true, want: []string{"can't find a stack called `apl`", "Did you mean `api`"}},
		{name: "servers of stack", text: "servers api", linked: true, want: []string{"Servers of api:production (2)", "*lion*", "web, app", "Healthy", "*tiger*", "Failed"}},
		{name: "server detail", text: "server api TIGER", linked: true, want: []string{"tiger · api:production", "10.0.0.2", "Failed"}},
		{name: "server not found", text: "server api lino", linked: true, want: []string{"can't find a server called `lino` in api:production", "Did you mean `lion`"}},
		{name: "401 unlinks and prompts", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 401, Code: "unauthenticated"}, want: []string{"expired or was revoked", "Link Cloud 66 account"}},
		{name: "403 names scope", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 403, Code: "forbidden", Description: "token lacks required scope redeploy"}, want: []string{"lacks the `redeploy` scope", "token lacks required scope redeploy", "login` again to grant it"}},
		{name: "throttled says when", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 503, Code: "throttled", RetryAt: time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)}, want: []string{"throttling", "Try again at <!date^1795438800^{time}|2026-11-23 13:00 UTC>"}},
		{name: "server error generic", text: "stacks", linked: true, c66err: fmt.Errorf("boom"), want: []string{"request id", "req1"}},
		{name: "hostile id in the answer", text: "stacks", linked: true, c66err: &cloud66.InvalidIDError{Method: "GET", Endpoint: "/stacks/{uid}", Field: "stack uid", Value: "x|<!channel>"}, want: []string{"isn't shaped like a Cloud 66 id", "changed nothing", "req1"}, notWant: []string{"<!channel>", "Something went wrong"}},
		{name: "whoami", text: "whoami", linked: true, want: []string{"You are <@U1>", "Acme", "`public`, `redeploy`", "*Stacks visible*\\n4"}},
		{name: "whoami unlinked", text: "whoami", want: []string{"haven't linked"}},
		{name: "login linked again", text: "login", linked: true, want: []string{"linked already", "Link Cloud 66 account"}},
		{name: "login code without oob", text: "login abc", want: []string{"no code to paste"}},
		{name: "logout", text: "logout", linked: true, want: []string{"no longer hold a Cloud 66 token"}},
		{name: "logout unlinked", text: "logout", want: []string{"weren't linked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c66 := &fakeCloud66{stacks: testStacks(), err: tt.c66err, servers: map[string][]cloud66.Server{
				"uid-api": {
					{UID: "s1", Name: "lion", Roles: []string{"web", "app"}, Health: cloud66.HealthOK, Address: "10.0.0.1", Region: "lon1"},
					{UID: "s2", Name: "tiger", Roles: []string{"db"}, Health: cloud66.HealthFailed, Address: "10.0.0.2", Region: "lon1"},
				},
			}}
			r, _ := newTestRouter(t, tt.linked, c66)
			req := ana
			req.Text = tt.text
			reply := r.Dispatch(t.Context(), req)
			got := replyText(t, reply)
			hasAll(t, got, tt.want, tt.notWant)
			if reply.InChannel != tt.public {
				t.Errorf("InChannel = %v, want %v", reply.InChannel, tt.public)
			}
			if reply.Text == "" {
				t.Error("reply has no fallback text")
			}
			if len(reply.Blocks) > maxBlocksForTest {
				t.Errorf("%d blocks, Slack allows %d", len(reply.Blocks), maxBlocksForTest)
			}
		})
	}
}

func TestUnauthorizedForgetsTheToken(t *testing.T) {
	t.Parallel()
	r, l := newTestRouter(t, true, &fakeCloud66{err: &cloud66.ErrorResponse{StatusCode: 401}})
	req := ana
	req.Text = "stacks"
	r.Dispatch(t.Context(), req)
	if _, err := l.Link(t.Context(), ana.Identity()); err == nil {
		t.Fatal("link kept after Cloud 66 answered 401")
	}
	// Dropped as the bot's decision, with the reason for the audit log,
	// not as a logout.
	if len(l.dropped) != 1 || !strings.Contains(l.dropped[0], "401") {
		t.Errorf("DropLink reasons = %q, want one naming the 401", l.dropped)
	}
}

// A change whose audit entry cannot be written is refused with a reply
// that says so and whom to tell, privately.
func TestUnauditedChangeIsRefusedWithAClearReply(t *testing.T) {
	t.Parallel()
	r, l := newTestRouter(t, true, &fakeCloud66{})
	l.unlinkErr = fmt.Errorf("accounts: unlink: %w", storage.ErrNotAudited)
	req := ana
	req.Text = "logout"
	reply := r.Dispatch(t.Context(), req)
	got := replyText(t, reply)
	for _, w := range []string{"could not write the audit log, so I did not forget your Cloud 66 token", "database is not writable"} {
		if !strings.Contains(got, w) {
			t.Errorf("reply lacks %q:\n%s", w, got)
		}
	}
	if reply.InChannel {
		t.Error("the refusal went to the channel")
	}
	if _, err := l.Link(t.Context(), ana.Identity()); err != nil {
		t.Errorf("link gone after a refused logout: %v", err)
	}
}

func TestOutOfBandLogin(t *testing.T) {
	t.Parallel()
	r, l := newTestRouter(t, false, &fakeCloud66{})
	l.oob = true
	req := ana
	req.Text = "login"
	got := replyText(t, r.Dispatch(t.Context(), req))
	for _, w := range []string{"paste it back here as `/c66 login <code>`", "https://c66.example/oauth/authorize?state=STATE"} {
		if !strings.Contains(got, w) {
			t.Errorf("login reply lacks %q:\n%s", w, got)
		}
	}
	req.Text = "login good-code"
	got = replyText(t, r.Dispatch(t.Context(), req))
	if !strings.Contains(got, "Linked to Cloud 66 account *Acme* (3 stacks visible)") {
		t.Errorf("code reply:\n%s", got)
	}
	req.Text = "login bad-code"
	got = replyText(t, r.Dispatch(t.Context(), req))
	if !strings.Contains(got, "didn't accept that code") || strings.Contains(got, "bad-code") {
		t.Errorf("bad code reply (must not echo the code):\n%s", got)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		word string
		want string
	}{
		{"stakcs", "stacks"},
		{"sever", "server"},
		{"whomai", "whoami"},
		{"xyzzy", ""},
		{"log", "login"},
	}
	names := []string{"stacks", "stack", "servers", "server", "whoami", "login", "logout", "help"}
	for _, tt := range tests {
		got := suggest(tt.word, names, 1)
		if (len(got) == 0) != (tt.want == "") || (len(got) > 0 && got[0] != tt.want) {
			t.Errorf("suggest(%q) = %v, want %q", tt.word, got, tt.want)
		}
	}
}

func TestListSectionsStaysWithinLimits(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 2000 {
		lines = append(lines, fmt.Sprintf("line %d %s", i, strings.Repeat("x", 60)))
	}
	blocks := listSections(lines, 48, func(n int) string { return fmt.Sprintf("%d more", n) })
	if len(blocks) > 48 {
		t.Fatalf("%d blocks", len(blocks))
	}
	b, _ := json.Marshal(blocks)
	if !strings.Contains(string(b), " more") {
		t.Fatal("no 'more' line when lines were cut")
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, false, &fakeCloud66{})
	for _, c := range r.Commands() {
		if c.Summary == "" || c.Description == "" || len(c.Examples) == 0 || c.Run == nil {
			t.Errorf("command %q lacks summary, description, examples or handler", c.Name)
		}
		for _, e := range c.Examples {
			words, err := Split(e)
			if err != nil || len(words) == 0 {
				t.Errorf("example %q does not parse", e)
				continue
			}
			if got, _ := r.Lookup(words[0]); got != c {
				t.Errorf("example %q does not run %q", e, c.Name)
			}
			if n := len(words) - 1; n < c.MinArgs || (c.MaxArgs >= 0 && n > c.MaxArgs) {
				t.Errorf("example %q has %d args, outside [%d,%d]", e, n, c.MinArgs, c.MaxArgs)
			}
		}
	}
}

const maxBlocksForTest = 50
