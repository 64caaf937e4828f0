package commands

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/storage"
)

const (
	// stackCacheTTL is how long a name → stack answer is reused without
	// asking Cloud 66: long enough that a run of commands about one stack
	// costs one lookup, short enough that a stack created, renamed or
	// deleted meanwhile is soon seen as it is.
	stackCacheTTL = 5 * time.Minute
	// stackCacheSize caps the entries across everyone.
	stackCacheSize = 10_000
)

// stackKey is one person's way of naming a stack: their identity and the
// name and environment they typed, in lower case (matching ignores case).
// "shop" and "shop:production" are different keys even when they resolve
// to the same stack.
type stackKey struct {
	id        storage.Identity
	name, env string
}

func newStackKey(id storage.Identity, ref StackRef) stackKey {
	return stackKey{id: id, name: strings.ToLower(ref.Name), env: strings.ToLower(ref.Environment)}
}

type stackEntry struct {
	key     stackKey
	stack   cloud66.Stack
	expires time.Time
}

// stackCache remembers, per person, which stack a name resolved to, so a
// warm `servers shop:production` goes straight to the servers. An entry
// lives stackCacheTTL from when Cloud 66 answered (a hit does not extend
// it) and is dropped early when a call about its stack answers 404. Only a
// name's single answer is cached: ambiguity and "not found" are asked
// afresh every time.
//
// It is bounded (stackCacheSize entries; the oldest go first), safe for
// concurrent use, and its zero value is ready: the Router holds one.
// Every entry lives the same TTL, so insertion order is expiry order and
// expired entries are swept from the old end on every insert.
type stackCache struct {
	mu      sync.Mutex
	entries map[stackKey]*list.Element // of *stackEntry
	order   list.List                  // newest at the front
}

// get returns the stack cached for k if it is still fresh at now.
func (c *stackCache) get(k stackKey, now time.Time) (cloud66.Stack, bool) {
	if c == nil {
		return cloud66.Stack{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return cloud66.Stack{}, false
	}
	e := el.Value.(*stackEntry)
	if !now.Before(e.expires) {
		c.removeLocked(el)
		return cloud66.Stack{}, false
	}
	return e.stack, true
}

// put caches st as the answer to k from now on.
func (c *stackCache) put(k stackKey, st cloud66.Stack, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[stackKey]*list.Element)
	}
	if el, ok := c.entries[k]; ok {
		c.removeLocked(el)
	}
	c.entries[k] = c.order.PushFront(&stackEntry{key: k, stack: st, expires: now.Add(stackCacheTTL)})
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		if c.order.Len() <= stackCacheSize && now.Before(el.Value.(*stackEntry).expires) {
			break
		}
		c.removeLocked(el)
	}
}

// forget drops every name id has cached for the stack with this uid: it
// was deleted, renamed or hidden from them. An empty uid drops all of id's
// entries (they logged out, or their link died). It walks the whole cache,
// which is fine for something that happens only after a 404 or a logout.
func (c *stackCache) forget(id storage.Identity, uid string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*stackEntry); e.key.id == id && (uid == "" || e.stack.UID == uid) {
			c.removeLocked(el)
		}
		el = next
	}
}

// len is the number of entries, fresh or not yet swept.
func (c *stackCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *stackCache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*stackEntry).key)
	c.order.Remove(el)
}
