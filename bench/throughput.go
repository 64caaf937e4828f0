package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

// burstResult is one run of the throughput scenario.
type burstResult struct {
	latency       time.Duration // Cloud 66's injected latency
	people        int
	answered      int
	errors        int // error replies plus missing ones
	firstBad      string
	wall          time.Duration // first send to last reply
	botCPU        time.Duration // the bot process's CPU during the burst, idle rate subtracted
	idleCPU       time.Duration // the bot's CPU over the same window when idle (subtracted)
	benchCPU      time.Duration // this process's CPU (fakes and driver) during the burst
	c66Requests   int
	ack           latencyStats
	allocs        float64 // heap allocations in the bot process during the burst
	warn, logErrs int
}

// runThroughput measures target 2: -people linked people each send
// `/c66 stacks` at once; everyone must get their list. The bot runs as its
// own process (the built cmd/c66bot), so its CPU time is read directly
// from /proc/<pid>/stat and the fakes' work is not in it.
func runThroughput(ctx context.Context, o *options, r *scenarioResult) error {
	bin, err := o.botBinary(ctx)
	if err != nil {
		return err
	}
	// The floor: the same burst acked by a bare slack-go program (in this
	// process, with nothing else to do), for what the fake Slack and
	// slack-go alone cost.
	fl, err := floorBurst(ctx, o.people)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	r.add(info("throughput.floor.p99", fmt.Sprintf("Ack p99, floor (bare slack-go), %d at once", o.people), ms(fl.P99), "ms", fmtMs))
	r.note("floor, %d at once: acks %s", o.people, fl)
	var results []burstResult
	for _, lat := range o.burstLatencies {
		br, err := burst(ctx, o, bin, lat)
		if err != nil {
			return fmt.Errorf("Cloud 66 latency %s: %w", lat, err)
		}
		o.logf("throughput: latency %s: %d/%d answered, %d errors, wall %s, bot CPU %s", lat, br.answered, br.people, br.errors, br.wall, br.botCPU)
		results = append(results, br)
	}
	for _, br := range results {
		tag := fmt.Sprintf("Cloud 66 latency %s", br.latency)
		id := fmt.Sprintf("throughput.c66-%dms", br.latency.Milliseconds())
		r.add(atMost(id+".errors", fmt.Sprintf("Errors, %d people at once (%s)", br.people, tag), float64(br.errors), 0, "errors", fmtCount))
		r.add(info(id+".wall", fmt.Sprintf("Wall time, first command to last answer (%s)", tag), br.wall.Seconds(), "s", fmtSec))
		r.add(atMost(id+".ack.p99", fmt.Sprintf("Ack p99 during the burst (%s)", tag), ms(br.ack.P99), 50, "ms", fmtMs))
		r.add(atMost(id+".ack.over500", fmt.Sprintf("Acks over 500 ms or never (%s)", tag), float64(br.ack.Over500ms+br.ack.Sent-br.ack.Acked), 0, "acks", fmtCount))
		perCmd := float64(br.botCPU) / float64(time.Millisecond) / float64(br.people)
		if br.latency == 0 {
			r.add(atMost(id+".cpu", "Bot CPU time per command (Cloud 66 latency excluded)", perCmd, 0.35, "ms", fmtMs))
			r.add(info(id+".allocs", "Heap allocations per command, whole bot process", br.allocs/float64(br.people), "allocs", fmtCount))
		} else {
			r.add(info(id+".cpu", fmt.Sprintf("Bot CPU time per command (%s)", tag), perCmd, "ms", fmtMs))
		}
		r.note("%s: %d of %d answered, %d errors; wall %s; bot CPU %s in all (%s idle subtracted), bench process (fakes and driver) %s; %d Cloud 66 requests; acks %s; bot logged %d warnings, %d errors",
			tag, br.answered, br.people, br.errors, br.wall.Round(time.Millisecond), br.botCPU, br.idleCPU, br.benchCPU.Round(time.Millisecond), br.c66Requests, br.ack, br.warn, br.logErrs)
		if br.firstBad != "" {
			r.note("%s: first bad reply: %s", tag, oneLine(br.firstBad))
		}
	}
	return nil
}

func burst(ctx context.Context, o *options, bin string, latency time.Duration) (burstResult, error) {
	br := burstResult{latency: latency, people: o.people}
	ch, err := startSeededChild(o, bin, o.people)
	if err != nil {
		return br, err
	}
	defer ch.close()
	sl, c66 := ch.sl, ch.c66
	wantStacks := fmt.Sprintf("Stacks (%d)", len(c66.Stacks()))
	if latency > 0 {
		c66.InjectFault(cloud66test.Fault{Latency: latency})
	}
	// The bot's CPU while idle (over -idle-window) is subtracted pro rata.
	idle0, err := procCPU(ch.pid())
	if err != nil {
		return br, err
	}
	idleStart := time.Now()
	time.Sleep(o.idleWindow)
	idle1, _ := procCPU(ch.pid())
	idleRate := float64(idle1-idle0) / float64(time.Since(idleStart))

	c66.ResetRequests()
	mallocs0, merr := ch.metric("go_memstats_mallocs_total")
	cpu0, _ := procCPU(ch.pid())
	self0 := selfCPU()
	start := time.Now()
	bo := burstOn(ctx, sl, o.people, nil, wantStacks, o.burstTimeout)
	cpu1, _ := procCPU(ch.pid())
	self1 := selfCPU()
	window := time.Since(start)
	br.answered, br.errors, br.firstBad, br.wall = bo.answered, bo.errors, bo.firstBad, bo.wall
	br.idleCPU = time.Duration(idleRate * float64(window))
	br.botCPU = max(0, cpu1-cpu0-br.idleCPU)
	br.benchCPU = self1 - self0
	br.c66Requests = c66.RequestCount("", "/api/3")
	br.ack = bo.ack
	if mallocs1, err := ch.metric("go_memstats_mallocs_total"); err == nil && merr == nil {
		br.allocs = mallocs1 - mallocs0
	}
	if err := ch.stop(); err != nil {
		o.logf("throughput: the bot stopped with: %v", err)
	}
	br.warn, br.logErrs = ch.logCounts()
	return br, nil
}

// burstOutcome is what one burst of `/c66 stacks` got back.
type burstOutcome struct {
	answered, errors int // errors: wrong replies plus missing ones
	firstBad         string
	wall             time.Duration // first send to the last reply
	ack              latencyStats
}

// burstOn sends `/c66 stacks` from people linked people at once, each from
// its own goroutine (command i on conns[i % len(conns)] when conns is
// given), and waits for every reply; a reply is right when it holds want.
func burstOn(ctx context.Context, sl *bottest.Server, people int, conns []int, want string, timeout time.Duration) burstOutcome {
	var bo burstOutcome
	start := time.Now()
	ids := sendBurst(ctx, sl, people, func(i int) bottest.SlashCommand {
		c := bottest.SlashCommand{UserID: person(i), ChannelID: bottest.ChannelGeneral, Text: "stacks"}
		if len(conns) > 0 {
			c.Connection = conns[i%len(conns)]
		}
		return c
	})
	sent := map[string]bool{}
	for _, id := range ids {
		if id != "" {
			sent[id] = true
		}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := map[string]bool{}
	var last time.Time
	_, _ = sl.WaitMessage(wctx, func(m bottest.Message) bool {
		if m.Kind != bottest.KindResponseURL || !sent[m.EnvelopeID] || got[m.EnvelopeID] {
			return false
		}
		got[m.EnvelopeID] = true
		if m.At.After(last) {
			last = m.At
		}
		if text := m.Text + " " + string(m.Blocks); !strings.Contains(text, want) {
			bo.errors++
			if bo.firstBad == "" {
				bo.firstBad = text
			}
		}
		return len(got) == len(sent)
	})
	bo.answered = len(got)
	bo.errors += people - len(got)
	if !last.IsZero() {
		bo.wall = last.Sub(start)
	}
	bo.ack = summarise(ids, collectAcks(sl, ids, 5*time.Second))
	return bo
}

// floorBurst acks a burst of people slash commands with the floor.
func floorBurst(ctx context.Context, people int) (latencyStats, error) {
	s := bottest.New()
	defer s.Close()
	f, err := startFloor(s, nil)
	if err != nil {
		return latencyStats{}, err
	}
	defer f.stop()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.WaitConnected(wctx, 1); err != nil {
		return latencyStats{}, err
	}
	ids := sendBurst(ctx, s, people, func(i int) bottest.SlashCommand {
		return bottest.SlashCommand{UserID: person(i), ChannelID: bottest.ChannelGeneral, Text: "stacks"}
	})
	return summarise(ids, collectAcks(s, ids, 10*time.Second)), nil
}
