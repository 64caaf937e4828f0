package notify

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

// maxPollBackoff caps the wait after repeated transient failures.
const maxPollBackoff = 30 * time.Minute

// poller polls one stack's deployments list. One runs per stack uid,
// however many channels and workspaces follow the stack, so a stack costs
// one request per interval.
type poller struct {
	uid    string
	cancel context.CancelFunc
	conf   pollConf // guarded by Service.mu; replaced by reconcile

	// Used only by the poller's goroutine.
	seen     map[string]time.Time           // event keys already enqueued -> deployment start
	skip     map[storage.Identity]time.Time // candidates Cloud 66 refused this stack to (403/404), until then
	failures int                            // consecutive transient failures
}

// pollConf is what reconcile decides for a stack.
type pollConf struct {
	name, env string
	// candidates are the subscribers whose token may poll the stack, the
	// oldest subscription's subscriber first.
	candidates []storage.Identity
	// floor is the oldest covering subscription's creation: nothing that
	// started before it is announced.
	floor time.Time
	// teams are the workspaces following the stack, with the newest
	// webhook their stack subscriptions have seen.
	teams    map[string]time.Time
	interval time.Duration
}

// pollInterval is how often one stack is polled when its poller's
// subscriber polls stacks in all: PollEvery, or slower when that would
// exceed the subscriber's hourly budget (one request per poll).
func pollInterval(every time.Duration, stacks, budgetPerHour int) time.Duration {
	if stacks <= 0 || budgetPerHour <= 0 {
		return every
	}
	return max(every, time.Duration(stacks)*time.Hour/time.Duration(budgetPerHour))
}

// pollLoop reconciles the pollers with the subscriptions every PollEvery
// until ctx is done, and at once when this replica takes the "notify"
// lease. Only the holder polls: with several replicas a stack is still
// polled once per interval, not once per replica.
func (s *Service) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollEvery)
	defer t.Stop()
	for {
		if s.delivering() {
			s.reconcile(ctx)
		} else {
			s.stopPollers()
		}
		if s.reconciled != nil {
			s.reconciled(s.polled())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.gained:
		}
	}
}

// stopPollers stops every poller: another replica polls now.
func (s *Service) stopPollers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, p := range s.pollers {
		p.cancel()
		delete(s.pollers, uid)
	}
}

// wantsDeploys reports whether sub follows any deploy event, which is all
// polling can find.
func wantsDeploys(sub storage.Subscription) bool {
	events := sub.Events
	if len(events) == 0 {
		events = DefaultEvents()
	}
	if sub.OnlyFailures {
		return slices.Contains(events, DeployFailed)
	}
	return slices.ContainsFunc(events, isDeployKind)
}

// reconcile works out which stacks need polling, with whose token and how
// often, and starts, updates or stops pollers to match.
func (s *Service) reconcile(ctx context.Context) {
	subs, err := s.cfg.Subscriptions.All(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot read subscriptions for polling", "error", err.Error())
		}
		return
	}
	// Oldest first, so the oldest subscription's subscriber polls.
	ordered := slices.Clone(subs)
	slices.SortStableFunc(ordered, func(a, b storage.Subscription) int { return a.CreatedAt.Compare(b.CreatedAt) })

	confs := map[string]*pollConf{}
	add := func(uid, name, env string, sub storage.Subscription) {
		c := confs[uid]
		if c == nil {
			c = &pollConf{floor: sub.CreatedAt, teams: map[string]time.Time{}}
			confs[uid] = c
		}
		if c.name == "" {
			c.name, c.env = name, env
		}
		if !slices.Contains(c.candidates, sub.Subscriber) {
			c.candidates = append(c.candidates, sub.Subscriber)
		}
		if sub.CreatedAt.Before(c.floor) {
			c.floor = sub.CreatedAt
		}
		seen := c.teams[sub.Team]
		if sub.StackUID == uid && sub.WebhookSeenAt.After(seen) {
			seen = sub.WebhookSeenAt
		}
		c.teams[sub.Team] = seen
	}
	for _, sub := range ordered {
		if sub.Paused || !wantsDeploys(sub) {
			continue
		}
		if sub.StackUID != "" {
			add(sub.StackUID, sub.StackName, sub.Environment, sub)
			continue
		}
		for uid, st := range s.visibleStacks(ctx, sub.Subscriber) {
			if sub.EnvFilter == "" || strings.EqualFold(sub.EnvFilter, st.Environment) {
				add(uid, st.Name, st.Environment, sub)
			}
		}
	}
	if ctx.Err() != nil {
		return
	}

	// Each stack is charged to the first candidate able to poll it, and
	// that person's stacks share their budget.
	primary := map[string]storage.Identity{}
	count := map[storage.Identity]int{}
	for uid, c := range confs {
		for _, id := range c.candidates {
			if !s.isBad(id) {
				primary[uid] = id
				count[id]++
				break
			}
		}
	}
	for uid, c := range confs {
		c.interval = pollInterval(s.cfg.PollEvery, count[primary[uid]], s.cfg.PollBudgetPerHour)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, p := range s.pollers {
		if confs[uid] == nil {
			p.cancel()
			delete(s.pollers, uid)
		}
	}
	for uid, c := range confs {
		if p := s.pollers[uid]; p != nil {
			p.conf = *c
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		p := &poller{uid: uid, cancel: cancel, conf: *c, seen: map[string]time.Time{}, skip: map[storage.Identity]time.Time{}}
		s.pollers[uid] = p
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runPoller(pctx, p)
			if s.pollerDone != nil {
				s.pollerDone(p.uid)
			}
		}()
	}
}

// polled returns the uids of the stacks with a poller, sorted.
func (s *Service) polled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.pollers))
}

// runPoller polls until its context ends. The first poll comes after a
// random part of PollEvery, so a restart does not fire every poller at once.
func (s *Service) runPoller(ctx context.Context, p *poller) {
	wait := rand.N(s.cfg.PollEvery)
	for sleep(ctx, wait) {
		wait = s.pollOnce(ctx, p)
	}
}

// pollOnce polls the stack once, unless its webhooks make that needless,
// and returns the wait before the next poll.
func (s *Service) pollOnce(ctx context.Context, p *poller) time.Duration {
	s.mu.Lock()
	conf := p.conf
	s.mu.Unlock()
	if s.webhookFresh(p.uid, conf) {
		return conf.interval
	}
	now := s.now()
	for _, id := range conf.candidates {
		if s.isBad(id) || now.Before(p.skip[id]) {
			continue
		}
		if wait := s.throttleWait(id); wait > 0 {
			return max(wait, conf.interval)
		}
		deps, err := s.listDeployments(ctx, id, p.uid)
		switch {
		case err == nil:
			p.failures = 0
			s.announce(ctx, p, conf, deps)
			return conf.interval
		case ctx.Err() != nil:
			return 0
		case errors.Is(err, accounts.ErrNotLinked), errors.Is(err, cloud66.ErrUnauthorized):
			// Marked bad by listDeployments; the next subscriber may
			// still be able to poll.
			continue
		case errors.Is(err, cloud66.ErrForbidden), errors.Is(err, cloud66.ErrNotFound):
			p.skip[id] = now.Add(s.cfg.VisibleRefresh)
			continue
		case errors.Is(err, cloud66.ErrThrottled):
			s.log.WarnContext(ctx, "Cloud 66 throttled polling", "stack_uid", p.uid, "subscriber", id.String())
			return max(s.throttleWait(id), conf.interval)
		}
		p.failures++
		wait := backoff(conf.interval, p.failures)
		s.log.WarnContext(ctx, "poll failed; backing off", "stack_uid", p.uid, "wait", wait.String(), "transient", cloud66.IsTransient(err), "error", err.Error())
		return wait
	}
	return conf.interval
}

// backoff doubles interval per failure up to maxPollBackoff.
func backoff(interval time.Duration, failures int) time.Duration {
	d := interval
	for i := 0; i < failures && d < maxPollBackoff; i++ {
		d *= 2
	}
	return min(d, maxPollBackoff)
}

// webhookFresh reports whether every workspace following the stack has had
// one of its webhooks within WebhookFresh: webhook events only reach their
// own workspace, so one workspace's webhook cannot stand in for another's
// polling.
func (s *Service) webhookFresh(uid string, conf pollConf) bool {
	if len(conf.teams) == 0 {
		return false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for team, seen := range conf.teams {
		if t := s.webhooks[teamStack{team, uid}]; t.After(seen) {
			seen = t
		}
		if seen.IsZero() || now.Sub(seen) >= s.cfg.WebhookFresh {
			return false
		}
	}
	return true
}

// listDeployments reads the first page of the stack's deployments (the 30
// newest) with id's client, noting refusals and throttling.
func (s *Service) listDeployments(ctx context.Context, id storage.Identity, uid string) ([]cloud66.Deployment, error) {
	c, err := s.cfg.Cloud66For(ctx, id)
	if err != nil {
		s.noteClientError(id, err)
		return nil, err
	}
	deps, _, err := c.ListDeploymentsPage(ctx, uid, 1)
	if err != nil {
		s.noteClientError(id, err)
		return nil, err
	}
	return deps, nil
}

// announce turns the deployments into events, oldest first, and enqueues
// those not enqueued before. Only deployments that started after the
// oldest covering subscription, and within historyWindow, count: polling
// must not replay history when a subscription is made or the bot restarts.
// Repeats after a restart are stopped by the dedup keys.
func (s *Service) announce(ctx context.Context, p *poller, conf pollConf, deps []cloud66.Deployment) {
	floor := conf.floor
	if h := s.now().Add(-historyWindow); h.After(floor) {
		floor = h
	}
	floor = floor.Truncate(time.Second)
	for i := len(deps) - 1; i >= 0; i-- {
		ev, ok := deploymentEvent(p.uid, conf.name, conf.env, deps[i])
		if !ok || ev.StartedAt.Before(floor) {
			continue
		}
		key := ev.Key()
		if _, done := p.seen[key]; done {
			continue
		}
		if err := s.enqueue(ctx, ev); err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "cannot store a polled event", "stack_uid", p.uid, "error", err.Error())
			}
			return
		}
		p.seen[key] = ev.StartedAt
	}
	for k, t := range p.seen {
		if t.Before(floor) {
			delete(p.seen, k)
		}
	}
}

// deploymentEvent is the event a deployment list row stands for: started
// while it runs, else its outcome. Rows without a start time or with an
// outcome not yet final ("pending") stand for nothing.
func deploymentEvent(uid, name, env string, d cloud66.Deployment) (Event, bool) {
	if d.StartedAt.IsZero() {
		return Event{}, false
	}
	var kind string
	switch {
	case d.IsDeploying:
		kind = DeployStarted
	case d.Succeeded():
		kind = DeploySucceeded
	case d.Cancelled():
		kind = DeployCancelled
	case d.Failed():
		kind = DeployFailed
	default:
		return Event{}, false
	}
	at := d.FinishedAt.Time
	if kind == DeployStarted || at.IsZero() {
		at = d.StartedAt.Time
	}
	ev := Event{
		Kind:         kind,
		StackUID:     uid,
		StackName:    name,
		Environment:  env,
		DeploymentID: d.ID,
		GitHash:      d.GitHash,
		GitRef:       d.GitRef,
		TriggeredBy:  d.TriggeredBy,
		At:           at,
		StartedAt:    d.StartedAt.Time,
		Source:       SourcePoll,
	}
	return ev.normalized(), true
}

// sleep waits d in real time and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
