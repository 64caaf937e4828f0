package bot

import (
	"context"
	"sync"
	"time"
)

// pool runs jobs on a fixed number of goroutines fed by a bounded queue, so
// a burst of commands can't grow goroutines or memory without limit, and
// the socket loop never waits for a job to start.
type pool struct {
	jobs chan func(context.Context)
	wg   sync.WaitGroup
	// ctx is the work context: cancelled only when draining runs out of time.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func newPool(workers, queue int) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{jobs: make(chan func(context.Context), queue), ctx: ctx, cancel: cancel}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for job := range p.jobs {
				job(p.ctx)
			}
		}()
	}
	return p
}

// submit queues job; false when the queue is full (or closed).
func (p *pool) submit(job func(context.Context)) (ok bool) {
	defer func() {
		// A submit racing with shutdown must not panic on the closed channel.
		if recover() != nil {
			ok = false
		}
	}()
	select {
	case p.jobs <- job:
		return true
	default:
		return false
	}
}

// shutdown stops taking jobs, lets queued and running ones finish within
// grace, then cancels what is left and waits for it.
func (p *pool) shutdown(grace time.Duration) (drained bool) {
	p.once.Do(func() { close(p.jobs) })
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		p.cancel()
		return true
	case <-time.After(grace):
		p.cancel()
		<-done
		return false
	}
}
