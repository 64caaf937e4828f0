package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	// The ack scenario starts this binary again as the floor's process.
	if os.Getenv(floorChildEnv) == "1" {
		os.Exit(floorChildMain())
	}
	pgtest.Main(m)
}

// TestScenariosTiny runs every scenario at a tiny scale so the program keeps
// compiling and working. It checks that each one ran and produced its
// figures, not the targets: those are for the real run on a quiet machine.
func TestScenariosTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the bot several times, two of them as a child process")
	}
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	o, err := parseFlags([]string{
		"-duration", "200ms", "-warmup", "0s", "-rate", "50", "-latency", "5ms",
		"-people", "10", "-burst-latency", "0", "-idle-window", "50ms",
		"-reply-people", "2",
		"-speedup", "600", "-deploy-duration", "2m",
		"-linked", "10", "-watches", "5", "-subscriptions", "10", "-settle", "100ms",
		"-benchtime", "50x", "-json", jsonPath,
		// replicas has a test of its own (TestReplicasTiny); here it
		// shows it skips without a server.
		"-database-url", "",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := execute(t.Context(), o, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("all scenarios in %s", time.Since(start).Round(time.Millisecond))

	got := map[string]figure{}
	for _, s := range rep.Results {
		t.Logf("%s: %s", s.Scenario, s.Elapsed.Round(time.Millisecond))
		if s.Error != "" {
			t.Errorf("scenario %s failed: %s", s.Scenario, s.Error)
		}
		for _, f := range s.Figures {
			got[f.ID] = f
		}
	}
	for _, id := range []string{
		"ack.bot.p99", "ack.floor.p99", "ack.ratio.p99", "ack.proc.ratio.p99", "ack.proc.ratio.p999",
		"throughput.c66-0ms.errors", "throughput.c66-0ms.cpu", "throughput.c66-0ms.ack.p99",
		"throughput.c66-0ms.allocs", "throughput.floor.p99",
		"reply.cold.p99", "reply.warm.p99",
		"requests.servers.cold", "requests.servers.warm", "requests.deploy.total",
		"memory.idle.rss", "memory.loaded.rss", "storage.getlink", "storage.db",
	} {
		if _, ok := got[id]; !ok {
			t.Errorf("no figure %s", id)
		}
	}
	// Correctness, whatever the machine: every command answered properly,
	// every watch resumed, every ack arrived.
	if f := got["throughput.c66-0ms.errors"]; f.Value != 0 {
		t.Errorf("throughput errors = %v", f.Value)
	}
	if f := got["ack.bot.over100ms"]; f.ID != "" && f.Value != 0 {
		t.Logf("acks over 100 ms (a busy machine?): %v", f.Value)
	}
	if f := got["memory.loaded.rss"]; f.Value <= 0 {
		t.Errorf("loaded RSS = %v", f.Value)
	}
	if f := got["requests.deploy.total"]; f.Value < 3 {
		t.Errorf("a followed deployment cost only %v requests", f.Value)
	}
	for _, s := range rep.Results {
		for _, n := range s.Notes {
			if strings.Contains(n, "never acked") || strings.Contains(n, "unexpected reply") {
				t.Errorf("%s: %s", s.Scenario, n)
			}
		}
	}

	for _, s := range rep.Results {
		if s.Scenario == "replicas" && (len(s.Figures) > 0 || len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "skipped")) {
			t.Errorf("replicas without a server: %d figures, notes %q; want it skipped, saying so", len(s.Figures), s.Notes)
		}
	}

	var md, table bytes.Buffer
	rep.writeMarkdown(&md)
	rep.writeTable(&table)
	if !strings.Contains(md.String(), "| ack | Ack latency p99, bot | ≤ 5.00 ms |") {
		t.Errorf("markdown lacks the ack row:\n%s", md.String())
	}
	if err := rep.writeJSON(jsonPath); err != nil {
		t.Fatal(err)
	}
	var back report
	if b, err := os.ReadFile(jsonPath); err != nil || json.Unmarshal(b, &back) != nil || len(back.Results) != len(scenarios) {
		t.Errorf("JSON does not read back (%v)", err)
	}
	if t.Failed() {
		t.Logf("table:\n%s", table.String())
	}
}

// TestReplicasTiny runs the replicas scenario at a tiny scale on the
// PostgreSQL server of C66BOT_TEST_DATABASE_URL (skipped, loudly, without
// one). Its failover part waits out the watch lease's real TTL (15 s).
func TestReplicasTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds c66bot and runs five of it, four on PostgreSQL")
	}
	server := pgtest.ServerURL(t)
	o, err := parseFlags([]string{
		"-scenario", "replicas", "-database-url", server,
		"-duration", "200ms", "-warmup", "0s", "-rate", "50", "-latency", "5ms",
		"-linked", "10", "-benchtime", "50x", "-rt-commands", "10", "-rt-idle", "500ms",
		"-people", "10", "-burst-latency", "0",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := execute(t.Context(), o, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results", len(rep.Results))
	}
	res := rep.Results[0]
	if res.Error != "" {
		t.Fatalf("replicas failed: %s", res.Error)
	}
	got := map[string]figure{}
	for _, f := range res.Figures {
		got[f.ID] = f
	}
	for _, id := range []string{
		"replicas.floor.p99", "replicas.bbolt1.p99", "replicas.pg1.p99", "replicas.pg3.p999",
		"replicas.pg1.answered", "replicas.pg3.acked", "replicas.getlink.pg", "replicas.getlink.bbolt.allocs",
		"replicas.failover", "replicas.rt.idle", "replicas.rt.help", "replicas.rt.stacks",
		"replicas.pg3.burst.c66-0ms.ack.p99",
	} {
		if _, ok := got[id]; !ok {
			t.Errorf("no figure %s", id)
		}
	}
	// Correctness, not speed: the card moved after the kill, a command
	// costs at least its envelope's dedup round trip, and `stacks` also
	// reads its link.
	if f := got["replicas.pg3.burst.c66-0ms.errors"]; f.ID == "" || f.Value != 0 {
		t.Errorf("the fleet's burst: %v errors", f.Value)
	}
	if f := got["replicas.failover"]; f.Value <= 0 {
		t.Errorf("failover = %v", f.Value)
	}
	if h, s := got["replicas.rt.help"].Value, got["replicas.rt.stacks"].Value; h < 0.5 || s <= h {
		t.Errorf("round trips per help %v, per stacks %v", h, s)
	}
	for _, n := range res.Notes {
		if strings.Contains(n, "missing") || strings.Contains(n, "other replies") || strings.Contains(n, "only ") || strings.Contains(n, "did not parse") {
			t.Errorf("note: %s", n)
		}
	}
	if t.Failed() {
		var table bytes.Buffer
		rep.writeTable(&table)
		t.Logf("table:\n%s", table.String())
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-scenario", "ack,storage", "-burst-latency", "0,1s"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.scenarios, ",") != "ack,storage" || len(o.burstLatencies) != 2 || o.burstLatencies[1] != time.Second {
		t.Errorf("parsed %v %v", o.scenarios, o.burstLatencies)
	}
	for _, bad := range [][]string{{"-scenario", "nope"}, {"-rate", "0"}, {"-burst-latency", "x"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	st, err := parseStatus(strings.NewReader("Name:\tc66bot\nVmHWM:\t   20480 kB\nVmRSS:\t   16384 kB\nRssAnon:\t 2048 kB\nThreads:\t8\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st["VmRSS"] != 16384 || st["VmHWM"] != 20480 || st["RssAnon"] != 2048 || st["Threads"] != 8 {
		t.Errorf("parsed %v", st)
	}
}

func TestQuantile(t *testing.T) {
	var ls []time.Duration
	for i := 1; i <= 100; i++ {
		ls = append(ls, time.Duration(i)*time.Millisecond)
	}
	st := statsOf(101, ls)
	if st.P50 != 50*time.Millisecond || st.P99 != 99*time.Millisecond || st.Max != 100*time.Millisecond || st.Acked != 100 {
		t.Errorf("stats %+v", st)
	}
	m := st.merge(statsOf(1, []time.Duration{time.Second}))
	if m.Max != time.Second || m.Acked != 101 || m.Sent != 102 || m.Over100ms != 1 {
		t.Errorf("merged %+v", m)
	}
}
