package commands

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

// c66Env is a Router talking to the fake Cloud 66 through the real client,
// with a clock the test moves.
type c66Env struct {
	t   *testing.T
	srv *cloud66test.Server
	r   *Router

	mu  sync.Mutex
	now time.Time
}

var ben = Request{TeamID: "T1", UserID: "U2", ChannelID: "C1", RequestID: "req2"}

func newC66Env(t *testing.T) *c66Env {
	t.Helper()
	e := &c66Env{t: t, srv: cloud66test.Start(t), now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	emails := map[storage.Identity]string{ana.Identity(): "ana@example.com", ben.Identity(): "ben@example.com"}
	l := &fakeLinker{links: map[storage.Identity]storage.Link{}}
	clients := map[storage.Identity]*cloud66.Client{}
	for id, email := range emails {
		l.links[id] = storage.Link{Identity: id, Scopes: []string{"public", "redeploy"}}
		c, err := cloud66.NewClient(cloud66.WithBaseURL(e.srv.URL), cloud66.WithToken(e.srv.IssueToken(email)))
		if err != nil {
			t.Fatal(err)
		}
		clients[id] = c
	}
	e.r = NewRouter(Deps{
		Accounts: l,
		Cloud66For: func(_ context.Context, id storage.Identity) (Cloud66, error) {
			return clients[id], nil
		},
		Now: func() time.Time {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.now
		},
	})
	return e
}

func (e *c66Env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// run dispatches text as who and returns the reply's text and the Cloud 66
// API requests it made, as "GET /stacks.json?filter_name=shop" lines.
func (e *c66Env) run(who Request, text string) (string, []string) {
	e.t.Helper()
	e.srv.ResetRequests()
	who.Text = text
	reply := replyText(e.t, e.r.Dispatch(e.t.Context(), who))
	var reqs []string
	for _, r := range e.srv.Requests() {
		p, ok := strings.CutPrefix(r.Path, "/api/3")
		if !ok {
			continue
		}
		q := r.Query
		q.Del("page")
		if len(q) > 0 {
			p += "?" + q.Encode()
		}
		reqs = append(reqs, r.Method+" "+p)
	}
	if n := e.srv.RequestCount("", "/api/3"); n != len(reqs) {
		e.t.Fatalf("RequestCount = %d, Requests = %d", n, len(reqs))
	}
	return reply, reqs
}

// expect runs text and checks the requests it made and the reply.
func (e *c66Env) expect(who Request, text string, wantReqs []string, wantReply ...string) {
	e.t.Helper()
	reply, reqs := e.run(who, text)
	if strings.Join(reqs, "\n") != strings.Join(wantReqs, "\n") {
		e.t.Errorf("%s made %d Cloud 66 requests:\n  %s\nwant %d:\n  %s", text, len(reqs), strings.Join(reqs, "\n  "), len(wantReqs), strings.Join(wantReqs, "\n  "))
	}
	for _, w := range wantReply {
		if !strings.Contains(reply, w) {
			e.t.Errorf("%s: reply lacks %q:\n%s", text, w, reply)
		}
	}
}

func TestServersCostsTwoRequestsColdAndOneWarm(t *testing.T) {
	t.Parallel()
	e := newC66Env(t)
	uid := e.srv.StackUID("shop", "production")
	find := "GET /stacks.json?filter_environment=production&filter_name=shop"
	servers := "GET /stacks/" + uid + "/servers.json"

	e.expect(ana, "servers shop:production", []string{find, servers}, "Servers of shop:production (4)")
	e.expect(ana, "servers shop:production", []string{servers}, "Servers of shop:production (4)")
	// The key ignores case, and other commands share it.
	e.expect(ana, "servers SHOP:Production", []string{servers}, "Servers of shop:production (4)")
	e.expect(ana, "deployments shop:production", []string{"GET /stacks/" + uid + "/deployments.json"}, "Deployments of shop:production")
	// `stack` shows current status: one GetStack, never the cached copy.
	e.expect(ana, "stack shop:production", []string{"GET /stacks/" + uid + ".json"}, "shop · production", "Open in Cloud 66")

	// Another person never uses ana's answers.
	staging := e.srv.StackUID("shop", "staging")
	e.expect(ana, "servers shop:staging", []string{"GET /stacks.json?filter_environment=staging&filter_name=shop", "GET /stacks/" + staging + "/servers.json"})
	e.expect(ben, "servers shop:staging", []string{"GET /stacks.json?filter_environment=staging&filter_name=shop", "GET /stacks/" + staging + "/servers.json"}, "Servers of shop:staging")
	e.expect(ben, "servers shop:staging", []string{"GET /stacks/" + staging + "/servers.json"})

	// Entries last stackCacheTTL from Cloud 66's answer.
	e.advance(stackCacheTTL - time.Second)
	e.expect(ana, "servers shop:production", []string{servers})
	e.advance(time.Second)
	e.expect(ana, "servers shop:production", []string{find, servers})
}

func TestNameWithoutEnvironmentIsCachedToo(t *testing.T) {
	t.Parallel()
	e := newC66Env(t)
	uid := e.srv.StackUID("blog", "staging")
	e.expect(ana, "servers blog", []string{"GET /stacks.json?filter_name=blog", "GET /stacks/" + uid + "/servers.json"}, "Servers of blog:staging")
	e.expect(ana, "servers blog", []string{"GET /stacks/" + uid + "/servers.json"}, "Servers of blog:staging")
	e.expect(ana, "stack blog", []string{"GET /stacks/" + uid + ".json"}, "blog · staging")
}

func TestA404DropsTheCachedName(t *testing.T) {
	t.Parallel()
	e := newC66Env(t)
	uid := e.srv.StackUID("shop", "production")
	find := "GET /stacks.json?filter_environment=production&filter_name=shop"
	servers := "GET /stacks/" + uid + "/servers.json"
	e.expect(ana, "servers shop:production", []string{find, servers})
	e.expect(ana, "servers shop:production", []string{servers})
	// Also cached under another spelling of the same stack.
	e.expect(ana, "servers shop:Production", []string{servers})

	// The stack is gone (or hidden) when the cached uid is used.
	e.srv.InjectFault(cloud66test.Fault{PathPrefix: "/api/3/stacks/" + uid + "/servers", Status: http.StatusNotFound, Times: 1})
	e.expect(ana, "servers shop:production", []string{servers}, "Cloud 66 says that doesn't exist")
	if n := e.r.stacks.len(); n != 0 {
		t.Errorf("%d cache entries left after the 404, want none", n)
	}
	// So the next command asks again.
	e.expect(ana, "servers shop:production", []string{find, servers}, "Servers of shop:production (4)")
	e.expect(ana, "servers shop:production", []string{servers})

	// Same through `stack`, whose GetStack answers 404.
	e.srv.InjectFault(cloud66test.Fault{PathPrefix: "/api/3/stacks/" + uid + ".json", Status: http.StatusNotFound, Times: 1})
	e.expect(ana, "stack shop:production", []string{"GET /stacks/" + uid + ".json"}, "Cloud 66 says that doesn't exist")
	e.expect(ana, "servers shop:production", []string{find, servers})

	// A 404 about something else (a server) keeps the stack cached.
	e.expect(ana, "server shop:production nosuchserver", []string{servers}, "can't find a server called `nosuchserver`")
	e.expect(ana, "servers shop:production", []string{servers})
}

func TestAmbiguousAndNotFoundStillAnswer(t *testing.T) {
	t.Parallel()
	e := newC66Env(t)
	// Ambiguity costs the one filtered request, and is never cached.
	for range 2 {
		e.expect(ana, "servers shop", []string{"GET /stacks.json?filter_name=shop"},
			"matches 2 stacks", "`/c66 servers shop:production`", "`/c66 servers shop:staging`")
	}
	// Not found lists everything (two pages) for the suggestions.
	listAll := []string{"GET /stacks.json?filter_name=shopp", "GET /stacks.json", "GET /stacks.json"}
	e.expect(ana, "servers shopp", listAll, "can't find a stack called `shopp`", "Did you mean `shop`")
	e.expect(ana, "servers shop:prod", []string{"GET /stacks.json?filter_environment=prod&filter_name=shop", "GET /stacks.json", "GET /stacks.json"},
		"can't find a stack called `shop:prod`", "Did you mean `shop:production`")
	if n := e.r.stacks.len(); n != 0 {
		t.Errorf("%d cache entries after ambiguous and unknown names", n)
	}
	// Visibility is the server's: ben cannot see shop:production at all.
	e.expect(ben, "servers shop", []string{"GET /stacks.json?filter_name=shop", "GET /stacks/" + e.srv.StackUID("shop", "staging") + "/servers.json"}, "Servers of shop:staging")
}

func TestUIDArgument(t *testing.T) {
	t.Parallel()
	e := newC66Env(t)
	uid := e.srv.StackUID("api", "production")
	e.expect(ana, "servers "+uid, []string{"GET /stacks/" + uid + ".json", "GET /stacks/" + uid + "/servers.json"}, "Servers of api:production (3)")
	// `stack <uid>` needs no second GetStack: the one that resolved it is current.
	e.expect(ana, "stack "+uid, []string{"GET /stacks/" + uid + ".json"}, "api · production")
	// A uid nobody can see ends as "not found", after trying it as a name.
	ghost := strings.Repeat("0", 32)
	e.expect(ana, "servers "+ghost, []string{"GET /stacks/" + ghost + ".json", "GET /stacks.json?filter_name=" + ghost, "GET /stacks.json", "GET /stacks.json"},
		"can't find a stack called `"+ghost+"`")
	// ben cannot see api:production, even by uid.
	e.expect(ben, "servers "+uid, []string{"GET /stacks/" + uid + ".json", "GET /stacks.json?filter_name=" + uid, "GET /stacks.json"}, "can't find a stack")
}

func TestStackCacheExpiryAndBounds(t *testing.T) {
	t.Parallel()
	var c stackCache
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ana, ben := storage.Identity{Team: "T", User: "A"}, storage.Identity{Team: "T", User: "B"}
	key := func(id storage.Identity, name, env string) stackKey {
		return newStackKey(id, StackRef{Name: name, Environment: env})
	}
	shop := cloud66.Stack{UID: "u-shop", Name: "shop", Environment: "production"}

	if _, ok := c.get(key(ana, "shop", ""), t0); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(key(ana, "Shop", ""), shop, t0)
	c.put(key(ana, "shop", "PRODUCTION"), shop, t0)
	c.put(key(ben, "shop", ""), shop, t0)
	if st, ok := c.get(key(ana, "SHOP", ""), t0.Add(stackCacheTTL-time.Nanosecond)); !ok || st.UID != "u-shop" {
		t.Fatalf("get = %+v, %v", st, ok)
	}
	if _, ok := c.get(key(ana, "shop", ""), t0.Add(stackCacheTTL)); ok {
		t.Error("hit at the TTL")
	}
	if c.len() != 2 {
		t.Errorf("an expired entry that was read is still held: %d entries", c.len())
	}

	// forget is per person and per stack.
	c.put(key(ana, "shop", ""), shop, t0)
	c.put(key(ana, "api", ""), cloud66.Stack{UID: "u-api"}, t0)
	c.forget(ana, "u-shop")
	for _, k := range []stackKey{key(ana, "shop", ""), key(ana, "shop", "production")} {
		if _, ok := c.get(k, t0); ok {
			t.Errorf("%+v survived forget", k)
		}
	}
	for _, k := range []stackKey{key(ana, "api", ""), key(ben, "shop", "")} {
		if _, ok := c.get(k, t0); !ok {
			t.Errorf("forget dropped %+v too", k)
		}
	}

	// Expired entries are swept on insert, without being read.
	c.put(key(ana, "late", ""), shop, t0.Add(stackCacheTTL))
	if c.len() != 1 {
		t.Errorf("%d entries after an insert past everyone's TTL, want 1", c.len())
	}

	// The size is capped; the oldest go first.
	var d stackCache
	for i := range stackCacheSize + 10 {
		d.put(key(ana, fmt.Sprint("s", i), ""), shop, t0.Add(time.Duration(i)*time.Millisecond))
	}
	now := t0.Add(time.Minute)
	if d.len() != stackCacheSize {
		t.Errorf("%d entries, cap %d", d.len(), stackCacheSize)
	}
	if _, ok := d.get(key(ana, "s9", ""), now); ok {
		t.Error("the oldest entry outlived the cap")
	}
	if _, ok := d.get(key(ana, fmt.Sprint("s", stackCacheSize+9), ""), now); !ok {
		t.Error("the newest entry is missing")
	}

	// A nil cache caches nothing.
	var n *stackCache
	n.put(key(ana, "shop", ""), shop, t0)
	n.forget(ana, "u-shop")
	if _, ok := n.get(key(ana, "shop", ""), t0); ok {
		t.Error("nil cache hit")
	}
}

func TestStackCacheConcurrentUse(t *testing.T) {
	t.Parallel()
	var c stackCache
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			id := storage.Identity{Team: "T", User: fmt.Sprint("U", g%3)}
			for i := range 500 {
				k := newStackKey(id, StackRef{Name: fmt.Sprint("s", i%20)})
				now := t0.Add(time.Duration(i) * time.Second)
				c.put(k, cloud66.Stack{UID: fmt.Sprint("u", i%7)}, now)
				c.get(k, now)
				if i%50 == 0 {
					c.forget(id, "u3")
				}
			}
		})
	}
	wg.Wait()
	if c.len() > 3*20 {
		t.Errorf("%d entries for 60 keys", c.len())
	}
}

func TestLogoutForgetsCachedStacks(t *testing.T) {
	t.Parallel()
	var c stackCache
	ana := storage.Identity{Team: "T1", User: "U1"}
	ben := storage.Identity{Team: "T1", User: "U2"}
	now := time.Now()
	c.put(newStackKey(ana, StackRef{Name: "shop"}), cloud66.Stack{UID: "u1"}, now)
	c.put(newStackKey(ana, StackRef{Name: "api"}), cloud66.Stack{UID: "u2"}, now)
	c.put(newStackKey(ben, StackRef{Name: "shop"}), cloud66.Stack{UID: "u1"}, now)
	c.forget(ana, "")
	if _, ok := c.get(newStackKey(ana, StackRef{Name: "shop"}), now); ok {
		t.Error("ana's entry survived forgetting her")
	}
	if _, ok := c.get(newStackKey(ben, StackRef{Name: "shop"}), now); !ok {
		t.Error("forgetting ana dropped ben's entry")
	}
}
