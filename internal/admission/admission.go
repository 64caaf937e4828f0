// Package admission keeps the Socket Mode ack path ahead of command work.
//
// Go's scheduler treats every runnable goroutine alike. When a burst of
// commands arrives, hundreds of workers decoding Cloud 66's answers and
// rendering replies would share the CPU with the three slack-go goroutines
// that read envelopes and write acks, and an ack would wait behind them
// (issue 14 measured a p99 of 403 ms at 1,000 commands at once). A Gate
// bounds how many workers are on the CPU at once to fewer than the
// processors, so the socket's goroutines always find one free: a worker
// holds a slot while it computes and gives it back while it waits on the
// network (Transport does that around every HTTP round trip). Waiting for a
// slot costs a parked goroutine, nothing on the CPU.
//
// Slots go to waiters by priority, then first come first served: work that
// must answer within Slack's 3 s (a modal's suggestions, a submission) goes
// before work resuming after a round trip, which goes before work not
// started yet, so a command that began finishes before new ones pile on.
package admission

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Priority orders waiters for a slot; higher goes first.
type Priority int

const (
	// Start is a job not yet begun: a command, a click, an event.
	Start Priority = iota
	// Resume is a job coming back from a network wait.
	Resume
	// Urgent is a job whose answer is the envelope's ack payload (modal
	// suggestions and submissions), due within Slack's 3 s.
	Urgent
	priorities
)

// Gate hands out a fixed number of CPU slots.
type Gate struct {
	mu      sync.Mutex
	free    int
	waiting [priorities][]chan struct{}

	// lastArrival is when the socket last took an envelope (UnixNano); new
	// work holds back until the socket has been quiet for quietWindow.
	lastArrival atomic.Int64
}

const (
	// quietWindow is how long after an envelope new work waits, so the
	// envelopes of a burst are all read and acked before the work they
	// bring starts dialing Cloud 66 and decoding: acks take tens of
	// microseconds each, so a 2 ms gap means the socket has caught up.
	quietWindow = 2 * time.Millisecond
	// maxHoldBack bounds that wait, so an endless stream of envelopes
	// slows new work down rather than starving it.
	maxHoldBack = 100 * time.Millisecond
)

// Arrived tells the gate the socket took an envelope now.
func (g *Gate) Arrived() {
	if g != nil {
		g.lastArrival.Store(time.Now().UnixNano())
	}
}

// holdBack waits, for a job submitted at since, until the socket has been
// quiet for quietWindow or maxHoldBack has passed since submission.
func (g *Gate) holdBack(ctx context.Context, since time.Time) error {
	deadline := since.Add(maxHoldBack)
	for {
		quiet := time.Unix(0, g.lastArrival.Load()).Add(quietWindow)
		now := time.Now()
		until := quiet
		if deadline.Before(until) {
			until = deadline
		}
		if !now.Before(until) {
			return nil
		}
		t := time.NewTimer(until.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// DefaultSlots is the gate size for this process: one fewer than the
// processors Go may use, so one is always left for the socket, and at
// least one.
func DefaultSlots() int {
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// NewGate returns a gate of n slots (DefaultSlots when n ≤ 0).
func NewGate(n int) *Gate {
	if n <= 0 {
		n = DefaultSlots()
	}
	return &Gate{free: n}
}

// Waiting is how many are queued for a slot now.
func (g *Gate) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, q := range g.waiting {
		n += len(q)
	}
	return n
}

// acquire takes a slot, waiting behind higher priorities and earlier
// waiters of the same one. It fails only when ctx ends first.
func (g *Gate) acquire(ctx context.Context, p Priority) error {
	g.mu.Lock()
	if g.free > 0 && g.noneWaitingLocked() {
		g.free--
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.waiting[p] = append(g.waiting[p], ch)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		q := g.waiting[p]
		for i, c := range q {
			if c == ch {
				g.waiting[p] = append(q[:i], q[i+1:]...)
				return ctx.Err()
			}
		}
		// Granted while giving up: pass the slot on.
		g.releaseLocked()
		return ctx.Err()
	}
}

func (g *Gate) noneWaitingLocked() bool {
	for _, q := range g.waiting {
		if len(q) > 0 {
			return false
		}
	}
	return true
}

func (g *Gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked()
}

// releaseLocked hands the slot to the first waiter of the highest
// priority, or frees it.
func (g *Gate) releaseLocked() {
	for p := priorities - 1; p >= 0; p-- {
		q := g.waiting[p]
		if len(q) == 0 {
			continue
		}
		ch := q[0]
		q[0] = nil
		g.waiting[p] = q[1:]
		close(ch)
		return
	}
	g.free++
}

// Slot is one job's hold on the gate. Its methods are safe for concurrent
// use, so a job may fan out round trips on several goroutines: the slot is
// given back while any of them waits and taken again when the last returns
// (the goroutines then compute under one slot between them, which only
// errs on the side of the socket).
type Slot struct {
	g    *Gate
	prio Priority
	mu   sync.Mutex
	away int  // round trips in flight
	held bool // the slot is this job's now
}

// Enter waits for a slot for a job of priority p, submitted at since. A
// job of priority Start first waits for the socket to be quiet (see
// Arrived). The job must call Exit when it ends, whatever Enter returned;
// on an error (ctx ended first) it holds no slot and should stop.
func (g *Gate) Enter(ctx context.Context, p Priority, since time.Time) (*Slot, error) {
	s := &Slot{g: g, prio: p}
	if g == nil {
		return s, nil
	}
	if p == Start {
		if err := g.holdBack(ctx, since); err != nil {
			return s, err
		}
	}
	if err := g.acquire(ctx, p); err != nil {
		return s, err
	}
	s.held = true
	return s, nil
}

// Exit gives the slot back for good.
func (s *Slot) Exit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.held = false
		s.g.release()
	}
}

// Wait runs f, which waits on something outside the process (the network,
// a database), without the slot, and takes it back afterwards at Resume
// priority or above. A job whose context ends meanwhile comes back without
// a slot; it is about to fail anyway.
func (s *Slot) Wait(ctx context.Context, f func()) {
	if s == nil || s.g == nil {
		f()
		return
	}
	s.mu.Lock()
	s.away++
	if s.away == 1 && s.held {
		s.held = false
		s.g.release()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.away--
		if s.away == 0 && !s.held {
			if s.g.acquire(ctx, max(s.prio, Resume)) == nil {
				s.held = true
			}
		}
	}()
	f()
}

type slotKey struct{}

// WithSlot returns ctx carrying s, for Transport and WaitOutside.
func WithSlot(ctx context.Context, s *Slot) context.Context {
	return context.WithValue(ctx, slotKey{}, s)
}

// WaitOutside runs f without the slot ctx carries, if any (see Slot.Wait).
func WaitOutside(ctx context.Context, f func()) {
	s, _ := ctx.Value(slotKey{}).(*Slot)
	s.Wait(ctx, f)
}

// Transport gives the slot of the request's context back for the round
// trip. Reading the body, which is where the decoding is, happens after
// RoundTrip returns, with the slot held again.
type Transport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	WaitOutside(req.Context(), func() { resp, err = t.Base.RoundTrip(req) })
	return resp, err
}
