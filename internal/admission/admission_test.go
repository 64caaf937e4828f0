package admission

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// long ago is a submission time whose hold-back has passed.
var longAgo = time.Now().Add(-time.Hour)

func TestSlotsBoundComputingJobs(t *testing.T) {
	g := NewGate(2)
	var computing, most atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			s, err := g.Enter(context.Background(), Resume, longAgo)
			defer s.Exit()
			if err != nil {
				t.Error(err)
				return
			}
			n := computing.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			for range 1000 {
				_ = time.Now() // some work with the slot held
			}
			computing.Add(-1)
		})
	}
	wg.Wait()
	if got := most.Load(); got > 2 {
		t.Fatalf("%d jobs computed at once with 2 slots", got)
	}
	if g.free != 2 {
		t.Fatalf("free slots after every job ended = %d, want 2", g.free)
	}
}

func TestWaitGivesTheSlotBack(t *testing.T) {
	// One slot, eight jobs all waiting on the network at once: possible
	// only if each gives its slot back while it waits.
	g := NewGate(1)
	release := make(chan struct{})
	var outside sync.WaitGroup
	outside.Add(8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s, err := g.Enter(context.Background(), Start, longAgo)
			defer s.Exit()
			if err != nil {
				t.Error(err)
				return
			}
			ctx := WithSlot(context.Background(), s)
			WaitOutside(ctx, func() {
				outside.Done()
				<-release
			})
			if !s.held {
				t.Error("the slot was not taken back after the wait")
			}
		})
	}
	outside.Wait() // would hang if a waiting job kept its slot
	close(release)
	wg.Wait()
	if g.free != 1 {
		t.Fatalf("free = %d, want 1", g.free)
	}
}

func TestSlotsGoByPriorityThenArrival(t *testing.T) {
	g := NewGate(1)
	holder, _ := g.Enter(context.Background(), Start, longAgo)
	var order []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	enter := func(name string, p Priority) {
		queued := g.Waiting()
		wg.Go(func() {
			s, err := g.Enter(context.Background(), p, longAgo)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			s.Exit()
		})
		for g.Waiting() == queued { // until it is queued
			time.Sleep(time.Millisecond)
		}
	}
	enter("start1", Start)
	enter("resume", Resume)
	enter("start2", Start)
	enter("urgent", Urgent)
	holder.Exit()
	wg.Wait()
	want := []string{"urgent", "resume", "start1", "start2"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

func TestEnterGivesUpWithItsContext(t *testing.T) {
	g := NewGate(1)
	holder, _ := g.Enter(context.Background(), Start, longAgo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		s, err := g.Enter(ctx, Start, longAgo)
		s.Exit()
		done <- err
	}()
	for g.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if g.Waiting() != 0 {
		t.Fatal("a cancelled waiter stayed queued")
	}
	holder.Exit()
	if g.free != 1 {
		t.Fatalf("free = %d, want 1 (the cancelled waiter must not hold or leak a slot)", g.free)
	}
}

func TestHoldBackEndsAtItsBound(t *testing.T) {
	g := NewGate(1)
	g.Arrived() // an envelope just now
	// Submitted longer ago than maxHoldBack: no more waiting.
	s, err := g.Enter(context.Background(), Start, time.Now().Add(-maxHoldBack))
	if err != nil {
		t.Fatal(err)
	}
	s.Exit()
	// A job of another priority never holds back.
	g.Arrived()
	s, err = g.Enter(context.Background(), Urgent, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Exit()
	// A cancelled context ends the hold-back.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Arrived()
	if _, err := g.Enter(ctx, Start, time.Now()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestTransportGivesTheSlotBackForTheRoundTrip(t *testing.T) {
	g := NewGate(1)
	var freeDuring atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		freeDuring.Store(int32(g.free))
		g.mu.Unlock()
	}))
	defer srv.Close()
	s, _ := g.Enter(context.Background(), Start, longAgo)
	defer s.Exit()
	req, _ := http.NewRequestWithContext(WithSlot(context.Background(), s), http.MethodGet, srv.URL, nil)
	resp, err := (&http.Client{Transport: Transport{Base: http.DefaultTransport}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if freeDuring.Load() != 1 {
		t.Fatalf("free slots during the round trip = %d, want 1", freeDuring.Load())
	}
	if !s.held || g.free != 0 {
		t.Fatalf("after the round trip: held %v, free %d; want the slot back", s.held, g.free)
	}
}

func TestNilGateLetsEverythingThrough(t *testing.T) {
	var g *Gate
	g.Arrived()
	s, err := g.Enter(context.Background(), Start, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	WaitOutside(WithSlot(context.Background(), s), func() { ran = true })
	s.Exit()
	if !ran {
		t.Fatal("WaitOutside did not run f")
	}
}
