package bot

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// countingViews renders a Home naming the person and how many times it was
// rendered for them.
type countingViews struct {
	mu sync.Mutex
	n  map[storage.Identity]int
}

func (v *countingViews) View(_ context.Context, id storage.Identity) (slack.HomeTabViewRequest, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n[id]++
	text := strings.Repeat("*", v.n[id]) + " home of " + id.Team + "/" + id.User
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
	}}}, nil
}

func TestAppHomeOpenedIsAckedAndPublished(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	srv := bottest.Start(t)
	api := slack.New(srv.BotToken, slack.OptionAppLevelToken(srv.AppToken), slack.OptionAPIURL(srv.APIURL()))
	home := NewHome(HomeConfig{API: api, Views: &countingViews{n: map[storage.Identity]int{}}})
	b := New(Config{
		API: api, SlackAPIURL: srv.APIURL(), Router: &countingRouter{runs: map[string]int{}},
		Replies: NewReplier(http.DefaultClient, srv.APIURL(), nil), Logger: slog.New(slog.DiscardHandler),
		Workers: 2, Queue: 8, CommandTimeout: queueWait, ShutdownTimeout: queueWait, Home: home,
	})
	t.Cleanup(testenv.Run(t, b.Run))
	if err := srv.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}

	id, err := srv.SendAppHomeOpened(ctx, "U0ANA")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(ctx, id)
	if err != nil {
		t.Fatalf("app_home_opened not acked: %v", err)
	}
	if len(ack.Payload) != 0 {
		t.Errorf("ack payload %s: events take none", ack.Payload)
	}
	want := "* home of " + srv.TeamID + "/U0ANA"
	v, err := srv.WaitHomeView(ctx, "U0ANA", func(v bottest.HomeView) bool { return strings.Contains(string(v.Blocks), want) })
	if err != nil {
		t.Fatalf("no Home published: %v (calls %v)", err, srv.Calls())
	}
	if v.Type != "home" {
		t.Errorf("view type %q", v.Type)
	}

	// A change on it republishes it, once they opened it.
	home.Touch(storage.Identity{Team: srv.TeamID, User: "U0ANA"})
	if _, err := srv.WaitHomeView(ctx, "U0ANA", func(v bottest.HomeView) bool { return strings.Contains(string(v.Blocks), "*"+want) }); err != nil {
		t.Fatalf("Touch did not republish: %v", err)
	}
}

// fakeAfter records what Home schedules instead of running it.
type fakeAfter struct {
	mu    sync.Mutex
	waits []time.Duration
	fns   []func()
}

func (f *fakeAfter) after(d time.Duration, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits, f.fns = append(f.waits, d), append(f.fns, fn)
}

// runAll runs what is scheduled and reports the waits asked for.
func (f *fakeAfter) runAll() []time.Duration {
	f.mu.Lock()
	waits, fns := f.waits, f.fns
	f.waits, f.fns = nil, nil
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return waits
}

func TestHomeIsRepublishedDebouncedAndOnlyWhenOpened(t *testing.T) {
	t.Parallel()
	ana, ben := storage.Identity{Team: "T1", User: "U1"}, storage.Identity{Team: "T1", User: "U2"}
	h := NewHome(HomeConfig{MinGap: time.Hour})
	fa := &fakeAfter{}
	h.after = fa.after

	h.Touch(ana) // never opened: nothing
	if got := fa.runAll(); len(got) != 0 {
		t.Fatalf("a Home nobody opened was scheduled: %v", got)
	}
	h.Opened(ana)
	if got := fa.runAll(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("opening: waits %v, want one publish at once", got)
	}
	// Three changes within the gap fold into one publish, at the gap's end.
	h.Touch(ana)
	h.Touch(ana)
	h.TouchAll()
	h.Touch(ben)
	got := fa.runAll()
	if len(got) != 1 || got[0] < 59*time.Minute || got[0] > time.Hour {
		t.Fatalf("touches within the gap: waits %v, want one near 1h", got)
	}
	var nilHome *Home
	nilHome.Touch(ana) // nil-safe
	nilHome.TouchAll()
}

// touchingViews touches the Home it renders, the first time: a change that
// lands while its publish is in flight.
type touchingViews struct {
	h       *Home
	fa      *fakeAfter
	renders int
	// scheduledDuring is how many publishes were scheduled while the
	// first was still in flight.
	scheduledDuring int
}

func (v *touchingViews) View(_ context.Context, id storage.Identity) (slack.HomeTabViewRequest, error) {
	v.renders++
	if v.renders == 1 {
		v.h.Touch(id)
		v.fa.mu.Lock()
		v.scheduledDuring = len(v.fa.waits)
		v.fa.mu.Unlock()
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab}, nil
}

type nopPublisher struct{ n int }

func (p *nopPublisher) PublishViewContext(context.Context, slack.PublishViewContextRequest) (*slack.ViewResponse, error) {
	p.n++
	return &slack.ViewResponse{}, nil
}

func TestHomeTouchedWhilePublishingIsPublishedAgainAfter(t *testing.T) {
	t.Parallel()
	ana := storage.Identity{Team: "T1", User: "U1"}
	views := &touchingViews{}
	h := NewHome(HomeConfig{MinGap: time.Hour, Views: views})
	pub := &nopPublisher{}
	fa := &fakeAfter{}
	views.h, views.fa = h, fa
	h.after, h.api, h.ctx = fa.after, pub, context.Background()

	h.Opened(ana)
	if got := fa.runAll(); len(got) != 1 {
		t.Fatalf("opening: waits %v", got)
	}
	// The touch during the first publish waits for it, then the gap.
	got := fa.runAll()
	if len(got) != 1 || got[0] < 59*time.Minute {
		t.Fatalf("touched while publishing: waits %v, want one after the gap", got)
	}
	if views.scheduledDuring != 0 {
		t.Errorf("%d publishes scheduled while one was in flight: two could land out of order", views.scheduledDuring)
	}
	if pub.n != 2 || views.renders != 2 {
		t.Errorf("published %d, rendered %d; want 2 and 2", pub.n, views.renders)
	}
}
