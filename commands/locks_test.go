package commands

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// lockDeployer is a fakeDeployer with the workspace's locks and Lock's
// answer set.
type lockDeployer struct {
	*fakeDeployer
	locks []storage.Lock
	lock  deploy.LockResult
}

func (d *lockDeployer) Locks(context.Context, string) ([]storage.Lock, error) {
	return d.locks, d.record("Locks")
}

func (d *lockDeployer) Lock(context.Context, deploy.Origin, cloud66.Stack, string) (deploy.LockResult, error) {
	return d.lock, d.record("Lock")
}

// countingCloud66 is a fakeCloud66 that counts what it is asked, and may
// fail the deployments of some stacks.
type countingCloud66 struct {
	*fakeCloud66
	depErr map[string]error
	mu     sync.Mutex
	lists  int
	deps   []string // uids whose deployments were asked for
}

func (c *countingCloud66) ListStacks(ctx context.Context) ([]cloud66.Stack, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.fakeCloud66.ListStacks(ctx)
}

func (c *countingCloud66) ListDeploymentsPage(ctx context.Context, uid string, page int) ([]cloud66.Deployment, cloud66.Pagination, error) {
	c.mu.Lock()
	c.deps = append(c.deps, uid)
	c.mu.Unlock()
	if err := c.depErr[uid]; err != nil {
		return nil, cloud66.Pagination{}, err
	}
	return c.fakeCloud66.ListDeploymentsPage(ctx, uid, page)
}

func (c *countingCloud66) counts() (lists int, deps []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists, append([]string(nil), c.deps...)
}

// routerWith is a router over c66 and d, ana linked or not.
func routerWith(t *testing.T, linked bool, c66 *countingCloud66, d Deployer) *Router {
	t.Helper()
	r, _ := newTestRouter(t, linked, c66.fakeCloud66, func(deps *Deps) {
		deps.Deploy = d
		inner := deps.Cloud66For
		deps.Cloud66For = func(ctx context.Context, id storage.Identity) (Cloud66, error) {
			if _, err := inner(ctx, id); err != nil {
				return nil, err
			}
			return c66, nil
		}
	})
	return r
}

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Locks on shop:production (visible), on a stack renamed since it was
// locked (visible, uid-api) and on one ana's Cloud 66 account cannot see.
func testLocks() []storage.Lock {
	u9 := storage.Identity{Team: "T1", User: "U9"}
	return []storage.Lock{
		{Team: "T1", StackUID: "uid-shop-p", StackName: "shop", Environment: "production", Owner: u9, Since: testNow.Add(-2 * time.Hour), Reason: "release freeze"},
		{Team: "T1", StackUID: "uid-vault", StackName: "vault", Environment: "production", Owner: u9, Since: testNow.Add(-time.Hour), Reason: "secret rotation"},
		{Team: "T1", StackUID: "uid-api", StackName: "api-old", Environment: "production", Owner: u9, Since: testNow.Add(-3 * time.Hour)},
	}
}

// `locks` lists only the locks on stacks the asker can see, named as
// Cloud 66 names them now; a lock on any other stack leaves no trace in
// the reply, not even in the count.
func TestLocksListsOnlyVisibleStacks(t *testing.T) {
	t.Parallel()
	hidden := []string{"vault", "uid-vault", "secret rotation", "1 h ago"}
	for _, tt := range []struct {
		name      string
		linked    bool
		locks     []storage.Lock
		want      []string
		notWant   []string
		wantLists int
	}{
		{name: "visible ones only", linked: true, locks: testLocks(), wantLists: 1,
			want:    []string{"Locked stacks (2)", ":lock: *shop* · production — <@U9> 2 h ago: release freeze", ":lock: *api* · production — <@U9> 3 h ago"},
			notWant: append([]string{"(3)", "api-old"}, hidden...)},
		{name: "only hidden ones", linked: true, locks: testLocks()[1:2], wantLists: 1,
			want: []string{":unlock: No stack you can see is locked."}, notWant: append([]string{"Locked stacks"}, hidden...)},
		{name: "none asks Cloud 66 nothing", linked: true, locks: nil, wantLists: 0,
			want: []string{":unlock: No stack you can see is locked."}},
		{name: "not linked", linked: false, locks: testLocks(), wantLists: 0,
			want: []string{"haven't linked", "Link Cloud 66 account"}, notWant: append([]string{"shop", "Locked stacks"}, hidden...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
			r := routerWith(t, tt.linked, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}, locks: tt.locks})
			req := ana
			req.Text = "locks"
			reply := r.Dispatch(t.Context(), req)
			got := replyText(t, reply)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("reply has %q:\n%s", w, got)
				}
			}
			if reply.InChannel {
				t.Error("locks answered in the channel")
			}
			if lists, _ := c66.counts(); lists != tt.wantLists {
				t.Errorf("ListStacks called %d times, want %d", lists, tt.wantLists)
			}
		})
	}
}

// A lock on a stack the asker resolved by that name lately is known to be
// visible without asking Cloud 66 again.
func TestLocksReusesResolvedStacks(t *testing.T) {
	t.Parallel()
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
	r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}, locks: testLocks()[:1]})
	req := ana
	req.Text = "stack shop:production"
	r.Dispatch(t.Context(), req)
	before, _ := c66.counts()
	req.Text = "locks"
	got := replyText(t, r.Dispatch(t.Context(), req))
	if !strings.Contains(got, "*shop* · production — <@U9> 2 h ago: release freeze") {
		t.Errorf("locks reply:\n%s", got)
	}
	if after, _ := c66.counts(); after != before {
		t.Errorf("locks listed the stacks again (%d → %d ListStacks)", before, after)
	}
}

// `stack` says who holds its lock, since when and why, as `locks` does.
func TestStackShowsItsLock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, arg string
		want      []string
		notWant   []string
	}{
		{name: "locked", arg: "shop:production",
			want: []string{":lock: Locked by <@U9> 2 h ago: release freeze", "shop · production: Deployed successfully, Healthy, locked"}},
		{name: "locked, no reason, renamed since", arg: "api", want: []string{":lock: Locked by <@U9> 3 h ago\""}},
		{name: "not locked", arg: "shop:staging", notWant: []string{"Locked by", "locked", "release freeze", "vault"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
			r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}, locks: testLocks()})
			req := ana
			req.Text = "stack " + tt.arg
			got := replyText(t, r.Dispatch(t.Context(), req))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reply lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("reply has %q:\n%s", w, got)
				}
			}
		})
	}
}

// What lock says depends on what it did: a new lock and a changed reason
// go to the channel; a re-lock that changed nothing tells only the person.
func TestLockReplies(t *testing.T) {
	t.Parallel()
	u1 := storage.Identity{Team: "T1", User: "U1"}
	since := testNow.Add(-2 * time.Hour)
	held := func(reason, previous string) deploy.LockResult {
		return deploy.LockResult{Lock: storage.Lock{StackName: "shop", Environment: "production", Owner: u1, Since: since, Reason: reason},
			AlreadyHeld: true, PreviousReason: previous}
	}
	sinceText := "since <!date^" + strconv.FormatInt(since.Unix(), 10) + "^{date_short_pretty} {time}|2026-11-23 10:00 UTC>"
	for _, tt := range []struct {
		name      string
		lock      deploy.LockResult
		inChannel bool
		want      string
	}{
		{"new lock", deploy.LockResult{Lock: storage.Lock{Owner: u1, Since: testNow, Reason: "release"}}, true,
			":lock: <@U1> locked *shop* · production: release. Nobody else can deploy it until `/c66 unlock shop:production`."},
		{"already held, nothing changed", held("release freeze", "release freeze"), false,
			":lock: You already hold the lock on *shop* · production (" + sinceText + "): release freeze. Nothing changed; `/c66 lock shop:production <reason>` gives it a new reason."},
		{"already held, no reason at all", held("", ""), false,
			":lock: You already hold the lock on *shop* · production (" + sinceText + "). Nothing changed;"},
		{"already held, reason changed", held("db migration", "release freeze"), true,
			":lock: <@U1> already holds the lock on *shop* · production (" + sinceText + ") and changed its reason to: db migration (it was: release freeze). Nobody else can deploy it until `/c66 unlock shop:production`."},
		{"already held, reason given", held("db migration", ""), true,
			":lock: <@U1> already holds the lock on *shop* · production (" + sinceText + ") and gave it a reason: db migration. Nobody else"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
			r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}, lock: tt.lock})
			req := ana
			req.Text = "lock shop:production whatever"
			reply := r.Dispatch(t.Context(), req)
			if got := replyText(t, reply); !strings.Contains(got, tt.want) {
				t.Errorf("reply lacks %q:\n%s", tt.want, got)
			}
			if reply.InChannel != tt.inChannel {
				t.Errorf("InChannel = %v, want %v", reply.InChannel, tt.inChannel)
			}
		})
	}
}

// "Not locked" names the stack the person meant, from unlock or from the
// Confirm of an unlock.
func TestNotLockedNamesTheStack(t *testing.T) {
	t.Parallel()
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
	d := &fakeDeployer{err: &deploy.NotLockedError{StackName: "shop", Environment: "production", StackUID: "uid-shop-p"}}
	r := routerWith(t, true, c66, d)
	req := ana
	req.Text = "unlock shop:production"
	reply := r.Dispatch(t.Context(), req)
	if got := replyText(t, reply); !strings.Contains(got, ":unlock: *shop* · production isn't locked.") || reply.InChannel {
		t.Errorf("unlock reply (in channel %v):\n%s", reply.InChannel, got)
	}
}
