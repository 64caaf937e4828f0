package deploy

import (
	"context"
	"maps"
	"slices"
	"time"
)

// SetSleep replaces the real-time wait between polls, so a test can move a
// fake clock in step with the watcher's schedule.
func SetSleep(s *Service, f func(ctx context.Context, d time.Duration) error) { s.sleep = f }

// ApprovalMessage renders an approval request, for tests of how it shows
// what would ship.
var ApprovalMessage = approvalMessage

// Watchers counts the watches whose watcher goroutine is running. Once it
// is zero nothing a watcher reports (OnFinished, card edits) can come any
// more, until a deploy or the next Run starts another.
func Watchers(s *Service) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.following)
}

// SetRenewSleep replaces the wait between the background renewals of a
// watch's lease, and SetClaimSleep the wait between Run's passes over the
// active watches, so a test decides when either happens.
func SetRenewSleep(s *Service, f func(ctx context.Context, d time.Duration) error) { s.renewSleep = f }
func SetClaimSleep(s *Service, f func(ctx context.Context, d time.Duration) error) { s.claimSleep = f }

// Following returns the ids of the watches s has a watcher for, sorted.
func Following(s *Service) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.following))
}
