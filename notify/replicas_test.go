package notify_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

// The replica tests run two notify Services ("a" and "b") on one store and
// one lease store, as two c66bot processes on one database, posting to one
// Slack (the env's recorder) each through its own queue.

const leaseTTL = 20 * time.Second // the default, which the services use

// replica is one Service of a fleet, with its queue.
type replica struct {
	name  string
	svc   *notify.Service
	queue *gatedQueue
	stop  func()

	mu     sync.Mutex
	passes int             // delivery passes begun
	polled []string        // the stacks it polled after its last reconcile pass
	recons int             // reconcile passes done
	looked map[string]bool // the dedup keys it looked up: the happenings it worked on
}

// lookingDedup records the dedup keys a replica looks up.
type lookingDedup struct {
	notify.DedupStore
	r *replica
}

func (d lookingDedup) Seen(ctx context.Context, key string) (bool, error) {
	d.r.mu.Lock()
	d.r.looked[key] = true
	d.r.mu.Unlock()
	return d.DedupStore.Seen(ctx, key)
}

func (r *replica) lookedAt() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.looked)
}

// gatedQueue is a replica's post queue: it counts what is enqueued and,
// while closed, keeps the posts (as a queue behind a long Retry-After
// would) until it opens; then they go to Slack in order.
type gatedQueue struct {
	slack *testenv.Slack

	mu       sync.Mutex
	open     bool
	enqueued int
	waiting  []func()
}

func (q *gatedQueue) Enqueue(channel, threadTS string, m chat.Message, done func(ts string, err error)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.enqueued++
	post := func() { q.slack.Enqueue(channel, threadTS, m, done) }
	if !q.open {
		q.waiting = append(q.waiting, post)
		return
	}
	post()
}

func (q *gatedQueue) DM(ctx context.Context, to storage.Identity, m chat.Message) error {
	return q.slack.DM(ctx, to, m)
}

// release opens the queue and sends what waited.
func (q *gatedQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.open = true
	for _, post := range q.waiting {
		post()
	}
	q.waiting = nil
}

func (q *gatedQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.enqueued
}

type fleet struct {
	*env
	leases *storage.LocalLeases
}

func newFleet(t *testing.T, opts ...option) *fleet {
	e := newEnv(t, opts...)
	e.subscribe(ana, "C1", "shop", "production")
	return &fleet{env: e, leases: storage.NewLocalLeases(e.Clock.Now)}
}

// replica starts a Service named name on the fleet's store and leases,
// posting through a queue that is open or not. Its background lease
// renewals never come: the leases live as long as the TTL says.
func (f *fleet) replica(name string, open bool) *replica {
	r := &replica{name: name, queue: &gatedQueue{slack: f.Slack, open: open}, looked: map[string]bool{}}
	cfg := f.cfg
	cfg.Slack, cfg.Leases, cfg.Replica = r.queue, f.leases, name
	cfg.Dedup = lookingDedup{cfg.Dedup, r}
	r.svc = notify.New(cfg)
	notify.SetRenewSleep(r.svc, func(ctx context.Context, _ time.Duration) error {
		<-ctx.Done()
		return ctx.Err()
	})
	notify.OnDrain(r.svc, func(ctx context.Context) {
		r.mu.Lock()
		r.passes++
		r.mu.Unlock()
	})
	notify.OnReconcile(r.svc, func(polled []string) {
		r.mu.Lock()
		r.polled, r.recons = polled, r.recons+1
		r.mu.Unlock()
	})
	r.stop = testenv.Run(f.t, r.svc.Run)
	f.t.Cleanup(r.stop)
	return r
}

// passed waits until r has begun two more delivery passes: the one between
// is a whole pass that started after the call.
func (r *replica) passed(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	start := r.passes
	r.mu.Unlock()
	testenv.Eventually(t, r.name+" to make a delivery pass", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.passes >= start+2
	})
}

func (r *replica) lastPolled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polled
}

// reconciledTwice waits until r has reconciled its pollers twice more.
func (r *replica) reconciledTwice(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	start := r.recons
	r.mu.Unlock()
	testenv.Eventually(t, r.name+" to reconcile its pollers", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.recons >= start+2
	})
}

func (r *replica) accept(t *testing.T, ev notify.Event) {
	t.Helper()
	if err := r.svc.Accept(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// notices are n distinct happenings on shop:production.
func (f *fleet) notices(n int) []notify.Event {
	var evs []notify.Event
	for i := range n {
		ev := f.event(notify.DeploySucceeded, "shop", "production")
		ev.StartedAt = ev.StartedAt.Add(time.Duration(i) * time.Second)
		ev.GitRef = fmt.Sprintf("v%d", i)
		evs = append(evs, ev)
	}
	return evs
}

// postedOnce checks that C1 got exactly one post per ref, and no other.
func (f *fleet) postedOnce(t *testing.T, n int) {
	t.Helper()
	count := map[string]int{}
	for _, p := range f.Slack.Posts("C1") {
		for i := range n {
			if containsRef(p, fmt.Sprintf("v%d", i)) {
				count[fmt.Sprintf("v%d", i)]++
			}
		}
	}
	if got := len(f.Slack.Posts("C1")); got != n {
		t.Errorf("%d posts in C1, want %d", got, n)
	}
	for i := range n {
		if ref := fmt.Sprintf("v%d", i); count[ref] != 1 {
			t.Errorf("notice %s posted %d times", ref, count[ref])
		}
	}
}

func containsRef(c testenv.Call, ref string) bool {
	return slices.ContainsFunc(blockTexts(c.Msg.Blocks), func(s string) bool { return containsWord(s, ref) }) || containsWord(c.Msg.Text, ref)
}

// containsWord reports whether s has w not followed by another digit, so
// v1 does not match v10.
func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i:i+len(w)] == w && (i+len(w) == len(s) || s[i+len(w)] < '0' || s[i+len(w)] > '9') {
			return true
		}
	}
	return false
}

func TestEachNoticeIsPostedOnceByTwoReplicas(t *testing.T) {
	f := newFleet(t)
	a, b := f.replica("a", false), f.replica("b", false)
	const n = 10
	for i, ev := range f.notices(n) {
		[]*replica{a, b}[i%2].accept(t, ev)
	}
	testenv.Eventually(t, "every notice claimed", func() bool { return a.queue.count()+b.queue.count() >= n })
	a.passed(t)
	b.passed(t)
	if got := a.queue.count() + b.queue.count(); got != n {
		t.Fatalf("the replicas queued %d posts (a %d, b %d) for %d notices", got, a.queue.count(), b.queue.count(), n)
	}
	// Each notice was worked on by one replica alone: the other never even
	// looked it up.
	la, lb := a.lookedAt(), b.lookedAt()
	if len(la)+len(lb) != n {
		t.Errorf("a worked on %d notices and b on %d; want %d in all, each by one", len(la), len(lb), n)
	}
	for key := range la {
		if lb[key] {
			t.Errorf("both replicas worked on %s", key)
		}
	}
	a.queue.release()
	b.queue.release()
	f.drained()
	f.postedOnce(t, n)
}

func TestStoppedReplicaLeavesItsNoticesToTheOther(t *testing.T) {
	f := newFleet(t)
	a := f.replica("a", false) // its posts never leave its queue
	const n = 4
	for _, ev := range f.notices(n) {
		a.accept(t, ev)
	}
	testenv.Eventually(t, "a to claim every notice", func() bool { return a.queue.count() == n })

	b := f.replica("b", true)
	b.passed(t)
	a.stop() // mid-delivery, as a crash leaves it: nothing given up
	b.passed(t)
	if got, looked := b.queue.count(), b.lookedAt(); got != 0 || len(looked) != 0 {
		t.Fatalf("b queued %d posts and worked on %d notices while a's claims were live", got, len(looked))
	}
	f.Clock.Advance(leaseTTL + time.Second)
	f.drained()
	f.postedOnce(t, n)
}

// The same happening reaching b as a second item (the notify API and a
// webhook make such pairs) while a posts it is posted once, by a: only the
// replica holding "notify" delivers.
func TestSameHappeningOnTwoReplicasIsPostedOnce(t *testing.T) {
	f := newFleet(t)
	a := f.replica("a", false)
	ev := f.event(notify.DeploySucceeded, "shop", "production")
	ev.GitRef = "v0"
	a.accept(t, ev)
	testenv.Eventually(t, "a to queue its post", func() bool { return a.queue.count() == 1 })

	b := f.replica("b", true)
	b.accept(t, ev)
	b.passed(t)
	a.passed(t)
	if got, looked := b.queue.count(), b.lookedAt(); got != 0 || len(looked) != 0 {
		t.Fatalf("b queued %d posts and worked on %d happenings while a delivers", got, len(looked))
	}
	if got := a.queue.count(); got != 1 {
		t.Fatalf("a queued %d posts of one happening", got)
	}
	a.queue.release()
	f.drained()
	f.postedOnce(t, 1)
}

// Notices reach the channel in the order they were accepted, whichever
// replica accepted each: b does not post its own while a's earlier ones
// wait in a's queue (behind a 429, say).
func TestNoticesAcceptedOnTwoReplicasKeepTheirOrder(t *testing.T) {
	f := newFleet(t)
	a := f.replica("a", false)
	a.passed(t) // a delivers
	b := f.replica("b", true)
	evs := f.notices(4)
	a.accept(t, evs[0])
	a.accept(t, evs[1])
	testenv.Eventually(t, "a to queue two posts", func() bool { return a.queue.count() == 2 })
	b.accept(t, evs[2])
	a.accept(t, evs[3])
	testenv.Eventually(t, "a to queue all four", func() bool { return a.queue.count() == 4 })
	b.passed(t)
	if got := b.queue.count(); got != 0 {
		t.Fatalf("b queued %d posts while a delivers", got)
	}
	a.queue.release()
	f.drained()
	f.postedOnce(t, 4)
	var order []string
	for _, p := range f.Slack.Posts("C1") {
		for i := range 4 {
			if ref := fmt.Sprintf("v%d", i); containsRef(p, ref) {
				order = append(order, ref)
			}
		}
	}
	if want := []string{"v0", "v1", "v2", "v3"}; !slices.Equal(order, want) {
		t.Errorf("posted in the order %v, want %v", order, want)
	}
}

// A stack is polled by one replica, not by each: the one delivering. When
// it dies, the other takes polling over with delivery.
func TestOneReplicaPollsAndTheOtherTakesOver(t *testing.T) {
	f := newFleet(t, fastPolling)
	uid := f.uid("shop", "production")
	a := f.replica("a", true)
	a.passed(t)
	b := f.replica("b", true)
	testenv.Eventually(t, "a to poll the stack", func() bool { return slices.Equal(a.lastPolled(), []string{uid}) })
	b.reconciledTwice(t)
	if got := b.lastPolled(); len(got) != 0 {
		t.Fatalf("b polls %v while a delivers and polls", got)
	}

	a.stop() // as a crash leaves it: "notify" expires, nothing given up
	f.Clock.Advance(leaseTTL + time.Second)
	testenv.Eventually(t, "b to poll the stack", func() bool { return slices.Equal(b.lastPolled(), []string{uid}) })
}

// A replica stopped on purpose (SIGTERM, a rolling restart) gives delivery
// up at once: the other posts the next notice without waiting out
// LeaseTTL.
func TestStoppedReplicaHandsDeliveryOverAtOnce(t *testing.T) {
	f := newFleet(t)
	a := f.replica("a", true)
	a.passed(t) // a delivers
	b := f.replica("b", true)
	a.stop()
	ev := f.notices(1)[0]
	b.accept(t, ev)
	testenv.Eventually(t, "b to post the notice", func() bool { return b.queue.count() == 1 })
	f.drained()
	f.postedOnce(t, 1)
}
