package bot

import (
	"context"
	"sync"
	"time"

	"github.com/c66bot/c66bot/internal/admission"
)

// pool runs jobs on at most workers goroutines fed by a bounded queue, so
// a burst of commands can't grow goroutines or memory without limit, and
// the socket loop never waits for a job to start. Its goroutines start with
// work and end when none is queued, so an idle bot keeps none. A job
// computes only while it holds one of the gate's CPU slots (fewer than the
// processors), so the socket's reader and ack writer are never queued
// behind workers; it gives the slot back while it waits on the network.
type pool struct {
	workers int
	jobs    chan job
	gate    *admission.Gate
	wg      sync.WaitGroup
	// ctx is the work context: cancelled only when draining runs out of time.
	ctx    context.Context
	cancel context.CancelFunc

	// mu makes queueing a job and a worker's finding the queue empty (and
	// ending) one or the other, so no job is left queued with nobody to run it.
	mu      sync.Mutex
	running int
	closed  bool
}

// job is one unit of work and how urgently it needs the CPU.
type job struct {
	prio      admission.Priority
	submitted time.Time
	run       func(context.Context)
}

// newPool returns a pool of at most workers goroutines and queue waiting
// jobs; a nil gate lets every job compute at once.
func newPool(workers, queue int, gate *admission.Gate) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{workers: max(workers, 1), jobs: make(chan job, queue), gate: gate, ctx: ctx, cancel: cancel}
}

// work runs j, then queued jobs until there are none.
func (p *pool) work(j job) {
	defer p.wg.Done()
	for {
		p.run(j)
		p.mu.Lock()
		select {
		case j = <-p.jobs:
			p.mu.Unlock()
		default:
			p.running--
			p.mu.Unlock()
			return
		}
	}
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
func (p *pool) submit(prio admission.Priority, run func(context.Context)) bool {
	j := job{prio: prio, submitted: time.Now(), run: run}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return false
	case p.running < p.workers:
		p.running++
		p.wg.Add(1)
		go p.work(j)
		return true
	}
	select {
	case p.jobs <- j:
		return true
	default:
		return false
	}
}

// shutdown stops taking jobs, lets queued and running ones finish within
// grace, then cancels what is left and waits for it.
func (p *pool) shutdown(grace time.Duration) (drained bool) {
	p.mu.Lock()
	p.closed = true // the workers drain the queue and end
	p.mu.Unlock()
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
