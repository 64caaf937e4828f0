package notify

import (
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

func TestPollInterval(t *testing.T) {
	tests := []struct {
		every          time.Duration
		stacks, budget int
		want           time.Duration
	}{
		{time.Minute, 1, 600, time.Minute},        // 6 s of budget per stack: PollEvery wins
		{time.Minute, 10, 600, time.Minute},       // exactly 600 polls an hour
		{time.Minute, 36, 600, 216 * time.Second}, // 36 stacks × 3600 s ÷ 600
		{time.Minute, 100, 600, 10 * time.Minute},
		{time.Minute, 100, 3000, 2 * time.Minute},
		{time.Minute, 0, 600, time.Minute},
		{time.Minute, 5, 0, time.Minute},
	}
	for _, tt := range tests {
		got := pollInterval(tt.every, tt.stacks, tt.budget)
		if got != tt.want {
			t.Errorf("pollInterval(%s, %d, %d) = %s, want %s", tt.every, tt.stacks, tt.budget, got, tt.want)
		}
		// Whatever the inputs, one subscriber's polls stay within budget.
		if tt.stacks > 0 && tt.budget > 0 {
			if perHour := float64(tt.stacks) * float64(time.Hour) / float64(got); perHour > float64(tt.budget)+1e-9 {
				t.Errorf("%d stacks every %s is %.0f requests an hour, over %d", tt.stacks, got, perHour, tt.budget)
			}
		}
	}
}

func TestRetryDelayAndBackoffAreBounded(t *testing.T) {
	if d := retryDelay(0); d != retryBase {
		t.Errorf("first retry after %s", d)
	}
	if d := retryDelay(100); d != retryMax {
		t.Errorf("retry delay after many attempts %s, want %s", d, retryMax)
	}
	if d := backoff(time.Minute, 1000); d != maxPollBackoff {
		t.Errorf("poll backoff %s, want %s", d, maxPollBackoff)
	}
}

func TestOwnDeployment(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	ev := Event{Kind: DeploySucceeded, StackUID: "u1", StartedAt: t0.Add(time.Minute), At: t0.Add(4 * time.Minute)}
	tests := []struct {
		name string
		ev   Event
		w    storage.Watch
		want bool
	}{
		{"running, requested before", ev, storage.Watch{Channel: "C1", RequestedAt: t0, State: "deploying"}, true},
		{"finished just now", ev, storage.Watch{Channel: "C1", RequestedAt: t0, FinishedAt: t0.Add(4 * time.Minute), State: "succeeded"}, true},
		{"other channel", ev, storage.Watch{Channel: "C2", RequestedAt: t0, State: "deploying"}, false},
		{"requested after the start", ev, storage.Watch{Channel: "C1", RequestedAt: t0.Add(5 * time.Minute), State: "deploying"}, false},
		{"still queued behind it", ev, storage.Watch{Channel: "C1", RequestedAt: t0, State: "queued"}, false},
		{"finished long before", ev, storage.Watch{Channel: "C1", RequestedAt: t0.Add(-time.Hour), FinishedAt: t0.Add(-30 * time.Minute), State: "succeeded"}, false},
		{"finished before this one started", ev, storage.Watch{Channel: "C1", RequestedAt: t0.Add(-10 * time.Minute), FinishedAt: t0.Add(-2 * time.Minute), State: "succeeded"}, false},
		{"same deployment id", withID(ev, 7), storage.Watch{Channel: "C1", RequestedAt: t0.Add(-time.Hour), FinishedAt: t0.Add(-30 * time.Minute), DeploymentID: 7}, true},
		{"other deployment id", withID(ev, 8), storage.Watch{Channel: "C1", RequestedAt: t0, DeploymentID: 7, State: "deploying"}, false},
	}
	for _, tt := range tests {
		if got := ownDeployment(tt.ev, "C1", []storage.Watch{tt.w}); got != tt.want {
			t.Errorf("%s: own = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func withID(ev Event, id int64) Event {
	ev.DeploymentID = id
	return ev
}
