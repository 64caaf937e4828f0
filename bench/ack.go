package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
)

// floorAcks drives the floor (a bare slack-go Socket Mode program) on a
// fake Slack of its own, as driveAcks drives the bot.
func floorAcks(ctx context.Context, warm, n int, rate float64, cmd func(i int) bottest.SlashCommand) (latencyStats, error) {
	s := bottest.New()
	defer s.Close()
	f, err := startFloor(s, nil)
	if err != nil {
		return latencyStats{}, err
	}
	defer f.stop()
	return driveAcks(ctx, s, warm, n, rate, cmd)
}

// runAck measures target 1: slash-command ack latency under a steady rate,
// for the bot and for the floor (a bare slack-go Socket Mode program), one
// after the other in this process, each against its own fake Slack:
// floor, bot, floor again. The two floor runs bracket the bot's, so drift in
// how busy the machine is shows as a difference between them.
func runAck(ctx context.Context, o *options, r *scenarioResult) error {
	n := int(o.duration.Seconds() * o.rate)
	warm := int(o.warmup.Seconds() * o.rate)
	if n <= 0 {
		return fmt.Errorf("-duration × -rate gives no commands")
	}
	cmd := func(people int) func(i int) bottest.SlashCommand {
		return func(i int) bottest.SlashCommand {
			return bottest.SlashCommand{UserID: person(i % people), ChannelID: bottest.ChannelGeneral, Text: o.mix[i%len(o.mix)]}
		}
	}

	floorRun := func() (latencyStats, error) {
		return floorAcks(ctx, warm, n, o.rate, cmd(o.ackPeople))
	}

	floorA, err := floorRun()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	o.logf("ack: floor (before): %s", floorA)

	e, err := startInproc(inprocOptions{parentDir: o.tmp, people: o.ackPeople})
	if err != nil {
		return err
	}
	clearLatency := e.c66.InjectFault(cloud66test.Fault{Latency: o.latency})
	botStats, err := driveAcks(ctx, e.slack, warm, n, o.rate, cmd(o.ackPeople))
	if err != nil {
		e.close()
		return fmt.Errorf("bot: %w", err)
	}
	o.logf("ack: bot: %s", botStats)
	// The replies are not part of this figure, but a run whose commands
	// failed would not be a fair one.
	replies := waitReplies(e.slack, warm+n, 2*time.Minute, classifyAckReply)
	clearLatency()
	logLines, first := e.logs.summary()
	if err := e.close(); err != nil {
		r.note("the bot stopped with an error: %v", err)
	}

	floorB, err := floorRun()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	o.logf("ack: floor (after): %s", floorB)
	fl := floorA.merge(floorB) // both floor runs' samples pooled

	// The same, each alone in a process of its own: the floor (this
	// program again) and the built bot, the fakes in this process.
	bin, err := o.botBinary(ctx)
	if err != nil {
		return err
	}
	pFloorA, err := floorProcAcks(ctx, o, warm, n, cmd(o.ackPeople))
	if err != nil {
		return fmt.Errorf("floor process: %w", err)
	}
	o.logf("ack: floor process (before): %s", pFloorA)
	pBot, pReplies, err := botProcAcks(ctx, o, bin, warm, n, cmd(o.ackPeople))
	if err != nil {
		return fmt.Errorf("bot process: %w", err)
	}
	o.logf("ack: bot process: %s", pBot)
	pFloorB, err := floorProcAcks(ctx, o, warm, n, cmd(o.ackPeople))
	if err != nil {
		return fmt.Errorf("floor process: %w", err)
	}
	o.logf("ack: floor process (after): %s", pFloorB)
	pFloor := pFloorA.merge(pFloorB)
	r.add(info("ack.proc.bot.p99", "Ack latency p99, bot process", ms(pBot.P99), "ms", fmtMs))
	r.add(info("ack.proc.bot.p999", "Ack latency p99.9, bot process", ms(pBot.P999), "ms", fmtMs))
	r.add(info("ack.proc.floor.p99", "Ack latency p99, floor process", ms(pFloor.P99), "ms", fmtMs))
	r.add(info("ack.proc.floor.p999", "Ack latency p99.9, floor process", ms(pFloor.P999), "ms", fmtMs))
	r.add(atMost("ack.proc.ratio.p99", "p99 bot ÷ p99 floor, each in its own process", ratio(pBot.P99, pFloor.P99), 1.5, "×", fmtRatio))
	r.add(atMost("ack.proc.ratio.p999", "p99.9 bot ÷ p99.9 floor, each in its own process", ratio(pBot.P999, pFloor.P999), 2, "×", fmtRatio))
	r.note("bot process: %s; replies: %s", pBot, pReplies)
	r.note("floor process before the bot: %s", pFloorA)
	r.note("floor process after the bot: %s", pFloorB)

	r.add(atMost("ack.bot.p99", "Ack latency p99, bot", ms(botStats.P99), 5, "ms", fmtMs))
	r.add(atMost("ack.bot.over100ms", "Acks over 100 ms, bot", float64(botStats.Over100ms+botStats.Sent-botStats.Acked), 0, "acks", fmtCount))
	r.add(info("ack.bot.p50", "Ack latency p50, bot", ms(botStats.P50), "ms", fmtMs))
	r.add(info("ack.bot.max", "Ack latency max, bot", ms(botStats.Max), "ms", fmtMs))
	r.add(info("ack.floor.p99", "Ack latency p99, floor (bare slack-go)", ms(fl.P99), "ms", fmtMs))
	r.add(info("ack.floor.p50", "Ack latency p50, floor", ms(fl.P50), "ms", fmtMs))
	r.add(info("ack.floor.max", "Ack latency max, floor", ms(fl.Max), "ms", fmtMs))
	r.add(info("ack.ratio.p99", "p99 bot ÷ p99 floor, in this process", ratio(botStats.P99, fl.P99), "×", fmtRatio))
	r.add(info("ack.ratio.p999", "p99.9 bot ÷ p99.9 floor, in this process", ratio(botStats.P999, fl.P999), "×", fmtRatio))
	r.add(info("ack.ratio.p50", "p50 bot ÷ p50 floor", ratio(botStats.P50, fl.P50), "×", fmtRatio))

	r.note("%d commands (%s in turn) at %.0f/s for %s after %s of warm-up, %d linked people, Cloud 66 latency %s", n, strings.Join(o.mix, ", "), o.rate, o.duration, o.warmup, o.ackPeople, o.latency)
	r.note("bot: %s", botStats)
	r.note("floor before the bot: %s", floorA)
	r.note("floor after the bot: %s", floorB)
	r.note("bot replies to the %d commands: %s; %d warn/error log lines", warm+n, replies, logLines)
	for _, l := range first {
		o.logf("ack: bot log: %s", l)
	}
	if botStats.Acked < botStats.Sent {
		r.note("%d commands were never acked (counted as over 100 ms)", botStats.Sent-botStats.Acked)
	}
	return nil
}

// driveAcks sends warm commands it does not measure, then n it does, at
// rate, and returns the measured acks' latencies.
func driveAcks(ctx context.Context, s *bottest.Server, warm, n int, rate float64, cmd func(i int) bottest.SlashCommand) (latencyStats, error) {
	if warm > 0 {
		ids := sendAtRate(ctx, s, warm, rate, cmd)
		collectAcks(s, ids, 5*time.Second)
	}
	ids := sendAtRate(ctx, s, n, rate, func(i int) bottest.SlashCommand { return cmd(warm + i) })
	if err := ctx.Err(); err != nil {
		return latencyStats{}, err
	}
	acks := collectAcks(s, ids, 10*time.Second)
	return summarise(ids, acks), nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// replyCounts counts replies by kind.
type replyCounts map[string]int

func (c replyCounts) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// waitReplies waits until n response_url replies have arrived (or timeout)
// and counts them by what classify says of each; missing ones are counted
// as "missing". The replies of the ack mix are told apart by what a good
// one says: "Stacks (n)", the help header, or whoami's "linked to Cloud 66".
func waitReplies(s *bottest.Server, n int, timeout time.Duration, classify func(text string) string) replyCounts {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := map[string]bool{}
	counts := replyCounts{}
	_, _ = s.WaitMessage(ctx, func(m bottest.Message) bool {
		if m.Kind != bottest.KindResponseURL || m.EnvelopeID == "" || seen[m.EnvelopeID] {
			return false
		}
		seen[m.EnvelopeID] = true
		counts[classify(m.Text+" "+string(m.Blocks))]++
		return len(seen) >= n
	})
	if len(seen) < n {
		counts["missing"] = n - len(seen)
	}
	return counts
}

// floorProcAcks drives the floor in a process of its own.
func floorProcAcks(ctx context.Context, o *options, warm, n int, cmd func(i int) bottest.SlashCommand) (latencyStats, error) {
	dir, err := tempDir(o.tmp)
	if err != nil {
		return latencyStats{}, err
	}
	s := bottest.New()
	defer s.Close()
	ch, err := startFloorChild(dir, s)
	if err != nil {
		return latencyStats{}, err
	}
	defer ch.stop()
	if err := ch.waitConnected(s, 20*time.Second); err != nil {
		return latencyStats{}, err
	}
	return driveAcks(ctx, s, warm, n, o.rate, cmd)
}

// botProcAcks drives the built bot (`c66bot serve`) in a process of its
// own, Cloud 66 answering after -latency, and checks its replies.
func botProcAcks(ctx context.Context, o *options, bin string, warm, n int, cmd func(i int) bottest.SlashCommand) (latencyStats, replyCounts, error) {
	ch, err := startSeededChild(o, bin, o.ackPeople)
	if err != nil {
		return latencyStats{}, nil, err
	}
	defer ch.close()
	ch.c66.InjectFault(cloud66test.Fault{Latency: o.latency})
	st, err := driveAcks(ctx, ch.sl, warm, n, o.rate, cmd)
	if err != nil {
		return st, nil, err
	}
	replies := waitReplies(ch.sl, warm+n, 2*time.Minute, classifyAckReply)
	return st, replies, nil
}

// classifyAckReply sorts the replies of the default mix.
func classifyAckReply(text string) string {
	switch {
	case strings.Contains(text, "Stacks (") || strings.Contains(text, "Cloud 66 from Slack") || strings.Contains(text, "linked to Cloud 66"):
		return "answered"
	case strings.Contains(text, "very busy"):
		return "refused as busy (queue full)"
	}
	return "other replies (an error, or a command outside the default mix)"
}
