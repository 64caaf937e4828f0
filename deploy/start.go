package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// paramRequestID keeps the Slack request id in a deploy intent, so the
// deploy started by Confirm carries the user_reference of the command that
// asked for it. Params ignores the key.
const paramRequestID = "request_id"

// paramVerb keeps the verb of a parked change in its intent; none means
// deploy.
const paramVerb = "verb"

// Deploy redeploys stack as o's person: Change with VerbDeploy.
func (s *Service) Deploy(ctx context.Context, o Origin, stack cloud66.Stack, p Params) (Result, error) {
	return s.Change(ctx, o, stack, Change{Verb: VerbDeploy, Params: p})
}

// Change makes change c on stack as o's person. The policy decides first,
// for c's verb: a rule (or the default) that does not let them refuses it
// (*PolicyError), and so does a freeze (*FrozenError, with an override for
// an admin); neither sends anything. Options Cloud 66 would refuse for the
// stack are refused first (*OptionError). Then someone else's lock refuses
// it (*LockedError), and so does a change the bot is already following on
// the stack (*BusyError). A rule wanting approvals posts an approval
// request in the channel and returns it (Result.Approval); one wanting
// confirmation (a protected environment, confirm: true, and every
// rollback) returns a Confirmation backed by a stored intent; either way
// nothing is sent to Cloud 66 yet. Anything else starts at once. Every
// outcome is audited.
func (s *Service) Change(ctx context.Context, o Origin, stack cloud66.Stack, c Change) (Result, error) {
	e := auditEntry(o, string(c.Verb), stack.UID, stack.Name, stack.Environment)
	e.Args = c.Map()
	refuse := func(err error) (Result, error) {
		s.auditRefusal(ctx, e, err)
		return Result{}, err
	}
	if err := c.validate(stack); err != nil {
		return refuse(err)
	}
	if c.Repo == "" {
		c.Repo = repoAddress(stack.Git)
	}
	if c.Branch == "" && stack.Git != "" {
		c.Branch = stack.GitBranch
	}
	d, subj, err := s.decide(ctx, o.Identity, o.Channel, stack, c.Verb)
	if err != nil {
		return refuse(err)
	}
	if d.Rule != "" {
		e.Args[paramRule] = d.Rule
	}
	if err := s.checkPolicy(ctx, o, stack, c, d, subj, "", true); err != nil {
		return refuse(err)
	}
	return s.proceed(ctx, o, stack, c, d, "", e)
}

// proceed is the part of a change after the policy allowed it: lock, busy,
// then approvals, confirmation or the start, as d says (a rollback always
// asks for confirmation: it is the step people take in a hurry).
// overridden is the freeze an admin overrode on the way, kept in any
// intent parked here so the checks re-run when it starts ignore it. e is
// the audit entry of the request.
func (s *Service) proceed(ctx context.Context, o Origin, stack cloud66.Stack, c Change, d policy.Decision, overridden string, e storage.AuditEntry) (Result, error) {
	refuse := func(err error) (Result, error) {
		s.auditRefusal(ctx, e, err)
		return Result{}, err
	}
	if err := s.checkLock(ctx, o.Identity, stack.UID); err != nil {
		if le, ok := errors.AsType[*LockedError](err); ok {
			s.offerWait(ctx, o, stack, c, overridden, le)
		}
		return refuse(err)
	}
	if err := s.checkBusy(ctx, stack.UID); err != nil {
		return refuse(err)
	}
	switch {
	case d.Approvals > 0:
		// Approvals come before confirmation: the requester has said what
		// they want by asking, and others vouching for it is the stronger
		// check.
		ar, err := s.requestApproval(ctx, o, stack, c, d, overridden)
		if err != nil {
			return refuse(err)
		}
		e.Result = fmt.Sprintf("pending approval: %d needed", d.Approvals)
		s.audit(ctx, e)
		return Result{Approval: ar}, nil
	case d.Confirm || c.Verb == VerbRollback:
		cf, err := s.requestConfirmation(ctx, o, stack, c, overridden)
		if err != nil {
			return refuse(err)
		}
		e.Result = "pending confirmation"
		s.audit(ctx, e)
		return Result{Confirm: cf}, nil
	}
	w, err := s.start(ctx, o, stack, c)
	if err != nil {
		return Result{}, err // start audits its own outcome
	}
	return Result{Watch: &w}, nil
}

// requestConfirmation parks a change as an intent and returns the
// Confirmation to show; nothing is sent to Cloud 66.
func (s *Service) requestConfirmation(ctx context.Context, o Origin, stack cloud66.Stack, c Change, overridden string) (*Confirmation, error) {
	cf := &Confirmation{Kind: kindDeploy, Verb: c.Verb, Stack: stack, Params: c.Params, Change: c, Live: c.live, Target: c.target}
	if c.Verb == VerbDeploy {
		live, err := s.readLive(ctx, o, stack)
		if err != nil {
			return nil, err
		}
		if live != nil {
			cf.Live = live
		}
	}
	if cf.Live != nil {
		cf.LiveHash, cf.LiveRef = cf.Live.GitHash, cf.Live.GitRef
		if c.Verb == VerbDeploy {
			c.LiveHash = cf.LiveHash
			cf.Change.LiveHash = cf.LiveHash
		}
	}

	parked := parkedIntent(o, stack, c, overridden)
	parked.Kind = kindDeploy
	in, err := s.cfg.Intents.Create(ctx, parked)
	if err != nil {
		return nil, fmt.Errorf("deploy: store confirmation: %w", err)
	}
	cf.IntentID, cf.ExpiresAt = in.ID, in.ExpiresAt
	return cf, nil
}

// readLive reads what is live on the stack, so a deploy's confirmation or
// approval request shows it next to what will ship and the person judges
// a change, not a stack name. It is a courtesy: a transient failure only
// leaves it out (nil, nil); an answer saying the person cannot read the
// stack refuses.
func (s *Service) readLive(ctx context.Context, o Origin, stack cloud66.Stack) (*cloud66.Deployment, error) {
	c66, err := s.cfg.Cloud66For(ctx, o.Identity)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	live, err := liveDeployment(ctx, c66, stack.UID)
	switch {
	case errors.Is(err, cloud66.ErrUnauthorized), errors.Is(err, cloud66.ErrNotFound), errors.Is(err, cloud66.ErrForbidden):
		return nil, fmt.Errorf("deploy: read deployments of %s: %w", stack.UID, err)
	case err != nil:
		s.logger(o).WarnContext(ctx, "live deployment unknown", "stack_uid", stack.UID, "error", err.Error())
		return nil, nil
	}
	return live, nil
}

// parkedIntent is the intent that parks change c on stack, asked for by o,
// for intentChange to read back: the change's parameters, its verb, the
// request id and the freeze an admin overrode on the way ("" for none).
// The caller sets Kind and adds what else its kind needs.
func parkedIntent(o Origin, stack cloud66.Stack, c Change, overridden string) storage.Intent {
	params := c.Map()
	params[paramVerb] = string(c.Verb)
	if o.RequestID != "" {
		params[paramRequestID] = o.RequestID
	}
	if overridden != "" {
		params[paramOverride] = overridden
	}
	return storage.Intent{
		Requester: o.Identity, Channel: o.Channel, ResponseURL: o.ResponseURL,
		StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment, Params: params,
	}
}

// intentChange is the change an intent parked (confirmations, approval
// requests and freeze overrides all carry one).
func intentChange(in storage.Intent) Change {
	v := Verb(in.Params[paramVerb])
	if v == "" {
		v = VerbDeploy
	}
	return changeFromMap(v, in.Params)
}

// Confirm runs a parked change for its requester: anyone else gets
// ErrNotYours and leaves the intent usable; a spent or unknown intent is
// ErrIntentGone, an expired one storage.ErrIntentExpired. The intent is
// spent in one transaction before anything is sent, so a double click or
// a duplicate delivery never deploys twice. Policy (a freeze may have
// begun), lock and busy are checked again, since minutes may have passed.
// Audited.
func (s *Service) Confirm(ctx context.Context, intentID string, by storage.Identity) (*storage.Watch, error) {
	in, err := s.consume(ctx, intentID, kindDeploy, by)
	o := intentOrigin(in, by)
	c := intentChange(in)
	e := auditEntry(o, string(c.Verb)+".confirm", in.StackUID, in.StackName, in.Environment)
	e.Args = c.Map()
	if err != nil {
		s.auditRefusal(ctx, e, err)
		return nil, err
	}
	stack := cloud66.Stack{UID: in.StackUID, Name: in.StackName, Environment: in.Environment}
	if err := s.recheck(ctx, o, stack, c, in.Params[paramOverride], true); err != nil {
		s.auditRefusal(ctx, e, err)
		return nil, withVerb(c.Verb, err)
	}
	w, err := s.start(ctx, o, stack, c)
	if err != nil {
		return nil, withVerb(c.Verb, err)
	}
	return &w, nil
}

// recheck repeats, at the moment a parked deploy starts, every check that
// can have changed since it was parked: the policy (a freeze that began
// meanwhile; overridden names the one an admin overrode), someone else's
// lock, a deployment already running. offerOverride is as for checkPolicy.
func (s *Service) recheck(ctx context.Context, o Origin, stack cloud66.Stack, c Change, overridden string, offerOverride bool) error {
	d, subj, err := s.decide(ctx, o.Identity, o.Channel, stack, c.Verb)
	if err != nil {
		return err
	}
	if err := s.checkPolicy(ctx, o, stack, c, d, subj, overridden, offerOverride); err != nil {
		return err
	}
	if err := s.checkLock(ctx, o.Identity, stack.UID); err != nil {
		return err
	}
	return s.checkBusy(ctx, stack.UID)
}

// abortable are the intent kinds behind a confirmation, whose Cancel button
// is Abort. Approval requests (rejected with Reject) and freeze overrides
// (offered to one admin, who may simply not press it) are other people's
// business, and an Abort carrying their id must leave them alone.
var abortable = []string{kindDeploy, kindCancel, kindUnlock}

// Abort drops a confirmation's intent (deploy, cancel or unlock): the
// Cancel button. Only its requester may (ErrNotYours otherwise); an intent
// of another kind is left as it is and answered ErrIntentGone, as if it
// did not exist. Audited.
func (s *Service) Abort(ctx context.Context, intentID string, by storage.Identity) (storage.Intent, error) {
	in, err := s.spend(ctx, intentID, "confirmation", func(in storage.Intent) error {
		if !slices.Contains(abortable, in.Kind) {
			return ErrIntentGone
		}
		if in.Requester != by {
			return ErrNotYours
		}
		return nil
	})
	if errors.Is(err, ErrIntentGone) {
		// Nothing of an intent of another kind goes into the answer or the
		// log: the button did not name a confirmation.
		in = storage.Intent{}
	}
	o := intentOrigin(in, by)
	action := in.Kind
	if in.Kind == kindDeploy {
		action = string(intentChange(in).Verb)
	}
	e := auditEntry(o, action+".abort", in.StackUID, in.StackName, in.Environment)
	if in.Kind == "" {
		e.Action = "abort"
	}
	e.Args = intentChange(in).Map()
	e.Result = "aborted"
	if err != nil {
		s.auditRefusal(ctx, e, err)
		return in, err
	}
	s.audit(ctx, e)
	return in, nil
}

// intentOrigin is the Slack request an intent came from, acted on by by.
// The request id of the original command is kept, so the deploy's
// user_reference names it; an intent without one uses its own id, which is
// just as unique.
func intentOrigin(in storage.Intent, by storage.Identity) Origin {
	id := in.Params[paramRequestID]
	if id == "" {
		id = in.ID
	}
	who := in.Requester
	if who == (storage.Identity{}) {
		who = by
	}
	return Origin{Identity: who, Channel: in.Channel, ResponseURL: in.ResponseURL, RequestID: id}
}

// checkLock refuses when someone other than id holds the stack's lock; the
// owner of a lock may deploy through it.
func (s *Service) checkLock(ctx context.Context, id storage.Identity, stackUID string) error {
	l, err := s.cfg.Locks.Get(ctx, id.Team, stackUID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("deploy: read lock: %w", err)
	case l.Owner == id:
		return nil
	}
	return &LockedError{Lock: l}
}

// checkBusy refuses when the bot already follows a deployment of the stack.
// It is only a fast path for a clear message: WatchStore.Start's claim is what
// guarantees one deployment per stack.
func (s *Service) checkBusy(ctx context.Context, stackUID string) error {
	w, err := s.cfg.Watches.ActiveForStack(ctx, stackUID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("deploy: read active deployment: %w", err)
	}
	return newBusyError(w)
}

// liveDeployment returns what runs on the stack now: the is_live deployment
// on the first page, else the newest finished one, else nil.
func liveDeployment(ctx context.Context, c66 Cloud66, stackUID string) (*cloud66.Deployment, error) {
	deps, _, err := c66.ListDeploymentsPage(ctx, stackUID, 1)
	if err != nil {
		return nil, err
	}
	for i := range deps {
		if deps[i].IsLive {
			return &deps[i], nil
		}
	}
	for i := range deps {
		if !deps[i].IsDeploying && !deps[i].FinishedAt.IsZero() {
			return &deps[i], nil
		}
	}
	return nil, nil
}

// start claims the stack, posts the card and asks Cloud 66 to make the
// change.
//
// The audit entry (the verb, "requested", with the user_reference a
// redeploy carries) is written in the transaction that stores the watch,
// before anything is sent: a change whose entry cannot be written is
// refused (an error wrapping storage.ErrNotAudited), and a process killed
// after Cloud 66 accepted leaves both, so the resumed watch is followed and
// audited to the end. The outcome is a second entry, "<verb>.finished",
// written with the save that ends the watch (see updateWatch), or with its
// deletion when Cloud 66 refuses the change.
func (s *Service) start(ctx context.Context, o Origin, stack cloud66.Stack, c Change) (storage.Watch, error) {
	log := s.logger(o)
	e := auditEntry(o, string(c.Verb), stack.UID, stack.Name, stack.Environment)
	e.Args = c.Map()
	fail := func(err error) (storage.Watch, error) {
		s.auditRefusal(ctx, e, err)
		return storage.Watch{}, err
	}

	c66, err := s.cfg.Cloud66For(ctx, o.Identity)
	if err != nil {
		return fail(fmt.Errorf("deploy: %w", err))
	}
	if o.RequestID == "" {
		// Without a request id two deploys by the same person in the same
		// channel would share a user_reference, and the watcher could pick
		// the older one's action.
		o.RequestID = "r" + randomID()
	}
	now := s.now()
	ref := UserReference(o)
	requested := e
	requested.Args = c.Map()
	requested.Args[argUserReference] = ref
	requested.Result, requested.At = "requested", now
	// Another replica's claim pass must leave the watch alone from its
	// store until its lease is taken here: the start lease says a start is
	// in between (see startInFlight).
	inFlight := s.takeStartLease(ctx, log, ref)
	// Run's resume must either miss this watch or see it marked as
	// starting; otherwise it could follow it while the POST is in flight.
	s.resumeMu.RLock()
	w, err := s.cfg.Watches.Start(ctx, storage.Watch{
		Owner:         o.Identity,
		Channel:       o.Channel,
		ResponseURL:   o.ResponseURL,
		StackUID:      stack.UID,
		StackName:     stack.Name,
		Environment:   stack.Environment,
		Verb:          watchVerb(c.Verb),
		Params:        c.Map(),
		UserReference: ref,
		State:         storage.WatchStarting,
		RequestedAt:   now,
		LastChange:    now,
	}, requested)
	if err == nil {
		// Until it is handed to a watcher, Run must not start one on this
		// watch (it would judge a "starting" watch whose POST is in flight).
		s.mu.Lock()
		s.starting[w.ID] = true
		s.mu.Unlock()
	}
	s.resumeMu.RUnlock()
	if err != nil && inFlight != nil {
		s.release(inFlight)
	}
	if errors.Is(err, storage.ErrStackBusy) {
		return fail(newBusyError(w))
	}
	if err != nil {
		return fail(fmt.Errorf("deploy: claim %s: %w", stack.UID, err))
	}
	// The lease is taken before anything is sent, so no other replica
	// follows this watch while its POST is in flight.
	lease := s.leaseStarted(ctx, log, w)
	if inFlight != nil {
		s.release(inFlight)
	}
	handed := false
	defer func() {
		if !handed {
			s.mu.Lock()
			delete(s.starting, w.ID)
			s.mu.Unlock()
			if lease != nil {
				s.release(lease)
			}
		}
	}()

	if ts := s.postCard(ctx, log, w); ts != "" {
		w = s.saveStarting(ctx, log, w, func(x *storage.Watch) { x.MessageTS = ts })
	}

	res, err := c.trigger(ctx, c66, stack.UID, w.UserReference)
	// Whatever happened in Cloud 66 has happened: the bookkeeping below must
	// not be cut short by the request's context ending.
	ctx = context.WithoutCancel(ctx)
	reason := ""
	switch {
	case err != nil && ambiguous(err):
		// No answer: the request may have reached Cloud 66 (it is never
		// retried for that reason). The watcher finds the action (by
		// user_reference, or by name and time), or ends the watch if Cloud
		// 66 shows nothing.
		log.WarnContext(ctx, "change unanswered", "verb", c.Verb, "watch", w.ID, "stack_uid", stack.UID, "error", err.Error())
		w = s.saveStarting(ctx, log, w, func(x *storage.Watch) {
			x.Message = "Cloud 66 did not answer in time; checking whether it started."
		})
		s.render(ctx, w)
		s.handOver(ctx, w, lease)
		handed = true
		s.lockAfterRollback(ctx, o, stack, c)
		return w, nil
	case err != nil:
		reason = refusalText(err)
		err = fmt.Errorf("deploy: Cloud 66 refused to %s %s: %w", c.Verb, stackRef(stack.Name, stack.Environment, stack.UID), err)
	case res.Refused != "":
		reason = res.Refused
		err = fmt.Errorf("deploy: Cloud 66 did not accept the %s of %s: %s", c.Verb, stackRef(stack.Name, stack.Environment, stack.UID), res.Refused)
	}
	if err != nil {
		w.State, w.Message, w.FinishedAt = storage.WatchFailed, reason, s.now()
		s.render(ctx, w)
		// Nothing to follow and nothing worth keeping: free the stack.
		if derr := s.cfg.Watches.Delete(ctx, w.ID, finishedEntry(w, "refused by Cloud 66: "+clipText(reason), s.now())); derr != nil {
			log.ErrorContext(ctx, "free refused change", "watch", w.ID, "error", derr.Error())
		}
		return storage.Watch{}, err
	}

	now = s.now()
	w = s.saveStarting(ctx, log, w, func(x *storage.Watch) {
		x.ActionID, x.Queued, x.LastChange, x.Message = res.ActionID, res.Queued, now, ""
		if res.Queued {
			// Queued behind a running deployment: it shows as queued until
			// its action really starts, even when Cloud 66 named the action
			// at once (its docs show queued with an async_action_id).
			x.State = storage.WatchQueued
		} else {
			x.State, x.StartedAt = storage.WatchDeploying, now
		}
	})
	s.render(ctx, w)
	s.handOver(ctx, w, lease)
	handed = true
	s.lockAfterRollback(ctx, o, stack, c)
	log.InfoContext(ctx, "change started", "verb", c.Verb, "watch", w.ID, "stack_uid", stack.UID, "action_id", res.ActionID, "queued", res.Queued)
	return w, nil
}

// watchVerb is the verb as a watch stores it: none for a deploy, so
// watches read the same as before there were other verbs.
func watchVerb(v Verb) string {
	if v == VerbDeploy {
		return ""
	}
	return string(v)
}

// argUserReference is the audit arg naming a deploy's user_reference, which
// is what Cloud 66's own records show for it.
const argUserReference = "user_reference"

// maxAuditText bounds text from Cloud 66 (a finished_message, a refusal)
// in an audit entry.
const maxAuditText = 300

// finishedEntry is the audit entry of a deployment's end, with result, at
// now: the watch's owner and stack, the Cloud 66 action and what shipped.
func finishedEntry(w storage.Watch, result string, now time.Time) storage.AuditEntry {
	e := storage.AuditEntry{
		At: now, Team: w.Owner.Team, User: w.Owner.User, Channel: w.Channel,
		Action: string(verbOf(w)) + ".finished", StackUID: w.StackUID, StackName: stackRef(w.StackName, w.Environment, w.StackUID),
		Result: result, Cloud66ActionID: w.ActionID,
		Args: map[string]string{argUserReference: w.UserReference},
	}
	if w.DeploymentID != 0 {
		e.Args["deployment_id"] = strconv.FormatInt(w.DeploymentID, 10)
	}
	if w.GitHash != "" {
		e.Args["git_hash"] = w.GitHash
	}
	return e
}

// finishedResult is how a finished watch's state reads in the audit log:
// "succeeded", "failed: …", "cancelled by U1", "unknown: …".
func finishedResult(w storage.Watch) string {
	res := string(w.State)
	switch {
	case w.State == storage.WatchCancelled && w.CancelRequestedBy != "":
		res += " by " + w.CancelRequestedBy
	case w.State == storage.WatchSucceeded, w.Message == "":
	default:
		res += ": " + clipText(w.Message)
	}
	return res
}

// clipText shortens s to maxAuditText runes.
func clipText(s string) string {
	if utf8.RuneCountInString(s) <= maxAuditText {
		return s
	}
	return string([]rune(s)[:maxAuditText-1]) + "…"
}

// saveStarting applies f to a watch being started and saves it. A failed
// save is logged and f applied to the copy in hand: Cloud 66 has the
// deploy either way, and the watcher following the copy catches up.
//
// These saves are made whether or not the start still holds the watch's
// lease: they are the start's own facts (the card's ts, Cloud 66's answer),
// which only this start knows, and a replica that took the watch over reads
// them with its next save. A watch that replica already saw to its end is
// left as it is.
func (s *Service) saveStarting(ctx context.Context, log *slog.Logger, w storage.Watch, f func(*storage.Watch)) storage.Watch {
	saved, err := s.updateWatch(ctx, w.ID, func(x *storage.Watch) {
		if !x.Done() {
			f(x)
		}
	})
	if err == nil {
		return saved
	}
	log.ErrorContext(ctx, "save started deployment", "watch", w.ID, "error", err.Error())
	f(&w)
	return w
}

// ambiguous reports whether a redeploy error left its outcome unknown: the
// request got no HTTP answer (timeout, cancelled, connection lost). Any
// answer from Cloud 66, even a 5xx, is a refusal.
func ambiguous(err error) bool {
	var er *cloud66.ErrorResponse
	var ae *cloud66.ArgError
	return !errors.As(err, &er) && !errors.As(err, &ae)
}

// refusalText is Cloud 66's reason for a refusal, as plain text.
func refusalText(err error) string {
	var er *cloud66.ErrorResponse
	if errors.As(err, &er) {
		return er.Message() + " (HTTP " + strconv.Itoa(er.StatusCode) + ")"
	}
	return err.Error()
}

// postCard posts the first card and returns its ts. When the bot may not
// post in the channel the card goes through the response_url instead, and
// "" is returned: later changes then go through the response_url too
// (final state only) or a DM. A card that cannot be posted because the bot
// is not in the channel says so to the channel, with the fix, in itself:
// the requester's own reply (package commands) says where the result
// comes, so there is one answer each, not a separate hint beside them.
func (s *Service) postCard(ctx context.Context, log *slog.Logger, w storage.Watch) string {
	card := Card(w, s.now(), s.cfg.Cloud66URL)
	ts, postErr := s.cfg.Slack.Post(ctx, w.Channel, card)
	if postErr == nil {
		return ts
	}
	log.WarnContext(ctx, "post deployment card failed", "watch", w.ID, "channel", w.Channel, "error", postErr.Error())
	if w.ResponseURL == "" {
		if err := s.cfg.Slack.DM(ctx, w.Owner, card); err != nil {
			log.WarnContext(ctx, "DM deployment card failed", "watch", w.ID, "error", err.Error())
		}
		return ""
	}
	if errors.Is(postErr, chat.ErrCannotPost) {
		card.Blocks = append(card.Blocks, bk.Context(cannotPostHint))
	}
	if err := s.cfg.Slack.Respond(ctx, w.ResponseURL, card); err != nil {
		log.WarnContext(ctx, "respond with deployment card failed", "watch", w.ID, "error", err.Error())
	}
	return ""
}

// cannotPostHint ends a first card delivered through the response_url
// because the bot is not in the channel: it tells the channel why the card
// will not move and what fixes that, and never promises updates.
const cannotPostHint = ":information_source: I'm not in this channel, so this message won't change as it goes; the result follows when it finishes. " +
	"Invite me with `/invite @c66bot` and I'll keep one message here up to date next time."

// randomID is 128 random bits in hex, for request ids the caller left out.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
