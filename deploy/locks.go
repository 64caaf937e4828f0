package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/storage"
)

// Keys of an unlock intent: the lock the person saw, so Confirm removes that
// lock and not one someone else took in the meantime.
const (
	paramLockOwnerTeam = "owner_team"
	paramLockOwnerUser = "owner_user"
	paramLockSince     = "since"
)

// LockResult is what Lock made of the person's lock: the lock as it now
// stands and whether they already held it before asking.
type LockResult struct {
	storage.Lock
	// AlreadyHeld: the person held this lock before; Since is when they
	// took it, and PreviousReason the reason it had.
	AlreadyHeld    bool
	PreviousReason string
	// PreviousExpires is when the held lock was to expire before; zero
	// for never.
	PreviousExpires time.Time
}

// Changed reports whether Lock changed anything: a lock taken, or a held
// lock given a new reason or expiry.
func (r LockResult) Changed() bool {
	return !r.AlreadyHeld || r.Reason != r.PreviousReason || !r.Expires.Equal(r.PreviousExpires)
}

// LockDurationError: a `lock … for=` outside MinLockFor..MaxLockFor.
type LockDurationError struct{ For time.Duration }

func (e *LockDurationError) Error() string {
	return fmt.Sprintf("deploy: a lock lasts between %s and %s, not %s", MinLockFor, MaxLockFor, e.For)
}

// Lock puts a sticky lock on stack in the person's workspace: only its owner
// may deploy until it is removed. Someone else's lock refuses it
// (*LockedError). Locking again your own lock keeps its Since; a new reason
// replaces the old one, and no reason (or the same one) keeps it, so
// `lock shop` twice never wipes what the team was told. A re-lock that
// changes nothing writes nothing and is not audited. Audited with the lock,
// in one transaction: a lock whose entry cannot be written is not taken (an
// error wrapping storage.ErrNotAudited).
func (s *Service) Lock(ctx context.Context, o Origin, stack cloud66.Stack, reason string) (LockResult, error) {
	return s.LockFor(ctx, o, stack, reason, 0)
}

// LockFor is Lock for a while: a lock taken (or re-locked by its owner)
// with d > 0 expires d from now, and Run's sweep releases it then and
// tells whoever waits for it. d == 0 is Lock: no expiry, or the one the
// held lock has. d outside MinLockFor..MaxLockFor is a *LockDurationError.
func (s *Service) LockFor(ctx context.Context, o Origin, stack cloud66.Stack, reason string, d time.Duration) (LockResult, error) {
	e := auditEntry(o, "lock", stack.UID, stack.Name, stack.Environment)
	e.Args = map[string]string{"reason": reason}
	var expires time.Time
	if d != 0 {
		e.Args["for"] = d.String()
		expires = s.now().Add(d)
	}
	fail := func(err error) (LockResult, error) {
		s.auditRefusal(ctx, e, err)
		return LockResult{}, err
	}
	if d != 0 && (d < MinLockFor || d > MaxLockFor) {
		return fail(&LockDurationError{For: d})
	}
	cur, err := s.cfg.Locks.Get(ctx, o.Identity.Team, stack.UID)
	mine := err == nil && cur.Owner == o.Identity
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return fail(fmt.Errorf("deploy: read lock: %w", err))
	case mine && reason == "":
		reason = cur.Reason
	}
	if mine && d == 0 && reason == cur.Reason && cur.StackName == stack.Name && cur.Environment == stack.Environment {
		return LockResult{Lock: cur, AlreadyHeld: true, PreviousReason: cur.Reason, PreviousExpires: cur.Expires}, nil
	}
	locked := e
	locked.Result, locked.At = "locked", s.now()
	if mine {
		locked.Args = map[string]string{"reason": reason, "previous_reason": cur.Reason}
		if d != 0 {
			locked.Args["for"] = d.String()
		}
	}
	held, acquired, err := s.cfg.Locks.Acquire(ctx, storage.Lock{
		Team: o.Identity.Team, StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment,
		Owner: o.Identity, Reason: reason, Expires: expires,
	}, locked)
	switch {
	case err != nil:
		return fail(fmt.Errorf("deploy: lock %s: %w", stack.UID, err))
	case !acquired:
		return fail(&LockedError{Lock: held})
	}
	s.touchHome(o.Identity)
	// Had the lock been removed since it was read, this is a new one.
	if mine && held.Since.Equal(cur.Since) {
		return LockResult{Lock: held, AlreadyHeld: true, PreviousReason: cur.Reason, PreviousExpires: cur.Expires}, nil
	}
	return LockResult{Lock: held}, nil
}

// NotLockedError is ErrNotLocked naming the stack, so the reply can say
// which one: the person may have typed a short name, or pressed a button.
type NotLockedError struct {
	StackName, Environment, StackUID string
}

func notLocked(name, environment, uid string) *NotLockedError {
	return &NotLockedError{StackName: name, Environment: environment, StackUID: uid}
}

// Error reads "deploy: shop:production is not locked".
func (e *NotLockedError) Error() string {
	return "deploy: " + stackRef(e.StackName, e.Environment, e.StackUID) + " is not locked"
}

// Is makes errors.Is(err, ErrNotLocked) hold.
func (e *NotLockedError) Is(target error) bool { return target == ErrNotLocked }

// Unlock removes the person's own lock at once (Released). Someone else's
// lock needs a confirmation (Confirm), and its owner is told when it is
// removed. A *NotLockedError (matching ErrNotLocked) when there is no
// lock. Audited; removing a lock is audited in the same transaction, and
// refused when that cannot be written.
func (s *Service) Unlock(ctx context.Context, o Origin, stack cloud66.Stack) (UnlockResult, error) {
	e := auditEntry(o, "unlock", stack.UID, stack.Name, stack.Environment)
	fail := func(err error) (UnlockResult, error) {
		s.auditRefusal(ctx, e, err)
		return UnlockResult{}, err
	}
	l, err := s.cfg.Locks.Get(ctx, o.Identity.Team, stack.UID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fail(notLocked(stack.Name, stack.Environment, stack.UID))
	case err != nil:
		return fail(fmt.Errorf("deploy: read lock: %w", err))
	}
	e.Args = map[string]string{"owner": l.Owner.User}

	if l.Owner == o.Identity {
		unlocked := e
		unlocked.Result, unlocked.At = "unlocked", s.now()
		released, err := s.cfg.Locks.Release(ctx, o.Identity.Team, stack.UID, unlocked)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return fail(notLocked(stack.Name, stack.Environment, stack.UID))
		case err != nil:
			return fail(fmt.Errorf("deploy: unlock %s: %w", stack.UID, err))
		}
		s.touchHome(released.Owner)
		s.lockFreed(ctx, released, o.Identity, mention(o.Identity.User)+" unlocked it")
		return UnlockResult{Released: &released}, nil
	}

	in, err := s.cfg.Intents.Create(ctx, storage.Intent{
		Kind: kindUnlock, Requester: o.Identity, Channel: o.Channel, ResponseURL: o.ResponseURL,
		StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment,
		Params: map[string]string{
			paramLockOwnerTeam: l.Owner.Team,
			paramLockOwnerUser: l.Owner.User,
			paramLockSince:     l.Since.UTC().Format(time.RFC3339Nano),
		},
	})
	if err != nil {
		return fail(fmt.Errorf("deploy: store confirmation: %w", err))
	}
	e.Result = "pending confirmation"
	s.audit(ctx, e)
	return UnlockResult{Confirm: &Confirmation{IntentID: in.ID, Kind: kindUnlock, Stack: stack, Lock: &l, ExpiresAt: in.ExpiresAt}}, nil
}

// ConfirmUnlock removes someone else's lock for the person who asked
// (ErrNotYours for anyone else) and DMs the lock's owner. If the lock
// changed hands since the question was asked, the new lock is left alone
// and returned as a *LockedError. Audited as "unlock.force", in the
// transaction that removes the lock.
func (s *Service) ConfirmUnlock(ctx context.Context, intentID string, by storage.Identity) (storage.Lock, error) {
	in, err := s.consume(ctx, intentID, kindUnlock, by)
	o := intentOrigin(in, by)
	e := auditEntry(o, "unlock.force", in.StackUID, in.StackName, in.Environment)
	e.Args = map[string]string{"owner": in.Params[paramLockOwnerUser]}
	fail := func(err error) (storage.Lock, error) {
		s.auditRefusal(ctx, e, err)
		return storage.Lock{}, err
	}
	if err != nil {
		return fail(err)
	}
	cur, err := s.cfg.Locks.Get(ctx, by.Team, in.StackUID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fail(notLocked(in.StackName, in.Environment, in.StackUID))
	case err != nil:
		return fail(fmt.Errorf("deploy: read lock: %w", err))
	}
	seen := storage.Identity{Team: in.Params[paramLockOwnerTeam], User: in.Params[paramLockOwnerUser]}
	if cur.Owner != seen && cur.Owner != by {
		return fail(&LockedError{Lock: cur})
	}
	unlocked := e
	unlocked.Result, unlocked.At = "unlocked", s.now()
	released, err := s.cfg.Locks.Release(ctx, by.Team, in.StackUID, unlocked)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fail(notLocked(in.StackName, in.Environment, in.StackUID))
	case err != nil:
		return fail(fmt.Errorf("deploy: unlock %s: %w", in.StackUID, err))
	}
	s.touchHome(released.Owner)

	if released.Owner != by && released.Owner.Valid() {
		msg := fmt.Sprintf(":unlock: %s removed your lock on %s.", mention(by.User), stackLabel(released.StackName, released.Environment))
		if released.Reason != "" {
			msg += " Your reason was: " + bk.Esc(released.Reason)
		}
		if err := s.cfg.Slack.DM(ctx, released.Owner, note(msg)); err != nil {
			s.logger(o).WarnContext(ctx, "DM lock owner failed", "stack_uid", in.StackUID, "error", err.Error())
		}
	}
	s.lockFreed(ctx, released, by, mention(by.User)+" removed "+mention(released.Owner.User)+"'s lock")
	return released, nil
}

// Locks returns the workspace's locks, oldest first.
func (s *Service) Locks(ctx context.Context, team string) ([]storage.Lock, error) {
	locks, err := s.cfg.Locks.List(ctx, team)
	if err != nil {
		return nil, fmt.Errorf("deploy: list locks: %w", err)
	}
	return locks, nil
}
