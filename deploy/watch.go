package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/storage"
)

const (
	// responseURLWindow is how long after a deploy the response_url is
	// still used for its result. Slack honours one for 30 minutes from the
	// slash command; a confirmed deploy may start up to storage.IntentTTL
	// after the command, hence 25.
	responseURLWindow = 30*time.Minute - storage.IntentTTL

	// matchWindow is how far apart an action's and a deployment's start may
	// be to be taken as the same deployment.
	matchWindow = 5 * time.Minute

	// startingGrace is how long a watch stuck in "starting" (its redeploy
	// got no answer, or the bot stopped mid-request) is given before the
	// bot concludes from Cloud 66's lists that the deploy never happened.
	startingGrace = 2 * time.Minute

	// clockSkew absorbs the difference between our clock (when the change
	// was asked for) and Cloud 66's (when its action started).
	clockSkew = time.Minute

	// finishTries bounds the retries of the deployments read that completes
	// a finished watch; after that it ends without the git hash.
	finishTries = 3

	// savePolls is how many quiet polls may pass before the poll counters
	// are saved anyway; every state change is saved at once.
	savePolls = 10
)

// watchLease is the key of a followed action's lease.
func watchLease(id string) string { return "watch:" + id }

// Run resumes every stored unfinished deployment nobody else follows, then
// follows new ones until ctx is done. Every ClaimEvery it takes over the
// active watches whose lease nobody holds: a replica that died leaves its
// watches to the others once their leases expire (LeaseTTL), and the card
// they posted moves again within LeaseTTL+ClaimEvery. The watchers stop
// with ctx without giving their leases up, as a crash would leave them;
// their state is in the store, so the next Run (or another replica) resumes
// them. Run returns after they stopped.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("deploy: Run is already running")
	}
	s.runCtx = ctx
	// One goroutine renews the leases of every watch this Run follows.
	keeper := leases.NewKeeper(s.cfg.LeaseTTL, s.renewSleep)
	s.keeper = keeper
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.runCtx, s.keeper = nil, nil
		s.mu.Unlock()
		s.wg.Wait()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		keeper.Run(ctx)
	}()

	// Locks expire and remind their owners on the same schedule on every
	// replica; the sweep's lease keeps it to one at a time.
	// Its context ends with Run, whichever way Run returns, before Run
	// waits for it.
	lockCtx, stopLocks := context.WithCancel(ctx)
	defer stopLocks()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.lockLoop(lockCtx)
	}()

	n, err := s.claim(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("deploy: resume deployments: %w", err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "resumed deployments", "count", n)
	}
	for s.claimSleep(ctx, s.cfg.ClaimEvery) == nil {
		n, err := s.claim(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			s.log.WarnContext(ctx, "cannot look for deployments to take over", "error", err.Error())
		case n > 0:
			s.log.InfoContext(ctx, "took over deployments", "count", n)
		}
	}
	return nil
}

// claim takes the leases of the active watches this process does not
// follow, and follows each one it gets; it returns how many. A watch
// another replica follows keeps its lease renewed and is left alone.
func (s *Service) claim(ctx context.Context) (int, error) {
	// Held while the active watches are read and sorted out, so that no
	// start is between claiming a stack and marking its watch as starting:
	// a watch whose POST is in flight is never judged by a watcher.
	s.resumeMu.Lock()
	active, err := s.cfg.Watches.Active(ctx)
	s.mu.Lock()
	active = slices.DeleteFunc(active, func(w storage.Watch) bool {
		return w.Done() || s.following[w.ID] || s.starting[w.ID] || s.panicked[w.ID]
	})
	s.mu.Unlock()
	s.resumeMu.Unlock()
	if err != nil {
		return 0, err
	}
	n := 0
	for i, w := range active {
		if s.startInFlight(ctx, w) {
			continue
		}
		h, _, err := leases.Take(ctx, s.cfg.Leases, watchLease(w.ID), s.owner, s.cfg.LeaseTTL)
		switch {
		case ctx.Err() != nil:
			return n, nil
		case err != nil:
			s.log.WarnContext(ctx, "cannot take a deployment's lease", "watch", w.ID, "error", err.Error())
			continue
		case h == nil:
			continue // another replica follows it
		}
		// Read again under the lease: the watch may have ended between the
		// list and the lease, its owner's last save coming before its
		// release.
		cur, err := s.cfg.Watches.Get(ctx, w.ID)
		if err != nil || cur.Done() {
			s.release(h)
			continue
		}
		if !s.keep(h) {
			s.release(h)
			return n, nil
		}
		if s.follow(cur, h, resumeSpread(s.cfg.Poll.Initial, i, len(active)), false) {
			n++
		}
	}
	return n, nil
}

// resumeSpread is the wait before the first poll of the i-th of n watches
// a pass resumes: their first polls are spread over one poll interval, so
// a restart with hundreds of deployments in flight does not ask Cloud 66
// (whose API is rate limited) hundreds of questions at once, nor open as
// many connections. The first is polled at once.
func resumeSpread(interval time.Duration, i, n int) time.Duration {
	if n <= 1 || interval <= 0 {
		return 0
	}
	return interval * time.Duration(i) / time.Duration(n)
}

// startLease is held by a start (on another replica, or this one) from
// just before it stores its watch until it holds the watch's lease, the
// few milliseconds in which the watch is listed as active yet nobody's.
func startLease(userReference string) string { return "start:" + userReference }

// takeStartLease takes a start's lease on its user_reference; nil when the
// store fails (the start goes on: only the instant it covers is exposed).
func (s *Service) takeStartLease(ctx context.Context, log *slog.Logger, userReference string) *leases.Held {
	h, _, err := leases.Take(ctx, s.cfg.Leases, startLease(userReference), s.owner, s.cfg.LeaseTTL)
	if err != nil {
		log.WarnContext(ctx, "cannot take the start's lease", "error", err.Error())
	}
	return h
}

// startInFlight reports whether w is a watch whose start is still taking
// its lease, on whatever replica: a claim pass then leaves it to that
// start. A start that died there leaves its start lease to expire, and the
// watch is claimed after that. Whether the start lease is free is asked by
// taking it (and giving it back at once).
func (s *Service) startInFlight(ctx context.Context, w storage.Watch) bool {
	if w.State != storage.WatchStarting || w.UserReference == "" {
		return false
	}
	h, _, err := leases.Take(ctx, s.cfg.Leases, startLease(w.UserReference), s.owner, s.cfg.LeaseTTL)
	if err != nil || h == nil {
		return true // held, or unknown: the next pass looks again
	}
	s.release(h)
	return false
}

// keep renews h in the background while Run runs, and reports whether it
// does (Run may have stopped meanwhile).
func (s *Service) keep(h *leases.Held) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx == nil {
		return false
	}
	s.keeper.Add(h)
	return true
}

// release gives a lease up, even while shutting down; a failure only
// leaves the lease to expire.
func (s *Service) release(h *leases.Held) {
	if err := h.GiveUp(""); err != nil {
		s.log.Warn("cannot give a deployment's lease up; it will expire", "lease", h.Lease().Key, "error", err.Error())
	}
}

// leaseStarted takes the lease of a watch a start has just stored, before
// anything is sent, and keeps it renewed while the start goes on. It
// returns nil when Run is not running (the watch waits in the store for the
// next Run) or when another replica took it first, which only a start
// without its start lease (the store failed to give it) lets happen; that
// replica then follows the watch.
func (s *Service) leaseStarted(ctx context.Context, log *slog.Logger, w storage.Watch) *leases.Held {
	s.mu.Lock()
	running := s.runCtx != nil
	s.mu.Unlock()
	if !running {
		return nil
	}
	h, other, err := leases.Take(ctx, s.cfg.Leases, watchLease(w.ID), s.owner, s.cfg.LeaseTTL)
	switch {
	case err != nil:
		log.WarnContext(ctx, "cannot take the new deployment's lease; a replica will claim it", "watch", w.ID, "error", err.Error())
		return nil
	case h == nil:
		log.InfoContext(ctx, "another replica follows the new deployment", "watch", w.ID, "replica", other.Owner)
		return nil
	case !s.keep(h):
		s.release(h)
		return nil
	}
	return h
}

// handOver gives a freshly started watch, and its lease h, to a watcher.
// The lease is renewed first: a start that outlasted it (Cloud 66 slow to
// answer) may have lost it, and the replica that took it follows the watch.
// A start without a lease found Run not running (or the lease taken): if
// Run has begun since, its first pass may have passed the watch over while
// it was starting, so the lease is tried once more here; otherwise that
// pass, or the next Run, claims it.
func (s *Service) handOver(ctx context.Context, w storage.Watch, h *leases.Held) {
	if h != nil {
		if err := h.Renew(ctx); !errors.Is(err, storage.ErrLeaseLost) {
			s.follow(w, h, s.cfg.Poll.Initial, true)
			return
		}
		s.log.InfoContext(ctx, "another replica took the new deployment over", "watch", w.ID)
	}
	s.mu.Lock()
	delete(s.starting, w.ID)
	running := s.runCtx != nil
	s.mu.Unlock()
	if h == nil && running {
		if h := s.leaseStarted(ctx, s.log, w); h != nil {
			s.follow(w, h, s.cfg.Poll.Initial, false)
		}
	}
}

// follow starts one watcher goroutine for w under its lease h, unless Run
// is not running, w is over, it has a watcher already, or a start is still
// setting it up (handover: this is that start, handing it over); first is
// the wait before its first poll. The watcher stops at once when the lease
// is lost, and gives it up when the watch ends. A lease follow does not use
// is released, or only dropped when a watcher or start here holds it too.
func (s *Service) follow(w storage.Watch, h *leases.Held, first time.Duration, handover bool) bool {
	s.mu.Lock()
	if handover {
		delete(s.starting, w.ID)
	}
	ctx := s.runCtx
	switch {
	case s.following[w.ID], s.starting[w.ID]:
		// The same owner's lease: leave it to the one holding it here.
		s.mu.Unlock()
		h.Drop()
		return false
	case ctx == nil || w.Done():
		s.mu.Unlock()
		s.release(h)
		return false
	}
	s.following[w.ID] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(h.Context(), cancel) // lost: stop at once
		defer stop()
		wt := &watcher{s: s, w: w, lease: h, interval: s.cfg.Poll.Initial,
			log: s.log.With("watch", w.ID, "stack_uid", w.StackUID)}
		defer func() {
			r := recover()
			switch {
			case r != nil:
				// A bug in one watcher must not take the bot down; the
				// watch stays in the store and its lease expires, so the
				// next Run, or another replica, resumes it.
				s.log.Error("deployment watcher panicked", "watch", w.ID, "panic", fmt.Sprint(r))
				s.mu.Lock()
				s.panicked[w.ID] = true
				s.mu.Unlock()
				h.Drop()
			case wt.w.Done() || wt.gone:
				s.release(h)
			case ctx.Err() != nil:
				// Run is stopping (SIGTERM, a rolling restart): the watcher
				// is done acting, so another replica may take the watch
				// at its next claim pass rather than after LeaseTTL. After
				// a crash nothing is given up and the lease expires.
				s.release(h)
			}
			// Otherwise the lease is lost: another replica follows.
			s.mu.Lock()
			delete(s.following, w.ID)
			s.mu.Unlock()
		}()
		wt.run(wctx, first)
	}()
	return true
}

// updateWatch applies f to the stored watch and saves it. Everything that
// changes a stored watch goes through here, so concurrent changes (a
// watcher's progress, a cancel noted by ConfirmCancel) never undo each
// other. The save that finishes the watch carries the outcome's audit
// entry, so every deployment followed to its end, resumed or not, has one.
func (s *Service) updateWatch(ctx context.Context, id string, f func(*storage.Watch)) (storage.Watch, error) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	w, err := s.cfg.Watches.Get(ctx, id)
	if err != nil {
		return storage.Watch{}, fmt.Errorf("deploy: read watch: %w", err)
	}
	wasDone, before := w.Done(), w.State
	f(&w)
	var outcome []storage.AuditEntry
	if w.Done() && !wasDone {
		outcome = append(outcome, finishedEntry(w, finishedResult(w), s.now()))
	}
	if err := s.cfg.Watches.Save(ctx, w, outcome...); err != nil {
		return storage.Watch{}, fmt.Errorf("deploy: save watch: %w", err)
	}
	if w.State != before {
		s.touchHome(w.Owner)
	}
	return w, nil
}

// render shows w's current state: the card is edited in place when the bot
// could post it; otherwise only the final state is delivered, through the
// response_url while Slack still honours it, else in a DM to the owner.
func (s *Service) render(ctx context.Context, w storage.Watch) {
	card := Card(w, s.now(), s.cfg.Cloud66URL)
	if w.MessageTS != "" {
		if err := s.cfg.Slack.Update(ctx, w.Channel, w.MessageTS, card); err != nil {
			s.log.WarnContext(ctx, "update deployment card failed", "watch", w.ID, "error", err.Error())
		}
		return
	}
	if !w.Done() {
		// Slack allows five uses of a response_url; they are kept for the
		// result, which is what people wait for.
		return
	}
	if w.ResponseURL != "" && s.now().Sub(w.RequestedAt) < responseURLWindow {
		err := s.cfg.Slack.Respond(ctx, w.ResponseURL, card)
		if err == nil {
			return
		}
		s.log.WarnContext(ctx, "respond with deployment result failed", "watch", w.ID, "error", err.Error())
	}
	card.InChannel = false
	if err := s.cfg.Slack.DM(ctx, w.Owner, card); err != nil {
		s.log.WarnContext(ctx, "DM deployment result failed", "watch", w.ID, "error", err.Error())
	}
}

// threadNote posts text (mrkdwn, escaped) under the card. Without a card
// to thread under it is sent to the owner only when orDM is set: results
// are already in the card delivered by render.
func (s *Service) threadNote(ctx context.Context, w storage.Watch, text string, orDM bool) {
	if w.MessageTS != "" {
		if err := s.cfg.Slack.Thread(ctx, w.Channel, w.MessageTS, note(text)); err != nil {
			s.log.WarnContext(ctx, "thread post failed", "watch", w.ID, "error", err.Error())
		}
		return
	}
	if orDM {
		if err := s.cfg.Slack.DM(ctx, w.Owner, note(text)); err != nil {
			s.log.WarnContext(ctx, "DM failed", "watch", w.ID, "error", err.Error())
		}
	}
}

// tellOwner tells the watch's owner privately: ephemeral in the channel,
// else (the bot is not there, or Slack refused) a DM.
func (s *Service) tellOwner(ctx context.Context, w storage.Watch, text string) {
	s.tell(ctx, w.Channel, w.Owner, text)
}

// tell tells one person privately: ephemeral in channel, else (the bot is
// not there, or Slack refused) a DM. text is mrkdwn, escaped.
func (s *Service) tell(ctx context.Context, channel string, to storage.Identity, text string) {
	err := s.cfg.Slack.Ephemeral(ctx, channel, to.User, note(text))
	if err == nil {
		return
	}
	if err := s.cfg.Slack.DM(ctx, to, note(text)); err != nil {
		s.log.WarnContext(ctx, "tell failed", "channel", channel, "user", to.User, "error", err.Error())
	}
}

// watcher follows one deployment to its end, under its lease.
type watcher struct {
	s        *Service
	w        storage.Watch
	lease    *leases.Held
	c66      Cloud66
	log      *slog.Logger
	interval time.Duration

	relinked bool // the client was fetched again after a 401
	misses   int  // lookups of a "starting" watch that found no action
	finishes int  // failed attempts at reading the finished deployment
	quiet    int  // polls since the counters were last saved
	gone     bool // the stored watch was deleted under the watcher
	lost     bool // another replica took the lease: stop, write nothing more
}

func (wt *watcher) run(ctx context.Context, wait time.Duration) {
	s := wt.s
	for !wt.w.Done() && !wt.gone && !wt.lost {
		if err := s.sleep(ctx, wait); err != nil {
			return
		}
		if wt.c66 == nil {
			c, err := s.cfg.Cloud66For(ctx, wt.w.Owner)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, accounts.ErrNotLinked):
				wt.endUnlinked(ctx)
				return
			case err != nil:
				wt.log.WarnContext(ctx, "no Cloud 66 client for the owner", "error", err.Error())
				wait = wt.grow()
				continue
			}
			wt.c66 = c
		}

		now := s.now()
		if deadline := wt.w.RequestedAt.Add(s.cfg.Poll.Timeout); !now.Before(deadline) {
			wt.endUnknown(ctx, fmt.Sprintf("No result from Cloud 66 after %s, so I stopped following this deployment.", bk.Duration(s.cfg.Poll.Timeout)))
			return
		}
		wt.watchdog(ctx, now)

		if err := s.budget.wait(ctx, wt.w.Owner); err != nil {
			if ctx.Err() != nil {
				return
			}
			wt.log.WarnContext(ctx, "no Cloud 66 budget; backing off", "error", err.Error())
			wait = wt.grow()
			continue
		}
		if !wt.hold(ctx) {
			return
		}
		changed, err := wt.poll(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = wt.failed(ctx, err)
		case changed:
			wt.relinked = false
			wt.interval = s.cfg.Poll.Initial
			wait = wt.interval
		default:
			wt.relinked = false
			wait = wt.grow()
		}
	}
}

// hold renews the watch's lease before a poll, and reports false once it
// is lost (another replica took the watch over: this watcher stops). A
// store that fails to answer is not a loss: the poll only reads, and the
// save after it renews again.
func (wt *watcher) hold(ctx context.Context) bool {
	err := wt.lease.Renew(ctx)
	switch {
	case errors.Is(err, storage.ErrLeaseLost):
		wt.loseLease(ctx)
		return false
	case err != nil && ctx.Err() == nil:
		wt.log.WarnContext(ctx, "cannot renew the deployment's lease", "error", err.Error())
	}
	return true
}

// loseLease stops the watcher for good: the watch is another replica's.
func (wt *watcher) loseLease(ctx context.Context) {
	wt.lost = true
	wt.log.InfoContext(ctx, "another replica took the deployment over; stopped following it")
}

// grow backs the interval off ×1.5, up to Poll.Max, and returns it.
func (wt *watcher) grow() time.Duration {
	wt.interval = min(wt.interval*3/2, wt.s.cfg.Poll.Max)
	return wt.interval
}

// failed decides what a failed poll means and returns the wait before the
// next one; it ends the watch when Cloud 66 will not answer any better.
func (wt *watcher) failed(ctx context.Context, err error) time.Duration {
	s := wt.s
	var er *cloud66.ErrorResponse
	switch {
	case errors.Is(err, cloud66.ErrThrottled):
		// Polling into a throttle only burns the next window's budget.
		wait := wt.grow()
		if errors.As(err, &er) && !er.RetryAt.IsZero() {
			wait = max(wait, time.Until(er.RetryAt))
		}
		left := wt.w.RequestedAt.Add(s.cfg.Poll.Timeout).Sub(s.now())
		wt.log.WarnContext(ctx, "Cloud 66 throttled the watcher", "wait", wait.String())
		return max(0, min(wait, left))
	case errors.Is(err, cloud66.ErrUnauthorized):
		if !wt.relinked {
			// The person may have linked again with a new token; fetch
			// the client once more before giving up.
			wt.relinked, wt.c66 = true, nil
			return 0
		}
		wt.endUnlinked(ctx)
	case errors.Is(err, cloud66.ErrNotFound), errors.Is(err, cloud66.ErrForbidden):
		wt.endUnknown(ctx, "Cloud 66 no longer shows this deployment to the person who started it (the stack was deleted, or their access changed).")
	default:
		// Transient (5xx, timeouts) or unexpected: never a reason to stop
		// following; the hard timeout bounds it.
		wt.log.WarnContext(ctx, "poll failed; backing off", "transient", cloud66.IsTransient(err), "error", err.Error())
	}
	return wt.grow()
}

// poll asks Cloud 66 once and reports whether anything moved.
func (wt *watcher) poll(ctx context.Context) (bool, error) {
	wt.w.Polls++
	wt.w.LastPolled = wt.s.now()
	if wt.w.ActionID == 0 {
		return wt.lookup(ctx)
	}
	a, err := wt.c66.GetAction(ctx, wt.w.StackUID, wt.w.ActionID)
	if err != nil {
		return false, err
	}
	wt.noteOwnerEmail(ctx, a)
	if a.Finished() {
		return true, wt.finish(ctx, a)
	}
	if wt.w.State == storage.WatchQueued && a.StartedAt.IsZero() {
		// Cloud 66 named the action of a queued deploy at once; it has not
		// started yet, so the card keeps saying it is queued.
		wt.saveCounters(ctx)
		return false, nil
	}
	if wt.w.State != storage.WatchDeploying {
		wt.started(ctx, a)
		return true, nil
	}
	wt.saveCounters(ctx)
	return false, nil
}

// lookup finds the action of a change that has none yet: a deploy queued
// behind another deployment, or a change whose start got no answer. A
// redeploy carries its user_reference; the other calls carry none, so
// their action is the newest of their name that started after the request
// (less the clock skew between us and Cloud 66).
func (wt *watcher) lookup(ctx context.Context) (bool, error) {
	c := watchChange(wt.w)
	var a *cloud66.AsyncAction
	if c.Verb.shipsCode() {
		acts, err := wt.c66.ListActionsByReference(ctx, wt.w.StackUID, wt.w.UserReference)
		if err != nil {
			return false, err
		}
		for i := range acts {
			if acts[i].UserReference() == wt.w.UserReference {
				a = &acts[i] // newest first
				wt.noteOwnerEmail(ctx, a)
				break
			}
		}
	} else {
		acts, err := wt.c66.ListActions(ctx, wt.w.StackUID)
		if err != nil {
			return false, err
		}
		since := wt.w.RequestedAt.Add(-clockSkew)
		for i := range acts {
			if slices.Contains(c.actionNames(), acts[i].Action) && !acts[i].StartedAt.Time.Before(since) {
				a = &acts[i] // newest first
				break
			}
		}
	}
	if a == nil {
		if wt.w.State == storage.WatchStarting {
			return wt.neverStarted(ctx)
		}
		wt.saveCounters(ctx)
		return false, nil
	}
	wt.started(ctx, a)
	if a.Finished() {
		return true, wt.finish(ctx, a)
	}
	return true, nil
}

// noteOwnerEmail tells Config.People the e-mail Cloud 66 names as the user
// of a's deployment. Only a redeploy's action is surely the owner's own:
// its id came back from their request, or it carries the bot's
// user_reference; other changes' actions are found by name and time and
// may be someone else's.
func (wt *watcher) noteOwnerEmail(ctx context.Context, a *cloud66.AsyncAction) {
	if wt.s.cfg.People == nil || a.User == "" || !watchChange(wt.w).Verb.shipsCode() {
		return
	}
	if err := wt.s.cfg.People.NoteEmail(ctx, wt.w.Owner, a.User); err != nil && ctx.Err() == nil {
		wt.log.DebugContext(ctx, "cannot note the owner's Cloud 66 e-mail", "error", err.Error())
	}
}

// neverStarted ends a "starting" watch when Cloud 66 shows neither its
// action nor any running deployment: a deploy Cloud 66 accepted is either
// running, done (its action exists) or queued behind a running one.
func (wt *watcher) neverStarted(ctx context.Context) (bool, error) {
	wt.misses++
	if wt.misses < 2 || wt.s.now().Sub(wt.w.RequestedAt) < startingGrace {
		wt.saveCounters(ctx)
		return false, nil
	}
	noun := wordingOf(watchChange(wt.w)).noun
	if watchChange(wt.w).Verb.shipsCode() {
		// A redeploy queued behind a running one has no action yet.
		if err := wt.s.budget.wait(ctx, wt.w.Owner); err != nil {
			return false, err
		}
		deps, _, err := wt.c66.ListDeploymentsPage(ctx, wt.w.StackUID, 1)
		if err != nil {
			return false, err
		}
		for _, d := range deps {
			if d.IsDeploying {
				return false, nil
			}
		}
	}
	wt.endUnknown(ctx, "Cloud 66 shows no "+noun+" for this request: it probably never reached Cloud 66. Try again if it is still needed.")
	return true, nil
}

// started records that the deployment runs under action a.
func (wt *watcher) started(ctx context.Context, a *cloud66.AsyncAction) {
	now := wt.s.now()
	wt.update(ctx, func(x *storage.Watch) {
		x.ActionID, x.State, x.LastChange, x.Message = a.ID, storage.WatchDeploying, now, ""
		x.StartedAt = a.StartedAt.Time
		if x.StartedAt.IsZero() {
			x.StartedAt = now
		}
	})
	if wt.lost {
		return
	}
	wt.s.render(ctx, wt.w)
}

// finish records the outcome of finished action a: the deployment it
// belongs to gives the git hash and says whether it was cancelled.
func (wt *watcher) finish(ctx context.Context, a *cloud66.AsyncAction) error {
	s := wt.s
	c := watchChange(wt.w)
	var d *cloud66.Deployment
	if c.Verb.shipsCode() {
		// Only a redeploy has a deployment, with its git hash.
		if err := s.budget.wait(ctx, wt.w.Owner); err != nil {
			return err
		}
		deps, _, err := wt.c66.ListDeploymentsPage(ctx, wt.w.StackUID, 1)
		if err != nil {
			wt.finishes++
			if ctx.Err() != nil || wt.finishes < finishTries && (cloud66.IsTransient(err) || errors.Is(err, cloud66.ErrThrottled)) {
				return err
			}
			wt.log.WarnContext(ctx, "finished deployment not found in the list", "error", err.Error())
			deps = nil
		}
		d = pickDeployment(deps, a.StartedAt.Time)
	}
	success := a.FinishedSuccess != nil && *a.FinishedSuccess
	now := s.now()
	// Once saved, the watch is no longer active and no later Run would
	// redo what follows, so the save and the messages must not be cut
	// short by shutdown.
	ctx = context.WithoutCancel(ctx)
	wt.update(ctx, func(x *storage.Watch) {
		x.ActionID, x.LastChange, x.Message = a.ID, now, a.FinishedMessage
		if x.StartedAt.IsZero() {
			x.StartedAt = a.StartedAt.Time
		}
		x.FinishedAt = a.FinishedAt.Time
		if d != nil {
			x.GitHash, x.DeploymentID = d.GitHash, d.ID
		}
		switch {
		case success:
			x.State = storage.WatchSucceeded
		case d != nil && d.Cancelled(), x.CancelRequestedBy != "":
			x.State = storage.WatchCancelled
		default:
			x.State = storage.WatchFailed
		}
	})
	if wt.lost {
		return nil // the new owner reports the end
	}
	if wt.w.State == storage.WatchFailed && c.Verb == VerbDeploy {
		// A failed deploy's card offers to retry it and to roll it back.
		if offers := s.failedOffers(ctx, wt); len(offers) > 0 {
			wt.update(ctx, func(x *storage.Watch) {
				for k, v := range offers {
					x.Params = withParam(x.Params, k, v)
				}
			})
		}
	}
	if wt.lost {
		return nil
	}
	w := wt.w
	s.finished(w.State)
	s.render(ctx, w)
	// The thread is where Cloud 66's message is shown whole, lines kept.
	msg := bk.EscText(w.Message)
	switch {
	case w.State == storage.WatchFailed && msg == "":
		s.threadNote(ctx, w, mention(w.Owner.User)+" the "+wordingOf(c).noun+" failed and Cloud 66 gave no reason; "+
			bk.Link(bk.StackURL(s.cfg.Cloud66URL, w.StackUID), "check the log")+".", false)
	case w.State == storage.WatchFailed:
		s.threadNote(ctx, w, mention(w.Owner.User)+" Cloud 66: "+msg, false)
	case msg != "":
		s.threadNote(ctx, w, "Cloud 66: "+msg, false)
	}
	wt.log.InfoContext(ctx, "change finished", "verb", c.Verb, "state", w.State, "action_id", w.ActionID, "deployment_id", w.DeploymentID)
	return nil
}

// pickDeployment is the deployment of an action that started at started:
// the closest start within matchWindow, else the newest.
func pickDeployment(deps []cloud66.Deployment, started time.Time) *cloud66.Deployment {
	var best *cloud66.Deployment
	var bestGap time.Duration
	if !started.IsZero() {
		for i := range deps {
			if deps[i].StartedAt.IsZero() {
				continue
			}
			gap := deps[i].StartedAt.Sub(started).Abs()
			if gap <= matchWindow && (best == nil || gap < bestGap) {
				best, bestGap = &deps[i], gap
			}
		}
	}
	if best == nil && len(deps) > 0 {
		best = &deps[0]
	}
	return best
}

// watchdog posts once in the thread when a deployment has shown no
// progress for Poll.Watchdog: people should look before the hard timeout.
func (wt *watcher) watchdog(ctx context.Context, now time.Time) {
	w := wt.w
	if w.State != storage.WatchDeploying || w.WatchdogPosted {
		return
	}
	since := w.LastChange
	if since.IsZero() {
		since = w.StartedAt
	}
	if now.Sub(since) < wt.s.cfg.Poll.Watchdog {
		return
	}
	wt.update(ctx, func(x *storage.Watch) { x.WatchdogPosted = true })
	if wt.lost {
		return
	}
	run := w.StartedAt
	if run.IsZero() {
		run = w.RequestedAt
	}
	wt.s.threadNote(ctx, wt.w, fmt.Sprintf("⏳ Still deploying after %s; Cloud 66 reports no progress — %s.",
		minutes(now.Sub(run)), bk.Link(bk.StackURL(wt.s.cfg.Cloud66URL, w.StackUID), "check it in Cloud 66")), true)
}

// endUnknown ends the watch without an outcome, saying why.
func (wt *watcher) endUnknown(ctx context.Context, reason string) {
	now := wt.s.now()
	ctx = context.WithoutCancel(ctx) // as in finish: no later Run would redo this
	wt.update(ctx, func(x *storage.Watch) {
		x.State, x.Message, x.FinishedAt, x.LastChange = storage.WatchUnknown, reason, now, now
	})
	if wt.lost {
		return
	}
	wt.s.finished(wt.w.State)
	wt.s.render(ctx, wt.w)
	wt.s.threadNote(ctx, wt.w, "⚠️ "+bk.Esc(reason)+" "+bk.Link(bk.StackURL(wt.s.cfg.Cloud66URL, wt.w.StackUID), "Check it in Cloud 66")+".", false)
	wt.log.WarnContext(ctx, "deployment state unknown", "reason", reason)
}

// endUnlinked ends the watch because the owner's Cloud 66 link is gone or
// refused, and tells them how to fix it.
func (wt *watcher) endUnlinked(ctx context.Context) {
	wt.endUnknown(ctx, "The Cloud 66 link of the person who started this deployment expired or was revoked, so I stopped following it.")
	if wt.lost {
		return
	}
	wt.s.tellOwner(context.WithoutCancel(ctx), wt.w, fmt.Sprintf(":lock: Your Cloud 66 link has expired or was revoked, so I stopped following the deployment of %s. Run `%s login` to link again.",
		stackLabel(wt.w.StackName, wt.w.Environment), bk.Esc(wt.s.cfg.Command)))
}

// update changes the stored watch and keeps the watcher's copy in step,
// carrying the poll counters along. A failed save keeps the change in
// memory, so the watcher still acts on it; the next save catches up.
//
// The lease is renewed first, and a lost lease saves nothing and stops the
// watcher (wt.lost; callers then say nothing either): renew, then write.
// What remains is the time between the renewal and the save's commit. A
// pause longer than the rest of the lease in there (a stop-the-world, a
// frozen VM) lets another replica take the watch and save before this late
// save lands. That is harmless: a watch's saves record facts Cloud 66
// reported (its action, that it started, how it ended), so the late save
// states what the new owner finds too; at worst the stored watch goes back
// a step and its end is reported twice. Nothing is sent to Cloud 66 twice,
// since a watcher only reads.
func (wt *watcher) update(ctx context.Context, f func(*storage.Watch)) {
	if err := wt.lease.Renew(ctx); err != nil {
		if errors.Is(err, storage.ErrLeaseLost) {
			wt.loseLease(ctx)
			return
		}
		f(&wt.w)
		if ctx.Err() == nil {
			wt.log.WarnContext(ctx, "cannot renew the deployment's lease; save skipped", "error", err.Error())
		}
		return
	}
	polls, polled := wt.w.Polls, wt.w.LastPolled
	w, err := wt.s.updateWatch(ctx, wt.w.ID, func(x *storage.Watch) {
		x.Polls, x.LastPolled = polls, polled
		f(x)
	})
	if err == nil {
		wt.w, wt.quiet = w, 0
		return
	}
	f(&wt.w)
	if errors.Is(err, storage.ErrNotFound) {
		// Deleted under us (an operator, or a sweep): nothing left to keep
		// up to date.
		wt.gone = true
	}
	if ctx.Err() == nil {
		wt.log.WarnContext(ctx, "save watch failed", "error", err.Error())
	}
}

// saveCounters saves the poll counters every savePolls quiet polls, so a
// restart does not lose them without a write per poll.
func (wt *watcher) saveCounters(ctx context.Context) {
	wt.quiet++
	if wt.quiet >= savePolls {
		wt.update(ctx, func(*storage.Watch) {})
	}
}
