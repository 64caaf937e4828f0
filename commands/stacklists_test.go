package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/storage"
)

var (
	anaID = storage.Identity{Team: "T1", User: "U1"}
	benID = storage.Identity{Team: "T1", User: "U2"}
	// Same user id in another workspace: another person.
	anaElsewhere = storage.Identity{Team: "T2", User: "U1"}
)

func listOf(names ...string) []cloud66.Stack {
	var out []cloud66.Stack
	for _, n := range names {
		out = append(out, cloud66.Stack{UID: "uid-" + n, Name: n})
	}
	return out
}

func TestStackListsExpiry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &stackLists{ttl: stackListTTL}
	c.put(anaID, listOf("shop"), map[string]bool{"uid-shop": true}, 2, t0)
	for _, tt := range []struct {
		at        time.Duration
		fresh     bool
		wantPages int
	}{
		{0, true, 2},
		{stackListTTL - time.Nanosecond, true, 2},
		{stackListTTL, false, 2},
		{stackListHintTTL - time.Nanosecond, false, 2},
		{stackListHintTTL, false, 0},
	} {
		stacks, cancelled, pages, ok := c.get(anaID, t0.Add(tt.at))
		if ok != tt.fresh || pages != tt.wantPages || (ok && (len(stacks) != 1 || !cancelled["uid-shop"])) || (!ok && stacks != nil) {
			t.Errorf("at +%v: %v, %v, pages %d, fresh %v; want fresh %v, pages %d", tt.at, stacks, cancelled, pages, ok, tt.fresh, tt.wantPages)
		}
	}
	if n, lists := c.len(); n != 0 || lists != 0 {
		t.Errorf("after the hint expired: %d entries, %d lists held", n, lists)
	}
}

// Without a TTL only the page count is kept.
func TestStackListsHintsOnly(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &stackLists{}
	c.put(anaID, listOf("shop"), nil, 2, t0)
	if stacks, _, pages, ok := c.get(anaID, t0); ok || stacks != nil || pages != 2 {
		t.Errorf("get = %v, pages %d, fresh %v; want only pages 2", stacks, pages, ok)
	}
	if _, lists := c.len(); lists != 0 {
		t.Errorf("%d lists held without a TTL", lists)
	}
}

func TestStackListsPerPerson(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &stackLists{ttl: stackListTTL}
	c.put(anaID, listOf("shop"), nil, 1, t0)
	for _, id := range []storage.Identity{benID, anaElsewhere, {Team: "T1"}, {User: "U1"}} {
		if stacks, _, pages, ok := c.get(id, t0); ok || stacks != nil || pages != 0 {
			t.Errorf("%+v got ana's entry: %v, pages %d", id, stacks, pages)
		}
	}
	c.put(benID, listOf("blog"), nil, 3, t0)
	if stacks, _, pages, _ := c.get(anaID, t0); len(stacks) != 1 || stacks[0].Name != "shop" || pages != 1 {
		t.Errorf("ana's entry after ben's put: %v, pages %d", stacks, pages)
	}

	// drop (a change started) keeps the page count; forget (logout) drops all.
	c.drop(anaID)
	if stacks, _, pages, ok := c.get(anaID, t0); ok || stacks != nil || pages != 1 {
		t.Errorf("after drop: %v, pages %d, fresh %v; want pages 1 only", stacks, pages, ok)
	}
	c.forget(anaID)
	if _, _, pages, _ := c.get(anaID, t0); pages != 0 {
		t.Errorf("after forget: pages %d", pages)
	}
	if stacks, _, _, ok := c.get(benID, t0); !ok || stacks[0].Name != "blog" {
		t.Errorf("ben's entry went with ana's: %v", stacks)
	}
}

func TestStackListsBound(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &stackLists{ttl: stackListTTL}
	id := func(i int) storage.Identity { return storage.Identity{Team: "T", User: fmt.Sprint(i)} }
	for i := range stackListHints + 5 {
		c.put(id(i), listOf("s"), nil, 2, t0)
	}
	if n, lists := c.len(); n != stackListHints || lists != stackListSize {
		t.Errorf("%d entries, %d lists; want %d and %d", n, lists, stackListHints, stackListSize)
	}
	// The newest keep their lists, older ones their page count, the oldest nothing.
	newest, older, oldest := id(stackListHints+4), id(stackListHints+4-stackListSize), id(4)
	if _, _, _, ok := c.get(newest, t0); !ok {
		t.Error("newest list evicted")
	}
	if _, _, pages, ok := c.get(older, t0); ok || pages != 2 {
		t.Errorf("list past the cap: fresh %v, pages %d; want pages only", ok, pages)
	}
	if _, _, pages, _ := c.get(oldest, t0); pages != 0 {
		t.Errorf("oldest hint kept: pages %d", pages)
	}
	// Expired lists are let go of on the next put, not only on a get.
	c.put(id(-1), listOf("s"), nil, 2, t0.Add(stackListTTL))
	if _, lists := c.len(); lists != 1 {
		t.Errorf("%d lists held after the TTL, want only the new one", lists)
	}
}

// pagedCloud66 is a Cloud66 with ListStacksPages, counting what it is asked.
type pagedCloud66 struct {
	*countingCloud66
	mu    sync.Mutex
	hints []int
	pages int // what it says the listing took
}

func (p *pagedCloud66) ListStacksPages(ctx context.Context, pages int) ([]cloud66.Stack, int, error) {
	p.mu.Lock()
	p.hints = append(p.hints, pages)
	p.mu.Unlock()
	stacks, err := p.countingCloud66.ListStacks(ctx)
	return stacks, p.pages, err
}

// stacksEnv runs `stacks` through newStacksCommand with a clock the test moves.
type stacksEnv struct {
	t     *testing.T
	cmd   *Command
	now   time.Time
	lists *stackLists
	c66   map[storage.Identity]*pagedCloud66
}

func newStacksEnv(t *testing.T, ttl time.Duration) *stacksEnv {
	e := &stacksEnv{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), lists: &stackLists{ttl: ttl}, c66: map[storage.Identity]*pagedCloud66{}}
	for _, id := range []storage.Identity{anaID, benID} {
		stacks := testStacks()
		if id == benID {
			stacks = stacks[:1]
		}
		e.c66[id] = &pagedCloud66{countingCloud66: &countingCloud66{fakeCloud66: &fakeCloud66{stacks: stacks}}, pages: 2}
	}
	clientFor := func(_ context.Context, id storage.Identity) (Cloud66, error) { return e.c66[id], nil }
	e.cmd = newStacksCommand(clientFor, "/c66", e.lists, func() time.Time { return e.now })
	return e
}

func (e *stacksEnv) run(req Request, args ...string) string {
	e.t.Helper()
	msg, err := e.cmd.Run(e.t.Context(), &Call{Request: req, Args: args, Command: e.cmd})
	if err != nil {
		e.t.Fatal(err)
	}
	return replyText(e.t, msg)
}

// With a TTL, a warm `stacks` costs no Cloud 66 request, a filter is
// answered from the same listing, a listing never answers another
// person, and after the TTL the pages are fetched with the last count.
func TestStacksReusesListing(t *testing.T) {
	t.Parallel()
	e := newStacksEnv(t, stackListTTL)
	ana, ben := ana, ben
	cold := e.run(ana)
	if got := e.run(ana); got != cold {
		t.Errorf("warm answer differs:\n%s\nwant\n%s", got, cold)
	}
	if got := e.run(ana, "staging"); !strings.Contains(got, "(1)") {
		t.Errorf("filtered warm answer: %s", got)
	}
	if lists, _ := e.c66[anaID].counts(); lists != 1 {
		t.Errorf("ana's three `stacks` listed %d times, want 1", lists)
	}
	if got := e.run(ben); strings.Contains(got, "staging") || !strings.Contains(got, "(1)") {
		t.Errorf("ben sees ana's listing: %s", got)
	}
	if lists, _ := e.c66[benID].counts(); lists != 1 {
		t.Errorf("ben listed %d times, want 1", lists)
	}

	e.now = e.now.Add(stackListTTL)
	e.run(ana)
	if lists, _ := e.c66[anaID].counts(); lists != 2 {
		t.Errorf("after the TTL: %d listings, want 2", lists)
	}
	if h := e.c66[anaID].hints; !slices.Equal(h, []int{0, 2}) {
		t.Errorf("page hints %v, want [0 2] (cold unknown, then the last count)", h)
	}
	e.lists.drop(anaID)
	e.run(ana)
	if lists, _ := e.c66[anaID].counts(); lists != 3 {
		t.Errorf("after drop: %d listings, want 3", lists)
	}
}

// As it is wired today (no TTL), every `stacks` asks Cloud 66, with the
// page count of the last listing.
func TestStacksHintsOnlyAsksEveryTime(t *testing.T) {
	t.Parallel()
	e := newStacksEnv(t, 0)
	e.run(ana)
	e.run(ana)
	e.run(ben)
	if lists, _ := e.c66[anaID].counts(); lists != 2 {
		t.Errorf("%d listings, want 2", lists)
	}
	if h := e.c66[anaID].hints; !slices.Equal(h, []int{0, 2}) {
		t.Errorf("ana's hints %v, want [0 2]", h)
	}
	if h := e.c66[benID].hints; !slices.Equal(h, []int{0}) {
		t.Errorf("ben's hints %v, want [0]: ana's count is not his", h)
	}
}

// A reused listing reuses the outcomes looked up for its failed stacks,
// and a filtered view looks up only those it lacks.
func TestStacksReusesOutcomes(t *testing.T) {
	t.Parallel()
	e := newStacksEnv(t, stackListTTL)
	c := e.c66[anaID]
	c.deployments = map[string][]cloud66.Deployment{"uid-shop-s": {outcome("canceled by user")}}
	for range 2 {
		if got := e.run(ana); !strings.Contains(got, "*shop* · staging — :black_square_for_stop: Deployment cancelled") {
			t.Errorf("cancelled stack not shown so: %s", got)
		}
	}
	if _, deps := c.counts(); !slices.Equal(deps, []string{"uid-shop-s"}) {
		t.Errorf("deployments asked of %v, want uid-shop-s once", deps)
	}
}

// The lines are the ones fmt.Sprintf built before, byte for byte.
func TestStackLineMatchesFormat(t *testing.T) {
	t.Parallel()
	stacks := []cloud66.Stack{
		{Name: "shop", Environment: "production", Status: cloud66.StatusDeployed, Health: cloud66.HealthOK},
		{Name: "<!channel> & co", Environment: "", Status: cloud66.StatusFailed, Health: cloud66.HealthFailed},
		{Name: "a\nb", Environment: "q<a>", Status: 42, Health: 9},
		{Name: "x", Environment: "y", Status: cloud66.StatusFailed, Health: cloud66.HealthImpaired},
	}
	for _, s := range stacks {
		for _, cancelled := range []bool{false, true} {
			want := fmt.Sprintf("%s %s — %s · %s", bk.HealthEmoji(s.Health), bk.StackLabel(s), statusText(s, cancelled), s.Health)
			if got := string(appendStackLine(nil, s, cancelled)); got != want {
				t.Errorf("line %q, want %q", got, want)
			}
		}
	}
}

func TestSortStacks(t *testing.T) {
	t.Parallel()
	in := []cloud66.Stack{
		{UID: "1", Name: "shop", Environment: "staging"}, {UID: "2", Name: "Blog"}, {UID: "3", Name: "shop", Environment: "production"},
		{UID: "4", Name: "SHOP", Environment: "production"}, {UID: "5", Name: "api"},
	}
	sortStacks(in)
	var got []string
	for _, s := range in {
		got = append(got, s.UID)
	}
	if want := []string{"5", "2", "3", "4", "1"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
