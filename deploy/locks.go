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

// Lock puts a sticky lock on stack in the person's workspace: only its owner
// may deploy until it is removed. Someone else's lock refuses it
// (*LockedError); locking again your own lock updates the reason. Audited
// with the lock, in one transaction: a lock whose entry cannot be written
// is not taken (an error wrapping storage.ErrNotAudited).
func (s *Service) Lock(ctx context.Context, o Origin, stack cloud66.Stack, reason string) (storage.Lock, error) {
	e := auditEntry(o, "lock", stack.UID, stack.Name, stack.Environment)
	e.Args = map[string]string{"reason": reason}
	locked := e
	locked.Result, locked.At = "locked", s.now()
	held, acquired, err := s.cfg.Locks.Acquire(ctx, storage.Lock{
		Team: o.Identity.Team, StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment,
		Owner: o.Identity, Reason: reason,
	}, locked)
	switch {
	case err != nil:
		err = fmt.Errorf("deploy: lock %s: %w", stack.UID, err)
	case !acquired:
		err = &LockedError{Lock: held}
	}
	if err != nil {
		s.auditRefusal(ctx, e, err)
		return storage.Lock{}, err
	}
	return held, nil
}

// Unlock removes the person's own lock at once (Released). Someone else's
// lock needs a confirmation (Confirm), and its owner is told when it is
// removed. ErrNotLocked when there is no lock. Audited; removing a lock is
// audited in the same transaction, and refused when that cannot be written.
func (s *Service) Unlock(ctx context.Context, o Origin, stack cloud66.Stack) (UnlockResult, error) {
	e := auditEntry(o, "unlock", stack.UID, stack.Name, stack.Environment)
	fail := func(err error) (UnlockResult, error) {
		s.auditRefusal(ctx, e, err)
		return UnlockResult{}, err
	}
	l, err := s.cfg.Locks.Get(ctx, o.Identity.Team, stack.UID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fail(ErrNotLocked)
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
			return fail(ErrNotLocked)
		case err != nil:
			return fail(fmt.Errorf("deploy: unlock %s: %w", stack.UID, err))
		}
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
		return fail(ErrNotLocked)
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
		return fail(ErrNotLocked)
	case err != nil:
		return fail(fmt.Errorf("deploy: unlock %s: %w", in.StackUID, err))
	}

	if released.Owner != by && released.Owner.Valid() {
		msg := fmt.Sprintf(":unlock: %s removed your lock on %s.", mention(by.User), stackLabel(released.StackName, released.Environment))
		if released.Reason != "" {
			msg += " Your reason was: " + bk.Esc(released.Reason)
		}
		if err := s.cfg.Slack.DM(ctx, released.Owner, note(msg)); err != nil {
			s.logger(o).WarnContext(ctx, "DM lock owner failed", "stack_uid", in.StackUID, "error", err.Error())
		}
	}
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
