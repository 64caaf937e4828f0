package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

// runReply measures how long a person waits for `/c66 stacks`, from the
// command being sent to its reply being posted, with Cloud 66 answering
// every request after -latency: each of -reply-people people, one after
// another so no command waits on another, sends it twice, cold (their
// first command since the bot started, after one unmeasured listing by
// someone else) and warm (again at once). The
// fake's 36 stacks are two pages of Cloud 66's list, so a cold listing
// needs two round trips, one after the other.
func runReply(ctx context.Context, o *options, r *scenarioResult) error {
	bin, err := o.botBinary(ctx)
	if err != nil {
		return err
	}
	ch, err := startSeededChild(o, bin, o.replyPeople+1)
	if err != nil {
		return err
	}
	defer ch.close()
	sl, c66 := ch.sl, ch.c66
	want := fmt.Sprintf("Stacks (%d)", len(c66.Stacks()))
	c66.InjectFault(cloud66test.Fault{Latency: o.latency})
	// Someone else lists first, unmeasured, as on a bot that has been
	// running: what listings share (the outcomes of failed stacks, by
	// their last activity) is known; nothing of the measured people is.
	if _, err := replyTime(ctx, sl, person(o.replyPeople), want); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	var cold, warm []time.Duration
	var coldReq, warmReq int
	for i := range o.replyPeople {
		for pass := range 2 {
			before := c66.RequestCount("", "/api/3")
			d, err := replyTime(ctx, sl, person(i), want)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", person(i), []string{"cold", "warm"}[pass], err)
			}
			n := c66.RequestCount("", "/api/3") - before
			if pass == 0 {
				cold, coldReq = append(cold, d), coldReq+n
			} else {
				warm, warmReq = append(warm, d), warmReq+n
			}
		}
	}
	cs, ws := statsOf(len(cold), cold), statsOf(len(warm), warm)
	rt := o.latency
	r.add(info("reply.cold.p50", "Reply latency p50, cold `stacks` (two pages)", ms(cs.P50), "ms", fmtMs))
	r.add(atMost("reply.cold.p99", "Reply latency p99, cold `stacks` (two pages)", ms(cs.P99), ms(2*rt+30*time.Millisecond), "ms", fmtMs))
	r.add(info("reply.warm.p50", "Reply latency p50, warm `stacks`", ms(ws.P50), "ms", fmtMs))
	r.add(atMost("reply.warm.p99", "Reply latency p99, warm `stacks`", ms(ws.P99), ms(rt+30*time.Millisecond), "ms", fmtMs))
	r.note("%d people one after another, each `stacks` cold then warm; Cloud 66 latency %s (one round trip); targets: cold ≤ 2 round trips + 30 ms, warm ≤ 1 round trip + 30 ms", o.replyPeople, rt)
	r.note("cold: %s; %.1f Cloud 66 requests each", replyQuantiles(cs), float64(coldReq)/float64(max(1, len(cold))))
	r.note("warm: %s; %.1f Cloud 66 requests each", replyQuantiles(ws), float64(warmReq)/float64(max(1, len(warm))))
	return nil
}

// replyTime sends `/c66 stacks` as user and returns the time from sending
// it to its reply being recorded by the fake Slack.
func replyTime(ctx context.Context, sl *bottest.Server, user, want string) (time.Duration, error) {
	start := time.Now()
	id, err := sl.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, ChannelID: bottest.ChannelGeneral, Text: "stacks"})
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := sl.WaitMessage(wctx, func(m bottest.Message) bool {
		return m.Kind == bottest.KindResponseURL && m.EnvelopeID == id
	})
	if err != nil {
		return 0, fmt.Errorf("no reply: %w", err)
	}
	if text := m.Text + " " + string(m.Blocks); !strings.Contains(text, want) {
		return 0, fmt.Errorf("wrong reply: %s", oneLine(text))
	}
	return m.At.Sub(start), nil
}

func replyQuantiles(s latencyStats) string {
	return fmt.Sprintf("%d replies; p50 %s, p90 %s, p99 %s, max %s", s.Acked, fmtMs(ms(s.P50)), fmtMs(ms(s.P90)), fmtMs(ms(s.P99)), fmtMs(ms(s.Max)))
}
