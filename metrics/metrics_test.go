package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func newTest(t *testing.T, o Options) *Metrics {
	t.Helper()
	if o.Commands == nil {
		o.Commands = []string{"help", "stacks", "deploy"}
	}
	if o.Outcomes == nil {
		o.Outcomes = []string{"ok", "usage", "throttled"}
	}
	return New(o)
}

// families gathers m's registry by family name.
func families(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range mfs {
		out[f.GetName()] = f
	}
	return out
}

// find returns the metric of family name whose labels are exactly labels.
func find(t *testing.T, m *Metrics, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f := families(t, m)[name]
	if f == nil {
		return nil
	}
next:
	for _, mt := range f.GetMetric() {
		if len(mt.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range mt.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue next
			}
		}
		return mt
	}
	return nil
}

func counter(t *testing.T, m *Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mt := find(t, m, name, labels)
	if mt == nil {
		t.Fatalf("no %s%v", name, labels)
	}
	return mt.GetCounter().GetValue()
}

func TestCommandLabelsAreBounded(t *testing.T) {
	m := newTest(t, Options{})
	m.Command("stacks", "ok", 30*time.Millisecond)
	m.Command("stacks", "ok", 10*time.Millisecond)
	m.Command("frobnicate", "usage", time.Millisecond)
	m.Command("help", "something new", time.Millisecond)

	if got := counter(t, m, "c66bot_commands_total", map[string]string{"command": "stacks", "outcome": "ok"}); got != 2 {
		t.Errorf("stacks ok = %v, want 2", got)
	}
	if got := counter(t, m, "c66bot_commands_total", map[string]string{"command": "unknown", "outcome": "usage"}); got != 1 {
		t.Errorf("unknown usage = %v, want 1", got)
	}
	if got := counter(t, m, "c66bot_commands_total", map[string]string{"command": "help", "outcome": "other"}); got != 1 {
		t.Errorf("help other = %v, want 1", got)
	}
	h := find(t, m, "c66bot_command_duration_seconds", map[string]string{"command": "stacks"}).GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 0.039 || h.GetSampleSum() > 0.041 {
		t.Errorf("stacks duration: count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestAckHistogramStartsAt50Microseconds(t *testing.T) {
	m := newTest(t, Options{})
	m.Ack(30*time.Microsecond, false)
	m.Ack(2*time.Millisecond, true)
	h := find(t, m, "c66bot_ack_latency_seconds", nil).GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Fatalf("count = %d", h.GetSampleCount())
	}
	b := h.GetBucket()[0]
	if b.GetUpperBound() != 50e-6 || b.GetCumulativeCount() != 1 {
		t.Errorf("first bucket le=%v count=%d, want le=5e-05 count=1", b.GetUpperBound(), b.GetCumulativeCount())
	}
	if got := counter(t, m, "c66bot_ack_failures_total", nil); got != 1 {
		t.Errorf("ack failures = %v", got)
	}
}

func TestCloud66Labels(t *testing.T) {
	m := newTest(t, Options{})
	m.Cloud66Request("GET", "/stacks", 200, 40*time.Millisecond)
	m.Cloud66Request("GET", "/stacks", 503, 10*time.Millisecond)
	m.Cloud66Request("GET", "/stacks/{uid}/servers", 0, time.Second)
	// A path with a real id, a query, or a made-up method is not a template.
	m.Cloud66Request("GET", "/stacks/3f2a9c1e.json", 200, time.Millisecond)
	m.Cloud66Request("GET", "/stacks?page=2", 200, time.Millisecond)
	m.Cloud66Request("BREW", "/stacks", 418, time.Millisecond)

	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"method": "GET", "endpoint": "/stacks", "status": "200"}, 1},
		{map[string]string{"method": "GET", "endpoint": "/stacks", "status": "503"}, 1},
		{map[string]string{"method": "GET", "endpoint": "/stacks/{uid}/servers", "status": "transport_error"}, 1},
		{map[string]string{"method": "GET", "endpoint": "other", "status": "200"}, 2},
		{map[string]string{"method": "other", "endpoint": "/stacks", "status": "418"}, 1},
	} {
		if got := counter(t, m, "c66bot_cloud66_requests_total", c.labels); got != c.want {
			t.Errorf("%v = %v, want %v", c.labels, got, c.want)
		}
	}
	h := find(t, m, "c66bot_cloud66_request_duration_seconds", map[string]string{"method": "GET", "endpoint": "/stacks"}).GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Errorf("duration count = %d", h.GetSampleCount())
	}
}

func TestSlackCalls(t *testing.T) {
	m := newTest(t, Options{})
	m.SlackCall(SlackPostMessage, "", false)
	m.SlackCall(SlackPostMessage, "", true)
	m.SlackCall(SlackPostMessage, "not_in_channel", false)
	m.SlackCall(SlackUpdate, "a_code_slack_invented_yesterday", false)
	m.SlackCall("admin.users.remove", SlackErrHTTP5xx, false)

	if got := counter(t, m, "c66bot_slack_api_calls_total", map[string]string{"method": SlackPostMessage}); got != 3 {
		t.Errorf("postMessage calls = %v, want 3", got)
	}
	if got := counter(t, m, "c66bot_slack_rate_limited_total", map[string]string{"method": SlackPostMessage}); got != 1 {
		t.Errorf("postMessage 429s = %v, want 1", got)
	}
	if got := counter(t, m, "c66bot_slack_api_errors_total", map[string]string{"method": SlackPostMessage, "error": "not_in_channel"}); got != 1 {
		t.Errorf("not_in_channel = %v", got)
	}
	if got := counter(t, m, "c66bot_slack_api_errors_total", map[string]string{"method": SlackUpdate, "error": "other"}); got != 1 {
		t.Errorf("unknown Slack error = %v", got)
	}
	if got := counter(t, m, "c66bot_slack_api_errors_total", map[string]string{"method": "other", "error": SlackErrHTTP5xx}); got != 1 {
		t.Errorf("unknown method = %v", got)
	}
	// A 429 is not an error as well.
	if mt := find(t, m, "c66bot_slack_api_errors_total", map[string]string{"method": SlackPostMessage, "error": "ratelimited"}); mt != nil {
		t.Error("a 429 was counted as an error")
	}
}

func TestDeploymentsAndCounters(t *testing.T) {
	m := newTest(t, Options{})
	// The outcomes exist at 0 before any deployment.
	if got := counter(t, m, "c66bot_deployments_total", map[string]string{"outcome": "failed"}); got != 0 {
		t.Errorf("failed before any = %v", got)
	}
	m.DeploymentFinished("succeeded")
	m.DeploymentFinished("exploded")
	m.Envelope("slash_commands")
	m.Envelope("something_new")
	m.DuplicateEnvelope()
	m.QueueFull()
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"c66bot_deployments_total", map[string]string{"outcome": "succeeded"}},
		{"c66bot_deployments_total", map[string]string{"outcome": "other"}},
		{"c66bot_envelopes_total", map[string]string{"type": "slash_commands"}},
		{"c66bot_envelopes_total", map[string]string{"type": "other"}},
		{"c66bot_envelopes_duplicate_total", nil},
		{"c66bot_queue_full_total", nil},
	} {
		if got := counter(t, m, c.name, c.labels); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, got)
		}
	}
}

func TestGauges(t *testing.T) {
	var connected atomic.Bool
	var watches atomic.Int64
	var fail atomic.Bool
	m := newTest(t, Options{
		SocketConnected: connected.Load,
		ActiveWatches: func(ctx context.Context) (int, error) {
			if fail.Load() {
				return 0, errors.New("database closed")
			}
			return int(watches.Load()), nil
		},
		Version: "v1.2.3",
	})
	gauge := func(name string) (float64, bool) {
		mt := find(t, m, name, nil)
		if mt == nil {
			return 0, false
		}
		return mt.GetGauge().GetValue(), true
	}
	if v, _ := gauge("c66bot_socket_connected"); v != 0 {
		t.Errorf("socket_connected = %v before connecting", v)
	}
	connected.Store(true)
	watches.Store(3)
	if v, _ := gauge("c66bot_socket_connected"); v != 1 {
		t.Errorf("socket_connected = %v when connected", v)
	}
	if v, ok := gauge("c66bot_active_watches"); !ok || v != 3 {
		t.Errorf("active_watches = %v, %v; want 3", v, ok)
	}
	fail.Store(true)
	if v, ok := gauge("c66bot_active_watches"); ok {
		t.Errorf("active_watches = %v although the count failed; want it left out", v)
	}
	if mt := find(t, m, "c66bot_build_info", map[string]string{"version": "v1.2.3"}); mt == nil || mt.GetGauge().GetValue() != 1 {
		t.Errorf("build_info = %v", mt)
	}
}

func TestSlowActiveWatchesDoesNotHoldTheScrape(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	m := newTest(t, Options{
		ActiveWatches: func(ctx context.Context) (int, error) {
			<-release // a database that hangs, ignoring ctx
			return 7, nil
		},
		ActiveWatchesTimeout: 20 * time.Millisecond,
	})
	start := time.Now()
	if mt := find(t, m, "c66bot_active_watches", nil); mt != nil {
		t.Errorf("a late count was exposed: %v", mt)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the scrape waited %v for a hung count", took)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	m.Command("stacks", "ok", time.Second)
	m.Ack(time.Millisecond, true)
	m.Envelope("slash_commands")
	m.DuplicateEnvelope()
	m.QueueFull()
	m.Cloud66Request("GET", "/stacks", 200, time.Second)
	m.SlackCall(SlackPostMessage, "", true)
	m.DeploymentFinished("succeeded")
}

func TestRegistriesAreIndependentAndServed(t *testing.T) {
	// Two bots in one process (the end-to-end tests run many) must not
	// share or collide on a registry.
	a, b := newTest(t, Options{}), newTest(t, Options{})
	a.Command("stacks", "ok", time.Millisecond)
	if mt := find(t, b, "c66bot_commands_total", map[string]string{"command": "stacks", "outcome": "ok"}); mt != nil {
		t.Error("a command counted in one registry showed in another")
	}

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for range 2 { // the handler's own metrics register once
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, want := range []string{
			`c66bot_commands_total{command="stacks",outcome="ok"} 1`,
			"# TYPE c66bot_ack_latency_seconds histogram",
			`c66bot_ack_latency_seconds_bucket{le="5e-05"} 0`,
			"# TYPE go_goroutines gauge",
			"c66bot_deployments_total{outcome=\"succeeded\"} 0",
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	}
	// A second handler on the same registry does not panic.
	_ = a.Handler()
}

// With a replica name every metric carries it, so the replicas of one bot
// tell apart in one dashboard.
func TestReplicaLabelsEveryMetric(t *testing.T) {
	t.Parallel()
	m := newTest(t, Options{Replica: "c66bot-1", Version: "v1", SocketConnected: func() bool { return true }})
	m.Command("stacks", "ok", time.Millisecond)
	fams := families(t, m)
	if len(fams) < 10 {
		t.Fatalf("only %d families", len(fams))
	}
	for name, f := range fams {
		for _, mt := range f.GetMetric() {
			found := false
			for _, lp := range mt.GetLabel() {
				found = found || lp.GetName() == "replica" && lp.GetValue() == "c66bot-1"
			}
			if !found {
				t.Errorf("%s has a sample without replica=\"c66bot-1\"", name)
				break
			}
		}
	}
	if find(t, m, "c66bot_commands_total", map[string]string{"command": "stacks", "outcome": "ok", "replica": "c66bot-1"}) == nil {
		t.Error("the command was not counted under its replica")
	}
}
