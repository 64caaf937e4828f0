package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/bot/bottest"
)

// sendAtRate sends n slash commands from the fake Slack, the i-th at
// start + i/rate. Each send runs in its own goroutine so a slow write
// never delays the next command (no coordinated omission). It returns the
// envelope ids in sending order ("" for a send that failed).
func sendAtRate(ctx context.Context, s *bottest.Server, n int, rate float64, cmd func(i int) bottest.SlashCommand) []string {
	ids := make([]string, n)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return ids
			case <-t.C:
			}
		}
		c := cmd(i)
		wg.Go(func() {
			id, err := s.SendSlashCommand(ctx, c)
			if err == nil {
				ids[i] = id
			}
		})
	}
	wg.Wait()
	return ids
}

// sendBurst sends n slash commands at once, each from its own goroutine.
func sendBurst(ctx context.Context, s *bottest.Server, n int, cmd func(i int) bottest.SlashCommand) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		c := cmd(i)
		wg.Go(func() {
			id, err := s.SendSlashCommand(ctx, c)
			if err == nil {
				ids[i] = id
			}
		})
	}
	wg.Wait()
	return ids
}

// collectAcks waits until every envelope in ids has an ack or timeout
// passes, and returns the acks found by envelope id.
func collectAcks(s *bottest.Server, ids []string, timeout time.Duration) map[string]bottest.Ack {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" {
			want[id] = true
		}
	}
	got := map[string]bottest.Ack{}
	deadline := time.Now().Add(timeout)
	for {
		for _, a := range s.Acks() {
			if want[a.EnvelopeID] {
				got[a.EnvelopeID] = a
			}
		}
		if len(got) == len(want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// latencyStats summarises ack latencies.
type latencyStats struct {
	Sent, Acked       int
	P50, P90, P99     time.Duration
	P999, Max         time.Duration
	Over100ms, Over3s int
	Over500ms         int

	samples []time.Duration // sorted
}

func summarise(ids []string, acks map[string]bottest.Ack) latencyStats {
	var ls []time.Duration
	for _, id := range ids {
		if a, ok := acks[id]; ok {
			ls = append(ls, a.Latency)
		}
	}
	return statsOf(len(ids), ls)
}

func statsOf(sent int, ls []time.Duration) latencyStats {
	ls = slices.Clone(ls)
	slices.Sort(ls)
	st := latencyStats{Sent: sent, Acked: len(ls), samples: ls}
	for _, l := range ls {
		if l > 100*time.Millisecond {
			st.Over100ms++
		}
		if l > 500*time.Millisecond {
			st.Over500ms++
		}
		if l > 3*time.Second {
			st.Over3s++
		}
	}
	if len(ls) == 0 {
		return st
	}
	st.P50, st.P90, st.P99, st.P999 = quantile(ls, 0.50), quantile(ls, 0.90), quantile(ls, 0.99), quantile(ls, 0.999)
	st.Max = ls[len(ls)-1]
	return st
}

// merge pools two runs' samples.
func (s latencyStats) merge(o latencyStats) latencyStats {
	return statsOf(s.Sent+o.Sent, append(slices.Clone(s.samples), o.samples...))
}

// quantile is the nearest-rank quantile of sorted ls.
func quantile(ls []time.Duration, q float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ls)))) - 1
	return ls[min(max(i, 0), len(ls)-1)]
}

func (s latencyStats) String() string {
	return fmt.Sprintf("%d sent, %d acked; p50 %s, p90 %s, p99 %s, p99.9 %s, max %s; %d over 100 ms",
		s.Sent, s.Acked, fmtMs(ms(s.P50)), fmtMs(ms(s.P90)), fmtMs(ms(s.P99)), fmtMs(ms(s.P999)), fmtMs(ms(s.Max)), s.Over100ms)
}

// floor is the bare Socket Mode program the bot is compared with: the same
// slack-go client the bot uses, acking every request and doing nothing else.
type floor struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// afterAck, when not nil, is started in a new goroutine after every ack:
// BenchmarkAck uses it to show what work handed off right after an ack
// does to the ack's latency.
func startFloor(s *bottest.Server, afterAck func()) (*floor, error) {
	api := slack.New(s.BotToken, slack.OptionAppLevelToken(s.AppToken), slack.OptionAPIURL(s.APIURL()))
	sm := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	f := &floor{cancel: cancel}
	f.wg.Go(func() { _ = sm.RunContext(ctx) })
	f.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-sm.Events:
				if evt.Request != nil {
					_ = sm.Ack(*evt.Request)
					if afterAck != nil {
						go afterAck()
					}
				}
			}
		}
	})
	if err := waitConnected(s, 15*time.Second); err != nil {
		f.stop()
		return nil, fmt.Errorf("the floor client never connected: %w", err)
	}
	return f, nil
}

func (f *floor) stop() {
	f.cancel()
	f.wg.Wait()
}
