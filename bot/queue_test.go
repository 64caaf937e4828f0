package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// The queue tests run against the fake Slack with the real slack-go client.
// Every 429 costs at least a second (Retry-After is whole seconds), so the
// tests use few of them and run in parallel.

const queueWait = 10 * time.Second

// queueAPI is a slack-go client for srv with its own transport, so a test
// can close its idle connections when counting goroutines.
func queueAPI(srv *bottest.Server) (*slack.Client, *http.Transport) {
	tr := &http.Transport{}
	api := slack.New(srv.BotToken, slack.OptionAPIURL(srv.APIURL()),
		slack.OptionHTTPClient(&http.Client{Transport: tr, Timeout: queueWait}))
	return api, tr
}

func msg(text string) chat.Message { return chat.Message{Text: text} }

// outcome is one done callback.
type outcome struct {
	text string
	ts   string
	err  error
	at   time.Duration // since the recorder started
}

// recorder collects done callbacks in the order they happen.
type recorder struct {
	start time.Time
	wg    sync.WaitGroup
	mu    sync.Mutex
	got   []outcome
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) done(text string) func(string, error) {
	r.wg.Add(1)
	var once sync.Once
	return func(ts string, err error) {
		first := false
		once.Do(func() { first = true })
		r.mu.Lock()
		if !first {
			text += " (done called twice)"
		}
		r.got = append(r.got, outcome{text: text, ts: ts, err: err, at: time.Since(r.start)})
		r.mu.Unlock()
		if first {
			r.wg.Done()
		}
	}
}

func (r *recorder) wait(t *testing.T) []outcome {
	t.Helper()
	ch := make(chan struct{})
	go func() { r.wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(queueWait):
		t.Fatal("messages still pending")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) find(text string) outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.got {
		if o.text == text {
			return o
		}
	}
	return outcome{}
}

func texts(ms []bottest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

func rateLimitedCalls(srv *bottest.Server) (n int, channels map[string]int) {
	channels = map[string]int{}
	for _, c := range srv.Calls() {
		if c.Method == "chat.postMessage" && c.Status == http.StatusTooManyRequests {
			n++
			channels[c.Form.Get("channel")]++
		}
	}
	return n, channels
}

func closeQueue(t *testing.T, q interface{ Close(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(queueWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestQueueStormKeepsOrder: 100 messages (some thread replies) into one
// channel while Slack's bucket runs dry and 429s are injected: all arrive,
// in order, none twice.
func TestQueueStormKeepsOrder(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t, bottest.WithPostRate(100, 50))
	api, _ := queueAPI(srv)
	base := &Poster{api: api}
	// Two 429s are injected for sure (how many the fake's bucket adds
	// depends on how fast the calls go): the first try of m001 and of m060.
	var inject sync.Map
	post := func(ctx context.Context, ch string, m chat.Message, threadTS string) (string, error) {
		if _, seen := inject.LoadOrStore(m.Text, true); !seen && (m.Text == "m001" || m.Text == "m060") {
			srv.RateLimitNext("chat.postMessage", 1, time.Second)
		}
		return base.postMessage(ctx, ch, m, threadTS)
	}
	// Faster than Slack allows, so the fake's bucket may answer 429s too.
	q := newPostQueue(post, PostOptions{PerSecond: 1000, Burst: 100})
	defer closeQueue(t, q)
	ch := bottest.ChannelGeneral
	ctx := context.Background()

	parent, err := q.Post(ctx, ch, "", msg("m000"))
	if err != nil {
		t.Fatal(err)
	}

	rec := newRecorder()
	want := []string{"m000"}
	for i := 1; i < 100; i++ {
		text := fmt.Sprintf("m%03d", i)
		want = append(want, text)
		thread := ""
		if i%10 == 0 {
			thread = parent
		}
		q.Enqueue(ch, thread, msg(text), rec.done(text))
	}
	got := rec.wait(t)

	for i, o := range got {
		if o.err != nil || o.ts == "" || o.text != want[i+1] {
			t.Errorf("outcome %d = %+v, want %s posted", i, o, want[i+1])
		}
	}
	posts := srv.PostsIn(ch)
	if !slices.Equal(texts(posts), want) {
		t.Fatalf("posted %v\nwant %v", texts(posts), want)
	}
	for i, m := range posts {
		if wantThread := i > 0 && i%10 == 0; (m.ThreadTS == parent) != wantThread {
			t.Errorf("%s thread_ts %q", m.Text, m.ThreadTS)
		}
		if i > 0 && got[i-1].ts != m.TS {
			t.Errorf("%s: done got ts %q, Slack has %q", m.Text, got[i-1].ts, m.TS)
		}
	}
	limited, _ := rateLimitedCalls(srv)
	if limited < 2 {
		t.Errorf("only %d 429s, want at least the 2 injected", limited)
	}
	if n := srv.CallCount("chat.postMessage"); n != 100+limited {
		t.Errorf("%d calls for 100 messages and %d 429s: something was sent twice or dropped", n, limited)
	}
}

// TestQueueChannelsDoNotWaitOnEachOther: while one channel waits out a 429,
// another channel's messages go through.
func TestQueueChannelsDoNotWaitOnEachOther(t *testing.T) {
	t.Parallel()
	// Three posts at once empty a channel's bucket; the fourth, within
	// half a second, gets a 429 with Retry-After: 1.
	srv := bottest.Start(t, bottest.WithPostRate(2, 3))
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 1000, Burst: 10})
	defer closeQueue(t, p)
	slow, fast := bottest.ChannelGeneral, bottest.ChannelPrivBot

	rec := newRecorder()
	for i := range 5 {
		text := fmt.Sprintf("slow%d", i)
		p.queue.Enqueue(slow, "", msg(text), rec.done(text))
	}
	// The slow channel's fourth post meets an empty bucket; let it.
	waitUntil(t, "a 429 in the slow channel", func() bool { n, _ := rateLimitedCalls(srv); return n > 0 })
	for i := range 3 {
		text := fmt.Sprintf("fast%d", i)
		p.queue.Enqueue(fast, "", msg(text), rec.done(text))
	}
	got := rec.wait(t)

	for _, o := range got {
		if o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	fastDone, slowDone := rec.find("fast2").at, rec.find("slow3").at
	if fastDone >= slowDone {
		t.Errorf("fast channel finished at %v, after the slow channel's post at %v", fastDone, slowDone)
	}
	if slowDone < 900*time.Millisecond {
		t.Errorf("slow channel did not wait out Retry-After: %v", slowDone)
	}
	if _, per := rateLimitedCalls(srv); per[fast] != 0 || per[slow] == 0 {
		t.Errorf("429s per channel: %v", per)
	}
	if got := texts(srv.PostsIn(slow)); !slices.Equal(got, []string{"slow0", "slow1", "slow2", "slow3", "slow4"}) {
		t.Errorf("slow channel order %v", got)
	}
}

// TestQueuePacesBelowSlacksLimit: paced under Slack's limit, the queue
// does not rely on 429s at all.
func TestQueuePacesBelowSlacksLimit(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t, bottest.WithPostRate(10, 2))
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 5, Burst: 2})
	defer closeQueue(t, p)

	rec := newRecorder()
	for i := range 6 {
		p.queue.Enqueue(bottest.ChannelGeneral, "", msg(fmt.Sprint(i)), rec.done(fmt.Sprint(i)))
	}
	for _, o := range rec.wait(t) {
		if o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	if n, _ := rateLimitedCalls(srv); n != 0 {
		t.Errorf("%d 429s at Slack's pace", n)
	}
}

// TestQueuePosterPostThreadDM: poster's methods through the queue keep
// their behaviour for package deploy.
func TestQueuePosterPostThreadDM(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 100})
	defer closeQueue(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	var _ deploy.Slack = p

	ts, err := p.Post(ctx, bottest.ChannelGeneral, chat.Message{Text: "card", Blocks: []slack.Block{slack.NewDividerBlock()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Thread(ctx, bottest.ChannelGeneral, ts, msg("progress")); err != nil {
		t.Fatal(err)
	}
	posts := srv.PostsIn(bottest.ChannelGeneral)
	if len(posts) != 2 || posts[0].TS != ts || string(posts[0].Blocks) != `[{"type":"divider"}]` || posts[1].ThreadTS != ts {
		t.Errorf("posts %+v", posts)
	}
	if err := p.DM(ctx, storage.Identity{Team: srv.TeamID, User: "U0ALICE"}, msg("psst")); err != nil {
		t.Fatal(err)
	}
	if m, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Text == "psst" }); err != nil || m.Channel[0] != 'D' {
		t.Errorf("DM %+v %v", m, err)
	}
	for _, ch := range []string{bottest.ChannelPublic, bottest.ChannelPrivate} {
		if _, err := p.Post(ctx, ch, msg("x")); !errors.Is(err, chat.ErrCannotPost) {
			t.Errorf("Post to %s: %v", ch, err)
		}
		if err := p.Thread(ctx, ch, ts, msg("x")); !errors.Is(err, chat.ErrCannotPost) {
			t.Errorf("Thread in %s: %v", ch, err)
		}
	}
	// Enqueue, through the queue and on a poster without one.
	rec := newRecorder()
	p.Enqueue(bottest.ChannelGeneral, ts, msg("queued reply"), rec.done("queued reply"))
	(&Poster{api: api}).Enqueue(bottest.ChannelGeneral, "", msg("direct"), rec.done("direct"))
	p.Enqueue(bottest.ChannelGeneral, "", msg("no callback"), nil)
	for _, o := range rec.wait(t) {
		if o.err != nil || o.ts == "" {
			t.Errorf("%s: %q %v", o.text, o.ts, o.err)
		}
	}
	if m, err := srv.WaitMessage(ctx, func(m bottest.Message) bool { return m.Text == "no callback" }); err != nil || m.Kind != bottest.KindPost {
		t.Errorf("Enqueue without done: %+v %v", m, err)
	}
	if r := rec.find("queued reply"); r.ts != "" {
		if m, ok := srv.Message(bottest.ChannelGeneral, r.ts); !ok || m.ThreadTS != ts {
			t.Errorf("queued reply %+v", m)
		}
	}

	// chat.update does not go through the queue but still works.
	if err := p.Update(ctx, bottest.ChannelGeneral, ts, msg("card, edited")); err != nil {
		t.Fatal(err)
	}
	if cur, _ := srv.Message(bottest.ChannelGeneral, ts); cur.Text != "card, edited" {
		t.Errorf("after update %+v", cur)
	}
}

// TestQueueUnpostableFailsBacklog: the bot was removed from a channel, so
// its first post fails and so does everything queued behind it, without
// being sent; OnUnpostable hears once; other channels carry on.
func TestQueueUnpostableFailsBacklog(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	base := &Poster{api: api}
	kicked, other := bottest.ChannelGeneral, bottest.ChannelPrivBot

	// Hold the first post until the backlog is queued.
	gate := make(chan struct{})
	var calls atomic.Int32
	post := func(ctx context.Context, ch string, m chat.Message, threadTS string) (string, error) {
		if ch == kicked && calls.Add(1) == 1 {
			<-gate
		}
		return base.postMessage(ctx, ch, m, threadTS)
	}
	var mu sync.Mutex
	var unpostable []string
	q := newPostQueue(post, PostOptions{PerSecond: 100, OnUnpostable: func(ch string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, chat.ErrCannotPost) {
			t.Errorf("OnUnpostable(%s, %v)", ch, err)
		}
		unpostable = append(unpostable, ch)
	}})
	defer closeQueue(t, q)

	srv.RemoveBot(kicked)
	rec := newRecorder()
	for i := range 5 {
		text := fmt.Sprintf("k%d", i)
		q.Enqueue(kicked, "", msg(text), rec.done(text))
	}
	for i := range 2 {
		text := fmt.Sprintf("o%d", i)
		q.Enqueue(other, "", msg(text), rec.done(text))
	}
	close(gate)
	for _, o := range rec.wait(t) {
		if o.text[0] == 'k' && !errors.Is(o.err, chat.ErrCannotPost) {
			t.Errorf("%s: %v, want ErrCannotPost", o.text, o.err)
		}
		if o.text[0] == 'o' && o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	mu.Lock()
	if !slices.Equal(unpostable, []string{kicked}) {
		t.Errorf("OnUnpostable calls: %v", unpostable)
	}
	mu.Unlock()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d posts tried in the kicked channel, want 1", n)
	}
	if got := texts(srv.PostsIn(other)); !slices.Equal(got, []string{"o0", "o1"}) {
		t.Errorf("other channel got %v", got)
	}

	// The queue does not remember: once invited back, posts work.
	srv.AddChannel(bottest.Channel{ID: kicked, Name: "general", BotMember: true})
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	if _, err := q.Post(ctx, kicked, "", msg("back")); err != nil {
		t.Errorf("after invite: %v", err)
	}
}

// TestQueueServerErrorNotRetried: a 5xx or an ok:false answer may hide a
// posted message, so it is returned, not retried, and the channel goes on.
func TestQueueServerErrorNotRetried(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 100})
	defer closeQueue(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	ch := bottest.ChannelGeneral

	srv.FailNextHTTP("chat.postMessage", http.StatusInternalServerError, 1)
	_, err := p.Post(ctx, ch, msg("once"))
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != http.StatusInternalServerError || errors.Is(err, chat.ErrCannotPost) {
		t.Errorf("500: %v", err)
	}
	if n := srv.CallCount("chat.postMessage"); n != 1 {
		t.Errorf("500 retried: %d calls", n)
	}
	srv.FailNext("chat.postMessage", "fatal_error", 1)
	if err := p.Thread(ctx, ch, "1.000001", msg("once")); err == nil || errors.Is(err, chat.ErrCannotPost) {
		t.Errorf("fatal_error: %v", err)
	}
	if _, err := p.Post(ctx, ch, msg("next")); err != nil {
		t.Errorf("the channel must go on after a failure: %v", err)
	}
	if n := srv.CallCount("chat.postMessage"); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

// TestQueueGivesUpAfterMaxRetryAfterWaits: a message that keeps meeting
// 429s eventually fails with the rate-limit error.
func TestQueueGivesUpAfterMaxRetryAfterWaits(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 100, MaxRetryAfterWaits: 1})
	defer closeQueue(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()

	srv.RateLimitNext("chat.postMessage", 2, time.Second)
	start := time.Now()
	_, err := p.Post(ctx, bottest.ChannelGeneral, msg("x"))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Errorf("err = %v, want a RateLimitedError", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("gave up after %v without waiting out the first 429", d)
	}
	if n := srv.CallCount("chat.postMessage"); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

// TestQueuePostContextDropsUnsent: a caller that gives up before its
// message is sent gets ctx's error, and the message is never posted.
func TestQueuePostContextDropsUnsent(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 4, Burst: 1})
	defer closeQueue(t, p)
	ch := bottest.ChannelGeneral

	rec := newRecorder()
	p.queue.Enqueue(ch, "", msg("first"), rec.done("first"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Post(ctx, ch, msg("abandoned")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Post = %v, want DeadlineExceeded", err)
	}
	p.queue.Enqueue(ch, "", msg("third"), rec.done("third"))
	for _, o := range rec.wait(t) {
		if o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	if got := texts(srv.PostsIn(ch)); !slices.Equal(got, []string{"first", "third"}) {
		t.Errorf("posted %v", got)
	}
}

// TestQueueCloseDrains: Close sends what is queued, then refuses more.
func TestQueueCloseDrains(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 20, Burst: 1})

	rec := newRecorder()
	for i := range 10 {
		ch := bottest.ChannelGeneral
		if i%2 == 1 {
			ch = bottest.ChannelPrivBot
		}
		p.queue.Enqueue(ch, "", msg(fmt.Sprint(i)), rec.done(fmt.Sprint(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Every message is done by the time Close returns.
	rec.mu.Lock()
	n := len(rec.got)
	rec.mu.Unlock()
	if n != 10 {
		t.Errorf("%d of 10 done when Close returned", n)
	}
	for _, o := range rec.wait(t) {
		if o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	if got := len(srv.PostsIn(bottest.ChannelGeneral)) + len(srv.PostsIn(bottest.ChannelPrivBot)); got != 10 {
		t.Errorf("%d posted", got)
	}
	if w := p.queue.workers(); w != 0 {
		t.Errorf("%d workers after Close", w)
	}

	late := newRecorder()
	p.queue.Enqueue(bottest.ChannelGeneral, "", msg("late"), late.done("late"))
	if got := late.wait(t); !errors.Is(got[0].err, errQueueClosed) {
		t.Errorf("Enqueue after Close: %v", got[0].err)
	}
	if _, err := p.Post(ctx, bottest.ChannelGeneral, msg("late")); !errors.Is(err, errQueueClosed) {
		t.Errorf("Post after Close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestQueueCloseGivesUp: when Close's context ends first, the rest fail
// with errQueueClosed and nothing is posted afterwards.
func TestQueueCloseGivesUp(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	api, _ := queueAPI(srv)
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 5, Burst: 1})

	rec := newRecorder()
	for i := range 10 {
		p.queue.Enqueue(bottest.ChannelGeneral, "", msg(fmt.Sprint(i)), rec.done(fmt.Sprint(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	got := rec.wait(t)
	if len(got) != 10 {
		t.Fatalf("%d of 10 done when Close returned", len(got))
	}
	// One call may have been on its way when Close gave up: Slack may or
	// may not have taken it. Everything else was sent or never left.
	sent, unsent, inFlight := 0, 0, 0
	for _, o := range got {
		switch {
		case o.err == nil:
			sent++
		case errors.Is(o.err, errQueueClosed) && errors.Is(o.err, context.DeadlineExceeded):
			unsent++
		case errors.Is(o.err, errAbandonedInFlight):
			inFlight++
		default:
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	if sent == 0 || unsent == 0 || inFlight > 1 {
		t.Errorf("sent %d, unsent %d, in flight %d", sent, unsent, inFlight)
	}
	time.Sleep(300 * time.Millisecond)
	if posted := len(srv.PostsIn(bottest.ChannelGeneral)); posted < sent || posted > sent+inFlight {
		t.Errorf("%d posted, %d reported sent, %d in flight", posted, sent, inFlight)
	}
}

// TestQueueWorkersExitWhenIdle: a channel's worker lives only while the
// channel has work (plus the moment its pace needs to reset), so many
// channels leave no goroutines behind. Not parallel: it counts goroutines.
func TestQueueWorkersExitWhenIdle(t *testing.T) {
	srv := bottest.Start(t)
	var chans []string
	for i := range 8 {
		id := fmt.Sprintf("C0Q%d", i)
		srv.AddChannel(bottest.Channel{ID: id, Name: id, BotMember: true})
		chans = append(chans, id)
	}
	api, tr := queueAPI(srv)
	before := runtime.NumGoroutine()
	p := NewPoster(api, nil, nil, PostOptions{PerSecond: 50, Burst: 2})

	rec := newRecorder()
	for round := range 3 {
		for _, ch := range chans {
			text := fmt.Sprintf("%s-%d", ch, round)
			p.queue.Enqueue(ch, "", msg(text), rec.done(text))
		}
	}
	if w := p.queue.workers(); w == 0 || w > len(chans) {
		t.Errorf("%d workers for %d busy channels", w, len(chans))
	}
	for _, o := range rec.wait(t) {
		if o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	waitUntil(t, "idle workers to exit", func() bool { return p.queue.workers() == 0 })
	tr.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines with idle workers gone, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}

	// A channel used again after its worker exited gets a fresh one.
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	if _, err := p.Post(ctx, chans[0], msg("again")); err != nil {
		t.Fatal(err)
	}
	closeQueue(t, p)
}
