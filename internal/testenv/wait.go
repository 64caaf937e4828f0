package testenv

import (
	"context"
	"sync"
	"testing"
	"time"
)

// waitFor bounds every wait in a test: far longer than anything a passing
// test waits for, short enough to fail a hung one quickly.
const waitFor = 5 * time.Second

// Eventually checks cond every millisecond until it holds, and fails the
// test when it does not within a few seconds. cond should read state that
// what the test waits for changes; the ticks are only how the wait is
// polled, not time the test needs to pass.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Run starts run (a service's Run) on its own goroutine and returns a func
// that ends its context and waits for it to return, failing the test when
// it returns an error or does not return within a few seconds. The func may
// be called more than once; later calls do nothing.
func Run(t testing.TB, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Error("Run did not return after its context ended")
			}
		})
	}
}
