package commands

import (
	"sync"
	"time"

	"github.com/c66bot/c66bot/cloud66"
)

const (
	// outcomeTTL bounds how long a remembered outcome is trusted even when
	// its key still matches (see outcomeMemo).
	outcomeTTL = 10 * time.Minute
	// outcomeMemoSize caps the outcomes remembered across everyone.
	outcomeMemoSize = 4096
)

// outcomeMemo remembers, for a failed stack as of its last activity,
// whether its newest deployment was cancelled, so a `stacks` listing looks
// each failed stack's deployments up once rather than on every listing by
// everyone (each lookup is a round trip after the pages, and a request of
// the person's hourly allowance).
//
// The key is the stack's uid and its last_activity: any new action on the
// stack, a deployment included, moves last_activity, so an entry answers
// only for the deployment it was looked up for. That is Cloud 66's
// documented meaning of the field, not a promise, so an entry is also
// trusted for at most outcomeTTL. It is shared by everyone: it is only
// asked about stacks in a person's own listing from Cloud 66, and whoever
// sees a stack sees its deployments. Safe for concurrent use; the zero
// value is ready.
type outcomeMemo struct {
	mu sync.Mutex
	m  map[outcomeKey]outcomeEntry
}

type outcomeKey struct {
	uid  string
	last int64 // last_activity, Unix nanoseconds
}

type outcomeEntry struct {
	cancelled bool
	expires   time.Time
}

func keyOf(s cloud66.Stack) (outcomeKey, bool) {
	if s.LastActivity.IsZero() {
		return outcomeKey{}, false // nothing to tell one deployment from the next
	}
	return outcomeKey{uid: s.UID, last: s.LastActivity.UnixNano()}, true
}

// get returns the outcome remembered for s, if any, at now.
func (m *outcomeMemo) get(s cloud66.Stack, now time.Time) (cancelled, ok bool) {
	k, keyed := keyOf(s)
	if m == nil || !keyed {
		return false, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.m[k]
	if !ok || !now.Before(e.expires) {
		return false, false
	}
	return e.cancelled, true
}

// put remembers s's outcome from now.
func (m *outcomeMemo) put(s cloud66.Stack, cancelled bool, now time.Time) {
	k, keyed := keyOf(s)
	if m == nil || !keyed {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[outcomeKey]outcomeEntry{}
	}
	if len(m.m) >= outcomeMemoSize {
		for k, e := range m.m {
			if !now.Before(e.expires) {
				delete(m.m, k)
			}
		}
		if len(m.m) >= outcomeMemoSize {
			clear(m.m) // rare; the next listings look up again
		}
	}
	m.m[k] = outcomeEntry{cancelled: cancelled, expires: now.Add(outcomeTTL)}
}
