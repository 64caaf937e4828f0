package deploy

import (
	"context"
	"fmt"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// Keys of the intents this file and approval.go add to the deploy
// parameters. Params ignores them.
const (
	// paramRule is the policy rule that decided, so approvals are checked
	// against the rule the request was made under.
	paramRule = "rule"
	// paramOverride is the freeze an admin overrode: the checks re-run when
	// the deploy finally starts ignore that freeze, and only that one.
	paramOverride = "freeze_override"
)

// PolicyError is a refusal by the policy: the person may not deploy that
// stack from that channel, or may not approve or override. Nothing was
// sent anywhere.
type PolicyError struct {
	Rule   string // the rule that refused; "" when the policy's default did
	Reason string // plain words, no mrkdwn
}

// Error reads "refused by rule shop-production: <reason>", or "refused:
// <reason>" when no rule decided.
func (e *PolicyError) Error() string {
	if e.Rule == "" {
		return "refused: " + e.Reason
	}
	return "refused by rule " + e.Rule + ": " + e.Reason
}

// FrozenError is a refusal because a freeze covers the stack now.
type FrozenError struct {
	Freeze policy.FreezeHit
	// Verb is the change the freeze stopped.
	Verb Verb
	// OverrideIntentID is set only when the requester is an admin: the
	// intent an Override button carries (see Service.Override).
	OverrideIntentID string
}

// Error reads "deploys are frozen (weekend) until 2025-03-10 08:00 UTC".
func (e *FrozenError) Error() string {
	msg := "deploys are frozen (" + e.Freeze.Name + ")"
	if !e.Freeze.Until.IsZero() {
		msg += " until " + e.Freeze.Until.UTC().Format("2006-01-02 15:04 UTC")
	}
	return msg
}

// groups returns the Slack user groups user is in (Config.Groups).
func (s *Service) groups(ctx context.Context, user string) ([]string, error) {
	if s.cfg.Groups == nil {
		return nil, nil
	}
	gs, err := s.cfg.Groups(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("deploy: read the Slack user groups of %s: %w", user, err)
	}
	return gs, nil
}

// decide is the policy's decision for id making a change of verb v on
// stack from channel,
// with the subject it was made for. Groups only ever grant (deployers,
// admins), so when they cannot be read a decision that allows without them
// stands, and the lookup error is returned only when the answer could have
// been different with them.
func (s *Service) decide(ctx context.Context, id storage.Identity, channel string, stack cloud66.Stack, v Verb) (policy.Decision, policy.Subject, error) {
	gs, gerr := s.groups(ctx, id.User)
	subj := policy.Subject{User: id.User, Groups: gs, Channel: channel}
	d := s.policy.Decide(subj, policy.Target{StackName: stack.Name, Environment: stack.Environment, Action: string(v)}, s.now())
	if gerr != nil {
		if !d.Allowed {
			return d, subj, gerr
		}
		s.log.WarnContext(ctx, "user groups unknown; deciding without them", "user", id.User, "error", gerr.Error())
	}
	return d, subj, nil
}

// Decide returns the policy's decision for o's person deploying stack from
// o's channel now, their user groups resolved, for callers that want to
// explain it. When the groups cannot be read and the decision without them
// refuses, the decision is returned with the lookup error.
func (s *Service) Decide(ctx context.Context, o Origin, stack cloud66.Stack, v Verb) (policy.Decision, error) {
	d, _, err := s.decide(ctx, o.Identity, o.Channel, stack, v)
	return d, err
}

// MayUse reports whether the policy could ever let id use verb, on some
// stack from some channel, so help can hide the commands of verbs it never
// will. When their user groups cannot be read it says yes: hiding is only
// a courtesy, and every change makes the real check.
func (s *Service) MayUse(ctx context.Context, id storage.Identity, v Verb) bool {
	gs, err := s.groups(ctx, id.User)
	if err != nil {
		s.log.WarnContext(ctx, "user groups unknown; showing every command", "user", id.User, "error", err.Error())
		return true
	}
	return s.policy.MayUse(policy.Subject{User: id.User, Groups: gs}, string(v))
}

// checkPolicy refuses what decision d does not allow (*PolicyError), then a
// freeze other than overridden (*FrozenError). An admin refused by a freeze
// gets an override intent when offerOverride is set, which is when the
// person refused is the one who will see the refusal: an approver's click
// that hits a freeze cannot lend the requester a button.
func (s *Service) checkPolicy(ctx context.Context, o Origin, stack cloud66.Stack, c Change, d policy.Decision, subj policy.Subject, overridden string, offerOverride bool) error {
	if !d.Allowed {
		return &PolicyError{Rule: d.Rule, Reason: d.Reason}
	}
	if d.Freeze == nil || d.Freeze.Name == overridden {
		return nil
	}
	fe := &FrozenError{Freeze: *d.Freeze, Verb: c.Verb}
	if !offerOverride || !s.policy.IsAdmin(subj.User, subj.Groups) {
		return fe
	}
	parked := parkedIntent(o, stack, c, d.Freeze.Name)
	parked.Kind = kindOverride
	if d.Rule != "" {
		parked.Params[paramRule] = d.Rule
	}
	in, err := s.cfg.Intents.Create(ctx, parked)
	if err != nil {
		// The refusal stands either way; the admin can ask again for the
		// button.
		s.logger(o).WarnContext(ctx, "store freeze override", "stack_uid", stack.UID, "error", err.Error())
		return fe
	}
	fe.OverrideIntentID = in.ID
	return fe
}

// Override is an admin's answer to a freeze: the Override button of a
// *FrozenError. Only the person refused may press it (ErrNotYours for
// anyone else, the intent kept for them), and only while they are an admin
// (*PolicyError otherwise). The override is audited as "freeze.override";
// the deploy then goes on as Deploy does, without that freeze's check: the
// rules are asked again (time has passed), then lock, busy, approvals,
// confirmation, start. Another freeze that began meanwhile still refuses.
func (s *Service) Override(ctx context.Context, intentID string, by storage.Identity) (Result, error) {
	// Resolved before the intent is spent, since a refusal must keep it,
	// and outside the store's transaction, since it may ask Slack.
	gs, gerr := s.groups(ctx, by.User)
	admin := s.policy.IsAdmin(by.User, gs)
	in, err := s.spend(ctx, intentID, kindOverride, func(in storage.Intent) error {
		switch {
		case in.Kind != kindOverride:
			return ErrIntentGone
		case in.Requester != by:
			return ErrNotYours
		case !admin && gerr != nil:
			return gerr // their groups might have made them an admin
		case !admin:
			return &PolicyError{Rule: in.Params[paramRule], Reason: "only an admin may override the freeze " + in.Params[paramOverride]}
		}
		return nil
	})
	o := intentOrigin(in, by)
	c := intentChange(in)
	e := auditEntry(o, "freeze.override", in.StackUID, in.StackName, in.Environment)
	e.Args = c.Map()
	if name := in.Params[paramOverride]; name != "" {
		e.Args["freeze"] = name
	}
	if err != nil {
		e.Result = errResult(err)
		s.audit(ctx, e)
		return Result{}, err
	}
	// An override nobody could find in the audit log must not happen: if
	// its entry cannot be written, the deploy it would allow is refused.
	e.Result = "overridden"
	e.At = s.now()
	if _, err := s.cfg.Audit.Append(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "refused a freeze override: the audit log cannot be written", "stack_uid", e.StackUID, "error", err.Error())
		return Result{}, fmt.Errorf("deploy: audit the freeze override: %w", err)
	}

	stack := cloud66.Stack{UID: in.StackUID, Name: in.StackName, Environment: in.Environment}
	de := auditEntry(o, string(c.Verb), stack.UID, stack.Name, stack.Environment)
	de.Args = c.Map()
	d, subj, err := s.decide(ctx, o.Identity, o.Channel, stack, c.Verb)
	if err == nil {
		err = s.checkPolicy(ctx, o, stack, c, d, subj, in.Params[paramOverride], true)
	}
	if err != nil {
		de.Result = errResult(err)
		s.audit(ctx, de)
		return Result{}, err
	}
	return s.proceed(ctx, o, stack, c, d, in.Params[paramOverride], de)
}
