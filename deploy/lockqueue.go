package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/storage"
)

// kindLockWait backs the "Tell me when it's free" and "Deploy when it's
// free" buttons of a refusal by someone else's lock: it parks the refused
// change, so the buttons carry an id, never the change itself. Pressing
// them does not spend it: one refusal may be answered with both.
const kindLockWait = "lockwait"

// The bounds of `lock … for=`, and when a lock held without one earns its
// owner a reminder.
const (
	MinLockFor    = time.Minute
	MaxLockFor    = 7 * 24 * time.Hour
	RemindLockFor = 4 * time.Hour
)

// defaultLockSweepEvery is how often Run expires locks and sends reminders.
const defaultLockSweepEvery = 30 * time.Second

// lockSweepLease is held by the replica sweeping the locks, so two
// replicas do not both read every lock each pass; the stores' own checks
// (ReleaseExpired, MarkReminded) are what keep an expiry or a reminder to
// one.
const lockSweepLease = "locks:sweep"

// offerWait parks the change a lock refused, as an intent whose id the
// refusal's buttons carry (le.WaitIntentID). A failure to store it only
// leaves the buttons out: the refusal stands either way.
func (s *Service) offerWait(ctx context.Context, o Origin, stack cloud66.Stack, c Change, overridden string, le *LockedError) {
	le.Verb = c.Verb
	parked := parkedIntent(o, stack, c, overridden)
	parked.Kind = kindLockWait
	in, err := s.cfg.Intents.Create(ctx, parked)
	if err != nil {
		s.logger(o).WarnContext(ctx, "store lock wait offer", "stack_uid", stack.UID, "error", err.Error())
		return
	}
	le.WaitIntentID = in.ID
}

// WaitForLock answers a "Tell me when it's free" (storage.WaitNotify) or
// "Deploy when it's free" (storage.WaitDeploy) button: by joins the queue
// of the lock that refused them, and is told (or has the refused change
// run) when it goes. Only the person refused may press it (ErrNotYours);
// a stack no longer locked is a *NotLockedError. Returns the lock waited
// for. Audited as "lock.wait".
func (s *Service) WaitForLock(ctx context.Context, intentID string, by storage.Identity, kind storage.WaitKind) (storage.Lock, error) {
	in, err := s.cfg.Intents.Get(ctx, intentID)
	if err == nil && in.Kind != kindLockWait {
		in, err = storage.Intent{}, ErrIntentGone
	}
	if errors.Is(err, storage.ErrNotFound) {
		err = ErrIntentGone
	}
	if err == nil && in.Requester != by {
		err = ErrNotYours
	}
	o := intentOrigin(in, by)
	e := auditEntry(o, "lock.wait", in.StackUID, in.StackName, in.Environment)
	e.Args = map[string]string{"kind": string(kind)}
	if kind == storage.WaitDeploy {
		e.Args["verb"] = string(intentChange(in).Verb)
	}
	fail := func(err error) (storage.Lock, error) {
		s.auditRefusal(ctx, e, err)
		return storage.Lock{}, err
	}
	if err != nil {
		return fail(err)
	}
	w := storage.LockWaiter{Who: by, Kind: kind, Channel: in.Channel, ResponseURL: in.ResponseURL}
	if kind == storage.WaitDeploy {
		w.Params = in.Params
	}
	l, _, err := s.cfg.Locks.AddWaiter(ctx, by.Team, in.StackUID, w)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fail(notLocked(in.StackName, in.Environment, in.StackUID))
	case err != nil:
		return fail(fmt.Errorf("deploy: wait for lock: %w", err))
	}
	e.Args["owner"] = l.Owner.User
	e.Result = "waiting"
	s.audit(ctx, e)
	return l, nil
}

// lockFreed tells the waiters of a released lock: each "tell me" waiter
// gets a DM saying how it went (how: "<@ana> unlocked it"), except the
// person who released it; the first "deploy when free" waiter whose change
// gets going (started, or parked for confirmation or approval) has it run
// as them, through the checks of any change; the ones after it are told
// someone else's queued change went first. Waiters are one-shot: the
// release removed them with the lock.
func (s *Service) lockFreed(ctx context.Context, l storage.Lock, by storage.Identity, how string) {
	ctx = context.WithoutCancel(ctx)
	label := stackLabel(l.StackName, l.Environment)
	stack := cloud66.Stack{UID: l.StackUID, Name: l.StackName, Environment: l.Environment}
	var first *storage.LockWaiter
	for i := range l.Waiters {
		w := l.Waiters[i]
		switch {
		case w.Kind == storage.WaitNotify && w.Who != by:
			s.dm(ctx, w.Who, note(fmt.Sprintf(":unlock: %s is free: %s.", label, how)))
		case w.Kind == storage.WaitDeploy && first == nil:
			if s.runQueued(ctx, w, stack, label, how) {
				first = &l.Waiters[i]
			}
		case w.Kind == storage.WaitDeploy:
			s.dm(ctx, w.Who, note(fmt.Sprintf(":hourglass: %s was free (%s), but %s's queued %s goes first, so yours did not start. `%s %s %s` when it's done.",
				label, how, mention(first.Who.User), verbWord(intentChange(storage.Intent{Params: first.Params}).Verb),
				s.cfg.Command, verbWord(intentChange(storage.Intent{Params: w.Params}).Verb), bk.Esc(bk.StackRef(l.StackName, l.Environment)))))
		}
	}
}

// runQueued runs a "deploy when free" waiter's change as them, as Change
// does after a fresh look at the policy, and tells them by DM how it
// went; it reports whether the change got going. A protected environment
// asks them again, in the DM, with the confirmation's buttons.
func (s *Service) runQueued(ctx context.Context, w storage.LockWaiter, stack cloud66.Stack, label, how string) bool {
	o := Origin{Identity: w.Who, Channel: w.Channel, ResponseURL: w.ResponseURL, RequestID: w.ID}
	c := intentChange(storage.Intent{Params: w.Params})
	e := auditEntry(o, string(c.Verb), stack.UID, stack.Name, stack.Environment)
	e.Args = c.Map()
	e.Args["queued"] = "lock"
	head := fmt.Sprintf(":unlock: %s is free (%s), so your queued %s", label, how, verbWord(c.Verb))
	refused := func(err error) bool {
		s.log.InfoContext(ctx, "queued change refused", "stack_uid", stack.UID, "user", w.Who.User, "error", err.Error())
		s.auditRefusal(ctx, e, err)
		s.dm(ctx, w.Who, note(head+" did not start: "+queuedRefusal(err)+". Nothing was sent to Cloud 66."))
		return false
	}
	d, subj, err := s.decide(ctx, o.Identity, o.Channel, stack, c.Verb)
	if err != nil {
		return refused(err)
	}
	if err := s.checkPolicy(ctx, o, stack, c, d, subj, w.Params[paramOverride], false); err != nil {
		return refused(err)
	}
	res, err := s.proceed(ctx, o, stack, c, d, w.Params[paramOverride], e)
	switch {
	case err != nil:
		s.log.InfoContext(ctx, "queued change did not start", "stack_uid", stack.UID, "user", w.Who.User, "error", err.Error())
		s.dm(ctx, w.Who, note(head+" did not start: "+queuedRefusal(err)+"."))
		return false
	case res.Confirm != nil:
		m := chat.Message{Text: bk.Fallback(head + " needs your confirmation.")}
		if s.cfg.RenderConfirmation != nil {
			m = s.cfg.RenderConfirmation(res.Confirm)
			m.Blocks = append([]slack.Block{bk.Section(head + " needs your confirmation again:")}, m.Blocks...)
		} else {
			m.Blocks = []slack.Block{bk.Section(head + " needs your confirmation: run it again.")}
		}
		m.InChannel = false
		s.dm(ctx, w.Who, m)
	case res.Approval != nil:
		s.dm(ctx, w.Who, note(head+" waits for approvals: I posted the request in <#"+bk.Esc(w.Channel)+">."))
	case res.Watch != nil:
		msg := head + " started"
		if link := messageLink(res.Watch.Channel, res.Watch.MessageTS); link != "" {
			msg += ": " + bk.Link(link, "its message")
		}
		s.dm(ctx, w.Who, note(msg+"."))
	}
	return true
}

// queuedRefusal says in a few words why a queued change did not start.
func queuedRefusal(err error) string {
	var le *LockedError
	var pe *PolicyError
	var fe *FrozenError
	switch {
	case errors.As(err, &pe):
		return "not allowed: " + bk.Esc(pe.Reason)
	case errors.As(err, &fe):
		return strings.ToLower(fe.Verb.Plural()) + " are frozen (*" + bk.Esc(fe.Freeze.Name) + "*)"
	case errors.As(err, &le):
		return mention(le.Lock.Owner.User) + " locked it again"
	case errors.As(err, new(*BusyError)):
		return "another change is running on it"
	case errors.Is(err, cloud66.ErrNotFound), errors.Is(err, cloud66.ErrForbidden):
		return "Cloud 66 says your account can't see or change that stack"
	}
	return "something went wrong on my side"
}

// verbWord is a verb as a queued change's message names it.
func verbWord(v Verb) string {
	if v == "" {
		return string(VerbDeploy)
	}
	return string(v)
}

// dm sends a DM, logging a failure: the people told are told as a
// courtesy, and the change behind it has been made either way.
func (s *Service) dm(ctx context.Context, to storage.Identity, m chat.Message) {
	if err := s.cfg.Slack.DM(ctx, to, m); err != nil {
		s.log.WarnContext(ctx, "lock queue DM failed", "user", to.User, "error", err.Error())
	}
}

// lockLoop sweeps the locks every LockSweepEvery until ctx ends.
func (s *Service) lockLoop(ctx context.Context) {
	for s.lockSleep(ctx, s.cfg.LockSweepEvery) == nil {
		s.sweepLocks(ctx)
	}
}

// sweepLocks releases the locks whose time is up (audited "lock.expired",
// their owner and waiters told) and reminds, once, the owner of a lock
// held RemindLockFor without a duration. Only the replica holding the
// sweep's lease does it.
func (s *Service) sweepLocks(ctx context.Context) {
	h, _, err := leases.Take(ctx, s.cfg.Leases, lockSweepLease, s.owner, s.cfg.LeaseTTL)
	if err != nil {
		s.log.WarnContext(ctx, "cannot take the lock sweep's lease", "error", err.Error())
		return
	}
	if h == nil {
		return // another replica sweeps
	}
	defer s.release(h)
	locks, err := s.cfg.Locks.All(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "cannot read the locks to sweep", "error", err.Error())
		return
	}
	now := s.now()
	for _, l := range locks {
		switch {
		case l.Expired(now):
			s.expire(ctx, l, now)
		case l.Expires.IsZero() && l.RemindedAt.IsZero() && now.Sub(l.Since) >= RemindLockFor:
			s.remind(ctx, l, now)
		}
	}
}

// expire releases l, whose time is up, and tells its owner and waiters.
func (s *Service) expire(ctx context.Context, l storage.Lock, now time.Time) {
	e := auditEntry(Origin{Identity: l.Owner}, "lock.expired", l.StackUID, l.StackName, l.Environment)
	e.Args = map[string]string{"owner": l.Owner.User, "expires": l.Expires.UTC().Format(time.RFC3339)}
	e.Result, e.At = "expired", now
	released, err := s.cfg.Locks.ReleaseExpired(ctx, l.Team, l.StackUID, now, e)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return // released, or re-locked for longer, meanwhile
	case err != nil:
		s.log.WarnContext(ctx, "cannot release an expired lock", "team", l.Team, "stack_uid", l.StackUID, "error", err.Error())
		return
	}
	s.touchHome(released.Owner)
	label := stackLabel(released.StackName, released.Environment)
	s.dm(ctx, released.Owner, note(fmt.Sprintf(":unlock: Your lock on %s expired (%s), so it is free again%s.",
		label, bk.Date(released.Expires, "{time}"), lockedForSuffix(released.Reason))))
	s.lockFreed(ctx, released, storage.Identity{}, mention(released.Owner.User)+"'s lock expired")
}

// remind tells l's owner, once, that they still hold it.
func (s *Service) remind(ctx context.Context, l storage.Lock, now time.Time) {
	ok, err := s.cfg.Locks.MarkReminded(ctx, l.Team, l.StackUID, l.Since)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.WarnContext(ctx, "cannot mark a lock reminded", "team", l.Team, "stack_uid", l.StackUID, "error", err.Error())
	}
	if !ok {
		return
	}
	msg := fmt.Sprintf(":lock: You've held the lock on %s for %d h%s. `%s unlock %s` when done.",
		stackLabel(l.StackName, l.Environment), int(now.Sub(l.Since).Hours()), reasonColon(l.Reason),
		s.cfg.Command, bk.Esc(bk.StackRef(l.StackName, l.Environment)))
	s.dm(ctx, l.Owner, note(msg))
}

func reasonColon(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + bk.Esc(reason)
}

func lockedForSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return "; you had locked it for: " + bk.Esc(reason)
}
