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
	looked map[string]bool // the dedup keys it looked up: the happenings it worked on
	hold   chan struct{}
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

func newFleet(t *testing.T) *fleet {
	e := newEnv(t)
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
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
			}
		}
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

// holdPasses makes r's delivery passes wait from the next one on, until
// the returned func is called.
func (r *replica) holdPasses() (resume func()) {
	hold := make(chan struct{})
	r.mu.Lock()
	r.hold = hold
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.hold = nil
		r.mu.Unlock()
		close(hold)
	}
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

func TestSameHappeningOnTwoReplicasIsPostedOnce(t *testing.T) {
	f := newFleet(t)
	a := f.replica("a", false)
	ev := f.event(notify.DeploySucceeded, "shop", "production")
	ev.GitRef = "v0"
	a.accept(t, ev)
	testenv.Eventually(t, "a to queue its post", func() bool { return a.queue.count() == 1 })
	a.passed(t)
	defer a.holdPasses()() // a delivers no more items of its own

	// The same happening reaches b as a second item (the notify API and a
	// webhook, or the polls of two replicas, make such pairs).
	b := f.replica("b", true)
	b.accept(t, ev)
	b.passed(t)
	if !slices.Equal(slices.Collect(maps.Keys(b.lookedAt())), slices.Collect(maps.Keys(a.lookedAt()))) {
		t.Fatalf("b looked up %v, a %v: b did not work on the second item", b.lookedAt(), a.lookedAt())
	}
	if got := b.queue.count(); got != 0 {
		t.Fatalf("b queued %d posts of a happening a is posting", got)
	}
	a.queue.release()
	f.drained()
	f.postedOnce(t, 1)
}
