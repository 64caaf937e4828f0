package deploy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/clock"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// The replica tests run two deploy Services ("a" and "b") on one store and
// one lease store, as two c66bot processes on one database. Each has its own
// recording Slack, so who said what shows; a card's ts is only a string, so
// either may edit the other's card.

const (
	leaseTTL   = 15 * time.Second // the defaults, which the services use
	claimEvery = 5 * time.Second
)

// replica is one Service of a fleet, with what it did counted.
type replica struct {
	name   string
	svc    *deploy.Service
	slack  *testenv.Slack
	claims *stepper // Run's waits between claim passes
	stop   func()

	mu    sync.Mutex
	reads map[string]int // Cloud 66 reads its watchers made, by stack uid
	saves int            // watch saves
	gate  chan struct{}  // when set, GetAction waits for it to close
	held  chan struct{}  // told when a GetAction waits at the gate
	dead  bool           // crashed: its lease store no longer answers
}

// crashableLeases is a replica's view of the shared lease store: once the
// replica has crashed, nothing it tries reaches the store, so what it held
// is left to expire.
type crashableLeases struct {
	*storage.LocalLeases
	r *replica
}

var errCrashed = errors.New("the replica crashed")

func (c crashableLeases) up() error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.dead {
		return errCrashed
	}
	return nil
}

func (c crashableLeases) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (storage.Lease, bool, error) {
	if err := c.up(); err != nil {
		return storage.Lease{}, false, err
	}
	return c.LocalLeases.Acquire(ctx, key, owner, ttl)
}

func (c crashableLeases) Renew(ctx context.Context, l storage.Lease, ttl time.Duration) (storage.Lease, error) {
	if err := c.up(); err != nil {
		return storage.Lease{}, err
	}
	return c.LocalLeases.Renew(ctx, l, ttl)
}

func (c crashableLeases) Release(ctx context.Context, l storage.Lease, note string) error {
	if err := c.up(); err != nil {
		return err
	}
	return c.LocalLeases.Release(ctx, l, note)
}

// crash stops r as a crash would: it gives nothing up.
func (r *replica) crash() {
	r.mu.Lock()
	r.dead = true
	r.mu.Unlock()
	r.stop()
}

// fleet is the world the replicas share.
type fleet struct {
	*env
	leases *storage.LocalLeases
}

func newFleet(t *testing.T) *fleet {
	e := newEnv(t)
	e.stop() // the env's own service is not part of the fleet
	return &fleet{env: e, leases: storage.NewLocalLeases(e.Clock.Now)}
}

// replica starts a Service named name on the fleet's store and leases.
// Its background lease renewals never come unless renew is given; its
// claim passes come when the test steps r.claims (or at once with
// claimsFree, a real-time ClaimEvery of a millisecond).
func (f *fleet) replica(name string, renew func(context.Context, time.Duration) error, claimsFree bool) *replica {
	r := &replica{name: name, slack: testenv.NewSlack(), claims: newStepper(f.t, f.Clock), reads: map[string]int{}}
	stores := storesOf(f.Store)
	stores.Watches = countingWatches{stores.Watches, r}
	cfg := deploy.Config{
		Stores: stores, Slack: r.slack, Cloud66URL: f.C66.URL, Command: "/c66", Now: f.Clock.Now, Poll: fastPoll,
		Cloud66For: func(ctx context.Context, id storage.Identity) (deploy.Cloud66, error) {
			c, err := f.client(ctx, id)
			return countingCloud66{c, r}, err
		},
		Leases: crashableLeases{f.leases, r}, Replica: name,
	}
	if claimsFree {
		cfg.ClaimEvery = time.Millisecond
	}
	r.svc = deploy.New(cfg)
	if renew == nil {
		renew = never
	}
	deploy.SetRenewSleep(r.svc, renew)
	// Either way the replica is returned once Run's first pass is done, so
	// the watches it starts are its own.
	running := make(chan struct{})
	var once sync.Once
	claims := r.claims.sleep
	if claimsFree {
		claims = func(ctx context.Context, d time.Duration) error {
			once.Do(func() { close(running) })
			return clock.Sleep(ctx, d)
		}
	}
	deploy.SetClaimSleep(r.svc, claims)
	r.stop = testenv.Run(f.t, r.svc.Run)
	f.t.Cleanup(r.stop)
	if claimsFree {
		select {
		case <-running:
		case <-time.After(5 * time.Second):
			f.t.Fatalf("replica %s never began its claim passes", name)
		}
	} else {
		r.claims.settle()
	}
	return r
}

// never is a wait that lasts until its context ends.
func never(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}

func (r *replica) readsOf(uid string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[uid]
}

func (r *replica) savesSoFar() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saves
}

// read counts one Cloud 66 read of stack uid and waits at the gate if one
// is set.
func (r *replica) read(uid string) {
	r.mu.Lock()
	r.reads[uid]++
	gate, held := r.gate, r.held
	r.mu.Unlock()
	if gate != nil {
		held <- struct{}{}
		<-gate
	}
}

// pause makes the replica's next Cloud 66 read wait until the returned
// func is called, and returns once a read waits there: the replica is
// frozen mid-poll, as a stopped-the-world process would be.
func (r *replica) pause(t *testing.T) (resume func()) {
	t.Helper()
	gate, held := make(chan struct{}), make(chan struct{}, 1)
	r.mu.Lock()
	r.gate, r.held = gate, held
	r.mu.Unlock()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatalf("replica %s never polled into the pause", r.name)
	}
	r.mu.Lock()
	r.gate, r.held = nil, nil
	r.mu.Unlock()
	return func() { close(gate) }
}

// countingCloud66 is a watcher's client that counts its reads.
type countingCloud66 struct {
	deploy.Cloud66
	r *replica
}

func (c countingCloud66) GetAction(ctx context.Context, uid string, id int64) (*cloud66.AsyncAction, error) {
	c.r.read(uid)
	return c.Cloud66.GetAction(ctx, uid, id)
}

func (c countingCloud66) ListActions(ctx context.Context, uid string) ([]cloud66.AsyncAction, error) {
	c.r.read(uid)
	return c.Cloud66.ListActions(ctx, uid)
}

func (c countingCloud66) ListActionsByReference(ctx context.Context, uid, ref string) ([]cloud66.AsyncAction, error) {
	c.r.read(uid)
	return c.Cloud66.ListActionsByReference(ctx, uid, ref)
}

// countingWatches counts the saves a replica makes.
type countingWatches struct {
	deploy.WatchStore
	r *replica
}

func (w countingWatches) Save(ctx context.Context, x storage.Watch, audit ...storage.AuditEntry) error {
	w.r.mu.Lock()
	w.r.saves++
	w.r.mu.Unlock()
	return w.WatchStore.Save(ctx, x, audit...)
}

// stepper is a wait that ends only when the test steps it, moving the
// clock on by the wait asked for. A step returns once the sleeper waits
// again, so whatever the step let happen has happened.
type stepper struct {
	t       *testing.T
	clock   *cloud66test.Clock
	asks    chan time.Duration
	wake    chan struct{}
	pending time.Duration
	parked  bool // pending holds the wait of a sleeper that waits now
}

func newStepper(t *testing.T, clock *cloud66test.Clock) *stepper {
	return &stepper{t: t, clock: clock, asks: make(chan time.Duration), wake: make(chan struct{})}
}

func (st *stepper) sleep(ctx context.Context, d time.Duration) error {
	select {
	case st.asks <- d:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-st.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle waits until the sleeper waits, and returns the wait it asked for.
func (st *stepper) settle() time.Duration {
	st.t.Helper()
	if !st.parked {
		select {
		case st.pending = <-st.asks:
			st.parked = true
		case <-time.After(5 * time.Second):
			st.t.Fatal("the sleeper never came back to wait")
		}
	}
	return st.pending
}

// step lets the sleeper go after moving the clock by its wait, and returns
// that wait once the sleeper waits again.
func (st *stepper) step() time.Duration {
	st.t.Helper()
	d := st.settle()
	st.clock.Advance(d)
	select {
	case st.wake <- struct{}{}:
	case <-time.After(5 * time.Second):
		st.t.Fatal("the sleeper stopped waiting")
	}
	st.parked = false
	st.settle()
	return d
}

// deployShop starts a deploy of shop:staging on r and returns its watch.
func (f *fleet) deployShop(r *replica) storage.Watch {
	f.t.Helper()
	res, err := r.svc.Deploy(f.t.Context(), origin(ana, "C1", "r-"+r.name), f.stack("shop", "staging"), deploy.Params{})
	if err != nil || res.Watch == nil {
		f.t.Fatalf("Deploy on %s = %+v, %v", r.name, res, err)
	}
	return *res.Watch
}

// followedByA starts replicas a and b and a deploy on a, and returns once
// a polls it.
func followedByA(t *testing.T) (f *fleet, a, b *replica, w storage.Watch) {
	t.Helper()
	f = newFleet(t)
	a = f.replica("a", nil, false)
	b = f.replica("b", nil, false)
	w = f.deployShop(a)
	a.waitReads(t, w.StackUID, 2)
	return f, a, b, w
}

// waitReads waits until r has read stack uid n more times than now: its
// watcher polled, and so renewed its lease at the clock's time.
func (r *replica) waitReads(t *testing.T, uid string, n int) {
	t.Helper()
	start := r.readsOf(uid)
	testenv.Eventually(t, r.name+" to poll", func() bool { return r.readsOf(uid) >= start+n })
}

func TestWatchIsFollowedOnlyByTheReplicaThatStartedIt(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	a := f.replica("a", nil, false)
	w := f.deployShop(a)
	a.waitReads(t, w.StackUID, 2)
	b := f.replica("b", nil, false) // its first pass came at its start
	if d := b.claims.settle(); d != claimEvery {
		t.Errorf("b waits %v between claim passes, want the default %v", d, claimEvery)
	}
	for range 3 {
		a.waitReads(t, w.StackUID, 1) // a renews at the clock's time
		b.claims.step()
	}
	if n := b.readsOf(w.StackUID); n != 0 || len(deploy.Following(b.svc)) != 0 {
		t.Errorf("b polled a's deployment %d times, following %v; want never", n, deploy.Following(b.svc))
	}
	if got := deploy.Following(a.svc); !slices.Equal(got, []string{w.ID}) {
		t.Errorf("a follows %v, want %v", got, []string{w.ID})
	}
}

func TestDeadReplicasWatchIsTakenOverAndFinished(t *testing.T) {
	t.Parallel()
	f, a, b, w := followedByA(t)
	f.waitCardOf(a, w.MessageTS, "Deploying")

	a.crash()
	if l, held, _ := f.leases.Acquire(t.Context(), "watch:"+w.ID, "c", leaseTTL); held || l.Owner != "a" {
		t.Fatalf("after a stopped its lease is %+v (held by c: %v); want still a's", l, held)
	}
	var waited time.Duration
	for len(deploy.Following(b.svc)) == 0 {
		if waited >= leaseTTL+claimEvery {
			t.Fatalf("b has not taken the watch over %v after a died", waited)
		}
		waited += b.claims.step()
	}
	if waited <= leaseTTL-claimEvery {
		t.Errorf("b took the watch %v after a died, before a's lease could expire", waited)
	}
	t.Logf("b took the watch over %v (fake clock) after a died", waited)

	f.Clock.Advance(3 * time.Minute)
	got := f.waitState(w.ID, storage.WatchSucceeded)
	card := f.waitCardOf(b, w.MessageTS, "✅", "Deployed", got.GitHash[:7])
	if !strings.Contains(card.Text(), "shop") {
		t.Errorf("b's edit of the card: %s", card.Text())
	}
	if n := len(b.slack.Calls("post")); n != 0 {
		t.Errorf("b posted %d new cards; it should edit a's", n)
	}
	if n := len(auditOf(t, f.Store, "deploy.finished")); n != 1 {
		t.Errorf("%d deploy.finished entries, want 1", n)
	}
	testenv.Eventually(t, "b's watcher to end", func() bool { return deploy.Watchers(b.svc) == 0 })
	if _, held, _ := f.leases.Acquire(t.Context(), "watch:"+w.ID, "c", leaseTTL); !held {
		t.Error("the finished watch's lease was not given up")
	}
}

func TestPausedOwnerThatLostItsLeaseStopsWriting(t *testing.T) {
	t.Parallel()
	f, a, b, w := followedByA(t)

	resume := a.pause(t) // a is frozen inside a poll
	f.Clock.Advance(leaseTTL + time.Second)
	b.claims.step()
	if got := deploy.Following(b.svc); !slices.Equal(got, []string{w.ID}) {
		t.Fatalf("b follows %v after a's lease expired, want %v", got, []string{w.ID})
	}
	f.Clock.Advance(3 * time.Minute)
	f.waitState(w.ID, storage.WatchSucceeded)
	f.waitCardOf(b, w.MessageTS, "Deployed")
	testenv.Eventually(t, "b's watcher to end", func() bool { return deploy.Watchers(b.svc) == 0 })

	saves, calls := a.savesSoFar(), len(a.slack.Calls(""))
	resume() // a wakes up to find the deployment finished, and its lease gone
	testenv.Eventually(t, "a's watcher to stop", func() bool { return deploy.Watchers(a.svc) == 0 })
	if n := a.savesSoFar() - saves; n != 0 {
		t.Errorf("a saved the watch %d times after losing its lease", n)
	}
	if got := a.slack.Calls("")[calls:]; len(got) != 0 {
		t.Errorf("a told Slack %d things after losing its lease: %+v", len(got), got)
	}
	if n := len(auditOf(t, f.Store, "deploy.finished")); n != 1 {
		t.Errorf("%d deploy.finished entries, want 1", n)
	}
}

func TestEveryActiveWatchHasExactlyOneFollower(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	a := f.replica("a", nil, true) // claim passes every millisecond
	b := f.replica("b", nil, true)
	ctx := t.Context()
	var watches []storage.Watch
	for i, name := range []string{"shop", "api", "blog", "payments"} {
		r := []*replica{a, b}[i%2]
		res, err := r.svc.Deploy(ctx, origin(ana, "C1", "r-"+name), f.stack(name, "staging"), deploy.Params{})
		if err != nil || res.Watch == nil {
			t.Fatalf("Deploy of %s on %s = %+v, %v", name, r.name, res, err)
		}
		watches = append(watches, *res.Watch)
	}
	var ids []string
	for _, w := range watches {
		ids = append(ids, w.ID)
	}
	slices.Sort(ids)

	// Whoever started a watch follows it, alone, while both keep claiming.
	for round := range 5 {
		for i, w := range watches {
			[]*replica{a, b}[i%2].waitReads(t, w.StackUID, 1)
		}
		fa, fb := deploy.Following(a.svc), deploy.Following(b.svc)
		if all := slices.Sorted(slices.Values(append(slices.Clone(fa), fb...))); !slices.Equal(all, ids) {
			t.Fatalf("round %d: a follows %v and b %v; want each of %v exactly once", round, fa, fb, ids)
		}
	}
	for i, w := range watches {
		starter, other := []*replica{a, b}[i%2], []*replica{b, a}[i%2]
		if n := other.readsOf(w.StackUID); n != 0 {
			t.Errorf("%s polled %s's deployment of %s %d times", other.name, starter.name, w.StackName, n)
		}
	}

	// a dies: b takes its watches over, and then follows all of them.
	a.crash()
	before := map[string]int{}
	for _, w := range watches {
		before[w.StackUID] = a.readsOf(w.StackUID)
	}
	f.Clock.Advance(leaseTTL + time.Second)
	testenv.Eventually(t, "b to follow every watch", func() bool { return slices.Equal(deploy.Following(b.svc), ids) })
	for _, w := range watches {
		b.waitReads(t, w.StackUID, 1)
		if a.readsOf(w.StackUID) != before[w.StackUID] {
			t.Errorf("a polled %s after it stopped", w.StackName)
		}
	}
}

func TestLeaseRenewedBetweenLongPolls(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	renewals := newStepper(t, f.Clock)
	a := f.replica("a", renewals.sleep, false)
	deploy.SetSleep(a.svc, never) // a poll interval longer than any lease
	w := f.deployShop(a)

	for range 4 { // two thirds past the lease's first expiry
		if d := renewals.step(); d != leaseTTL/3 {
			t.Fatalf("renewals every %v, want a third of the %v lease", d, leaseTTL)
		}
	}
	l, held, err := f.leases.Acquire(t.Context(), "watch:"+w.ID, "b", leaseTTL)
	if err != nil || held || l.Owner != "a" || !l.Expires.Equal(f.Clock.Now().Add(leaseTTL)) {
		t.Fatalf("a's lease %v into a poll wait = %+v (b holds it: %v, %v); want a's, just renewed", 4*leaseTTL/3, l, held, err)
	}
}

// waitCardOf waits until r's newest edit of the card ts contains all of want.
func (f *fleet) waitCardOf(r *replica, ts string, want ...string) testenv.Call {
	f.t.Helper()
	var c testenv.Call
	testenv.Eventually(f.t, r.name+"'s edit of card "+ts, func() bool {
		got, ok := r.slack.Last("update", ts)
		c = got
		return ok && containsAll(got.Text(), want...)
	})
	return c
}

// TestClaimLeavesAWatchBeingStartedToItsStart: a watch stored by a start
// that has not yet taken its lease (another replica's, in the instant
// between the two) is not claimed while the start's lease says so.
func TestClaimLeavesAWatchBeingStartedToItsStart(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	b := f.replica("b", nil, false)
	ctx := t.Context()
	ref := deploy.UserReference(origin(ana, "C1", "r-elsewhere"))
	inFlight, held, err := f.leases.Acquire(ctx, "start:"+ref, "a", leaseTTL)
	if err != nil || !held {
		t.Fatal(held, err)
	}
	w, err := f.Store.Watches().Start(ctx, storage.Watch{Owner: ana, Channel: "C1", StackUID: f.stack("shop", "staging").UID,
		StackName: "shop", Environment: "staging", UserReference: ref})
	if err != nil {
		t.Fatal(err)
	}
	b.claims.step()
	if got := deploy.Following(b.svc); len(got) != 0 {
		t.Fatalf("b follows %v while a's start is taking its lease", got)
	}
	if err := f.leases.Release(ctx, inFlight, ""); err != nil {
		t.Fatal(err)
	}
	b.claims.step()
	if got := deploy.Following(b.svc); !slices.Equal(got, []string{w.ID}) {
		t.Fatalf("b follows %v once nobody starts the watch, want %v", got, []string{w.ID})
	}
}

// A replica stopped on purpose (SIGTERM, a rolling restart) gives its
// watches up: the other takes them over at its next claim pass, not after
// the lease's TTL.
func TestStoppedReplicaHandsItsWatchOverAtOnce(t *testing.T) {
	t.Parallel()
	f, a, b, w := followedByA(t)
	f.waitCardOf(a, w.MessageTS, "Deploying")
	a.stop()
	b.claims.step()
	testenv.Eventually(t, "b to follow the watch", func() bool { return slices.Equal(deploy.Following(b.svc), []string{w.ID}) })
	f.Clock.Advance(3 * time.Minute)
	f.waitState(w.ID, storage.WatchSucceeded)
	f.waitCardOf(b, w.MessageTS, "✅", "Deployed")
}
