package notify

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

// stackInfo is what notify keeps of a stack.
type stackInfo struct {
	UID, Name, Environment string
}

// visibleEntry caches the stacks one subscriber can see in Cloud 66. An
// "all" subscription reaches exactly those, and Cloud 66 enforces its own
// permissions, so a channel never learns of a stack its subscriber could
// not open.
type visibleEntry struct {
	fetch sync.Mutex // one fetch at a time per subscriber

	// Guarded by Service.mu.
	stacks  map[string]stackInfo
	fetched time.Time // last successful fetch; zero: never
	tried   time.Time // last attempt
}

// entry returns id's cache entry, creating it.
func (s *Service) entry(id storage.Identity) *visibleEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.visible[id]
	if e == nil {
		e = &visibleEntry{}
		s.visible[id] = e
	}
	return e
}

// cachedVisible returns a copy of id's cached stacks without fetching.
func (s *Service) cachedVisible(id storage.Identity) map[string]stackInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.visible[id]; e != nil {
		return maps.Clone(e.stacks)
	}
	return nil
}

// visibleStacks returns id's stacks, fetching them when the cache is older
// than Config.VisibleRefresh. A failed fetch is tried again after
// missRefresh rather than a whole VisibleRefresh, so one Cloud 66 hiccup
// does not leave an "all" subscription blind for ten minutes.
func (s *Service) visibleStacks(ctx context.Context, id storage.Identity) map[string]stackInfo {
	e := s.entry(id)
	s.mu.Lock()
	stale := s.now().Sub(e.fetched) >= s.cfg.VisibleRefresh
	s.mu.Unlock()
	if stale {
		s.refreshVisible(ctx, id, missRefresh)
	}
	return s.cachedVisible(id)
}

// canSee reports whether id can see stackUID. A stack missing from the
// cache may be new, so the cache is fetched again once (at most every
// missRefresh, which stops a stream of events for a foreign stack from
// costing a request each) before answering no.
func (s *Service) canSee(ctx context.Context, id storage.Identity, stackUID string) bool {
	if _, ok := s.visibleStacks(ctx, id)[stackUID]; ok {
		return true
	}
	s.refreshVisible(ctx, id, missRefresh)
	_, ok := s.cachedVisible(id)[stackUID]
	return ok
}

// refreshVisible fetches id's stacks unless an attempt was made within
// minAge, and reports whether it fetched them. A failure keeps the old list:
// a Cloud 66 hiccup should not stop an "all" channel's notifications.
func (s *Service) refreshVisible(ctx context.Context, id storage.Identity, minAge time.Duration) bool {
	e := s.entry(id)
	e.fetch.Lock()
	defer e.fetch.Unlock()
	// Checked under the fetch lock, so callers that queued behind one
	// fetch do not each repeat it.
	s.mu.Lock()
	recent := !e.tried.IsZero() && s.now().Sub(e.tried) < minAge
	if !recent {
		e.tried = s.now()
	}
	s.mu.Unlock()
	if recent || s.isBad(id) {
		return false
	}

	stacks, err := s.listStacks(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "cannot list a subscriber's stacks", "subscriber", id.String(), "error", err.Error())
		}
		return false
	}
	m := make(map[string]stackInfo, len(stacks))
	for _, st := range stacks {
		m[st.UID] = stackInfo{UID: st.UID, Name: st.Name, Environment: st.Environment}
	}
	s.mu.Lock()
	e.stacks, e.fetched = m, s.now()
	s.mu.Unlock()
	return true
}

// listStacks calls ListStacks with id's client, noting refusals.
func (s *Service) listStacks(ctx context.Context, id storage.Identity) ([]cloud66.Stack, error) {
	if s.isThrottled(id) {
		return nil, errors.New("notify: Cloud 66 is throttling this person")
	}
	c, err := s.cfg.Cloud66For(ctx, id)
	if err != nil {
		s.noteClientError(id, err)
		return nil, err
	}
	stacks, err := c.ListStacks(ctx)
	if err != nil {
		s.noteClientError(id, err)
		return nil, err
	}
	return stacks, nil
}

// noteClientError remembers what a Cloud 66 failure says about the person:
// a refused token (401, or no link at all) is not tried again until
// Config.VisibleRefresh has passed (they may link again), and throttling
// is waited out for every request made with their token.
func (s *Service) noteClientError(id storage.Identity, err error) {
	var er *cloud66.ErrorResponse
	switch {
	case errors.Is(err, accounts.ErrNotLinked), errors.Is(err, cloud66.ErrUnauthorized):
		s.mu.Lock()
		s.bad[id] = s.now().Add(s.cfg.VisibleRefresh)
		// Someone the bot cannot act for can open no stack through it,
		// so their "all" subscriptions reach nothing until they link again.
		if e := s.visible[id]; e != nil {
			e.stacks = nil
		}
		s.mu.Unlock()
	case errors.Is(err, cloud66.ErrThrottled):
		until := time.Now().Add(time.Hour)
		if errors.As(err, &er) && !er.RetryAt.IsZero() {
			until = er.RetryAt
		}
		s.mu.Lock()
		s.throttled[id] = until
		s.mu.Unlock()
	}
}

// isBad reports whether id's client was refused recently.
func (s *Service) isBad(id storage.Identity) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.bad[id]
	if ok && !s.now().Before(until) {
		delete(s.bad, id)
		return false
	}
	return ok
}

// isThrottled reports whether Cloud 66 throttles id right now.
func (s *Service) isThrottled(id storage.Identity) bool {
	return s.throttleWait(id) > 0
}

// throttleWait is how long id must still wait for Cloud 66's throttle, in
// real time (Cloud 66's window is real time).
func (s *Service) throttleWait(id storage.Identity) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.throttled[id]
	if !ok {
		return 0
	}
	wait := time.Until(until)
	if wait <= 0 {
		delete(s.throttled, id)
		return 0
	}
	return wait
}
