package deploy

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// HomeToucher hears that something a person's App Home shows changed: a
// watch of theirs started, moved or finished, a lock of theirs was taken or
// removed (Touch), an approval request was posted or decided (TouchAll:
// who may approve depends on the policy and user groups, and the bot
// republishes only the Homes people opened, each debounced).
type HomeToucher interface {
	Touch(id storage.Identity)
	TouchAll()
}

// touchHome tells Config.Home, when set, that id's Home changed.
func (s *Service) touchHome(id storage.Identity) {
	if s.cfg.Home != nil && id.Valid() {
		s.cfg.Home.Touch(id)
	}
}

// MessageLink is the link to a card or request the bot posted in channel at
// ts ("" without a ts): the form BusyError's "its message" uses.
func MessageLink(channel, ts string) string { return messageLink(channel, ts) }

// PendingApproval is an open approval request someone may approve.
type PendingApproval struct {
	StackUID, StackName, Environment string
	// Noun is what is asked: "deploy", "rollback", "restart"…
	Noun             string
	Requester        storage.Identity
	Channel          string
	MessageTS        string // "" when it went through a response_url
	Approved, Needed int
	ExpiresAt        time.Time
}

// openApprovals are the approval requests this process posted and that are
// still open, for the App Home. Intents cannot be listed (their id is the
// key that opens them), so they are remembered here as they are posted and
// decided: a request another replica posted, or one posted before a
// restart, is not shown (its buttons in the channel still work).
type openApprovals struct {
	mu sync.Mutex
	m  map[string]storage.Intent // intent id → the request as last seen
}

// approvalChanged records that approval intent in is open (posted, or its
// count moved) or closed, and tells the Homes.
func (s *Service) approvalChanged(in storage.Intent, open bool) {
	s.approvals.mu.Lock()
	if open {
		if s.approvals.m == nil {
			s.approvals.m = map[string]storage.Intent{}
		}
		s.approvals.m[in.ID] = in
	} else {
		delete(s.approvals.m, in.ID)
	}
	s.approvals.mu.Unlock()
	if s.cfg.Home != nil {
		s.cfg.Home.TouchAll()
	}
}

// PendingApprovals are the open approval requests by may approve (the
// policy's approvers or an admin, not the requester, not approved by them
// already), oldest first.
func (s *Service) PendingApprovals(ctx context.Context, by storage.Identity) ([]PendingApproval, error) {
	now := s.now()
	s.approvals.mu.Lock()
	var open []storage.Intent
	for id, in := range s.approvals.m {
		if !now.Before(in.ExpiresAt) {
			delete(s.approvals.m, id)
			continue
		}
		open = append(open, in)
	}
	s.approvals.mu.Unlock()
	if len(open) == 0 {
		return nil, nil
	}
	slices.SortFunc(open, func(a, b storage.Intent) int { return a.CreatedAt.Compare(b.CreatedAt) })
	gs, gerr := s.groups(ctx, by.User)
	admin := s.policy.IsAdmin(by.User, gs)
	linkErr := s.approverLink(ctx, by, admin)
	var out []PendingApproval
	for _, in := range open {
		if s.mayApprove(in, by, gs, gerr, admin, linkErr) != nil || slices.Contains(approvedOf(in), by.User) {
			continue
		}
		out = append(out, PendingApproval{
			StackUID: in.StackUID, StackName: in.StackName, Environment: in.Environment,
			Noun: requestNoun(in), Requester: in.Requester, Channel: in.Channel, MessageTS: in.Params[paramApprovalTS],
			Approved: len(approvedOf(in)), Needed: neededOf(in), ExpiresAt: in.ExpiresAt,
		})
	}
	return out, nil
}
