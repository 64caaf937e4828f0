// Command bench measures c66bot against the targets of docs/benchmarks.md:
// ack latency beside a bare slack-go floor, throughput and CPU per command,
// Cloud 66 requests per command and per followed deployment, resident
// memory, and token lookup cost; and, given a PostgreSQL server
// (-database-url), the same for a fleet of replicas beside one on bbolt,
// failover time and PostgreSQL round trips per command. It runs the real bot (bot.New + Run, or the
// built cmd/c66bot as a child process where the fakes must stay out of the
// measured process) against the fake Slack (bot/bottest) and the fake
// Cloud 66 (cloud66/cloud66test) on loopback.
//
//	go run ./bench                          # every scenario, a table
//	go run ./bench -scenario ack -duration 10s -rate 200
//	go run ./bench -markdown -json out.json # a table for docs/benchmarks.md
//
// The exit status is 1 when a target is missed or a scenario fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
)

type scenario struct {
	name string
	run  func(context.Context, *options, *scenarioResult) error
}

// benchGCPercent is this process's GOGC (see main).
const benchGCPercent = 400

// scenarios in the order `all` runs them.
var scenarios = []scenario{
	{"ack", runAck},
	{"throughput", runThroughput},
	{"reply", runReply},
	{"requests", runRequests},
	{"memory", runMemory},
	{"storage", runStorage},
	{"replicas", runReplicas}, // skipped, saying so, without -database-url
}

type options struct {
	scenarios []string

	// ack
	duration  time.Duration
	warmup    time.Duration
	rate      float64
	ackPeople int
	latency   time.Duration
	mix       []string

	// throughput
	people         int
	burstLatencies []time.Duration
	burstTimeout   time.Duration
	idleWindow     time.Duration

	// reply
	replyPeople int

	// requests
	speedup        float64
	deployDuration time.Duration

	// memory and storage
	linked        int
	watches       int
	subscriptions int
	settle        time.Duration
	benchtime     string

	// replicas
	databaseURL string
	rtCommands  int
	rtIdle      time.Duration

	botBin   string
	jsonPath string
	markdown bool
	verbose  bool
	tmp      string
	stderr   io.Writer

	buildOnce sync.Once
	built     string
	buildErr  error
}

func (o *options) logf(format string, args ...any) {
	if o.verbose {
		fmt.Fprintf(o.stderr, format+"\n", args...)
	}
}

// botBinary builds cmd/c66bot once per run (or uses -bot-bin).
func (o *options) botBinary(ctx context.Context) (string, error) {
	o.buildOnce.Do(func() {
		o.built, o.buildErr = buildBot(ctx, o.botBin, o.tmp)
	})
	return o.built, o.buildErr
}

func main() {
	if os.Getenv(floorChildEnv) == "1" {
		os.Exit(floorChildMain())
	}
	// This process is the measuring instrument: the fakes of Slack and
	// Cloud 66 (remote services in real life) and the driver. Collecting
	// less often keeps its garbage collector's pauses and assists out of
	// the acks it times. The bot and the floor run as children with Go's
	// defaults; the ack scenario's in-process runs share this setting.
	debug.SetGCPercent(benchGCPercent)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{stderr: stderr}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scen := fs.String("scenario", "all", "comma-separated: ack, throughput, reply, requests, memory, storage, replicas, or all")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "ack: how long commands are sent (measured)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "ack: commands sent at -rate before the measured ones, not counted")
	fs.Float64Var(&o.rate, "rate", 200, "ack: slash commands per second")
	fs.IntVar(&o.ackPeople, "ack-people", 4, "ack: linked people sending the commands")
	fs.DurationVar(&o.latency, "latency", 300*time.Millisecond, "ack: Cloud 66's latency on every API request")
	mix := fs.String("mix", "stacks,help,whoami", "ack: the commands sent, in turn, comma-separated")
	fs.IntVar(&o.people, "people", 1000, "throughput: `n` linked people, each sending /c66 stacks at once")
	lats := fs.String("burst-latency", "0,300ms", "throughput: Cloud 66 latencies to run the burst with, comma-separated (CPU per command is taken from 0)")
	fs.DurationVar(&o.burstTimeout, "burst-timeout", 3*time.Minute, "throughput: how long to wait for every answer")
	fs.DurationVar(&o.idleWindow, "idle-window", time.Second, "throughput: how long the idle bot's CPU is measured, to subtract it from the burst's")
	fs.IntVar(&o.replyPeople, "reply-people", 50, "reply: `n` people, one after another, each sending a cold then a warm /c66 stacks (Cloud 66 at -latency)")
	fs.Float64Var(&o.speedup, "speedup", 200, "requests: how much faster than real time the followed deployment's clock runs")
	fs.DurationVar(&o.deployDuration, "deploy-duration", 30*time.Minute, "requests: how long the followed deployment takes on Cloud 66's clock")
	fs.IntVar(&o.linked, "linked", 10000, "memory, storage: linked people in the database")
	fs.IntVar(&o.watches, "watches", 500, "memory: active watches in the database")
	fs.IntVar(&o.subscriptions, "subscriptions", 1000, "memory: subscriptions in the database")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "memory: wait after the bot connects before reading its RSS")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "storage: testing.Benchmark's -test.benchtime (a duration or Nx)")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("C66BOT_TEST_DATABASE_URL"), "replicas: a PostgreSQL server (the scenario makes a schema of its own there and drops it); empty skips the scenario")
	fs.IntVar(&o.rtCommands, "rt-commands", 200, "replicas: `n` help and n stacks commands whose PostgreSQL round trips are counted")
	fs.DurationVar(&o.rtIdle, "rt-idle", 10*time.Second, "replicas: how long an idle replica's round trips are counted, to subtract them")
	fs.StringVar(&o.botBin, "bot-bin", "", "memory, throughput, replicas: a built c66bot binary (default: cmd/c66bot built as the Dockerfile builds it, into a temp dir)")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&o.markdown, "markdown", false, "print a Markdown table for docs/benchmarks.md instead of the plain one")
	fs.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for s := range strings.SplitSeq(*scen, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			for _, sc := range scenarios {
				o.scenarios = append(o.scenarios, sc.name)
			}
		case slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.name == s }):
			o.scenarios = append(o.scenarios, s)
		default:
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
	}
	for c := range strings.SplitSeq(*mix, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.mix = append(o.mix, c)
		}
	}
	if len(o.mix) == 0 {
		return nil, errors.New("-mix is empty")
	}
	for l := range strings.SplitSeq(*lats, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(l))
		if err != nil {
			return nil, fmt.Errorf("-burst-latency: %w", err)
		}
		o.burstLatencies = append(o.burstLatencies, d)
	}
	switch {
	case o.rate <= 0:
		return nil, errors.New("-rate must be positive")
	case o.speedup < 1:
		return nil, errors.New("-speedup must be at least 1")
	case o.ackPeople < 1 || o.people < 1 || o.linked < 1:
		return nil, errors.New("-ack-people, -people and -linked must be at least 1")
	case o.rtCommands < 1:
		return nil, errors.New("-rt-commands must be at least 1")
	case o.watches < 0 || o.subscriptions < 0:
		return nil, errors.New("-watches and -subscriptions must not be negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	rep, err := execute(ctx, o, "go run ./bench "+strings.Join(args, " "))
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if o.markdown {
		rep.writeMarkdown(stdout)
	} else {
		rep.writeTable(stdout)
	}
	if o.jsonPath != "" {
		if err := rep.writeJSON(o.jsonPath); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
	}
	if rep.failed() {
		return 1
	}
	return 0
}

// execute runs the chosen scenarios in order, each to the end even when an
// earlier one failed.
func execute(ctx context.Context, o *options, command string) (*report, error) {
	tmp, err := os.MkdirTemp("", "c66bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	o.tmp = tmp
	rep := &report{Command: strings.TrimSpace(command), Machine: describeMachine()}
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		for _, sc := range scenarios {
			if sc.name != name {
				continue
			}
			res := scenarioResult{Scenario: name}
			o.logf("%s: running", name)
			start := time.Now()
			if err := sc.run(ctx, o, &res); err != nil {
				res.Error = err.Error()
				o.logf("%s: %v", name, err)
			}
			res.Elapsed = time.Since(start)
			o.logf("%s: done in %s", name, res.Elapsed.Round(time.Millisecond))
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Machine.LoadAfter = loadAvg()
	return rep, ctx.Err()
}
