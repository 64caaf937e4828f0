package commands

import (
	"container/list"
	"sync"
	"time"

	"github.com/c66bot/c66bot/storage"
)

const (
	// pageHintTTL is how long the page count of a person's last listing
	// is kept to fetch their pages at once next time. A wrong count costs
	// only requests, never a wrong answer (see cloud66.ListStacksPages).
	pageHintTTL = 30 * time.Minute
	// pageHintsSize caps the counts kept (a few dozen bytes each); the
	// oldest go first.
	pageHintsSize = 10_000
)

// pageHints remembers, per person (the whole storage.Identity: team and
// user), how many pages their last `stacks` listing took. Every hint has
// the same lifetime, so insertion order is expiry order: expired and
// surplus hints are swept from the old end on every put. Safe for
// concurrent use; the zero value is ready.
type pageHints struct {
	mu      sync.Mutex
	entries map[storage.Identity]*list.Element // of pageHint
	order   list.List                          // of pageHint, newest at the front
}

type pageHint struct {
	id    storage.Identity
	at    time.Time
	pages int
}

// get is the page count of the person's last listing if it is still
// fresh at now, else 0 (unknown).
func (h *pageHints) get(id storage.Identity, now time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	el := h.entries[id]
	if el == nil {
		return 0
	}
	e := el.Value.(pageHint)
	if !now.Before(e.at.Add(pageHintTTL)) {
		h.removeLocked(el)
		return 0
	}
	return e.pages
}

// put records that the person's listing as of now took pages.
func (h *pageHints) put(id storage.Identity, pages int, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entries == nil {
		h.entries = make(map[storage.Identity]*list.Element)
	}
	if old := h.entries[id]; old != nil {
		h.removeLocked(old)
	}
	h.entries[id] = h.order.PushFront(pageHint{id: id, at: now, pages: pages})
	for el := h.order.Back(); el != nil; el = h.order.Back() {
		if h.order.Len() <= pageHintsSize && now.Before(el.Value.(pageHint).at.Add(pageHintTTL)) {
			break
		}
		h.removeLocked(el)
	}
}

// len is the number of people with a hint.
func (h *pageHints) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.entries)
}

func (h *pageHints) removeLocked(el *list.Element) {
	delete(h.entries, el.Value.(pageHint).id)
	h.order.Remove(el)
}
