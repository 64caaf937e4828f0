package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/storage/postgres"
)

// runReplicas measures the bot as a fleet of `c66bot serve` processes on
// one PostgreSQL schema (issue 12): ack latency and throughput with one
// and with three replicas, beside the bare slack-go floor and one replica
// on bbolt, all in the same run; token lookup and unseal on PostgreSQL
// against bbolt; failover time (the replica following a deploy SIGKILLed,
// until its card moves again); and PostgreSQL round trips per slash
// command, counted by a proxy (pgwire.go) in front of one replica.
//
// It needs a PostgreSQL server (-database-url, by default
// C66BOT_TEST_DATABASE_URL), makes a schema of its own there and drops it
// at the end. Without one it is skipped, saying so.
func runReplicas(ctx context.Context, o *options, r *scenarioResult) error {
	if o.databaseURL == "" {
		r.note("skipped: no PostgreSQL server; give one with -database-url or C66BOT_TEST_DATABASE_URL (bash .ci/postgres.sh starts one)")
		return nil
	}
	n := int(o.duration.Seconds() * o.rate)
	warm := int(o.warmup.Seconds() * o.rate)
	if n <= 0 {
		return errors.New("-duration × -rate gives no commands")
	}
	bin, err := o.botBinary(ctx)
	if err != nil {
		return err
	}
	dir, err := tempDir(o.tmp)
	if err != nil {
		return err
	}
	schemaURL, drop, err := createSchema(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			r.note("dropping the schema: %v", err)
		}
	}()
	o.logf("replicas: schema ready")

	clock := cloud66test.NewClock(time.Now())
	c66 := cloud66test.New(cloud66test.WithClock(clock), cloud66test.WithDeployDuration(10*time.Minute))
	defer c66.Close()
	key := newKey()

	// 2. Token lookup and unseal, PostgreSQL against bbolt, first, while
	// nothing else runs.
	people := max(o.linked, o.ackPeople, o.people)
	start := time.Now()
	if err := seedPG(ctx, schemaURL, key, c66, people); err != nil {
		return fmt.Errorf("seed PostgreSQL: %w", err)
	}
	r.note("seeding %d links on PostgreSQL (8 at a time, one transaction each) took %s", people, time.Since(start).Round(time.Millisecond))
	if err := benchLookups(ctx, o, r, dir, schemaURL, key, c66); err != nil {
		return err
	}

	mix := func(people int, conns []int) func(i int) bottest.SlashCommand {
		return func(i int) bottest.SlashCommand {
			c := bottest.SlashCommand{UserID: person(i % people), ChannelID: bottest.ChannelGeneral, Text: o.mix[i%len(o.mix)]}
			if len(conns) > 0 {
				c.Connection = conns[i%len(conns)]
			}
			return c
		}
	}
	floorRun := func() (latencyStats, error) {
		return floorAcks(ctx, warm, n, o.rate, mix(o.ackPeople, nil))
	}

	// 1. Ack latency and throughput: floor, bbolt ×1, PostgreSQL ×1 and ×3,
	// floor again.
	floorA, err := floorRun()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	o.logf("replicas: floor (before): %s", floorA)

	bolt, err := runBoltReplica(ctx, o, bin, dir, warm, n, mix(o.ackPeople, nil))
	if err != nil {
		return fmt.Errorf("bbolt replica: %w", err)
	}
	o.logf("replicas: bbolt ×1: %s", bolt.stats)

	sl := bottest.New()
	defer sl.Close()
	sl.SetChatWritePublic(true)
	fl := &pgFleet{bin: bin, dir: dir, slack: sl, c66: c66, url: schemaURL, key: key}
	defer fl.stopAll()

	if _, err := fl.start(ctx, "r1", schemaURL); err != nil {
		return err
	}
	clearLatency := c66.InjectFault(cloud66test.Fault{Latency: o.latency})
	one, err := driveAndAnswer(ctx, sl, warm, n, o.rate, mix(o.ackPeople, fl.conns()))
	if err != nil {
		clearLatency()
		return fmt.Errorf("PostgreSQL ×1: %w", err)
	}
	o.logf("replicas: PostgreSQL ×1: %s", one.stats)
	for _, name := range []string{"r2", "r3"} {
		if _, err := fl.start(ctx, name, schemaURL); err != nil {
			clearLatency()
			return err
		}
	}
	three, err := driveAndAnswer(ctx, sl, warm, n, o.rate, mix(o.ackPeople, fl.conns()))
	clearLatency()
	if err != nil {
		return fmt.Errorf("PostgreSQL ×3: %w", err)
	}
	o.logf("replicas: PostgreSQL ×3: %s", three.stats)

	// The throughput scenario's burst, on the fleet: -people at once,
	// spread over the three connections.
	want := fmt.Sprintf("Stacks (%d)", len(c66.Stacks()))
	for _, lat := range o.burstLatencies {
		clear := c66.InjectFault(cloud66test.Fault{Latency: lat})
		bo := burstOn(ctx, sl, o.people, fl.conns(), want, o.burstTimeout)
		clear()
		tag := fmt.Sprintf("3 replicas, %d at once, Cloud 66 latency %s", o.people, lat)
		id := fmt.Sprintf("replicas.pg3.burst.c66-%dms", lat.Milliseconds())
		r.add(atMost(id+".errors", "Errors, "+tag, float64(bo.errors), 0, "errors", fmtCount))
		r.add(atMost(id+".ack.p99", "Ack p99, "+tag, ms(bo.ack.P99), 50, "ms", fmtMs))
		r.add(atMost(id+".ack.over500", "Acks over 500 ms or never, "+tag, float64(bo.ack.Over500ms+bo.ack.Sent-bo.ack.Acked), 0, "acks", fmtCount))
		r.add(info(id+".wall", "Wall time, first command to last answer, "+tag, bo.wall.Seconds(), "s", fmtSec))
		r.note("%s: %d of %d answered, %d errors; wall %s; acks %s", tag, bo.answered, o.people, bo.errors, bo.wall.Round(time.Millisecond), bo.ack)
		if bo.firstBad != "" {
			r.note("%s: first bad reply: %s", tag, oneLine(bo.firstBad))
		}
	}

	floorB, err := floorRun()
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	o.logf("replicas: floor (after): %s", floorB)
	floor := floorA.merge(floorB)

	for _, row := range []struct {
		id, name string
		st       latencyStats
	}{
		{"floor", "floor (bare slack-go)", floor},
		{"bbolt1", "1 replica on bbolt", bolt.stats},
		{"pg1", "1 replica on PostgreSQL", one.stats},
		{"pg3", "3 replicas on PostgreSQL", three.stats},
	} {
		r.add(info("replicas."+row.id+".p50", "Ack p50, "+row.name, ms(row.st.P50), "ms", fmtMs))
		r.add(info("replicas."+row.id+".p99", "Ack p99, "+row.name, ms(row.st.P99), "ms", fmtMs))
		r.add(info("replicas."+row.id+".p999", "Ack p99.9, "+row.name, ms(row.st.P999), "ms", fmtMs))
	}
	for _, row := range []struct {
		id, name string
		d        driven
	}{
		{"bbolt1", "1 replica on bbolt", bolt},
		{"pg1", "1 replica on PostgreSQL", one},
		{"pg3", "3 replicas on PostgreSQL", three},
	} {
		r.add(info("replicas."+row.id+".acked", "Commands/s acked, "+row.name, row.d.acks.rate(), "/s", fmtRate))
		r.add(info("replicas."+row.id+".answered", "Commands/s answered, "+row.name, row.d.answers.rate(), "/s", fmtRate))
		r.add(info("replicas."+row.id+".lag", "Last answer after the last command was sent, "+row.name, row.d.lag().Seconds(), "s", fmtSec))
	}
	r.add(info("replicas.ratio.pg3.p99", "p99 3 replicas on PostgreSQL ÷ p99 floor", ratio(three.stats.P99, floor.P99), "×", fmtRatio))

	r.note("%d measured commands (%s in turn) offered at %.0f/s for %s after %s of warm-up, %d linked people, Cloud 66 latency %s; acked/s and answered/s are (count − 1) ÷ (last − first) of the measured commands' acks and good replies; the bot runs as `c66bot serve` child processes, the floor in this process", n, strings.Join(o.mix, ", "), o.rate, o.duration, o.warmup, o.ackPeople, o.latency)
	r.note("floor before: %s", floorA)
	r.note("floor after: %s", floorB)
	for _, row := range []struct {
		name string
		d    driven
	}{{"bbolt ×1", bolt}, {"PostgreSQL ×1", one}, {"PostgreSQL ×3", three}} {
		r.note("%s: %s; replies to the measured commands: %s; acks %s, good replies %s", row.name, row.d.stats, row.d.replies, row.d.acks, row.d.answers)
	}
	r.note("acks per connection with 3 replicas: %v", three.perConn)

	// 3. Failover.
	if err := measureFailover(ctx, o, r, fl, clock); err != nil {
		return fmt.Errorf("failover: %w", err)
	}

	// 4. Round trips per command, through the counting proxy.
	if err := measureRoundTrips(ctx, o, r, fl); err != nil {
		return fmt.Errorf("round trips: %w", err)
	}

	for _, rep := range fl.replicas {
		if w, e := rep.c.logCounts(); w+e > 0 {
			r.note("replica %s logged %d warnings and %d errors", rep.name, w, e)
		}
	}
	return nil
}

func fmtRate(v float64) string { return fmt.Sprintf("%.0f/s", v) }

// createSchema makes a new schema on the server at server and returns a
// URL whose connections use it (search_path, as pgtest does) and a
// function dropping it.
func createSchema(ctx context.Context, server string) (string, func() error, error) {
	random := make([]byte, 6)
	_, _ = rand.Read(random)
	schema := "bench_" + hex.EncodeToString(random)
	if err := pgExec(ctx, server, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create the schema: %w", err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return pgExec(ctx, server, "DROP SCHEMA "+schema+" CASCADE")
	}
	u, err := withSearchPath(server, schema)
	if err != nil {
		_ = drop()
		return "", nil, err
	}
	return u, drop, nil
}

func withSearchPath(u, schema string) (string, error) {
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return u + " search_path=" + schema, nil
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("-database-url: %w", err)
	}
	q := p.Query()
	q.Set("search_path", schema)
	p.RawQuery = q.Encode()
	return p.String(), nil
}

// viaProxy is u with its host and port replaced by addr.
func viaProxy(u, addr string) (string, error) {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "", errors.New("the round-trip count needs -database-url as a postgres:// URL with a host")
	}
	p.Host = addr
	return p.String(), nil
}

// upstreamAddr is the host:port of a postgres:// URL.
func upstreamAddr(u string) (string, error) {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), nil
}

func pgExec(ctx context.Context, u, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// seedPG saves people links, as seed does on bbolt, eight at a time.
func seedPG(ctx context.Context, u string, key []byte, c66 *cloud66test.Server, people int) error {
	db, err := postgres.Open(ctx, postgres.Options{URL: u, Keys: [][]byte{key}, Replica: "bench-seed", MaxConns: 8})
	if err != nil {
		return err
	}
	defer db.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < people; i += 8 {
				if err := db.Links().Save(ctx, benchLink(c66, i)); err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// benchLookups measures one Links().Get among -linked people on
// PostgreSQL (the seeded schema) and on bbolt (a file seeded the same way).
func benchLookups(ctx context.Context, o *options, r *scenarioResult, dir, u string, key []byte, c66 *cloud66test.Server) error {
	db, err := postgres.Open(ctx, postgres.Options{URL: u, Keys: [][]byte{key}, Replica: "bench"})
	if err != nil {
		return err
	}
	pg, err := benchGet(o.benchtime, o.linked, func(id storage.Identity) error {
		_, err := db.Links().Get(ctx, id)
		return err
	})
	db.Close()
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}

	path := filepath.Join(dir, "lookup.db")
	if _, err := seed(path, key, c66, seedSpec{people: o.linked}); err != nil {
		return fmt.Errorf("seed bbolt: %w", err)
	}
	st, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{key}})
	if err != nil {
		return err
	}
	bolt, err := benchGet(o.benchtime, o.linked, func(id storage.Identity) error {
		_, err := st.Links().Get(ctx, id)
		return err
	})
	st.Close()
	if err != nil {
		return fmt.Errorf("bbolt: %w", err)
	}
	for _, row := range []struct {
		id, name string
		res      testing.BenchmarkResult
	}{{"pg", "PostgreSQL", pg}, {"bbolt", "bbolt", bolt}} {
		r.add(info("replicas.getlink."+row.id, fmt.Sprintf("Token lookup and unseal, %s, %d people", row.name, o.linked), float64(row.res.NsPerOp())/1000, "µs", fmtUs))
		r.add(info("replicas.getlink."+row.id+".allocs", fmt.Sprintf("…allocs/op, %s", row.name), float64(row.res.AllocsPerOp()), "allocs", fmtCount))
		r.note("Links().Get on %s: %s; %d B/op, %d allocs/op", row.name, row.res.String(), row.res.AllocedBytesPerOp(), row.res.AllocsPerOp())
	}
	r.add(info("replicas.getlink.ratio", "Token lookup PostgreSQL ÷ bbolt", float64(pg.NsPerOp())/float64(max(bolt.NsPerOp(), 1)), "×", fmtRatio))
	return nil
}

// benchGet runs get over people identities, a different one each time,
// with testing.Benchmark.
func benchGet(benchtime string, people int, get func(storage.Identity) error) (testing.BenchmarkResult, error) {
	ids := make([]storage.Identity, people)
	for i := range ids {
		ids[i] = storage.Identity{Team: benchTeam, User: person(i)}
	}
	var failed error
	res, err := benchmark(benchtime, func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := get(ids[(i*7919)%len(ids)]); err != nil {
				failed = err
				b.FailNow()
			}
			i++
		}
	})
	if err == nil {
		err = failed
	}
	return res, err
}

// driven is one measured run of commands against a bot: the acks and the
// replies.
type driven struct {
	stats   latencyStats
	replies replyCounts
	good    int
	acks    span // first and last ack of the measured commands
	answers span // first and last good reply
	perConn map[int]int
	// lastSent is when the last measured command was due (sendAtRate
	// keeps to its schedule): the last answer's lag behind it shows
	// whether the bot kept up, as it would grow with -duration if not.
	lastSent time.Time
}

func (d driven) lag() time.Duration { return d.answers.last.Sub(d.lastSent) }

// span is when the first and the last of count events happened.
type span struct {
	first, last time.Time
	count       int
}

func (s *span) add(t time.Time) {
	if s.count == 0 || t.Before(s.first) {
		s.first = t
	}
	if t.After(s.last) {
		s.last = t
	}
	s.count++
}

// rate is the events per second between the first and the last: count-1
// intervals, as the commands were sent count-1 intervals apart.
func (s span) rate() float64 {
	d := s.last.Sub(s.first)
	if s.count < 2 || d <= 0 {
		return 0
	}
	return float64(s.count-1) / d.Seconds()
}

func (s span) String() string {
	return fmt.Sprintf("%d over %s", s.count, s.last.Sub(s.first).Round(time.Millisecond))
}

// driveAndAnswer sends warm unmeasured commands, then n measured ones at
// rate, and waits for the measured ones' acks and replies.
func driveAndAnswer(ctx context.Context, s *bottest.Server, warm, n int, rate float64, cmd func(i int) bottest.SlashCommand) (driven, error) {
	if warm > 0 {
		ids := sendAtRate(ctx, s, warm, rate, cmd)
		collectAcks(s, ids, 5*time.Second)
		waitAnswers(s, ids, time.Minute)
	}
	d := driven{lastSent: time.Now().Add(time.Duration(float64(n-1) / rate * float64(time.Second)))}
	ids := sendAtRate(ctx, s, n, rate, func(i int) bottest.SlashCommand { return cmd(warm + i) })
	if err := ctx.Err(); err != nil {
		return d, err
	}
	acks := collectAcks(s, ids, 10*time.Second)
	d.stats = summarise(ids, acks)
	d.perConn = map[int]int{}
	for _, a := range acks {
		d.perConn[a.Connection]++
		d.acks.add(a.At)
	}
	d.replies, d.answers = waitAnswers(s, ids, 2*time.Minute)
	d.good = d.answers.count
	return d, nil
}

// waitAnswers waits for the response_url reply to each of ids (or until
// timeout), and counts them by kind as the ack scenario does; it returns
// the counts and when the good ones came.
func waitAnswers(s *bottest.Server, ids []string, timeout time.Duration) (replyCounts, span) {
	want := map[string]bool{}
	for _, id := range ids {
		if id != "" {
			want[id] = true
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		seen := map[string]bool{}
		counts := replyCounts{}
		var good span
		for _, m := range s.Messages() {
			if m.Kind != bottest.KindResponseURL || !want[m.EnvelopeID] || seen[m.EnvelopeID] {
				continue
			}
			seen[m.EnvelopeID] = true
			kind := classifyReply(m.Text + " " + string(m.Blocks))
			counts[kind]++
			if kind == "answered" {
				good.add(m.At)
			}
		}
		if len(seen) == len(want) || time.Now().After(deadline) {
			if missing := len(ids) - len(seen); missing > 0 {
				counts["missing"] = missing
			}
			return counts, good
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// classifyReply tells the replies of the ack mix apart, as runAck does.
func classifyReply(text string) string {
	switch {
	case strings.Contains(text, "Stacks (") || strings.Contains(text, "Cloud 66 from Slack") || strings.Contains(text, "linked to Cloud 66"):
		return "answered"
	case strings.Contains(text, "very busy"):
		return "refused as busy (queue full)"
	}
	return "other replies (an error, or a command outside the default mix)"
}

// runBoltReplica is one `c66bot serve` on its own bbolt file, its own fake
// Slack and Cloud 66, driven as the PostgreSQL fleet is.
func runBoltReplica(ctx context.Context, o *options, bin, dir string, warm, n int, cmd func(int) bottest.SlashCommand) (driven, error) {
	sl := bottest.New()
	defer sl.Close()
	sl.SetChatWritePublic(true)
	c66 := cloud66test.New()
	defer c66.Close()
	key := newKey()
	db := filepath.Join(dir, "bolt1.db")
	if _, err := seed(db, key, c66, seedSpec{people: o.ackPeople}); err != nil {
		return driven{}, err
	}
	c, err := startChild(bin, sl, c66, db, key)
	if err != nil {
		return driven{}, err
	}
	defer c.stop()
	if err := c.waitConnected(sl, time.Minute); err != nil {
		return driven{}, err
	}
	clearLatency := c66.InjectFault(cloud66test.Fault{Latency: o.latency})
	defer clearLatency()
	return driveAndAnswer(ctx, sl, warm, n, o.rate, cmd)
}

// pgFleet is `c66bot serve` processes on one PostgreSQL schema and one
// fake Slack, each with its own Socket Mode connection.
type pgFleet struct {
	bin   string
	dir   string
	slack *bottest.Server
	c66   *cloud66test.Server
	url   string
	key   []byte

	replicas []*pgReplica
}

type pgReplica struct {
	name   string
	conn   int // its connection in the fake Slack
	c      *child
	killed bool
}

// start starts replica name on the database at u and waits for its
// socket: the fake Slack's connection that was not there before.
func (f *pgFleet) start(ctx context.Context, name, u string) (*pgReplica, error) {
	drop := append(slices.Clone(settingsEnv), "C66BOT_DATABASE_URL", "C66BOT_REPLICA")
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, k)
	})
	env = append(env,
		"SLACK_APP_TOKEN="+f.slack.AppToken,
		"SLACK_BOT_TOKEN="+f.slack.BotToken,
		"SLACK_API_URL="+f.slack.APIURL(),
		"CLOUD66_URL="+f.c66.URL,
		"CLOUD66_CLIENT_ID="+f.c66.ClientID,
		"CLOUD66_CLIENT_SECRET="+f.c66.ClientSecret,
		"C66BOT_LISTEN=127.0.0.1:0",
		"C66BOT_DATABASE_URL="+u,
		"C66BOT_REPLICA="+name,
		"C66BOT_SECRET_KEY="+base64.StdEncoding.EncodeToString(f.key),
		"C66BOT_LOG_LEVEL=warn",
		"C66BOT_LOG_FORMAT=json",
	)
	// Its own working directory, so nothing a replica writes next to
	// itself meets another's.
	wd := filepath.Join(f.dir, name)
	if err := os.MkdirAll(wd, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(wd, "serve.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	before := f.slack.ConnectionIDs()
	cmd := exec.Command(f.bin, "serve")
	cmd.Env, cmd.Dir = env, wd
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, logPath: logPath, logFile: lf, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	rep := &pgReplica{name: name, c: c}
	f.replicas = append(f.replicas, rep)

	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, id := range f.slack.ConnectionIDs() {
			if !slices.Contains(before, id) {
				rep.conn = id
				return rep, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-c.done:
			c.done <- err
			return nil, fmt.Errorf("replica %s exited at start (%v); its log:\n%s", name, err, c.logTail())
		case <-deadline.C:
			return nil, fmt.Errorf("replica %s never connected; its log:\n%s", name, c.logTail())
		case <-tick.C:
		}
	}
}

// conns are the live replicas' connections.
func (f *pgFleet) conns() []int {
	var out []int
	for _, r := range f.replicas {
		if !r.killed {
			out = append(out, r.conn)
		}
	}
	return out
}

func (f *pgFleet) replica(name string) *pgReplica {
	for _, r := range f.replicas {
		if r.name == name {
			return r
		}
	}
	return nil
}

// kill SIGKILLs a replica and waits for it to be gone: no deferred code,
// no lease given back.
func (f *pgFleet) kill(r *pgReplica) error {
	if err := r.c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	err := <-r.c.done
	r.c.done <- err
	r.killed = true
	return nil
}

func (f *pgFleet) stopAll() {
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Go(func() { _ = r.c.stop() })
	}
	wg.Wait()
}

// leaseOwner is the replica holding a live lease whose key starts with
// prefix, read from the leases table.
func (f *pgFleet) leaseOwner(ctx context.Context, conn *pgx.Conn, prefix string) string {
	var owner string
	err := conn.QueryRow(ctx,
		`SELECT owner FROM leases WHERE key LIKE $1 AND owner <> '' AND expires_at > now() ORDER BY expires_at DESC LIMIT 1`,
		prefix+"%").Scan(&owner)
	if err != nil {
		return ""
	}
	return owner
}

// poll calls cond every 10 ms until it holds, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
	return nil
}

// measureFailover starts a staging deploy (Cloud 66 takes 10 minutes on
// its clock), SIGKILLs the replica holding the watch's lease, lets Cloud 66
// finish the deploy at once, and measures from the kill to the next
// chat.update of the card (another replica took the watch over), and to
// the card saying deployed.
func measureFailover(ctx context.Context, o *options, r *scenarioResult, fl *pgFleet, clock *cloud66test.Clock) error {
	conn, err := pgx.Connect(ctx, fl.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := fl.slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: person(0), ChannelID: bottest.ChannelGeneral, Text: "deploy shop:staging"}); err != nil {
		return err
	}
	var card bottest.Message
	if err := poll(ctx, time.Minute, "the deploy card", func() bool {
		for _, m := range fl.slack.PostsIn(bottest.ChannelGeneral) {
			if m.ThreadTS == "" {
				card = m
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	// The kill comes once the watch is leased and its record holds the
	// card's ts: a replica killed between posting the card and storing
	// its ts leaves a watch whose taker cannot know the card, which is
	// another measurement.
	db, err := postgres.Open(ctx, postgres.Options{URL: fl.url, Keys: [][]byte{fl.key}, Replica: "bench-observer", MaxConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	var owner string
	if err := poll(ctx, time.Minute, "the watch's lease and the card's ts in its record", func() bool {
		owner = fl.leaseOwner(ctx, conn, "watch:")
		ws, err := db.Watches().Active(ctx)
		return owner != "" && err == nil && len(ws) == 1 && ws[0].MessageTS == card.TS
	}); err != nil {
		return err
	}
	victim := fl.replica(owner)
	if victim == nil {
		return fmt.Errorf("the watch is leased to %q, not a replica of the fleet", owner)
	}
	if err := fl.kill(victim); err != nil {
		return err
	}
	killed := time.Now()
	o.logf("replicas: killed %s, the watch's holder", owner)
	clock.Advance(15 * time.Minute)

	var (
		edit  time.Time
		taker string // the replica seen holding the watch since
	)
	if err := poll(ctx, 2*time.Minute, "the card's next edit", func() bool {
		if o := fl.leaseOwner(ctx, conn, "watch:"); o != "" && o != owner {
			taker = o
		}
		for _, c := range fl.slack.Calls() {
			if c.Method == "chat.update" && c.Form.Get("ts") == card.TS && c.At.After(killed) {
				edit = c.At
				return true
			}
		}
		return false
	}); err != nil {
		var posts, edits int
		for _, m := range fl.slack.PostsIn(bottest.ChannelGeneral) {
			if m.ThreadTS == "" && m.At.After(killed) {
				posts++
			}
		}
		for _, c := range fl.slack.Calls() {
			if c.Method == "chat.update" && c.At.After(killed) {
				edits++
			}
		}
		return fmt.Errorf("%w (after the kill of %s: %d new top-level posts, %d chat.update calls on any message, lease seen with %q)", err, owner, posts, edits, taker)
	}
	var done time.Time
	if err := poll(ctx, time.Minute, "the card to say deployed", func() bool {
		m, ok := fl.slack.Message(bottest.ChannelGeneral, card.TS)
		if ok && strings.HasPrefix(m.Text, "✅") {
			done = time.Now()
			return true
		}
		return false
	}); err != nil {
		return err
	}
	r.add(atMost("replicas.failover", "Failover: replica killed → card edited again", edit.Sub(killed).Seconds(), 30, "s", fmtSec))
	r.add(info("replicas.failover.done", "…→ card says deployed (seen by polling)", done.Sub(killed).Seconds(), "s", fmtSec))
	r.note("failover: %s held the watch of `deploy shop:staging` and was SIGKILLed; Cloud 66 finished the deploy at once; the next chat.update of the card came %s later (the watch's lease seen held since by %s); the watch lease's TTL is 15 s and replicas claim unheld watches every 5 s, so up to 20 s is expected",
		owner, edit.Sub(killed).Round(10*time.Millisecond), orUnknown(taker))
	if taker == "" {
		r.note("failover: no replica was seen holding the watch's lease before the edit (taken, used and given back within one 10 ms poll?)")
	}
	return nil
}

// measureRoundTrips starts one more replica whose connections go through
// the counting proxy, counts its round trips while idle, then during
// -rt-commands `help` and as many `stacks` commands sent to its socket,
// and reports (round trips − the idle rate × the time) ÷ commands.
func measureRoundTrips(ctx context.Context, o *options, r *scenarioResult, fl *pgFleet) error {
	up, err := upstreamAddr(fl.url)
	if err != nil {
		return err
	}
	px, err := startPGProxy(up)
	if err != nil {
		return err
	}
	defer px.close()
	u, err := viaProxy(fl.url, px.addr())
	if err != nil {
		return err
	}
	rep, err := fl.start(ctx, "rt", u)
	if err != nil {
		return err
	}
	// Its first few seconds open the pool and check the schema; a command
	// to it first makes sure those are over.
	warm := sendAtRate(ctx, fl.slack, 1, 1, func(int) bottest.SlashCommand {
		return bottest.SlashCommand{UserID: person(0), ChannelID: bottest.ChannelGeneral, Text: "help", Connection: rep.conn}
	})
	waitAnswers(fl.slack, warm, time.Minute)

	idleStart, idleBefore := time.Now(), px.roundTrips()
	t := time.NewTimer(o.rtIdle)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	idleRate := float64(px.roundTrips()-idleBefore) / time.Since(idleStart).Seconds()
	r.add(info("replicas.rt.idle", "PostgreSQL round trips/s of an idle replica", idleRate, "/s", func(v float64) string { return fmt.Sprintf("%.2f/s", v) }))

	for _, text := range []string{"help", "stacks"} {
		start, before := time.Now(), px.roundTrips()
		ids := sendAtRate(ctx, fl.slack, o.rtCommands, o.rate, func(i int) bottest.SlashCommand {
			return bottest.SlashCommand{UserID: person(i % o.ackPeople), ChannelID: bottest.ChannelGeneral, Text: text, Connection: rep.conn}
		})
		replies, good := waitAnswers(fl.slack, ids, 2*time.Minute)
		// The reply is posted after the command's last query, so the
		// count is complete once every reply is in.
		elapsed := time.Since(start).Seconds()
		total := px.roundTrips() - before
		per := (float64(total) - idleRate*elapsed) / float64(o.rtCommands)
		r.add(info("replicas.rt."+text, fmt.Sprintf("PostgreSQL round trips per /c66 %s", text), per, "round trips", func(v float64) string { return fmt.Sprintf("%.2f", v) }))
		r.note("round trips, %d `%s` to one replica through the proxy: %d in %.2f s, less %.1f idle ones; replies: %s", o.rtCommands, text, total, elapsed, idleRate*elapsed, replies)
		if good.count != o.rtCommands {
			r.note("only %d of the %d `%s` were answered properly", good.count, o.rtCommands, text)
		}
	}
	if n := px.errs.Load(); n > 0 {
		r.note("%d connections' streams did not parse: the count is low", n)
	}
	r.note("round trips = Sync and simple Query messages from the replica to PostgreSQL (pgwire.go); idle rate over %s (leases renewed and claimed, outbox polled)", o.rtIdle)
	return nil
}
