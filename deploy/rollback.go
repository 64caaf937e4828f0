package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

// rollbackPages bounds how far back a rollback looks for its target: the
// deployments list is paged newest first, and three pages go well past
// any deployment worth going back to.
const rollbackPages = 3

// RollbackError is a rollback with nothing sensible to go back to; nothing
// was sent. Problem is plain words with inline code marks.
type RollbackError struct {
	Problem string
}

func (e *RollbackError) Error() string { return "deploy: rollback: " + e.Problem }

// Rollback rolls stack back as o's person: to the deployment to names (its
// id, or its git hash or a prefix of at least 4 characters), or by default
// to the newest successful deployment older than what is live. It is a
// Change with VerbRollback: a redeploy of the earlier git hash, or on a
// Docker stack of the earlier deployment's services with their image tags,
// under the same policy, lock and audit as a deploy, and always confirmed
// first, the confirmation showing what is live and what it goes back to.
// With lock set, the stack is locked for the person once the rollback
// starts ("rolled back from <hash>"), so nobody redeploys the bad commit by
// reflex. *RollbackError when there is nothing to go back to.
func (s *Service) Rollback(ctx context.Context, o Origin, stack cloud66.Stack, to string, lock bool) (Result, error) {
	e := auditEntry(o, string(VerbRollback), stack.UID, stack.Name, stack.Environment)
	e.Args = map[string]string{}
	if to != "" {
		e.Args["to"] = to
	}
	refuse := func(err error) (Result, error) {
		s.auditRefusal(ctx, e, err)
		return Result{}, err
	}
	c66, err := s.cfg.Cloud66For(ctx, o.Identity)
	if err != nil {
		return refuse(fmt.Errorf("deploy: %w", err))
	}
	var deps []cloud66.Deployment
	for page := 1; page <= rollbackPages; page++ {
		ds, pg, err := c66.ListDeploymentsPage(ctx, stack.UID, page)
		if err != nil {
			return refuse(fmt.Errorf("deploy: read deployments of %s: %w", stack.UID, err))
		}
		deps = append(deps, ds...)
		if pg.Next == 0 || len(ds) == 0 {
			break
		}
	}
	live, target, err := rollbackTarget(deps, to)
	if err != nil {
		return refuse(err)
	}
	c := Change{Verb: VerbRollback, Lock: lock, live: live, target: target}
	if live != nil {
		c.From = live.GitHash
	}
	if stack.Kind() == cloud66.KindDocker {
		if len(target.Services) == 0 {
			return refuse(&RollbackError{Problem: fmt.Sprintf("Cloud 66 does not say which image tags deployment #%d ran, so I can't roll %s back by them; deploy the tags you want with `services=name:tag`", target.ID, stackRef(stack.Name, stack.Environment, stack.UID))})
		}
		c.Params.Services = target.Services
	} else {
		c.Params.Ref = target.GitHash
	}
	return s.Change(ctx, o, stack, c)
}

// rollbackTarget finds what is live in deps (newest first) and what to go
// back to: the deployment to names, or the newest successful one older
// than the live one with another git hash.
func rollbackTarget(deps []cloud66.Deployment, to string) (live, target *cloud66.Deployment, err error) {
	liveAt := -1
	for i := range deps {
		if deps[i].IsLive {
			liveAt = i
			break
		}
	}
	if liveAt < 0 {
		// No deployment says it is live: the newest successful one is.
		for i := range deps {
			if deps[i].Succeeded() {
				liveAt = i
				break
			}
		}
	}
	if liveAt >= 0 {
		live = &deps[liveAt]
	}
	if to != "" {
		target, err := pickRollback(deps, live, to)
		return live, target, err
	}
	for i := liveAt + 1; i < len(deps); i++ {
		if d := &deps[i]; d.Succeeded() && d.GitHash != "" && (live == nil || d.GitHash != live.GitHash) {
			return live, d, nil
		}
	}
	return live, nil, &RollbackError{Problem: "there is no successful deployment older than what is live to go back to; `deployments` lists them"}
}

// pickRollback is rollbackTarget for an explicit to: a deployment id, or
// a git hash or its prefix.
func pickRollback(deps []cloud66.Deployment, live *cloud66.Deployment, to string) (*cloud66.Deployment, error) {
	to = strings.TrimPrefix(strings.TrimSpace(to), "#")
	var found *cloud66.Deployment
	if id, err := strconv.ParseInt(to, 10, 64); err == nil {
		for i := range deps {
			if deps[i].ID == id {
				found = &deps[i]
				break
			}
		}
	}
	if found == nil && len(to) >= 4 {
		for i := range deps {
			if deps[i].GitHash != "" && strings.HasPrefix(strings.ToLower(deps[i].GitHash), strings.ToLower(to)) {
				found = &deps[i]
				break
			}
		}
	}
	switch {
	case found == nil:
		return nil, &RollbackError{Problem: fmt.Sprintf("no recent deployment has the id or git hash %s; `deployments` lists them", quoteCode(to))}
	case !found.Succeeded():
		return nil, &RollbackError{Problem: fmt.Sprintf("deployment #%d did not succeed; roll back to one that did", found.ID)}
	case live != nil && found.GitHash == live.GitHash:
		return nil, &RollbackError{Problem: fmt.Sprintf("deployment #%d runs the git hash that is live now (%s)", found.ID, quoteCode(shortHash(found.GitHash)))}
	}
	return found, nil
}

// quoteCode marks s as inline code for a plain-words problem; the reply
// escapes it.
func quoteCode(s string) string { return "`" + strings.ReplaceAll(s, "`", "'") + "`" }

// lockAfterRollback locks the stack for the requester of a rollback that
// asked for it, once Cloud 66 has the rollback: nobody redeploys the bad
// commit by reflex. The lock is audited with itself; a failure is logged,
// since the rollback already runs.
func (s *Service) lockAfterRollback(ctx context.Context, o Origin, stack cloud66.Stack, c Change) {
	if c.Verb != VerbRollback || !c.Lock {
		return
	}
	reason := "rolled back"
	if c.From != "" {
		reason += " from " + shortHash(c.From)
	}
	e := auditEntry(o, "lock", stack.UID, stack.Name, stack.Environment)
	e.Args = map[string]string{"reason": reason}
	e.Result, e.At = "locked", s.now()
	held, acquired, err := s.cfg.Locks.Acquire(ctx, storage.Lock{
		Team: o.Identity.Team, StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment,
		Owner: o.Identity, Reason: reason,
	}, e)
	switch {
	case err != nil:
		s.logger(o).WarnContext(ctx, "lock after rollback failed", "stack_uid", stack.UID, "error", err.Error())
	case !acquired && held.Owner != o.Identity:
		s.logger(o).InfoContext(ctx, "stack already locked by someone else after rollback", "stack_uid", stack.UID, "owner", held.Owner.User)
	}
}

// Rollback offers: a "Roll back" button on a failed deploy's card, and a
// "Roll back to this" button on each earlier deployment in the deployments
// list. A button carries an offer's intent id, never parameters; pressing
// it does not roll back, it asks the presser to confirm a rollback, made as
// them under the policy (RollbackFromOffer), so anyone in the channel may
// press a card's offer and nobody can forge a target. An offer is read,
// not spent, and lasts storage.MaxIntentTTL.
const (
	kindRollbackOffer = "rollback_offer"
	// ActionRollback is the action id of an offer's button; commands
	// handles it.
	ActionRollback = "rollback_offer"
	// paramRollbackOffer keeps a failed card's offer in its watch, for Card.
	paramRollbackOffer = "rollback_offer"
	// paramTo is the deployment an offer goes back to; none means the
	// default target.
	paramTo = "to"
)

// OfferRollback stores an offer to roll stack back to deployment to ("":
// the default target) and returns the id its button carries.
func (s *Service) OfferRollback(ctx context.Context, o Origin, stack cloud66.Stack, to string) (string, error) {
	return s.offerRollback(ctx, storage.Watch{Owner: o.Identity, Channel: o.Channel, StackUID: stack.UID, StackName: stack.Name, Environment: stack.Environment}, to)
}

func (s *Service) offerRollback(ctx context.Context, w storage.Watch, to string) (string, error) {
	params := map[string]string{}
	if to != "" {
		params[paramTo] = to
	}
	in, err := s.cfg.Intents.Create(ctx, storage.Intent{
		Kind: kindRollbackOffer, Requester: w.Owner, Channel: w.Channel,
		StackUID: w.StackUID, StackName: w.StackName, Environment: w.Environment, Params: params,
		ExpiresAt: s.now().Add(storage.MaxIntentTTL),
	})
	if err != nil {
		return "", fmt.Errorf("deploy: store rollback offer: %w", err)
	}
	return in.ID, nil
}

// RollbackFromOffer is a press on a rollback offer by o's person: Rollback
// of the offer's stack to its target, as them, locking afterwards. The
// stack is read again with their token (its type decides how to roll
// back, and they must see it). ErrIntentGone for an id that is no offer.
func (s *Service) RollbackFromOffer(ctx context.Context, intentID string, o Origin) (Result, error) {
	in, stack, err := s.openOffer(ctx, intentID, kindRollbackOffer, o)
	if err != nil {
		return Result{}, err
	}
	return s.Rollback(ctx, o, stack, in.Params[paramTo], true)
}

// openOffer reads a card's offer (intent kind) for a press by o's person,
// and its stack again with their token: they must see it, and its type
// decides how the change goes. ErrIntentGone for an id that is no such
// offer.
func (s *Service) openOffer(ctx context.Context, intentID, kind string, o Origin) (storage.Intent, cloud66.Stack, error) {
	in, err := s.cfg.Intents.Get(ctx, intentID)
	switch {
	case errors.Is(err, storage.ErrNotFound), err == nil && in.Kind != kind:
		return storage.Intent{}, cloud66.Stack{}, ErrIntentGone
	case err != nil:
		return storage.Intent{}, cloud66.Stack{}, fmt.Errorf("deploy: read %s: %w", kind, err)
	}
	c66, err := s.cfg.Cloud66For(ctx, o.Identity)
	if err != nil {
		return storage.Intent{}, cloud66.Stack{}, fmt.Errorf("deploy: %w", err)
	}
	stack, err := c66.GetStack(ctx, in.StackUID)
	if err != nil {
		return storage.Intent{}, cloud66.Stack{}, fmt.Errorf("deploy: read stack %s: %w", in.StackUID, err)
	}
	return in, *stack, nil
}

// withParam is m with k set to v, m allocated when nil.
func withParam(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}
