package deploy

import (
	"context"
	"time"
)

// SweepLocks runs one pass of Run's lock sweep (expiry and reminders) now.
func SweepLocks(s *Service, ctx context.Context) { s.sweepLocks(ctx) }

// SetLockSleep replaces the wait between Run's lock sweeps.
func SetLockSleep(s *Service, f func(ctx context.Context, d time.Duration) error) { s.lockSleep = f }
