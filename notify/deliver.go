package notify

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/storage"
)

// deliverLoop posts the outbox: at once when Accept or a poller wakes it,
// and on a short tick for retries that have come due and items other
// replicas accepted.
func (s *Service) deliverLoop(ctx context.Context) {
	t := time.NewTicker(min(s.cfg.PollEvery, s.cfg.DeliverEvery))
	defer t.Stop()
	for {
		s.drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// drain starts the delivery of every due item, oldest first. Items are
// handled one after another up to the point their posts are queued, so
// posts reach each channel in the order the events were accepted.
//
// With several replicas only the one holding "notify" delivers (see
// holdRole), so that order holds across the fleet whichever replica
// accepted an event. Each item is still claimed (its lease,
// "outbox:<id>"): a replica that died mid-delivery leaves claims that
// expire within LeaseTTL, and the pass stops at the first item still
// claimed elsewhere rather than deliver a later one before it. The outbox
// is read again once the claims are taken: an item its last holder
// settled in between is gone (or not due any more) and is left alone,
// and the copy delivered is the current one.
func (s *Service) drain(ctx context.Context) {
	if s.drainHook != nil {
		s.drainHook(ctx)
	}
	if !s.holdRole(ctx) {
		return
	}
	items, ok := s.pending(ctx)
	if !ok {
		return
	}
	now := s.now()
	claimed := map[uint64]bool{}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		if it.Kind != outboxKind || it.NextAttempt.After(now) {
			continue
		}
		s.mu.Lock()
		busy := s.inflight[it.ID]
		s.inflight[it.ID] = true
		s.mu.Unlock()
		if busy {
			continue
		}
		if !s.claimItem(ctx, it.ID) {
			s.release(it.ID)
			break
		}
		claimed[it.ID] = true
	}
	if len(claimed) > 0 {
		if items, ok = s.pending(ctx); ok {
			for _, it := range items {
				if claimed[it.ID] && ctx.Err() == nil {
					delete(claimed, it.ID)
					s.deliver(ctx, it)
				}
			}
		}
	}
	for id := range claimed {
		s.settle(id) // settled elsewhere meanwhile, or not read again
	}
}

// holdRole reports whether this replica delivers the outbox and runs the
// pollers: it holds the "notify" lease, or has just taken it. The lease is
// renewed in the background; once it is lost (another replica took it
// after a renewal failed for a whole LeaseTTL) the next pass tries to take
// it again.
func (s *Service) holdRole(ctx context.Context) bool {
	s.mu.Lock()
	h := s.role
	s.mu.Unlock()
	if h != nil && h.Context().Err() == nil {
		return true
	}
	h = s.take(ctx, roleKey)
	if h == nil {
		return false
	}
	s.mu.Lock()
	s.role = h
	s.mu.Unlock()
	s.log.InfoContext(ctx, "this replica delivers notifications and polls Cloud 66 for them")
	select {
	case s.gained <- struct{}{}:
	default:
	}
	return true
}

// delivering reports whether this replica holds the "notify" lease now,
// without trying to take it.
func (s *Service) delivering() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role != nil && s.role.Context().Err() == nil
}

// resign gives the "notify" lease up once Run's goroutines are done, so
// another replica takes over at its next pass instead of after LeaseTTL.
// Items whose posts were still queued keep their own claims until those
// expire, and the next holder starts at the first of them.
func (s *Service) resign() {
	s.mu.Lock()
	h := s.role
	s.role = nil
	s.mu.Unlock()
	s.giveUp(h)
}

// pending reads the due items, oldest first.
func (s *Service) pending(ctx context.Context) ([]storage.OutboxItem, bool) {
	items, err := s.cfg.Outbox.Pending(ctx, outboxBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "cannot read the outbox", "error", err.Error())
		}
		return nil, false
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
	return items, true
}

// claimItem takes the lease of outbox item id, which makes this replica
// the one that delivers it, and keeps it renewed until the item settles
// (see settle). It reports false when another replica holds it: that one
// is delivering the item.
func (s *Service) claimItem(ctx context.Context, id uint64) bool {
	h := s.take(ctx, "outbox:"+strconv.FormatUint(id, 10))
	if h == nil {
		return false
	}
	s.mu.Lock()
	s.items[id] = h
	s.mu.Unlock()
	return true
}

// take acquires key for this replica and keeps it renewed until it is
// given up, dropped or lost, or ctx ends; nil when another replica holds
// it, or the store failed (the work waits for the next pass).
func (s *Service) take(ctx context.Context, key string) *leases.Held {
	h, _, err := leases.Take(ctx, s.cfg.Leases, key, s.owner, s.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot take a delivery lease", "lease", key, "error", err.Error())
		}
		return nil
	}
	if h == nil {
		return nil
	}
	h.KeepInBackground(ctx, &s.wg, s.renewSleep)
	return h
}

// giveUp releases a delivery lease, even while shutting down: what it
// covered is settled.
func (s *Service) giveUp(h *leases.Held) {
	if h == nil {
		return
	}
	if err := h.GiveUp(""); err != nil {
		s.log.Warn("cannot give a delivery lease up; it will expire", "lease", h.Lease().Key, "error", err.Error())
	}
}

// target is one channel an event goes to, with the subscriptions there
// that asked for it.
type target struct {
	team, channel string
	subs          []storage.Subscription
}

// name is how the outbox item records the target as done.
func (t target) name() string { return t.team + ":" + t.channel }

// post is one queued channel post of an event.
type post struct {
	target
	key string // the channel's dedup key, recorded once Slack took the post
}

type postResult struct {
	p   *post
	err error
}

// deliver works out where the item's event goes and queues a post for each
// channel that has not had it yet; a goroutine then waits for their
// outcomes and settles the item.
//
// Nothing is marked before Slack has taken a post: the item's target and
// the channel's dedup key are recorded together the moment it has (see
// posted). So a process killed while posts wait in the per-channel queue
// leaves them unmarked, and the next Run, finding the item still in the
// outbox, posts exactly those. Between items in flight at once (a webhook
// and a poll of one deployment, or the polls of two replicas), a claim on
// the key makes one post and the other wait for its outcome: in memory
// between this process's items, and a lease ("post:<key>") between
// replicas.
func (s *Service) deliver(ctx context.Context, it storage.OutboxItem) {
	var ev Event
	if err := json.Unmarshal(it.Payload, &ev); err != nil || ev.validate() != nil {
		// It can never be delivered; keeping it would only block nothing
		// and grow the file.
		s.log.ErrorContext(ctx, "dropping an unreadable outbox item", "item", it.ID)
		s.finish(ctx, it, false, false)
		return
	}
	log := s.log.With("item", it.ID, "kind", ev.Kind, "stack_uid", ev.StackUID, "source", ev.Source)
	subs, err := s.cfg.Subscriptions.All(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "cannot read subscriptions", "error", err.Error())
		}
		s.finish(ctx, it, true, false)
		return
	}
	ev = s.enrich(ev, subs)
	if ev.Source == SourceWebhook {
		s.markSeen(ctx, ev, subs, it.At)
	}

	retry, wait := false, false
	var posts []*post
	var own []storage.Watch
	ownRead := false
	for _, tg := range s.targets(ctx, ev, subs) {
		if slices.Contains(it.Done, tg.name()) {
			continue
		}
		if isDeployKind(ev.Kind) {
			if !ownRead {
				own, ownRead = s.ownWatches(ctx, ev), true
			}
			if ownDeployment(ev, tg.channel, own) {
				log.DebugContext(ctx, "the bot's own deployment message tells this channel", "channel", tg.channel)
				continue
			}
		}
		key := "notify:" + tg.name() + ":" + ev.Key()
		seen, err := s.cfg.Dedup.Seen(ctx, key)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.WarnContext(ctx, "cannot read the dedup key", "channel", tg.channel, "error", err.Error())
			}
			retry = true
		case seen:
			// The channel has had this happening, from another item.
		case !s.claim(ctx, key):
			// Another item is posting the same happening there right now;
			// its outcome decides, so this item comes back once it is known.
			wait = true
		default:
			posts = append(posts, &post{target: tg, key: key})
		}
	}
	if len(posts) == 0 {
		s.finish(ctx, it, retry, wait)
		return
	}

	// Rendered per workspace: who triggered it may be a person there.
	msgs := map[string]chat.Message{}
	results := make(chan postResult, len(posts))
	for _, p := range posts {
		msg, ok := msgs[p.team]
		if !ok {
			msg = MessageFor(ctx, ev, s.cfg.Cloud66URL, s.cfg.People, p.team)
			msgs[p.team] = msg
		}
		var once sync.Once
		s.cfg.Slack.Enqueue(p.channel, "", msg, func(_ string, err error) {
			// done is promised once; once makes a second call harmless.
			once.Do(func() {
				if err == nil {
					s.posted(ctx, it.ID, p)
				}
				s.unclaim(p.key)
				results <- postResult{p, err}
			})
		})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.await(ctx, it, ev, posts, results, retry, wait)
	}()
}

// posted records that Slack took p: the item's target is done and the
// channel's dedup key is set, in one transaction. It runs in the post's
// done callback, on the channel's worker, before that worker sends the
// channel's next post, so the record follows Slack's ok as closely as it
// can. Delivery is at least once: a crash between the ok and this commit
// (a few milliseconds) means that post is made again after the restart,
// which is at most one duplicate per channel per crash, since each channel
// has one post in flight at a time. chat.postMessage has no idempotency key
// that could close the window for good.
func (s *Service) posted(ctx context.Context, id uint64, p *post) {
	// Detached: a post Slack took during shutdown must still be recorded.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	if err := s.cfg.Outbox.MarkDone(cctx, id, p.name(), p.key, dedupTTL); err != nil {
		s.log.ErrorContext(ctx, "cannot record a post; it may be posted again", "item", id, "channel", p.channel, "error", err.Error())
	}
}

// claim takes the claim on a dedup key, reporting false when another item
// holds it: one of this process's (whose unclaim then wakes delivery), or
// one another replica is posting (this item comes back at a later pass).
func (s *Service) claim(ctx context.Context, key string) bool {
	s.mu.Lock()
	if _, held := s.claims[key]; held {
		s.claims[key] = true
		s.mu.Unlock()
		return false
	}
	s.claims[key] = false
	s.mu.Unlock()
	h := s.take(ctx, "post:"+key)
	if h == nil {
		s.unclaim(key)
		return false
	}
	s.mu.Lock()
	s.posting[key] = h
	s.mu.Unlock()
	return true
}

// unclaim drops the claim on key, waking delivery when an item waits for it.
// It runs once the post's outcome is recorded, so a replica that held back
// finds the key seen when it looks again.
func (s *Service) unclaim(key string) {
	s.mu.Lock()
	waited := s.claims[key]
	delete(s.claims, key)
	h := s.posting[key]
	delete(s.posting, key)
	s.mu.Unlock()
	s.giveUp(h)
	if waited {
		s.poke()
	}
}

// await collects the outcomes of an item's posts and settles the item.
func (s *Service) await(ctx context.Context, it storage.OutboxItem, ev Event, posts []*post, results <-chan postResult, retry, wait bool) {
	settled := map[*post]bool{}
	for len(settled) < len(posts) {
		select {
		case r := <-results:
			settled[r.p] = true
			if s.outcome(ctx, it.ID, ev, r) {
				retry = true
			}
		case <-ctx.Done():
			// Shutting down with posts still queued: the item stays in the
			// outbox with only what Slack took marked, so the next Run (or
			// another replica) posts the rest. The posts' callbacks still
			// record and unclaim. Its lease is left to expire rather than
			// given up, since the queued posts may still go out meanwhile.
			s.drop(it.ID)
			return
		}
	}
	s.finish(ctx, it, retry, wait)
}

// outcome handles one post's result and reports whether it should be
// retried.
func (s *Service) outcome(ctx context.Context, id uint64, ev Event, r postResult) bool {
	switch {
	case r.err == nil:
		return false
	case errors.Is(r.err, chat.ErrCannotPost):
		// Retrying cannot help until someone invites the bot; tell the
		// subscribers instead, and count the channel as done.
		s.pause(ctx, r.p.team, r.p.channel, r.err)
		if err := s.cfg.Outbox.MarkDone(ctx, id, r.p.name(), "", 0); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot record an unpostable channel", "item", id, "channel", r.p.channel, "error", err.Error())
		}
		return false
	}
	s.log.WarnContext(ctx, "post failed; will retry", "kind", ev.Kind, "channel", r.p.channel, "error", r.err.Error())
	return true
}

// finish acks the item, schedules its retry with backoff, or, when wait is
// set (another item's post decides a channel), leaves it for the next pass
// without counting an attempt. After maxAttempts it gives up, so a post
// Slack keeps refusing is not retried forever.
func (s *Service) finish(ctx context.Context, it storage.OutboxItem, retry, wait bool) {
	defer s.settle(it.ID)
	if retry && it.Attempts+1 < maxAttempts {
		next := s.now().Add(retryDelay(it.Attempts))
		if _, err := s.cfg.Outbox.Retry(ctx, it.ID, next); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "cannot schedule an outbox retry", "item", it.ID, "error", err.Error())
		}
		return
	}
	if retry {
		s.log.ErrorContext(ctx, "giving up on a notification", "item", it.ID, "attempts", it.Attempts+1)
	} else if wait {
		return
	}
	if err := s.cfg.Outbox.Ack(ctx, it.ID); err != nil && ctx.Err() == nil {
		s.log.ErrorContext(ctx, "cannot ack an outbox item", "item", it.ID, "error", err.Error())
	}
}

// release lets drain pick the item up again (when it is due).
func (s *Service) release(id uint64) {
	s.mu.Lock()
	delete(s.inflight, id)
	s.mu.Unlock()
}

// settle releases the item once it is acked, scheduled again or left for
// a later pass, and gives its lease up: any replica may take it next.
func (s *Service) settle(id uint64) {
	s.mu.Lock()
	h := s.items[id]
	delete(s.items, id)
	s.mu.Unlock()
	s.giveUp(h)
	s.release(id)
}

// drop releases the item and stops renewing its lease without giving it
// up: it expires within LeaseTTL.
func (s *Service) drop(id uint64) {
	s.mu.Lock()
	h := s.items[id]
	delete(s.items, id)
	s.mu.Unlock()
	if h != nil {
		h.Drop()
	}
	s.release(id)
}

// retryDelay doubles from retryBase up to retryMax.
func retryDelay(attempts int) time.Duration {
	d := retryBase
	for i := 0; i < attempts && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// targets are the channels whose subscriptions match ev, in subscription
// order; several subscriptions in one channel make one post.
func (s *Service) targets(ctx context.Context, ev Event, subs []storage.Subscription) []target {
	var out []target
	for _, sub := range subs {
		if !s.matches(ctx, sub, ev) {
			continue
		}
		i := slices.IndexFunc(out, func(t target) bool { return t.team == sub.Team && t.channel == sub.Channel })
		if i < 0 {
			out = append(out, target{team: sub.Team, channel: sub.Channel})
			i = len(out) - 1
		}
		out[i].subs = append(out[i].subs, sub)
	}
	return out
}

// matches applies a subscription's filters to ev. The visibility check of
// an "all" subscription may call Cloud 66, so it comes last.
func (s *Service) matches(ctx context.Context, sub storage.Subscription, ev Event) bool {
	if sub.Paused || (ev.Team != "" && sub.Team != ev.Team) {
		return false
	}
	events := sub.Events
	if len(events) == 0 {
		events = DefaultEvents()
	}
	if !slices.Contains(events, ev.Kind) {
		return false
	}
	if sub.OnlyFailures && !isFailure(ev.Kind) {
		return false
	}
	if sub.EnvFilter != "" && !strings.EqualFold(sub.EnvFilter, ev.Environment) {
		return false
	}
	if ev.Source == SourcePoll && isDeployKind(ev.Kind) {
		// Polling reads history; a channel hears only of deployments
		// that started after it subscribed.
		started := ev.StartedAt
		if started.IsZero() {
			started = ev.At
		}
		if started.Before(sub.CreatedAt.Truncate(time.Second)) {
			return false
		}
	}
	if sub.StackUID != "" {
		return sub.StackUID == ev.StackUID
	}
	return s.canSee(ctx, sub.Subscriber, ev.StackUID)
}

// enrich fills a missing stack name or environment (server webhooks carry
// neither) from the subscriptions, else from the visible-stack caches.
func (s *Service) enrich(ev Event, subs []storage.Subscription) Event {
	if ev.StackName != "" && ev.Environment != "" {
		return ev
	}
	fill := func(name, env string) bool {
		if name == "" {
			return false
		}
		if ev.StackName == "" {
			ev.StackName = name
		}
		if ev.Environment == "" {
			ev.Environment = env
		}
		return true
	}
	for _, sub := range subs {
		if sub.StackUID == ev.StackUID && fill(sub.StackName, sub.Environment) {
			return ev
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.visible {
		if st, ok := e.stacks[ev.StackUID]; ok && fill(st.Name, st.Environment) {
			return ev
		}
	}
	return ev
}

// markSeen records that the team's subscriptions of the webhook's stack
// get webhooks, which stops polling that stack while they keep coming.
// Writes are skipped when the mark is under a minute old.
func (s *Service) markSeen(ctx context.Context, ev Event, subs []storage.Subscription, at time.Time) {
	if at.IsZero() {
		at = s.now()
	}
	for _, sub := range subs {
		if sub.Team != ev.Team || sub.StackUID != ev.StackUID || at.Sub(sub.WebhookSeenAt) < time.Minute {
			continue
		}
		if err := s.cfg.Subscriptions.MarkWebhookSeen(ctx, sub.ID, at); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot mark a webhook as seen", "subscription", sub.ID, "error", err.Error())
		}
	}
}

// ownWatches reads the bot's own recent deployments of ev's stack. A
// failure is logged and treated as "none": a duplicate post beats silence.
func (s *Service) ownWatches(ctx context.Context, ev Event) []storage.Watch {
	ref := eventStart(ev)
	ws, err := s.cfg.Watches.ForStack(ctx, ev.StackUID, ref.Add(-ownLookback))
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot read the bot's own deployments", "stack_uid", ev.StackUID, "error", err.Error())
		}
		return nil
	}
	return ws
}

// eventStart is when the deployment an event is about started, as far as
// the event says.
func eventStart(ev Event) time.Time {
	if !ev.StartedAt.IsZero() {
		return ev.StartedAt
	}
	return ev.At
}

// ownDeployment reports whether ev is about a deployment the bot started
// from channel: its deployment message there already tells the story. With
// deployment ids on both sides they decide. Otherwise a watch in the
// channel counts when it was requested before the deployment started and
// had not finished more than ownWindow before the event, except a watch
// still waiting in Cloud 66's queue or one that finished before the
// event's deployment started: the deployment is then someone else's.
func ownDeployment(ev Event, channel string, watches []storage.Watch) bool {
	start := eventStart(ev)
	for _, w := range watches {
		if w.Channel != channel {
			continue
		}
		if ev.DeploymentID != 0 && w.DeploymentID != 0 {
			if ev.DeploymentID == w.DeploymentID {
				return true
			}
			continue
		}
		if w.State == storage.WatchQueued || w.RequestedAt.After(start.Add(clockSlack)) {
			continue
		}
		if !w.FinishedAt.IsZero() {
			if w.FinishedAt.Before(ev.At.Add(-ownWindow)) {
				continue
			}
			if !ev.StartedAt.IsZero() && w.FinishedAt.Before(ev.StartedAt.Add(-clockSlack)) {
				continue
			}
		}
		return true
	}
	return false
}

// pause pauses the channel's subscriptions after Slack refused a post, and
// tells each subscriber whose subscription it paused, once: PauseChannel
// returns only the subscriptions this call paused, so the posts of other
// events failing in the same channel tell nobody again.
func (s *Service) pause(ctx context.Context, team, channel string, postErr error) {
	reason := cannotPostReason(postErr)
	paused, err := s.cfg.Subscriptions.PauseChannel(ctx, team, channel, reason)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "cannot pause the subscriptions of an unpostable channel", "channel", channel, "error", err.Error())
		}
		return
	}
	if len(paused) == 0 {
		return
	}
	s.log.WarnContext(ctx, "paused subscriptions: the bot cannot post in the channel", "team", team, "channel", channel, "reason", reason, "subscriptions", len(paused))
	var order []storage.Identity
	bySubscriber := map[storage.Identity][]storage.Subscription{}
	for _, sub := range paused {
		if _, ok := bySubscriber[sub.Subscriber]; !ok {
			order = append(order, sub.Subscriber)
		}
		bySubscriber[sub.Subscriber] = append(bySubscriber[sub.Subscriber], sub)
	}
	for _, id := range order {
		if err := s.cfg.Slack.DM(ctx, id, pauseNotice(channel, reason, s.cfg.Command, bySubscriber[id])); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot tell a subscriber about the paused channel", "subscriber", id.String(), "error", err.Error())
		}
	}
}

// cannotPostReason is Slack's reason from a wrapped ErrCannotPost, such as
// "not_in_channel" from "chat: the bot cannot post in that channel
// (not_in_channel)".
func cannotPostReason(err error) string {
	msg := err.Error()
	if strings.HasSuffix(msg, ")") {
		if i := strings.LastIndex(msg, "("); i >= 0 {
			if r := clip(msg[i+1:len(msg)-1], 100); r != "" {
				return r
			}
		}
	}
	return "Slack does not let me post there"
}
