package notify

import (
	"context"
	"time"
)

// OnReconcile makes s call f after every pass that reconciles the pollers
// with the subscriptions, with the uids of the stacks it left polled,
// sorted. Call it before Run.
func OnReconcile(s *Service, f func(polled []string)) { s.reconciled = f }

// OnPollerDone makes s call f with a stack's uid once the goroutine of its
// poller has returned: nothing that poller does can happen after. Call it
// before Run.
func OnPollerDone(s *Service, f func(uid string)) { s.pollerDone = f }

// OnDrain makes s call f at the start of every delivery pass, on the
// delivery loop, with Run's context: f may count passes, or hold one (until
// ctx ends at the latest). Call it before Run.
func OnDrain(s *Service, f func(ctx context.Context)) { s.drainHook = f }

// SetRenewSleep replaces the wait between the background renewals of a
// delivery lease, so a test decides when they happen. Call it before Run.
func SetRenewSleep(s *Service, f func(ctx context.Context, d time.Duration) error) { s.renewSleep = f }
