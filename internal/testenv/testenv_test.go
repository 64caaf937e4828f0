package testenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

var (
	t0  = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	ana = storage.Identity{Team: "T1", User: "UANA"}
)

func TestSlackRecordsSuccessesAndCountsFailuresAsAttempts(t *testing.T) {
	ctx := context.Background()
	s := NewSlack()
	s.SetCannot("CGONE")

	ts1, err := s.Post(ctx, "C1", chat.Message{Text: "one"})
	if err != nil || ts1 != "1741082400.000001" {
		t.Fatalf("Post = %q, %v", ts1, err)
	}
	if ts, err := s.Post(ctx, "CGONE", chat.Message{Text: "lost"}); !errors.Is(err, chat.ErrCannotPost) || ts != "" {
		t.Errorf("Post where the bot is not = %q, %v; want chat.ErrCannotPost", ts, err)
	}
	if err := s.Ephemeral(ctx, "CGONE", "UANA", chat.Message{}); !errors.Is(err, chat.ErrCannotPost) {
		t.Errorf("Ephemeral where the bot is not: %v", err)
	}
	ts2, _ := s.Post(ctx, "C1", chat.Message{Text: "two"})
	if ts2 != "1741082400.000002" {
		t.Errorf("second post's ts %q: failed posts take no ts", ts2)
	}
	_ = s.Update(ctx, "C1", ts1, chat.Message{Text: "one, edited"})
	_ = s.Thread(ctx, "C1", ts1, chat.Message{Text: "under one"})
	_ = s.DM(ctx, ana, chat.Message{Text: "psst"})

	if n := len(s.Calls("")); n != 5 {
		t.Errorf("%d calls recorded, want the 5 that worked", n)
	}
	if n := len(s.Posts("C1")); n != 2 || len(s.Posts("CGONE")) != 0 {
		t.Errorf("posts: %+v", s.Posts(""))
	}
	if s.Attempts("CGONE") != 1 || s.Attempts("C1") != 2 {
		t.Errorf("attempts: CGONE %d, C1 %d", s.Attempts("CGONE"), s.Attempts("C1"))
	}
	if c, ok := s.Last("update", ts1); !ok || c.Msg.Text != "one, edited" {
		t.Errorf("Last update of %s = %+v, %v", ts1, c, ok)
	}
	if _, ok := s.Last("update", ts2); ok {
		t.Error("an update of a message never edited")
	}
	if dms := s.Calls("dm"); len(dms) != 1 || dms[0].To != ana || dms[0].User != "UANA" {
		t.Errorf("DMs: %+v", dms)
	}
}

func TestSlackEnqueueAnswersAsTheQueueWould(t *testing.T) {
	s := NewSlack()
	s.FailNext("C1", 1)
	s.Hold("C2")
	var mu sync.Mutex
	var outcomes []string
	var wg sync.WaitGroup
	enqueue := func(channel string) {
		wg.Add(1)
		s.Enqueue(channel, "", chat.Message{Text: channel}, func(ts string, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			outcomes = append(outcomes, fmt.Sprintf("%s %q %v", channel, ts, err != nil))
		})
	}
	enqueue("C1")
	enqueue("C1")
	wg.Wait()
	s.Enqueue("C2", "", chat.Message{}, func(string, error) { t.Error("a held post was answered") })

	slices.Sort(outcomes) // done runs on goroutines of its own
	if strings.Join(outcomes, "; ") != `C1 "" true; C1 "1741082400.000001" false` {
		t.Errorf("outcomes: %v", outcomes)
	}
	if s.Attempts("C1") != 2 || len(s.Posts("C1")) != 1 {
		t.Errorf("C1: %d attempts, %d posts; want 2 and 1", s.Attempts("C1"), len(s.Posts("C1")))
	}
	if s.Waiting("C2") != 1 || s.Attempts("C2") != 0 {
		t.Errorf("C2: %d waiting, %d attempts; want 1 and 0", s.Waiting("C2"), s.Attempts("C2"))
	}
}

func TestCall_TextShowsTheMrkdwnAsSlackReadsIt(t *testing.T) {
	section := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "<@UANA> & co", false, false), nil, nil)
	c := Call{Msg: chat.Message{Text: "fallback", Blocks: []slack.Block{section}}}
	if got := c.Text(); !strings.HasPrefix(got, "fallback\n[") || !strings.Contains(got, `"text":"<@UANA> & co"`) {
		t.Errorf("Text = %s, want the fallback, then the blocks with < and & as they are", got)
	}
}

func TestWorldClientsActAsTheLinkedPerson(t *testing.T) {
	w := New(t, t0, time.Minute)
	w.Link(ana, "ana@example.com")
	c, err := w.ClientFor(t.Context(), ana)
	if err != nil {
		t.Fatal(err)
	}
	if stacks, err := c.ListStacks(t.Context()); err != nil || len(stacks) == 0 {
		t.Errorf("ana's stacks: %d, %v", len(stacks), err)
	}
	carol := storage.Identity{Team: "T1", User: "UCAROL"}
	if _, err := w.ClientFor(t.Context(), carol); !errors.Is(err, accounts.ErrNotLinked) {
		t.Errorf("client of someone never linked: %v, want accounts.ErrNotLinked", err)
	}
	type pinger interface {
		Ping(ctx context.Context) error
	}
	// A typed Cloud66For returns a nil interface, not a nil pointer in
	// one, for someone not linked.
	if c, err := Cloud66For[pinger](w)(t.Context(), carol); c != nil || !errors.Is(err, accounts.ErrNotLinked) {
		t.Errorf("Cloud66For of someone never linked = %v, %v", c, err)
	}
	if c, err := Cloud66For[pinger](w)(t.Context(), ana); c == nil || err != nil {
		t.Errorf("Cloud66For of ana = %v, %v", c, err)
	}
}

func TestWorldStoreRunsOnItsClockAndReopens(t *testing.T) {
	w := New(t, t0, time.Minute)
	ctx := t.Context()
	if _, _, err := w.Store.Subscriptions().Subscribe(ctx, storage.Subscription{Team: "T1", Channel: "C1", Subscriber: ana}); err != nil {
		t.Fatal(err)
	}
	copyPath := t.TempDir() + "/copy.db"
	if _, err := w.Store.BackupFile(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	again := w.OpenStore(storage.Options{Path: copyPath, ReadOnly: true})
	subs, err := again.Subscriptions().All(ctx)
	if err != nil || len(subs) != 1 || !subs[0].CreatedAt.Equal(t0) {
		t.Errorf("the copy's subscriptions: %+v, %v; want one made at %s", subs, err, t0)
	}
}

// recorder is a TB that keeps what Run reports instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestRunStopsAndWaitsAndReportsTheError(t *testing.T) {
	rec := &recorder{TB: t}
	ended := false
	stop := Run(rec, func(ctx context.Context) error {
		<-ctx.Done()
		ended = true
		return errors.New("boom")
	})
	stop()
	if !ended {
		t.Error("stop returned before Run did")
	}
	stop() // again: nothing more
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "boom") {
		t.Errorf("reported %q, want Run's error once", rec.errs)
	}
}
