// Package fakeclock is a clock for tests that moves only when told to, so
// they step past expiries without sleeping. It is its own package because
// storage's tests and the contract suites in storage/storagetest both use
// it and cannot import each other.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a frozen clock. Its methods are safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock at a fixed instant, 2025-06-01 12:00 UTC, so test
// output reads the same on every run.
func New() *Clock {
	return &Clock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
