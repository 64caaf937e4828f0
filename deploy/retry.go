package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/c66bot/c66bot/storage"
)

// Running a change again: the Retry button on a failed deploy's card, and
// the words an expired confirmation tells its requester to type again.

// Retry offers. A failed deploy's card carries Retry beside Roll back. Like
// a rollback offer, the button carries an offer's intent id, never
// parameters; a press re-runs the same deploy (ref, services, profile,
// strategy) as the presser, through the normal path: policy, options,
// lock, busy, confirmation or approvals (RetryFromOffer). An offer is read,
// not spent, and lasts storage.MaxIntentTTL.
const (
	kindRetryOffer = "retry_offer"
	// ActionRetry is the action id of the Retry button; commands handles it.
	ActionRetry = "retry_offer"
	// paramRetryOffer keeps a failed card's Retry offer in its watch, for
	// Card.
	paramRetryOffer = "retry_offer"
)

// offerRetry stores an offer to run w's deploy again and returns the id
// its button carries. Only the deploy's own options are kept: what was
// live, the repository and the branch are read again at the press.
func (s *Service) offerRetry(ctx context.Context, w storage.Watch) (string, error) {
	in, err := s.cfg.Intents.Create(ctx, storage.Intent{
		Kind: kindRetryOffer, Requester: w.Owner, Channel: w.Channel,
		StackUID: w.StackUID, StackName: w.StackName, Environment: w.Environment,
		Params:    ParamsFromMap(w.Params).Map(),
		ExpiresAt: s.now().Add(storage.MaxIntentTTL),
	})
	if err != nil {
		return "", fmt.Errorf("deploy: store retry offer: %w", err)
	}
	return in.ID, nil
}

// failedOffers stores the offers a failed deploy's card shows (Retry and
// Roll back) and returns them as watch params; an offer that cannot be
// stored is logged and left off the card.
func (s *Service) failedOffers(ctx context.Context, wt *watcher) map[string]string {
	offers := map[string]string{}
	if id, err := s.offerRetry(ctx, wt.w); err == nil {
		offers[paramRetryOffer] = id
	} else {
		wt.log.WarnContext(ctx, "store the retry offer", "error", err.Error())
	}
	// Anyone in the channel may press either; each presser acts as
	// themselves, under the policy.
	if id, err := s.offerRollback(ctx, wt.w, ""); err == nil {
		offers[paramRollbackOffer] = id
	} else {
		wt.log.WarnContext(ctx, "store the rollback offer", "error", err.Error())
	}
	return offers
}

// RetryFromOffer is a press on a Retry offer by o's person: Deploy of the
// offer's stack with the offer's options, as them. The stack is read again
// with their token (they must see it, and its type decides which options
// apply). ErrIntentGone for an id that is no Retry offer.
func (s *Service) RetryFromOffer(ctx context.Context, intentID string, o Origin) (Result, error) {
	in, stack, err := s.openOffer(ctx, intentID, kindRetryOffer, o)
	if err != nil {
		return Result{}, err
	}
	return s.Deploy(ctx, o, stack, ParamsFromMap(in.Params))
}

// ExpiredError: a confirmation pressed after it expired. It is
// storage.ErrIntentExpired for errors.Is, and names the command that asked
// for it, so the reply can say what to run again.
type ExpiredError struct {
	// Words are that command without the slash command, e.g.
	// "deploy shop:production@v2.1"; "" when the intent says too little.
	Words string
}

func (e *ExpiredError) Error() string { return "deploy: " + storage.ErrIntentExpired.Error() }
func (e *ExpiredError) Unwrap() error { return storage.ErrIntentExpired }

// expiredError is the ExpiredError of intent in.
func expiredError(in storage.Intent) *ExpiredError {
	if in.StackUID == "" && in.StackName == "" {
		return &ExpiredError{}
	}
	stack := stackRef(in.StackName, in.Environment, in.StackUID)
	switch in.Kind {
	case kindCancel, kindUnlock:
		return &ExpiredError{Words: in.Kind + " " + stack}
	case kindDeploy, kindOverride:
	default:
		return &ExpiredError{}
	}
	c := intentChange(in)
	words := []string{string(c.Verb), stack}
	switch c.Verb {
	case VerbDeploy:
		if c.Params.Ref != "" {
			words[1] += "@" + c.Params.Ref
		}
		if len(c.Params.Services) > 0 {
			words = append(words, "services="+strings.Join(c.Params.Services, ","))
		}
		if c.Params.Profile != "" {
			words = append(words, "profile="+c.Params.Profile)
		}
		if c.Params.Strategy != "" {
			words = append(words, "strategy="+c.Params.Strategy)
		}
	case VerbRollback:
		if c.Params.Ref != "" {
			words = append(words, "to="+c.Params.Ref)
		}
		if !c.Lock {
			words = append(words, "lock=no")
		}
	case VerbRestart:
		if c.Service != "" {
			words = append(words, "service="+c.Service)
		}
	case VerbMaintenance:
		words = append(words, onOff(c.On))
	case VerbReboot:
		switch {
		case c.ServerName != "":
			words = append(words, c.ServerName)
		case c.Group != "":
			words = append(words, "group="+c.Group)
			if c.RebootStrategy != "" {
				words = append(words, "strategy="+c.RebootStrategy)
			}
		}
	}
	return &ExpiredError{Words: strings.Join(words, " ")}
}
