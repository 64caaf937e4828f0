package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// Button action ids of an approval request; a button's value is the
// intent id.
const (
	ActionApprove = "deploy_approve"
	ActionReject  = "deploy_reject"
)

// approvalBlockID is the block id of the Approve and Reject buttons.
const approvalBlockID = "deploy_approval"

// approvalTTL is how long an approval request stays open. Longer than a
// confirmation: it waits for other people, who may be reading something
// else, not for the requester who just asked.
const approvalTTL = 30 * time.Minute

// Keys of an approval intent, beside the deploy parameters, paramRule and
// paramOverride.
const (
	paramApprovals  = "approvals_needed"
	paramApprovers  = "approvers"   // comma separated ids; "" = anyone linked but the requester
	paramApprovedBy = "approved_by" // comma separated user ids, in order
	paramApprovalTS = "approval_ts" // the request's message, when the bot could post it
)

// ApprovalRequest is a deploy waiting for approvals: the request posted in
// the channel and what it needs.
type ApprovalRequest struct {
	IntentID string
	// Verb is the change asked for.
	Verb   Verb
	Needed int
	// Approvers are the user and user-group ids that may approve (besides
	// admins); nil means anyone who linked Cloud 66, except the requester.
	Approvers []string
	Channel   string
	// MessageTS is the request's message; "" when the bot may not post in
	// the channel and the request went through the response_url (it then
	// cannot be edited as approvals come in).
	MessageTS string
	ExpiresAt time.Time
}

// ApprovalState is where an approval request stands after a click.
type ApprovalState struct {
	Approved []string // user ids, in the order they approved
	Needed   int
	// Watch is set when this approval was the last one needed and started
	// the deploy.
	Watch *storage.Watch
}

// Outcomes of an approval click that are not errors to the caller; they
// abort the intent's update so that nothing is written.
var (
	errUnchanged = errors.New("deploy: approval already counted")
	errCompletes = errors.New("deploy: approval completes the request")
)

// requestApproval parks a deploy as an approval intent and posts the
// request, with Approve and Reject buttons, in the channel.
func (s *Service) requestApproval(ctx context.Context, o Origin, stack cloud66.Stack, c Change, d policy.Decision, overridden string) (*ApprovalRequest, error) {
	if c.Verb == VerbDeploy {
		// Approvers judge a change: what is live beside what will ship.
		live, err := s.readLive(ctx, o, stack)
		if err != nil {
			return nil, err
		}
		if live != nil {
			c.LiveHash = live.GitHash
		}
	}
	parked := parkedIntent(o, stack, c, overridden)
	parked.Kind, parked.ExpiresAt = kindApproval, s.now().Add(approvalTTL)
	if d.Rule != "" {
		parked.Params[paramRule] = d.Rule
	}
	parked.Params[paramApprovals] = strconv.Itoa(d.Approvals)
	if len(d.Approvers) > 0 {
		parked.Params[paramApprovers] = strings.Join(d.Approvers, ",")
	}
	in, err := s.cfg.Intents.Create(ctx, parked)
	if err != nil {
		return nil, fmt.Errorf("deploy: store approval request: %w", err)
	}
	ar := &ApprovalRequest{IntentID: in.ID, Verb: c.Verb, Needed: d.Approvals, Approvers: d.Approvers, Channel: o.Channel, ExpiresAt: in.ExpiresAt}

	// Held until the ts is stored, so a click that comes at once still
	// finds the message to edit.
	s.approvalMu.Lock()
	defer s.approvalMu.Unlock()
	msg := approvalMessage(in, "", true)
	ts, postErr := s.cfg.Slack.Post(ctx, o.Channel, msg)
	if postErr != nil {
		s.logger(o).WarnContext(ctx, "post approval request failed", "channel", o.Channel, "error", postErr.Error())
		// The approvers must see it: through the response_url it still
		// reaches the channel, though it cannot be edited later.
		if o.ResponseURL == "" || s.cfg.Slack.Respond(ctx, o.ResponseURL, msg) != nil {
			// Nobody can see the buttons; a request left to expire unseen
			// would only mislead.
			_, _ = s.cfg.Intents.Consume(context.WithoutCancel(ctx), in.ID, nil)
			return nil, fmt.Errorf("deploy: post the approval request: %w", postErr)
		}
		s.approvalChanged(in, true)
		return ar, nil
	}
	ar.MessageTS = ts
	in.Params[paramApprovalTS] = ts
	s.approvalChanged(in, true)
	if _, err := s.cfg.Intents.Update(ctx, in.ID, func(x *storage.Intent) error {
		if x.Params == nil {
			x.Params = map[string]string{}
		}
		x.Params[paramApprovalTS] = ts
		return nil
	}); err != nil {
		// The request works without it; only its message stays as posted.
		s.logger(o).WarnContext(ctx, "store approval message ts", "error", err.Error())
	}
	return ar, nil
}

// Approve counts by's approval of an approval request. The requester's own
// click is ErrOwnApproval; someone the rule does not let approve gets a
// *PolicyError (the request stays open either way); the same person twice
// counts once. The approval that completes the request spends it in one
// transaction, so concurrent clicks start one deploy, and starts it as the
// requester, with their own Cloud 66 token, after checking again what may
// have changed (a freeze, a lock, a running deployment). The channel
// message is edited in place; audited as "approve".
func (s *Service) Approve(ctx context.Context, intentID string, by storage.Identity) (ApprovalState, error) {
	gs, gerr := s.groups(ctx, by.User)
	admin := s.policy.IsAdmin(by.User, gs)
	linkErr := s.approverLink(ctx, by, admin)
	may := func(in storage.Intent) error { return s.mayApprove(in, by, gs, gerr, admin, linkErr) }

	s.approvalMu.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			s.approvalMu.Unlock()
		}
	}
	defer unlock()

	var refusal error
	in, err := s.cfg.Intents.Update(ctx, intentID, func(in *storage.Intent) error {
		refusal = may(*in)
		if refusal == nil {
			approved := approvedOf(*in)
			switch {
			case slices.Contains(approved, by.User):
				refusal = errUnchanged
			case len(approved)+1 >= neededOf(*in):
				// Completing spends the intent instead (below), so the
				// approval that starts the deploy is the one that removes
				// the request, in the same transaction.
				refusal = errCompletes
			default:
				in.Params[paramApprovedBy] = strings.Join(append(approved, by.User), ",")
			}
		}
		return refusal
	})
	e := auditEntry(Origin{Identity: by, Channel: in.Channel}, "approve", in.StackUID, in.StackName, in.Environment)
	e.Args = approvalArgs(in)
	st := ApprovalState{Approved: approvedOf(in), Needed: neededOf(in)}
	fail := func(err error) (ApprovalState, error) {
		e.Result = errResult(err)
		s.audit(ctx, e)
		return st, err
	}
	switch {
	case err == nil:
		s.updateApproval(ctx, in, progressStatus(st.Approved, st.Needed), true)
		unlock()
		e.Result = fmt.Sprintf("approved: %d of %d", len(st.Approved), st.Needed)
		s.audit(ctx, e)
		return st, nil
	case err == errUnchanged:
		return st, nil
	case err == errCompletes:
	case refusal != nil && err == refusal:
		return fail(err)
	case errors.Is(err, storage.ErrIntentExpired):
		if in.Kind == kindApproval {
			s.updateApproval(ctx, in, ":hourglass: Expired before enough people approved; nothing was sent to Cloud 66.", false)
		}
		return fail(fmt.Errorf("deploy: %w", err))
	case errors.Is(err, storage.ErrNotFound):
		return fail(ErrIntentGone)
	default:
		return fail(fmt.Errorf("deploy: record approval: %w", err))
	}

	in, err = s.spend(ctx, intentID, kindApproval, func(in storage.Intent) error {
		if err := may(in); err != nil {
			return err
		}
		if slices.Contains(approvedOf(in), by.User) {
			return errUnchanged
		}
		return nil
	})
	unlock()
	switch {
	case err == errUnchanged:
		return st, nil
	case err != nil:
		// ErrIntentGone here: another completing click, or a Reject, got
		// there first.
		return fail(err)
	}
	in.Params[paramApprovedBy] = strings.Join(append(approvedOf(in), by.User), ",")
	st.Approved = approvedOf(in)
	e.Result = fmt.Sprintf("approved: %d of %d", len(st.Approved), st.Needed)
	s.audit(ctx, e)

	w, err := s.startApproved(ctx, in, by)
	if err != nil {
		reason := bk.Esc(err.Error())
		s.updateApproval(ctx, in, ":warning: approved by "+mentions(st.Approved)+" — not started: "+reason, false)
		s.tell(ctx, in.Channel, in.Requester, fmt.Sprintf(":warning: Your %s of %s was approved by %s but did not start: %s",
			requestNoun(in), stackLabel(in.StackName, in.Environment), mentions(st.Approved), reason))
		return st, err
	}
	s.updateApproval(ctx, in, ":white_check_mark: approved by "+mentions(st.Approved)+" — "+wordingOf(intentChange(in)).runningText, false)
	st.Watch = &w
	return st, nil
}

// startApproved starts the deploy of a fully approved request as its
// requester, after checking again what may have changed while it waited.
func (s *Service) startApproved(ctx context.Context, in storage.Intent, by storage.Identity) (storage.Watch, error) {
	o := intentOrigin(in, by)
	if s.now().Sub(in.CreatedAt) >= storage.IntentTTL {
		// Slack honours a response_url for 30 minutes from the command, and
		// the result may use it until responseURLWindow after the start,
		// which assumes a start within IntentTTL of the command. A request
		// that waited longer for approvals gets its result in the card or
		// a DM instead.
		o.ResponseURL = ""
	}
	stack := cloud66.Stack{UID: in.StackUID, Name: in.StackName, Environment: in.Environment}
	c := intentChange(in)
	// The requester is not the one clicking, so a freeze offers no
	// override here: the button would reach the approver, who cannot use it.
	if err := s.recheck(ctx, o, stack, c, in.Params[paramOverride], false); err != nil {
		e := auditEntry(o, string(c.Verb), stack.UID, stack.Name, stack.Environment)
		e.Args = c.Map()
		e.Result = errResult(err)
		s.audit(ctx, e)
		return storage.Watch{}, err
	}
	return s.start(ctx, o, stack, c)
}

// Reject closes an approval request without deploying: the requester
// withdrawing it, or anyone who could approve it (*PolicyError for anyone
// else; the request then stays open). The channel message says who, the
// requester is told privately, and it is audited as "reject".
func (s *Service) Reject(ctx context.Context, intentID string, by storage.Identity) error {
	gs, gerr := s.groups(ctx, by.User)
	admin := s.policy.IsAdmin(by.User, gs)
	linkErr := s.approverLink(ctx, by, admin)

	s.approvalMu.Lock()
	in, err := s.spend(ctx, intentID, kindApproval, func(in storage.Intent) error {
		if in.Kind == kindApproval && in.Requester == by {
			return nil
		}
		return s.mayApprove(in, by, gs, gerr, admin, linkErr)
	})
	withdrawn := err == nil && in.Requester == by
	switch {
	case withdrawn:
		s.updateApproval(ctx, in, ":leftwards_arrow_with_hook: withdrawn by "+mention(by.User), false)
	case err == nil:
		s.updateApproval(ctx, in, ":no_entry: rejected by "+mention(by.User), false)
	}
	s.approvalMu.Unlock()

	e := auditEntry(Origin{Identity: by, Channel: in.Channel}, "reject", in.StackUID, in.StackName, in.Environment)
	e.Args = approvalArgs(in)
	switch {
	case err != nil:
		e.Result = errResult(err)
	case withdrawn:
		e.Result = "withdrawn"
	default:
		e.Result = "rejected"
	}
	s.audit(ctx, e)
	if err != nil {
		return err
	}
	if !withdrawn {
		s.tell(ctx, in.Channel, in.Requester, fmt.Sprintf(":no_entry: %s rejected your %s of %s; nothing was sent to Cloud 66.",
			mention(by.User), requestNoun(in), stackLabel(in.StackName, in.Environment)))
	}
	return nil
}

// approverLink is whether a would-be approver has linked Cloud 66 (nil when
// they have, or are an admin, who may approve regardless). It only matters
// for rules without deployers, where "anyone" means anyone linked; it is
// read before the intent because the intent's check may not call the store.
func (s *Service) approverLink(ctx context.Context, by storage.Identity, admin bool) error {
	if admin {
		return nil
	}
	_, err := s.cfg.Cloud66For(ctx, by)
	return err
}

// mayApprove says whether by may approve (or reject) approval intent in:
// nil, or why not. It runs inside the store's transaction, so everything it
// needs about by was read before: groups gs (gerr when they could not be),
// admin, and linkErr from approverLink.
func (s *Service) mayApprove(in storage.Intent, by storage.Identity, gs []string, gerr error, admin bool, linkErr error) error {
	switch {
	case in.Kind != kindApproval:
		// A button of another kind carrying this id is a forgery or a bug.
		return ErrIntentGone
	case in.Requester == by:
		return ErrOwnApproval
	}
	rule := in.Params[paramRule]
	if by.Team != in.Requester.Team {
		// A channel shared with another organisation (Slack Connect) shows
		// the buttons to people the policy's ids were never meant for.
		return &PolicyError{Rule: rule, Reason: "approvals must come from the requester's own Slack workspace"}
	}
	if !s.policy.CanApprove(policy.Subject{User: by.User, Groups: gs, Channel: in.Channel}, rule, in.Requester.User) {
		if gerr != nil {
			return gerr // the groups might have let them
		}
		return &PolicyError{Rule: rule, Reason: "only the rule's other deployers or an admin may approve this " + requestNoun(in)}
	}
	if in.Params[paramApprovers] == "" && !admin && linkErr != nil {
		if errors.Is(linkErr, accounts.ErrNotLinked) {
			return &PolicyError{Rule: rule, Reason: "only people who have linked their Cloud 66 account may approve this " + requestNoun(in)}
		}
		return fmt.Errorf("deploy: check the approver's Cloud 66 link: %w", linkErr)
	}
	return nil
}

// updateApproval edits the request's channel message to show status
// (mrkdwn, escaped); open keeps the buttons. Without a message (it went
// through the response_url) there is nothing to edit.
func (s *Service) updateApproval(ctx context.Context, in storage.Intent, status string, open bool) {
	s.approvalChanged(in, open)
	ts := in.Params[paramApprovalTS]
	if ts == "" {
		return
	}
	if err := s.cfg.Slack.Update(ctx, in.Channel, ts, approvalMessage(in, status, open)); err != nil {
		s.log.WarnContext(ctx, "update approval request failed", "stack_uid", in.StackUID, "error", err.Error())
	}
}

// approvalMessage renders an approval request: who asks to deploy what to
// which stack, what it needs from whom, status (the approvals so far, or
// how it ended) and, while open, the Approve and Reject buttons. It is a
// pure function of the intent, so every edit renders the same request.
func approvalMessage(in storage.Intent, status string, open bool) chat.Message {
	c := intentChange(in)
	label := stackLabel(in.StackName, in.Environment)
	head := fmt.Sprintf(":raised_hand: %s asks to %s.", mention(in.Requester.User), c.Phrase(label))
	blocks := []slack.Block{bk.Section(head)}

	if c.Verb.shipsCode() {
		fields := c.Params.Fields()
		if c.Verb == VerbDeploy && c.LiveHash != "" {
			fields = append(fields, "*Live now*\n"+CommitLink(c.Repo, c.LiveHash))
		}
		if link := c.ChangesLink(); link != "" && c.Verb == VerbDeploy {
			fields = append(fields, "*What will ship*\n"+link)
		}
		if len(fields) > 0 {
			blocks = append(blocks, bk.Fields(fields...))
		}
	}

	needed := neededOf(in)
	need := fmt.Sprintf("Needs %s from %s.", approvalCount(needed), approverWords(splitList(in.Params[paramApprovers]), in.Requester.User))
	if rule := in.Params[paramRule]; rule != "" {
		need += " Rule " + bk.Code(rule) + "."
	}
	blocks = append(blocks, bk.Section(need))
	if status != "" {
		blocks = append(blocks, bk.Section(status))
	}
	if open {
		blocks = append(blocks,
			slack.NewActionBlock(approvalBlockID,
				bk.Button(ActionApprove, in.ID, "Approve", slack.StylePrimary),
				bk.Button(ActionReject, in.ID, "Reject", slack.StyleDefault)),
			bk.Context(fmt.Sprintf("%s's own approval does not count. Open until %s.",
				mention(in.Requester.User), bk.Date(in.ExpiresAt, "{time}"))))
	}

	text := fmt.Sprintf("%s asks to %s", mention(in.Requester.User), c.Phrase(label))
	if status != "" {
		text += ": " + status
	} else {
		text += ": needs " + approvalCount(needed)
	}
	return chat.Message{Text: bk.Fallback(text), Blocks: blocks, InChannel: true}
}

// progressStatus is the status line of an open request: "1 of 2
// approvals: <@a>".
func progressStatus(approved []string, needed int) string {
	return fmt.Sprintf(":hourglass_flowing_sand: %d of %d approvals: %s", len(approved), needed, mentions(approved))
}

// approvalCount is "1 approval" or "2 approvals".
func approvalCount(n int) string {
	if n == 1 {
		return "1 approval"
	}
	return strconv.Itoa(n) + " approvals"
}

// approverWords names who may approve: users as mentions, user groups as
// <!subteam^S…> mentions, or anyone linked but the requester when the rule
// names nobody.
func approverWords(ids []string, requester string) string {
	if len(ids) == 0 {
		return "anyone but " + mention(requester) + " who has linked Cloud 66"
	}
	words := make([]string, len(ids))
	for i, id := range ids {
		if strings.HasPrefix(id, "S") {
			words[i] = "<!subteam^" + bk.Esc(id) + ">"
		} else {
			words[i] = mention(id)
		}
	}
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// mentions is users as mentions, comma separated.
func mentions(users []string) string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = mention(u)
	}
	return strings.Join(out, ", ")
}

// approvedOf is who has approved an approval intent so far, in order.
func approvedOf(in storage.Intent) []string { return splitList(in.Params[paramApprovedBy]) }

// neededOf is how many approvals an approval intent needs; at least one, so
// a damaged intent never starts a deploy unapproved.
func neededOf(in storage.Intent) int {
	n, err := strconv.Atoi(in.Params[paramApprovals])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// approvalArgs are the audit args of a click on an approval request.
func approvalArgs(in storage.Intent) map[string]string {
	args := intentChange(in).Map()
	if rule := in.Params[paramRule]; rule != "" {
		args[paramRule] = rule
	}
	if in.Requester.User != "" {
		args["requester"] = in.Requester.User
	}
	return args
}

// splitList splits a comma separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// requestNoun names the change an approval request asks for: "deploy",
// "restart"…
func requestNoun(in storage.Intent) string {
	c := intentChange(in)
	if c.Verb == VerbDeploy {
		return "deploy"
	}
	return wordingOf(c).noun
}
