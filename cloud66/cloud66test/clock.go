package cloud66test

import (
	"sync"
	"time"
)

// Clock is the time source of a fake Server: authorization-code expiry,
// timestamps and the progress of simulated deployments are all read from it.
//
// A Clock made by NewClock is frozen: it only moves when Advance or Set is
// called, which lets tests step a deployment from "running" to "finished"
// deterministically. The zero Clock (and the default clock of a Server
// started without WithClock) follows real time; Advance and Set still work on
// it by shifting it by a fixed offset, so a sandbox can fast-forward too.
//
// All methods are safe for concurrent use. A nil *Clock reads as real time.
type Clock struct {
	mu     sync.Mutex
	frozen bool
	t      time.Time     // current time when frozen
	offset time.Duration // added to time.Now() when not frozen
}

// NewClock returns a frozen clock reading t.
func NewClock(t time.Time) *Clock {
	return &Clock{frozen: true, t: t}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.t
	}
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d (backwards if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.t = c.t.Add(d)
		return
	}
	c.offset += d
}

// Set makes the clock read t. A real-time clock keeps ticking from t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.t = t
		return
	}
	c.offset = time.Until(t)
}
