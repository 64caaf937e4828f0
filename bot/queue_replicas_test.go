package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Two postQueues sharing one lease store are two replicas posting to the
// same channels. The tests in a synctest bubble run on its fake clock:
// every wait (pace, Retry-After, the lease's backoff and renewals) passes
// at once in real time, and the times the posts are made at are exact.

// sent is one post a fake Slack took.
type sent struct {
	text string
	at   time.Time
}

// fakeSlack records posts with the (bubble's) time they are made at.
type fakeSlack struct {
	mu    sync.Mutex
	posts []sent
	// reply, when set, answers a post instead of taking it.
	reply func(m chat.Message) error
}

func (f *fakeSlack) post(_ context.Context, _ string, m chat.Message, _ string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reply != nil {
		if err := f.reply(m); err != nil {
			return "", err
		}
	}
	f.posts = append(f.posts, sent{m.Text, time.Now()})
	return fmt.Sprintf("%d.000%d", time.Now().Unix(), len(f.posts)), nil
}

func (f *fakeSlack) sent() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.posts)
}

// replicaOptions are the options of replica name's queue on leases.
func replicaOptions(name string, leases LeaseStore, perSecond float64, burst int) PostOptions {
	return PostOptions{PerSecond: perSecond, Burst: burst, Leases: leases, Replica: name}
}

// overPace returns the first post that came faster than one bucket of
// perSecond and burst for the whole channel allows, or "".
func overPace(posts []sent, perSecond float64, burst int) string {
	tokens, last := float64(burst), time.Time{}
	for i, p := range posts {
		if i > 0 {
			tokens = min(float64(burst), tokens+p.at.Sub(last).Seconds()*perSecond)
		}
		last = p.at
		if tokens -= 1; tokens < -1e-9 {
			return fmt.Sprintf("%s at %s (%d of %d)", p.text, p.at.Format("15:04:05.000"), i+1, len(posts))
		}
	}
	return ""
}

// inOrder reports whether the posts of each prefix ("a", "b") come in the
// order they were numbered.
func inOrder(posts []sent, prefixes ...string) bool {
	for _, prefix := range prefixes {
		var got []string
		for _, p := range posts {
			if strings.HasPrefix(p.text, prefix) {
				got = append(got, p.text)
			}
		}
		if !slices.IsSortedFunc(got, func(x, y string) int {
			var i, j int
			fmt.Sscanf(x[len(prefix):], "%d", &i)
			fmt.Sscanf(y[len(prefix):], "%d", &j)
			return i - j
		}) {
			return false
		}
	}
	return true
}

func TestQueueChannelIsPostedToByOneReplicaAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := storage.NewLocalLeases(time.Now)
		slack := &fakeSlack{}
		const perSecond, burst = 1, 2
		a := newPostQueue(slack.post, replicaOptions("a", leases, perSecond, burst))
		b := newPostQueue(slack.post, replicaOptions("b", leases, perSecond, burst))
		ch := bottest.ChannelGeneral

		var wg sync.WaitGroup
		n := 0
		for range 3 {
			for range 3 {
				for _, r := range []struct {
					name string
					q    *postQueue
				}{{"a", a}, {"b", b}} {
					wg.Add(1)
					r.q.Enqueue(ch, "", msg(fmt.Sprintf("%s%d", r.name, n)), func(_ string, err error) {
						if err != nil {
							t.Errorf("post: %v", err)
						}
						wg.Done()
					})
				}
				n++
			}
			wg.Wait() // a round drains both queues: the lease goes back and forth
		}

		posts := slack.sent()
		if len(posts) != 2*n {
			t.Fatalf("%d posts, want %d", len(posts), 2*n)
		}
		if p := overPace(posts, perSecond, burst); p != "" {
			t.Errorf("%s came faster than %v a second with bursts of %d across both replicas", p, perSecond, burst)
		}
		if !inOrder(posts, "a", "b") {
			t.Errorf("a replica's posts out of its order: %v", posts)
		}
		// Drained, both gave the channel up, leaving the last post's time.
		synctest.Wait()
		l, held, err := leases.Acquire(context.Background(), "channel:"+ch, "c", time.Second)
		if err != nil || !held {
			t.Fatalf("the drained channel's lease = %+v, %v, %v; want it free", l, held, err)
		}
		if last := posts[len(posts)-1].at; l.Note != last.UTC().Format(time.RFC3339Nano) {
			t.Errorf("note %q, want the last post's time %s", l.Note, last.UTC().Format(time.RFC3339Nano))
		}
		closeQueue(t, a)
		closeQueue(t, b)
	})
}

func TestQueueKeepsItsChannelThroughALongRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := storage.NewLocalLeases(time.Now)
		limited := true
		slack := &fakeSlack{reply: func(m chat.Message) error {
			if m.Text == "a0" && limited {
				limited = false
				return &slack.RateLimitedError{RetryAfter: 3 * defaultChannelLeaseTTL}
			}
			return nil
		}}
		a := newPostQueue(slack.post, replicaOptions("a", leases, 1, 1))
		b := newPostQueue(slack.post, replicaOptions("b", leases, 1, 1))
		ch := bottest.ChannelGeneral
		var wg sync.WaitGroup
		wg.Add(2)
		done := func(_ string, err error) {
			if err != nil {
				t.Errorf("post: %v", err)
			}
			wg.Done()
		}
		a.Enqueue(ch, "", msg("a0"), done)
		synctest.Wait() // a holds the channel, waiting out Slack's Retry-After
		time.Sleep(time.Second)
		b.Enqueue(ch, "", msg("b0"), done)
		wg.Wait()
		posts := slack.sent()
		if len(posts) != 2 || posts[0].text != "a0" || posts[1].text != "b0" {
			t.Fatalf("posts %v, want a0 then b0: a keeps its channel while it waits", posts)
		}
		if gap := posts[1].at.Sub(posts[0].at); gap < time.Second {
			t.Errorf("b posted %v after a, faster than the pace", gap)
		}
		closeQueue(t, a)
		closeQueue(t, b)
	})
}

// TestQueueReplicasKeepSlacksPaceInAChannel: two Posters on one lease store
// post to one channel of the fake Slack, whose limit they would break
// together without it; no 429 comes, and each one's order holds.
func TestQueueReplicasKeepSlacksPaceInAChannel(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t, bottest.WithPostRate(10, 2))
	leases := storage.NewLocalLeases(time.Now)
	ch := bottest.ChannelGeneral
	var posters []*Poster
	for _, name := range []string{"a", "b"} {
		api, _ := queueAPI(srv)
		p := NewPoster(api, nil, nil, replicaOptions(name, leases, 5, 2))
		defer closeQueue(t, p)
		posters = append(posters, p)
	}
	rec := newRecorder()
	for i := range 6 {
		for j, name := range []string{"a", "b"} {
			text := fmt.Sprintf("%s%d", name, i)
			posters[j].queue.Enqueue(ch, "", msg(text), rec.done(text))
		}
	}
	for _, o := range rec.wait(t) {
		if o.err != nil {
			t.Errorf("%s: %v", o.text, o.err)
		}
	}
	if n, _ := rateLimitedCalls(srv); n != 0 {
		t.Errorf("%d 429s from Slack: the replicas together posted faster than a channel allows", n)
	}
	var posts []sent
	for _, m := range srv.PostsIn(ch) {
		posts = append(posts, sent{text: m.Text})
	}
	if len(posts) != 12 || !inOrder(posts, "a", "b") {
		t.Errorf("posted %v: want all 12, each replica's in its order", texts(srv.PostsIn(ch)))
	}
	waitUntil(t, "both queues to drain", func() bool { return posters[0].queue.workers()+posters[1].queue.workers() == 0 })
	if _, held, _ := leases.Acquire(context.Background(), "channel:"+ch, "c", time.Second); !held {
		t.Error("the drained channel's lease was not given up")
	}
}
