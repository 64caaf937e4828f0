package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
)

// TestBudgetOfThirtyMinuteDeploy follows a 30-minute deployment with the
// default poll settings, moving the fake Cloud 66 clock by exactly each wait
// the watcher takes, and counts what it cost.
func TestBudgetOfThirtyMinuteDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDuration(30*time.Minute), withPoll(deploy.PollConfig{}),
		withSleep(func(e *env) func(context.Context, time.Duration) error {
			return func(ctx context.Context, d time.Duration) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				e.Clock.Advance(d)
				return nil
			}
		}))
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), e.stack("shop", "staging"), deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	w := e.waitState(res.Watch.ID, "succeeded")
	if d := w.FinishedAt.Sub(w.StartedAt); d != 30*time.Minute {
		t.Fatalf("deployment took %v on the fake clock, want 30m", d)
	}
	gets := e.C66.RequestCount("GET", "/api/3/")
	total := e.C66.RequestCount("", "/api/3/")
	t.Logf("30-minute deployment: %d GETs (%d polls recorded), %d requests in all, clock at +%v", gets, w.Polls, total, e.Clock.Now().Sub(t0))
	// Polls after 5, 7.5, 11.25, 16.875, 25.3125 s, then every 30 s until
	// 1800 s: 63 action reads, plus one deployments read at the end.
	if gets != 64 {
		t.Errorf("%d GETs, want 64 from the schedule", gets)
	}
	if total > 120 {
		t.Errorf("following a 30-minute deployment cost %d requests, budget is 120", total)
	}
}
