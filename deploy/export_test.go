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
