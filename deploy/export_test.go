package deploy

import (
	"context"
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
