package bot

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/admission"
)

func (p *pool) runningNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// The pool runs at most its workers at once, queues the rest, refuses
// beyond its queue, runs every job it took, and keeps no goroutine once
// the work is done.
func TestPoolBoundsItsGoroutinesAndEndsThemWhenIdle(t *testing.T) {
	t.Parallel()
	p := newPool(2, 3, nil)
	if n := p.runningNow(); n != 0 {
		t.Fatalf("a new pool runs %d goroutines, want none", n)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	started := 0
	startedOne := make(chan struct{}, 5)
	var ran atomic.Int32
	hold := func(context.Context) {
		mu.Lock()
		started++
		mu.Unlock()
		startedOne <- struct{}{}
		<-release
		ran.Add(1)
	}
	for i := range 5 { // 2 run, 3 queue
		if !p.submit(admission.Start, hold) {
			t.Fatalf("job %d refused with room in the queue", i)
		}
	}
	<-startedOne
	<-startedOne
	if p.submit(admission.Start, hold) {
		t.Fatal("a sixth job was taken past 2 workers and 3 queued")
	}
	if n := p.runningNow(); n != 2 {
		t.Errorf("%d goroutines for 5 jobs, want the 2 workers", n)
	}
	mu.Lock()
	if started != 2 {
		t.Errorf("%d jobs started with 2 workers", started)
	}
	mu.Unlock()
	close(release)
	if !p.shutdown(time.Minute) {
		t.Fatal("the pool did not drain")
	}
	if n := ran.Load(); n != 5 {
		t.Errorf("%d of the 5 jobs taken ran", n)
	}
	if n := p.runningNow(); n != 0 {
		t.Errorf("%d goroutines left once the work is done", n)
	}
	if p.submit(admission.Start, hold) {
		t.Error("a job was taken after shutdown")
	}
}
