package deploy_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
)

// finishedLog records Config.OnFinished.
type finishedLog struct {
	mu     sync.Mutex
	states []string
}

func (f *finishedLog) add(state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, state)
}

func (f *finishedLog) sorted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := slices.Clone(f.states)
	slices.Sort(s)
	return s
}

// withOnFinished swaps e's service for one that reports to a finishedLog.
func withOnFinished(e *env) *finishedLog {
	e.stop()
	log := &finishedLog{}
	e.svc = deploy.New(deploy.Config{
		Stores: storesOf(e.Store), Cloud66For: e.client, Slack: e.Slack, Cloud66URL: e.C66.URL,
		Command: "/c66", Now: e.Clock.Now, Poll: fastPoll, OnFinished: log.add,
	})
	e.stop = testenv.Run(e.t, e.svc.Run)
	e.t.Cleanup(e.stop)
	return log
}

func TestOnFinishedHearsEachFinalStateOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	finished := withOnFinished(e)
	ctx := t.Context()

	shop := e.stack("shop", "staging")
	api := e.stack("api", "staging")
	e.C66.SetDeployOutcome(api.UID, false, "Build failed")
	ok, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := e.svc.Deploy(ctx, origin(ana, "C1", "r2"), api, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if got := finished.sorted(); len(got) != 0 {
		t.Fatalf("OnFinished heard %v before anything finished", got)
	}
	e.waitPolls(ok.Watch.ID, 2)
	e.Clock.Advance(4 * time.Minute)
	e.waitState(ok.Watch.ID, "succeeded")
	e.waitState(bad.Watch.ID, "failed")
	testenv.Eventually(t, "both outcomes reported", func() bool { return len(finished.sorted()) == 2 })
	if got := finished.sorted(); !slices.Equal(got, []string{"failed", "succeeded"}) {
		t.Errorf("OnFinished heard %v, want failed and succeeded", got)
	}

	// A watch that ends without a result is reported as unknown.
	again, err := e.svc.Deploy(ctx, origin(ana, "C1", "r3"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.C66.Revoke(e.Tokens[ana])
	e.waitState(again.Watch.ID, "unknown")
	testenv.Eventually(t, "unknown reported", func() bool { return len(finished.sorted()) == 3 })
	// Every watcher has ended, so no duplicate report can come later.
	testenv.Eventually(t, "the watchers to end", func() bool { return deploy.Watchers(e.svc) == 0 })
	if got := finished.sorted(); !slices.Equal(got, []string{"failed", "succeeded", "unknown"}) {
		t.Errorf("OnFinished heard %v", got)
	}
}
