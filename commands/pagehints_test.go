package commands

import (
	"context"
	"fmt"
	"slices"
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

func TestPageHintsExpiry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h pageHints
	h.put(anaID, 2, t0)
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{
		{0, 2},
		{pageHintTTL - time.Nanosecond, 2},
		{pageHintTTL, 0},
	} {
		if got := h.get(anaID, t0.Add(tt.at)); got != tt.want {
			t.Errorf("at +%v: pages %d, want %d", tt.at, got, tt.want)
		}
	}
	if n := h.len(); n != 0 {
		t.Errorf("after the hint expired: %d hints held", n)
	}
}

func TestPageHintsPerPerson(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h pageHints
	h.put(anaID, 1, t0)
	for _, id := range []storage.Identity{benID, anaElsewhere, {Team: "T1"}, {User: "U1"}} {
		if pages := h.get(id, t0); pages != 0 {
			t.Errorf("%+v got ana's hint: pages %d", id, pages)
		}
	}
	h.put(benID, 3, t0)
	if pages := h.get(anaID, t0); pages != 1 {
		t.Errorf("ana's hint after ben's put: pages %d", pages)
	}
	h.put(anaID, 4, t0)
	if pages, n := h.get(anaID, t0), h.len(); pages != 4 || n != 2 {
		t.Errorf("ana's second put: pages %d, %d hints; want 4 and 2", pages, n)
	}
}

func TestPageHintsBound(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h pageHints
	id := func(i int) storage.Identity { return storage.Identity{Team: "T", User: fmt.Sprint(i)} }
	for i := range pageHintsSize + 5 {
		h.put(id(i), 2, t0)
	}
	if n := h.len(); n != pageHintsSize {
		t.Errorf("%d hints, want %d", n, pageHintsSize)
	}
	if pages := h.get(id(pageHintsSize+4), t0); pages != 2 {
		t.Errorf("newest hint: pages %d", pages)
	}
	if pages := h.get(id(4), t0); pages != 0 {
		t.Errorf("oldest hint kept: pages %d", pages)
	}
	// Expired hints are let go of on the next put, not only on a get.
	h.put(id(-1), 2, t0.Add(pageHintTTL))
	if n := h.len(); n != 1 {
		t.Errorf("%d hints held after the TTL, want only the new one", n)
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

// stacksEnv runs `stacks` through newStacksCommand on a clock of its own.
type stacksEnv struct {
	t   *testing.T
	cmd *Command
	now time.Time
	c66 map[storage.Identity]*pagedCloud66
}

func newStacksEnv(t *testing.T) *stacksEnv {
	e := &stacksEnv{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), c66: map[storage.Identity]*pagedCloud66{}}
	for _, id := range []storage.Identity{anaID, benID} {
		stacks := testStacks()
		if id == benID {
			stacks = stacks[:1]
		}
		e.c66[id] = &pagedCloud66{countingCloud66: &countingCloud66{fakeCloud66: &fakeCloud66{stacks: stacks}}, pages: 2}
	}
	clientFor := func(_ context.Context, id storage.Identity) (Cloud66, error) { return e.c66[id], nil }
	e.cmd = newStacksCommand(clientFor, "/c66", func() time.Time { return e.now })
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

// Every `stacks` asks Cloud 66, with the page count of the person's own
// last listing.
func TestStacksAsksEveryTimeWithTheLastPageCount(t *testing.T) {
	t.Parallel()
	e := newStacksEnv(t)
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
