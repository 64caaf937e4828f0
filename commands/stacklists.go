package commands

import (
	"container/list"
	"sync"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

const (
	// stackListTTL is how long `stacks` may answer from a person's last
	// listing without asking Cloud 66. Ten seconds covers the repeats of a
	// burst (a person re-running the command, scrolling back, a retry)
	// while keeping a stack's status and health close to live: a deploy
	// started anywhere shows within ten seconds.
	stackListTTL = 10 * time.Second
	// stackListHintTTL is how long the page count of a person's last
	// listing is kept to fetch their pages at once next time. A wrong
	// count costs only requests, never a wrong answer.
	stackListHintTTL = 30 * time.Minute
	// stackListSize caps the lists held (about 13 KB each for 36 stacks,
	// so at most ~3.3 MB, and only if that many people list within the
	// TTL); stackListHints caps the page counts (a few dozen bytes each).
	stackListSize  = 256
	stackListHints = 10_000
)

// stackLists remembers, per person (storage.Identity), their last `stacks`
// listing: the page count Cloud 66 gave it, for stackListHintTTL, and,
// when ttl > 0, the stacks themselves (sorted as shown) and the outcomes
// looked up for their failed stacks, for ttl from when Cloud 66 answered
// (a hit does not extend it).
//
// What a reused listing may show stale, for at most ttl: each stack's
// status and health (and whether its failed deployment was cancelled), its
// name, environment and other fields; a stack created, deleted, renamed,
// or newly shared with or hidden from the person in that time. drop ends
// that early for one person (they started a change), forget for all they
// hold (they logged out).
//
// One person's entry never answers another: the key is the whole
// identity (team and user). It is bounded (stackListSize lists,
// stackListHints page counts; the oldest go first), safe for concurrent
// use, and every entry of a list has the same lifetime, so insertion order
// is expiry order and expired entries are swept from the old end on every
// put.
type stackLists struct {
	ttl time.Duration // 0: page counts only

	// outcomes is shared by everyone (see outcomeMemo).
	outcomes outcomeMemo

	mu      sync.Mutex
	entries map[storage.Identity]*stackListEntry
	lists   list.List // of *stackListEntry holding stacks, newest at the front
	hints   list.List // of *stackListEntry, newest at the front
}

type stackListEntry struct {
	id    storage.Identity
	at    time.Time
	pages int
	// stacks is nil once they are stale or dropped; it is shared with
	// readers and never changed.
	stacks    []cloud66.Stack
	cancelled map[string]bool // uid → whether its last deployment was cancelled
	listEl    *list.Element   // nil when stacks is nil
	hintEl    *list.Element
}

// get returns the person's listing if it is fresh at now (ok), else the
// page count of their last listing (0 when unknown). stacks and cancelled
// are shared: callers must not change them.
func (c *stackLists) get(id storage.Identity, now time.Time) (stacks []cloud66.Stack, cancelled map[string]bool, pages int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		return nil, nil, 0, false
	}
	if !now.Before(e.at.Add(stackListHintTTL)) {
		c.removeLocked(e)
		return nil, nil, 0, false
	}
	if e.stacks == nil || !now.Before(e.at.Add(c.ttl)) {
		c.releaseLocked(e)
		return nil, nil, e.pages, false
	}
	return e.stacks, e.cancelled, e.pages, true
}

// put records the person's listing as of now: stacks (sorted, and never
// changed after), the outcomes looked up for its failed stacks, and the
// pages it took.
func (c *stackLists) put(id storage.Identity, stacks []cloud66.Stack, cancelled map[string]bool, pages int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[storage.Identity]*stackListEntry)
	}
	if old := c.entries[id]; old != nil {
		c.removeLocked(old)
	}
	e := &stackListEntry{id: id, at: now, pages: pages}
	e.hintEl = c.hints.PushFront(e)
	if c.ttl > 0 && stacks != nil {
		e.stacks, e.cancelled = stacks, cancelled
		e.listEl = c.lists.PushFront(e)
	}
	c.entries[id] = e
	for el := c.lists.Back(); el != nil; el = c.lists.Back() {
		old := el.Value.(*stackListEntry)
		if c.lists.Len() <= stackListSize && now.Before(old.at.Add(c.ttl)) {
			break
		}
		c.releaseLocked(old)
	}
	for el := c.hints.Back(); el != nil; el = c.hints.Back() {
		old := el.Value.(*stackListEntry)
		if c.hints.Len() <= stackListHints && now.Before(old.at.Add(stackListHintTTL)) {
			break
		}
		c.removeLocked(old)
	}
}

// addCancelled records outcomes looked up later for the fresh listing
// stacks belongs to (a filtered view showed failed stacks the first
// lookups did not reach). A newer listing is left alone.
func (c *stackLists) addCancelled(id storage.Identity, stacks []cloud66.Stack, more map[string]bool) {
	if len(more) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil || e.stacks == nil || len(e.stacks) == 0 || len(stacks) == 0 || &e.stacks[0] != &stacks[0] {
		return
	}
	// Readers hold the old map: copy, never write into it.
	next := make(map[string]bool, len(e.cancelled)+len(more))
	for k, v := range e.cancelled {
		next[k] = v
	}
	for k, v := range more {
		next[k] = v
	}
	e.cancelled = next
}

// drop makes the person's next `stacks` ask Cloud 66 again (they started
// a change), keeping the page count.
func (c *stackLists) drop(id storage.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		c.releaseLocked(e)
	}
}

// forget drops all the person's entry (they logged out, or their link
// died).
func (c *stackLists) forget(id storage.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		c.removeLocked(e)
	}
}

// len is the number of people with an entry, and of stack lists held.
func (c *stackLists) len() (entries, lists int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.lists.Len()
}

// releaseLocked lets go of e's stacks, keeping its page count.
func (c *stackLists) releaseLocked(e *stackListEntry) {
	if e.listEl != nil {
		c.lists.Remove(e.listEl)
		e.listEl = nil
	}
	e.stacks, e.cancelled = nil, nil
}

func (c *stackLists) removeLocked(e *stackListEntry) {
	c.releaseLocked(e)
	c.hints.Remove(e.hintEl)
	delete(c.entries, e.id)
}
