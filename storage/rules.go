package storage

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// The rules of each kind, apart from any database: what a new record is
// checked for and given, and what a change makes of the record that was
// there. The stores of this package and of storage/postgres apply them
// around their own transactions, so both backends decide alike; the
// contract suites in storage/storagetest hold them to it.

// NewPendingLogin checks p and stamps it at now, as LoginStore.Create
// stores it: CreatedAt is now, and ExpiresAt is CreatedAt+StateTTL when
// zero or later.
func NewPendingLogin(p PendingLogin, now time.Time) (PendingLogin, error) {
	if !p.Identity.Valid() {
		return PendingLogin{}, invalidIdentity(p.Identity)
	}
	p.CreatedAt = now
	if limit := now.Add(StateTTL); p.ExpiresAt.IsZero() || p.ExpiresAt.After(limit) {
		p.ExpiresAt = limit
	}
	return p, nil
}

// NewIntent checks in and stamps it at now, as IntentStore.Create stores
// it (the ID is the store's to make): it needs a Kind and a valid
// Requester; CreatedAt is now, and ExpiresAt now+IntentTTL when zero,
// capped at now+MaxIntentTTL.
func NewIntent(in Intent, now time.Time) (Intent, error) {
	if in.Kind == "" {
		return Intent{}, errors.New("storage: create intent: empty Kind")
	}
	if !in.Requester.Valid() {
		return Intent{}, fmt.Errorf("storage: create intent: %w", invalidIdentity(in.Requester))
	}
	in.CreatedAt = now
	if in.ExpiresAt.IsZero() {
		in.ExpiresAt = now.Add(IntentTTL)
	} else if limit := now.Add(MaxIntentTTL); in.ExpiresAt.After(limit) {
		in.ExpiresAt = limit
	}
	return in, nil
}

// IntentOutcome is what IntentStore.Consume or Update decided about the
// intent stored, for a backend to carry out (Write) in the transaction
// that read it and to report with Result.
type IntentOutcome struct {
	// Intent is what the caller gets back: for Update with Write, the
	// intent to store.
	Intent Intent
	// Verdict is the caller's error, nil on success.
	Verdict error
	// Refused marks Verdict as the caller's check's or fn's own error,
	// which goes back unwrapped, with the intent as stored.
	Refused bool
	// Write is true when the intent is to be deleted (Consume) or stored
	// (Update) before the transaction commits.
	Write bool
}

// ConsumeIntent decides IntentStore.Consume at now for the intent stored,
// got, or the error of unsealing it: one that does not open is deleted
// as not found; an expired one is deleted and returned with
// ErrIntentExpired; when check refuses, it is kept; otherwise it is
// deleted and returned.
func ConsumeIntent(got Intent, openErr error, now time.Time, check func(Intent) error) IntentOutcome {
	switch {
	case openErr != nil:
		return IntentOutcome{Verdict: fmt.Errorf("%w: %w", ErrNotFound, openErr), Write: true}
	case !now.Before(got.ExpiresAt):
		return IntentOutcome{Intent: got, Verdict: ErrIntentExpired, Write: true}
	}
	if check != nil {
		if err := check(got); err != nil {
			// Not deleted: another person's click must not use up the
			// requester's confirmation.
			return IntentOutcome{Intent: got, Verdict: err, Refused: true}
		}
	}
	return IntentOutcome{Intent: got, Write: true}
}

// UpdateIntent decides IntentStore.Update at now for the intent stored,
// got, or the error of unsealing it: fn runs on a copy of an unexpired
// one, which is stored unless fn refuses or changed ID, Kind, Requester or
// CreatedAt; its ExpiresAt may come forward, not go back.
func UpdateIntent(got Intent, openErr error, now time.Time, fn func(*Intent) error) IntentOutcome {
	if openErr != nil {
		return IntentOutcome{Verdict: fmt.Errorf("%w: %w", ErrNotFound, openErr)}
	}
	if !now.Before(got.ExpiresAt) {
		// Left for Consume or the sweep to delete, as Get does.
		return IntentOutcome{Intent: got, Verdict: ErrIntentExpired}
	}
	// fn gets its own copy, map included, so a refusal after a partial
	// edit still returns the intent as stored.
	next := got
	next.Params = maps.Clone(got.Params)
	if err := fn(&next); err != nil {
		return IntentOutcome{Intent: got, Verdict: err, Refused: true}
	}
	if next.ID != got.ID || next.Kind != got.Kind || next.Requester != got.Requester || !next.CreatedAt.Equal(got.CreatedAt) {
		return IntentOutcome{Verdict: errors.New("fn changed the intent's ID, Kind, Requester or CreatedAt")}
	}
	if next.ExpiresAt.After(got.ExpiresAt) {
		next.ExpiresAt = got.ExpiresAt
	}
	return IntentOutcome{Intent: next, Write: true}
}

// Result is what Consume or Update (op) returns for o, given err, the
// error of the transaction that carried it out.
func (o IntentOutcome) Result(op string, err error) (Intent, error) {
	switch {
	case o.Refused:
		return o.Intent, o.Verdict
	case err != nil:
		return Intent{}, fmt.Errorf("storage: %s intent: %w", op, err)
	case o.Verdict != nil:
		return o.Intent, fmt.Errorf("storage: %s intent: %w", op, o.Verdict)
	}
	return o.Intent, nil
}

// NewWatch checks w and sets what WatchStore.Start sets, but for the ID,
// the store's to make: State starting when empty, RequestedAt and
// LastChange now when zero. It needs a valid Owner and a StackUID, and
// refuses a w already Done.
func NewWatch(w Watch, now time.Time) (Watch, error) {
	if !w.Owner.Valid() {
		return Watch{}, fmt.Errorf("storage: start watch: owner: %w", invalidIdentity(w.Owner))
	}
	if w.StackUID == "" {
		return Watch{}, errors.New("storage: start watch: empty stack uid")
	}
	if w.State == "" {
		w.State = WatchStarting
	}
	if w.Done() {
		return Watch{}, fmt.Errorf("storage: start watch on %s: state %q is already final", w.StackUID, w.State)
	}
	if w.RequestedAt.IsZero() {
		w.RequestedAt = now
	}
	if w.LastChange.IsZero() {
		w.LastChange = now
	}
	w.ID = ""
	return w, nil
}

// NewLock checks l and stamps it at now, as LockStore.Acquire stores it on
// a free stack.
func NewLock(l Lock, now time.Time) (Lock, error) {
	if _, err := lockKey(l.Team, l.StackUID); err != nil {
		return Lock{}, err
	}
	if !l.Owner.Valid() {
		return Lock{}, fmt.Errorf("storage: lock on %s: owner: %w", l.StackUID, invalidIdentity(l.Owner))
	}
	l.Since = now
	// A new lock has no history: nobody reminded, nobody waiting.
	l.RemindedAt, l.Waiters = time.Time{}, nil
	return l, nil
}

// Relock is what LockStore.Acquire makes of the lock stored, cur, when l
// asks for it: the owner's own takes l's Reason (and StackName and
// Environment when l has them) and keeps its Since; someone else's
// stays as it is, and ok is false.
func Relock(cur, l Lock) (next Lock, ok bool) {
	if cur.Owner != l.Owner {
		return cur, false
	}
	next = cur
	next.Reason = l.Reason
	if l.StackName != "" {
		next.StackName = l.StackName
	}
	if l.Environment != "" {
		next.Environment = l.Environment
	}
	if !l.Expires.IsZero() {
		next.Expires = l.Expires
	}
	return next, true
}

// NewSubscription checks sub and resets what SubscriptionStore.Subscribe
// resets: not paused, no webhook seen (the old secret's no longer count),
// and Events copied so a caller reusing its slice cannot change what was
// saved.
func NewSubscription(sub Subscription) (Subscription, error) {
	if _, err := subscriptionPrefix(sub.Team, sub.Channel); err != nil {
		return Subscription{}, err
	}
	if !sub.Subscriber.Valid() {
		return Subscription{}, fmt.Errorf("storage: subscribe %s in %s: subscriber: %w", sub.Channel, sub.Team, invalidIdentity(sub.Subscriber))
	}
	sub.Events = slices.Clone(sub.Events)
	sub.Paused, sub.PausedReason, sub.PausedAt = false, "", time.Time{}
	sub.WebhookSeenAt = time.Time{}
	return sub, nil
}

// Resubscribe is what the subscription stored, cur, becomes when sub (of
// the same team, channel and stack) is subscribed: it keeps cur's ID and
// CreatedAt, and cur's StackName and Environment when sub has none.
func Resubscribe(cur, sub Subscription) Subscription {
	sub.ID, sub.CreatedAt = cur.ID, cur.CreatedAt
	if sub.StackName == "" {
		sub.StackName = cur.StackName
	}
	if sub.Environment == "" {
		sub.Environment = cur.Environment
	}
	return sub
}

// CheckMarkDone returns the error OutboxStore.MarkDone gives for item id's
// target and dedup key it refuses: an empty target, or a key without a
// positive ttl.
func CheckMarkDone(id uint64, target, key string, ttl time.Duration) error {
	if target == "" {
		return fmt.Errorf("storage: mark outbox item %d done: empty target", id)
	}
	if key != "" && ttl <= 0 {
		return fmt.Errorf("storage: mark outbox item %d done: ttl %s is not positive", id, ttl)
	}
	return nil
}
