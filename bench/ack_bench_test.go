package main

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
)

// BenchmarkAck is the unloaded counterpart of the ack scenario: one slash
// command at a time, from the fake Slack writing the envelope to reading
// its ack. ack-µs is bottest's own Latency (frame written to ack read), the
// figure the scenario reports; ns/op is the driver's whole loop.
//
//   - floor: a bare slack-go Socket Mode client that only acks;
//   - floor+work: the same, starting 300 µs of CPU work in a new goroutine
//     right after each ack, as the bot hands a command to its pool. slack-go's
//     Ack only queues the frame for its writer goroutine, so work started
//     at once competes with that write;
//   - bot: the real bot running `help` (no Cloud 66); the next command goes
//     only after the reply, so no command's work overlaps another's ack.
//
// Run it with
//
//	go test -run '^$' -bench Ack ./bench/
func BenchmarkAck(b *testing.B) {
	floor := func(afterAck func()) func(b *testing.B) {
		return func(b *testing.B) {
			s := bottest.New()
			defer s.Close()
			done := make(chan struct{}, 1)
			var work func()
			if afterAck != nil {
				work = func() { afterAck(); done <- struct{}{} }
			}
			f, err := startFloor(s, work)
			if err != nil {
				b.Fatal(err)
			}
			defer f.stop()
			benchAck(b, s, "", func(string) {
				if work != nil {
					<-done
				}
			})
		}
	}
	b.Run("floor", floor(nil))
	b.Run("floor+work", floor(func() { spin(300 * time.Microsecond) }))
	b.Run("bot", func(b *testing.B) {
		e, err := startInproc(inprocOptions{parentDir: os.TempDir(), people: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer e.close()
		benchAck(b, e.slack, person(0), func(id string) {
			if _, err := e.slack.WaitMessage(b.Context(), func(m bottest.Message) bool {
				return m.Kind == bottest.KindResponseURL && m.EnvelopeID == id
			}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// benchAck sends `help` as user and waits for its ack, then calls after.
func benchAck(b *testing.B, s *bottest.Server, user string, after func(id string)) {
	ctx := b.Context()
	var total time.Duration
	n := 0
	for b.Loop() {
		id, err := s.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, Text: "help"})
		if err != nil {
			b.Fatal(err)
		}
		a, err := s.WaitAck(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		total += a.Latency
		n++
		after(id)
	}
	if n > 0 {
		b.ReportMetric(float64(total.Microseconds())/float64(n), "ack-µs")
	}
}

// spin burns CPU for d.
func spin(d time.Duration) {
	end := time.Now().Add(d)
	n := 0
	for time.Now().Before(end) {
		n++
	}
	runtime.KeepAlive(n)
}
