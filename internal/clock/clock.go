// Package clock holds the one wait every part shares: Sleep, which a
// context cuts short. The Cloud 66 client waits with it between retries and
// package deploy between polls; one copy keeps their semantics the same
// (a zero or negative wait only reports whether ctx is done).
package clock

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, and then returns ctx.Err(). A
// d of zero or less does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
