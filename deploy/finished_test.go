package deploy_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
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
		Stores: storesOf(e.store), Cloud66For: e.client, Slack: e.slack, Cloud66URL: e.c66.URL,
		Command: "/c66", Now: e.clock.Now, Poll: fastPoll, OnFinished: log.add,
	})
	e.stop = e.run(e.svc)
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
	e.c66.SetDeployOutcome(api.UID, false, "Build failed")
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
	e.clock.Advance(4 * time.Minute)
	e.waitState(ok.Watch.ID, "succeeded")
	e.waitState(bad.Watch.ID, "failed")
	eventually(t, "both outcomes reported", func() bool { return len(finished.sorted()) == 2 })
	if got := finished.sorted(); !slices.Equal(got, []string{"failed", "succeeded"}) {
		t.Errorf("OnFinished heard %v, want failed and succeeded", got)
	}

	// A watch that ends without a result is reported as unknown.
	again, err := e.svc.Deploy(ctx, origin(ana, "C1", "r3"), shop, deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.c66.Revoke(e.tokens[ana])
	e.waitState(again.Watch.ID, "unknown")
	eventually(t, "unknown reported", func() bool { return len(finished.sorted()) == 3 })
	time.Sleep(50 * time.Millisecond) // room for a duplicate report to show
	if got := finished.sorted(); !slices.Equal(got, []string{"failed", "succeeded", "unknown"}) {
		t.Errorf("OnFinished heard %v", got)
	}
}
