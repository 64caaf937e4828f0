package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/storage"
)

var (
	// errQueueClosed: the post queue was closed before the message was
	// handed to Slack, so it was never posted.
	errQueueClosed = errors.New("slack post queue closed")
	// errAbandonedInFlight: Close gave up while the message was on its way
	// to Slack; it may or may not have been posted.
	errAbandonedInFlight = errors.New("slack post queue closed while the post was in flight; it may have been posted")
)

// Defaults for PostOptions. Slack allows about one chat.postMessage per
// second per channel with short bursts; staying under that keeps 429s rare
// instead of relying on them.
const (
	defaultPostsPerSecond     = 1
	defaultPostBurst          = 2
	defaultMaxRetryAfterWaits = 20
	// minRetryAfter guards against a 429 without a usable Retry-After:
	// retrying at once would only earn another 429.
	minRetryAfter = time.Second
	// defaultChannelLeaseTTL is how long a channel's lease lasts unrenewed:
	// after a replica dies mid-queue, the others wait at most this long to
	// post in its channels.
	defaultChannelLeaseTTL = 10 * time.Second
	// leaseRetryMin and leaseRetryMax bound the backoff of a worker
	// waiting for another replica's channel lease.
	leaseRetryMin = 50 * time.Millisecond
	leaseRetryMax = 2 * time.Second
)

// postFunc sends one chat.postMessage (a thread reply when threadTS is set)
// and returns the new message's ts. It should return slack-go's errors as
// they are (wrapping is fine): the queue looks for *slack.RateLimitedError
// and for the channel errors that classify maps to chat.ErrCannotPost.
type postFunc func(ctx context.Context, channel string, m chat.Message, threadTS string) (ts string, err error)

// PostOptions tunes a postQueue; zero fields take the defaults.
type PostOptions struct {
	// PerSecond and Burst shape the per-channel pace (default 1/s, burst 2).
	PerSecond float64
	Burst     int
	// MaxRetryAfterWaits bounds how many 429s one message may wait out
	// before its error is returned (default 20).
	MaxRetryAfterWaits int
	// OnUnpostable is called (from the channel's worker, so it must not
	// block for long) when a post fails with chat.ErrCannotPost: once for
	// that failure, not for each of the messages queued behind it, which
	// fail with the same error without being sent. It runs before those
	// failures are reported. The queue keeps no memory of it: a message
	// queued later is tried again, and may fail and call it again.
	OnUnpostable func(channel string, err error)
	Logger       *slog.Logger

	// Leases makes posting to a channel owned by one replica at a time
	// when several run on one database: a channel's worker holds
	// "channel:<id>" while it has messages to send, and gives it up when
	// its queue drains, leaving the time of its last post for the next
	// owner, who paces its first posts from it. So the order of each
	// replica's messages and Slack's pace per channel hold across the
	// fleet. nil means storage.NewLocalLeases(time.Now), enough for one
	// process.
	Leases LeaseStore
	// Replica is the name this process takes leases under; "" means a
	// random one.
	Replica string
	// LeaseTTL is how long a channel's lease lasts unrenewed; it is renewed
	// every third of it and before every post. Default 10s.
	LeaseTTL time.Duration
}

// LeaseStore is where the replicas' leases live (Acquire, Renew,
// Release); *storage.LocalLeases satisfies it, and so does the PostgreSQL
// backend's.
type LeaseStore = leases.Store

func (o *PostOptions) defaults() {
	if o.PerSecond <= 0 {
		o.PerSecond = defaultPostsPerSecond
	}
	if o.Burst <= 0 {
		o.Burst = defaultPostBurst
	}
	if o.MaxRetryAfterWaits <= 0 {
		o.MaxRetryAfterWaits = defaultMaxRetryAfterWaits
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Leases == nil {
		o.Leases = storage.NewLocalLeases(time.Now)
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = defaultChannelLeaseTTL
	}
	o.Replica = leases.Owner(o.Replica)
}

// postQueue serialises chat.postMessage per channel (thread replies count
// against their channel, as they do at Slack). Each channel with pending
// messages has one worker goroutine that posts them in order at the
// configured pace; channels never wait on each other. A 429 means Slack
// did not take the message, so the worker waits Retry-After and sends the
// same message again: nothing is lost or reordered. Any other failure is
// final, because chat.postMessage has no idempotency key and a retry after
// a 5xx or a timeout could post the message twice.
//
// Across replicas a channel's worker posts only while it holds the
// channel's lease (PostOptions.Leases): it waits for another replica's
// worker to drain and give the lease up, then paces its first posts from
// the time of that worker's last post, left in the lease's note.
type postQueue struct {
	post postFunc
	opts PostOptions
	log  *slog.Logger

	// runCtx is cancelled when Close gives up draining: waits end and
	// in-flight calls are abandoned.
	runCtx context.Context
	abort  context.CancelCauseFunc
	// closing is closed by Close so idle workers exit at once.
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	closed bool
	chans  map[string]*channelQueue // channels that have a worker
}

// channelQueue is one channel's backlog and pace. Only pending is shared
// with enqueuers (under postQueue.mu); the rest belongs to the worker.
type channelQueue struct {
	pending []*outbound
	// wake has room for one signal so an enqueue is never missed by a
	// worker that is about to wait.
	wake chan struct{}

	lim *rate.Limiter
	// notBefore is when Slack's last Retry-After ends.
	notBefore time.Time

	// lease is the channel's lease while the worker holds it; last is the
	// time of the channel's last post known here (this worker's or, from
	// the lease's note, another replica's), and left the note this worker
	// left when it last gave the lease up.
	lease *leases.Held
	last  time.Time
	left  string
}

// outbound is one queued message.
type outbound struct {
	// ctx is the caller's context: once it is done the message is dropped
	// if it has not been sent yet. Enqueue uses context.Background().
	ctx      context.Context
	threadTS string
	m        chat.Message
	done     func(ts string, err error)
}

// newPostQueue returns a queue that sends through post.
func newPostQueue(post postFunc, opts PostOptions) *postQueue {
	opts.defaults()
	runCtx, abort := context.WithCancelCause(context.Background())
	return &postQueue{
		post:    post,
		opts:    opts,
		log:     opts.Logger,
		runCtx:  runCtx,
		abort:   abort,
		closing: make(chan struct{}),
		chans:   make(map[string]*channelQueue),
	}
}

// Post queues m for channel (as a reply in threadTS when set) and waits for
// the outcome, because deploy cards need the new message's ts. When ctx is
// done first Post returns ctx.Err(): a message still queued is then dropped,
// but one already handed to Slack is not retracted.
func (q *postQueue) Post(ctx context.Context, channel, threadTS string, m chat.Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	type result struct {
		ts  string
		err error
	}
	res := make(chan result, 1)
	q.enqueue(ctx, channel, threadTS, m, func(ts string, err error) { res <- result{ts, err} })
	select {
	case r := <-res:
		return r.ts, r.err
	case <-ctx.Done():
		// Prefer a result that raced with the cancellation: a posted
		// message whose ts is lost would be posted again by a fallback.
		select {
		case r := <-res:
			return r.ts, r.err
		default:
			return "", ctx.Err()
		}
	}
}

// Enqueue queues m without waiting, for notifications. done, when not nil,
// is called once with the outcome, from the channel's worker (or at once
// when the queue is closed), so it must not block for long. The queue keeps
// m until it is sent, so the caller must not modify it afterwards.
func (q *postQueue) Enqueue(channel, threadTS string, m chat.Message, done func(ts string, err error)) {
	if done == nil {
		done = func(string, error) {}
	}
	q.enqueue(context.Background(), channel, threadTS, m, done)
}

func (q *postQueue) enqueue(ctx context.Context, channel, threadTS string, m chat.Message, done func(string, error)) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		done("", errQueueClosed)
		return
	}
	cq := q.chans[channel]
	if cq == nil {
		cq = &channelQueue{
			wake: make(chan struct{}, 1),
			lim:  rate.NewLimiter(rate.Limit(q.opts.PerSecond), q.opts.Burst),
		}
		q.chans[channel] = cq
		q.wg.Add(1)
		go q.run(channel, cq)
	}
	cq.pending = append(cq.pending, &outbound{ctx: ctx, threadTS: threadTS, m: m, done: done})
	q.mu.Unlock()
	select {
	case cq.wake <- struct{}{}:
	default:
	}
}

// Close stops taking messages (later ones fail with errQueueClosed) and
// drains what is queued at the usual pace. If ctx is done first it abandons
// the rest: unsent messages fail with an error matching errQueueClosed,
// an in-flight call is cancelled and fails with errAbandonedInFlight (Slack
// may have taken it), and Close returns ctx.Err() once every worker has
// stopped.
func (q *postQueue) Close(ctx context.Context) error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.closeOnce.Do(func() { close(q.closing) })

	drained := make(chan struct{})
	go func() { q.wg.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		q.abort(fmt.Errorf("%w before the message was sent: %w", errQueueClosed, ctx.Err()))
		<-drained
		return ctx.Err()
	}
}

// workers is the number of channels that have a worker (for tests).
func (q *postQueue) workers() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.chans)
}

// run is a channel's worker: it posts that channel's messages in order and
// exits once the channel has been idle long enough to forget its pace.
func (q *postQueue) run(channel string, cq *channelQueue) {
	defer q.wg.Done()
	for {
		item := q.next(channel, cq)
		if item == nil {
			return
		}
		q.send(channel, cq, item)
	}
}

// next pops the channel's oldest message, or returns nil after removing the
// channel's entry once it is idle. A drained worker first gives the
// channel's lease up, so other replicas may post there. An idle worker
// lingers until its rate limiter is full again and any Retry-After has
// passed: a worker started afresh begins with a full burst, and starting
// one earlier would let the channel exceed its pace.
func (q *postQueue) next(channel string, cq *channelQueue) *outbound {
	for {
		q.mu.Lock()
		if len(cq.pending) > 0 {
			item := cq.pending[0]
			cq.pending[0] = nil
			cq.pending = cq.pending[1:]
			q.mu.Unlock()
			return item
		}
		if cq.lease != nil {
			q.mu.Unlock()
			q.giveUp(cq)
			continue // a message may have come meanwhile
		}
		linger := max(cq.refillDelay(q.opts), time.Until(cq.notBefore))
		if linger <= 0 || q.closed {
			delete(q.chans, channel)
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()

		t := time.NewTimer(linger)
		select {
		case <-cq.wake:
		case <-t.C:
		case <-q.closing:
		}
		t.Stop()
	}
}

// refillDelay is how long until the limiter has its full burst back.
func (cq *channelQueue) refillDelay(o PostOptions) time.Duration {
	missing := float64(o.Burst) - cq.lim.Tokens()
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / o.PerSecond * float64(time.Second))
}

// send posts one message, waiting out 429s, and reports its outcome. It
// posts holding the channel's lease, renewed just before the post; a lease
// lost while waiting (another replica posted meanwhile) is waited for and
// paced from again.
func (q *postQueue) send(channel string, cq *channelQueue, item *outbound) {
	for waits := 0; ; {
		if err := q.own(item.ctx, channel, cq); err != nil {
			item.done("", err)
			return
		}
		if err := q.pace(item.ctx, cq); err != nil {
			item.done("", err)
			return
		}
		if !q.stillOwn(item.ctx, channel, cq) {
			continue
		}
		ts, err := q.call(channel, item)
		cq.last = time.Now()
		if err == nil || errors.Is(err, errAbandonedInFlight) {
			item.done(ts, err)
			return
		}

		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			// Slack did not take the message; the whole channel waits so
			// that order is kept, then the same message goes again.
			wait := max(rl.RetryAfter, minRetryAfter)
			cq.notBefore = time.Now().Add(wait)
			if waits < q.opts.MaxRetryAfterWaits {
				waits++
				q.log.Debug("slack rate limited a post; waiting", "channel", channel, "retry_after", wait.String(), "waits", waits)
				continue
			}
			q.log.Warn("slack kept rate limiting a post; giving up on it", "channel", channel, "waits", waits)
			item.done("", classify(err))
			return
		}

		err = classify(err)
		if errors.Is(err, chat.ErrCannotPost) {
			q.failChannel(channel, cq, item, err)
			return
		}
		// Not retried: Slack may have posted it despite the error.
		q.log.Warn("slack post failed; not retried", "channel", channel, "error", err.Error())
		item.done("", err)
		return
	}
}

// own makes the worker hold the channel's lease, waiting (with backoff, no
// longer than the holder's lease lasts) while another replica's worker
// holds it. Taking it over from another owner starts the pace from the
// time of that owner's last post. A lease store that fails is no reason to
// hold posts back: the worker then posts without the lease, and Slack's
// 429s pace what the fleet sends.
func (q *postQueue) own(ctx context.Context, channel string, cq *channelQueue) error {
	if cq.lease != nil {
		return nil
	}
	backoff := leaseRetryMin
	for {
		h, other, err := leases.Take(ctx, q.opts.Leases, "channel:"+channel, q.opts.Replica, q.opts.LeaseTTL)
		switch {
		case err != nil:
			q.log.Warn("cannot take the channel's lease; posting without it", "channel", channel, "error", err.Error())
			return nil
		case h != nil:
			cq.lease = h
			cq.resume(h.Lease().Note, q.opts)
			h.KeepInBackground(q.runCtx, &q.wg, q.sleep)
			return nil
		}
		wait := backoff
		if until := time.Until(other.Expires); until > 0 && until < wait {
			wait = until
		}
		if err := q.sleep(ctx, wait); err != nil {
			return err
		}
		backoff = min(2*backoff, leaseRetryMax)
	}
}

// stillOwn renews the channel's lease just before a post, and reports false
// when it was lost: the worker paused past its expiry and another replica
// took the channel (and may have posted since).
func (q *postQueue) stillOwn(ctx context.Context, channel string, cq *channelQueue) bool {
	if cq.lease == nil {
		return true // posting without a lease store
	}
	err := cq.lease.Renew(ctx)
	switch {
	case errors.Is(err, storage.ErrLeaseLost):
		q.log.Info("another replica took the channel over; waiting for it", "channel", channel)
		cq.lease = nil
		return false
	case err != nil:
		q.log.Warn("cannot renew the channel's lease", "channel", channel, "error", err.Error())
	}
	return true
}

// giveUp releases the channel's lease, leaving the time of the last post.
func (q *postQueue) giveUp(cq *channelQueue) {
	h := cq.lease
	cq.lease = nil
	note := ""
	if !cq.last.IsZero() {
		note = cq.last.UTC().Format(time.RFC3339Nano)
	}
	if err := h.GiveUp(note); err != nil {
		q.log.Warn("cannot give the channel's lease up; it will expire", "lease", h.Lease().Key, "error", err.Error())
		return
	}
	cq.left = note
}

// resume sets the channel's pace from note, the time of the previous
// owner's last post. Unless that owner was this worker (the note is the one
// it left), its limiter is unknown here, so it is taken as spent at that
// post: the first post waits one interval after it, and the burst refills
// from there. That never sends faster than one bucket for the whole fleet.
func (cq *channelQueue) resume(note string, o PostOptions) {
	if note == "" || note == cq.left {
		return
	}
	last, err := time.Parse(time.RFC3339Nano, note)
	if err != nil {
		return
	}
	if now := time.Now(); last.After(now) {
		last = now // another replica's clock runs ahead
	}
	cq.lim = rate.NewLimiter(rate.Limit(o.PerSecond), o.Burst)
	cq.lim.ReserveN(last, o.Burst) // empty at the last post
	// Passed on as it is should this worker give the lease up unposted.
	if last.After(cq.last) {
		cq.last = last
	}
}

// pace waits for Slack's Retry-After and then for the channel's own rate.
// It gives up when the message's context is done (the message is dropped
// unsent) or when Close abandons the queue.
func (q *postQueue) pace(ctx context.Context, cq *channelQueue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := q.sleep(ctx, time.Until(cq.notBefore)); err != nil {
		return err
	}
	r := cq.lim.Reserve() // never fails: Burst >= 1
	if err := q.sleep(ctx, r.Delay()); err != nil {
		// Give the token back: nothing was sent.
		r.Cancel()
		return err
	}
	return nil
}

func (q *postQueue) sleep(ctx context.Context, d time.Duration) error {
	if err := context.Cause(q.runCtx); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.runCtx.Done():
		return context.Cause(q.runCtx)
	}
}

// call hands the message to Slack. It runs detached from the caller's
// cancellation (keeping its values): once a request is on its way,
// abandoning it half-way would only leave us not knowing whether it was
// posted. Close abandoning the queue still cancels it.
func (q *postQueue) call(channel string, item *outbound) (string, error) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(item.ctx))
	defer cancel(nil)
	stop := context.AfterFunc(q.runCtx, func() { cancel(errAbandonedInFlight) })
	defer stop()
	ts, err := q.post(ctx, channel, item.m, item.threadTS)
	if err != nil && errors.Is(context.Cause(ctx), errAbandonedInFlight) {
		// Not errQueueClosed: Slack may have posted this one.
		return "", fmt.Errorf("%w: %w", errAbandonedInFlight, err)
	}
	return ts, err
}

// failChannel handles chat.ErrCannotPost: the channel is unusable, so
// item and every message queued behind it fail with err without being sent,
// and OnUnpostable hears about it once.
func (q *postQueue) failChannel(channel string, cq *channelQueue, item *outbound, err error) {
	q.mu.Lock()
	behind := cq.pending
	cq.pending = nil
	q.mu.Unlock()

	q.log.Info("cannot post in channel; failing its queued messages", "channel", channel, "queued", len(behind), "error", err.Error())
	// The hook runs first so that whoever sees ErrCannotPost can rely on it
	// having run (for example to have dropped the channel's subscriptions).
	if q.opts.OnUnpostable != nil {
		q.opts.OnUnpostable(channel, err)
	}
	item.done("", err)
	for _, o := range behind {
		o.done("", err)
	}
}
