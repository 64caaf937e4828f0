package bot

import (
	"context"
	"sync"
	"time"

	"github.com/c66bot/c66bot/internal/admission"
)

// pool runs jobs on a fixed number of goroutines fed by a bounded queue, so
// a burst of commands can't grow goroutines or memory without limit, and
// the socket loop never waits for a job to start. A job computes only while
// it holds one of the gate's CPU slots (fewer than the processors), so the
// socket's reader and ack writer are never queued behind workers; it gives
// the slot back while it waits on the network.
type pool struct {
	jobs chan job
	gate *admission.Gate
	wg   sync.WaitGroup
	// ctx is the work context: cancelled only when draining runs out of time.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// job is one unit of work and how urgently it needs the CPU.
type job struct {
	prio      admission.Priority
	submitted time.Time
	run       func(context.Context)
}

// newPool starts workers goroutines; a nil gate lets every job compute at
// once.
func newPool(workers, queue int, gate *admission.Gate) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{jobs: make(chan job, queue), gate: gate, ctx: ctx, cancel: cancel}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				p.run(j)
			}
		}()
	}
	return p
}

func (p *pool) run(j job) {
	slot, err := p.gate.Enter(p.ctx, j.prio, j.submitted)
	defer slot.Exit()
	if err != nil {
		return // cancelled while draining at shutdown
	}
	j.run(admission.WithSlot(p.ctx, slot))
}

// submit queues a job of priority prio; false when the queue is full (or
// closed): the caller tells the person it is busy, rather than delay the
// socket.
func (p *pool) submit(prio admission.Priority, run func(context.Context)) (ok bool) {
	defer func() {
		// A submit racing with shutdown must not panic on the closed channel.
		if recover() != nil {
			ok = false
		}
	}()
	select {
	case p.jobs <- job{prio: prio, submitted: time.Now(), run: run}:
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
