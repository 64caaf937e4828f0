package app_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sample is one line of the Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// exposition is a parsed /metrics page.
type exposition struct {
	raw     string
	samples []sample
	// families are the metric names declared by # TYPE lines.
	families map[string]bool
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func parseExposition(t *testing.T, body string) exposition {
	t.Helper()
	e := exposition{raw: body, families: map[string]bool{}}
	for _, line := range strings.Split(body, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			e.families[strings.Fields(f)[0]] = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		e.samples = append(e.samples, s)
	}
	return e
}

// get returns the value of the series name{labels}, which must match
// exactly, and whether it exists.
func (e exposition) get(name string, labels map[string]string) (float64, bool) {
next:
	for _, s := range e.samples {
		if s.name != name || len(s.labels) != len(labels) {
			continue
		}
		for k, v := range labels {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// series lists the series of name, for failure messages.
func (e exposition) series(name string) string {
	var out []string
	for _, s := range e.samples {
		if s.name == name {
			out = append(out, fmt.Sprintf("%v=%v", s.labels, s.value))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func (h *harness) scrape() exposition {
	h.t.Helper()
	resp, err := http.Get("http://" + h.bot.Addr().String() + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	body := readBody(h.t, resp)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("/metrics answered %d:\n%s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		h.t.Errorf("/metrics Content-Type = %q", ct)
	}
	return parseExposition(h.t, body)
}

// waitMetric scrapes until name{labels} has value want.
func (h *harness) waitMetric(name string, labels map[string]string, want float64) exposition {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := h.scrape()
		if v, ok := e.get(name, labels); ok && v == want {
			return e
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s%v never became %v; series:\n%s", name, labels, want, e.series(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantMetric checks that name{labels} exists and is == or >= n.
func wantMetric(t *testing.T, e exposition, name string, labels map[string]string, op string, n float64) {
	t.Helper()
	v, found := e.get(name, labels)
	switch {
	case !found:
		t.Errorf("no series %s%v; series of %s:\n%s", name, labels, name, e.series(name))
	case op == "==" && v != n, op == ">=" && v < n:
		t.Errorf("%s%v = %v, want %s %v", name, labels, v, op, n)
	}
}

// mlabels is a label set, for brevity.
type mlabels = map[string]string

func TestE2EMetricsAfterCommands(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	// An API token exists in the process; it must never show in /metrics.
	apiToken := h.apiToken("ci", "notify")

	_, msg := h.run("U0ANA", "C0GENERAL", "help")
	mustContain(t, text(msg), "stacks")
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "Stacks (")
	_, msg = h.run("U0ANA", "C0GENERAL", "frobnicate shop")
	mustContain(t, text(msg), "I don't know the command")
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Deployed")
	const commandsRun = 5 // login, help, stacks, frobnicate, deploy

	// The deployment is counted when its final state is saved, and the
	// active set empties with the same save.
	h.waitMetric("c66bot_deployments_total", mlabels{"outcome": "succeeded"}, 1)
	e := h.waitMetric("c66bot_active_watches", mlabels{}, 0)

	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "stacks", "outcome": "ok"}, "==", 1)
	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "help", "outcome": "ok"}, "==", 1)
	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "login", "outcome": "ok"}, "==", 1)
	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "deploy", "outcome": "ok"}, "==", 1)
	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "unknown", "outcome": "usage"}, "==", 1)
	wantMetric(t, e, "c66bot_command_duration_seconds_count", mlabels{"command": "stacks"}, "==", 1)
	for _, s := range e.samples {
		if s.name == "c66bot_commands_total" && s.labels["command"] == "frobnicate" {
			t.Errorf("an unknown word became a label: %v", s.labels)
		}
	}
	wantMetric(t, e, "c66bot_ack_latency_seconds_count", mlabels{}, ">=", commandsRun)
	wantMetric(t, e, "c66bot_envelopes_total", mlabels{"type": "slash_commands"}, ">=", commandsRun)
	// Every ack is well inside Slack's 3 s.
	acks, _ := e.get("c66bot_ack_latency_seconds_count", mlabels{})
	wantMetric(t, e, "c66bot_ack_latency_seconds_bucket", mlabels{"le": "3"}, "==", acks)

	wantMetric(t, e, "c66bot_cloud66_requests_total", mlabels{"method": "GET", "endpoint": "/stacks", "status": "200"}, ">=", 1)
	wantMetric(t, e, "c66bot_cloud66_request_duration_seconds_count", mlabels{"method": "GET", "endpoint": "/stacks"}, ">=", 1)
	wantMetric(t, e, "c66bot_slack_api_calls_total", mlabels{"method": "chat.postMessage"}, ">=", 1)
	wantMetric(t, e, "c66bot_slack_api_calls_total", mlabels{"method": "chat.update"}, ">=", 1)
	wantMetric(t, e, "c66bot_slack_api_calls_total", mlabels{"method": "response_url"}, ">=", 1)
	wantMetric(t, e, "c66bot_deployments_total", mlabels{"outcome": "succeeded"}, "==", 1)
	wantMetric(t, e, "c66bot_socket_connected", mlabels{}, "==", 1)
	wantMetric(t, e, "c66bot_deployments_total", mlabels{"outcome": "failed"}, "==", 0)
	wantMetric(t, e, "c66bot_active_watches", mlabels{}, "==", 0)
	wantMetric(t, e, "c66bot_queue_full_total", mlabels{}, "==", 0)
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes", "c66bot_build_info"} {
		if !e.families[f] {
			t.Errorf("/metrics lacks %s", f)
		}
	}

	// Nothing secret or personal: no token, and no label naming a person,
	// a channel or a stack.
	for _, s := range []string{"xoxb-", "xapp-", h.slack.BotToken, h.slack.AppToken, h.c66.ClientSecret, apiToken} {
		if strings.Contains(e.raw, s) {
			t.Errorf("/metrics contains a secret %.5s…", s)
		}
	}
	for _, tok := range h.tokensUsed() {
		if strings.Contains(e.raw, tok) {
			t.Error("/metrics contains a Cloud 66 token")
		}
	}
	// "c66bot_" starts API tokens as well as metric names: every such word
	// must be a metric (a family, or a family's _bucket/_sum/_count).
	for _, w := range regexp.MustCompile(`c66bot_[A-Za-z0-9_-]+`).FindAllString(e.raw, -1) {
		base := w
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(w, suf); ok && e.families[b] {
				base = b
			}
		}
		if !e.families[base] {
			t.Errorf("/metrics contains %.12s…, which is no metric", w)
		}
	}
	uid := h.c66.StackUID("shop", "staging")
	for _, s := range e.samples {
		for k, v := range s.labels {
			for _, bad := range []string{"U0ANA", "C0GENERAL", "shop", uid, h.public} {
				if bad != "" && strings.Contains(v, bad) {
					t.Errorf("%s has label %s=%q", s.name, k, v)
				}
			}
		}
	}
}

func TestE2EMetricsCountSlack429sAndCloud66Throttling(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.login("U0ANA")
	_, msg := h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "Stacks (")

	// Cloud 66 answers its throttle with 503: counted under that status.
	tokens := h.tokensUsed()
	if len(tokens) != 1 {
		t.Fatalf("tokens used: %d", len(tokens))
	}
	clear := h.c66.Throttle(tokens[0])
	_, msg = h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(msg), "throttling")
	clear()

	// Slack answers the deployment card's chat.postMessage with a 429
	// once; the queue waits Retry-After and posts it again.
	h.slack.RateLimitNext("chat.postMessage", 1, time.Second)
	h.run("U0ANA", "C0GENERAL", "deploy shop:staging")
	card := h.card("C0GENERAL", "shop")
	h.waitCard("C0GENERAL", card.TS, "Deployed")

	e := h.waitMetric("c66bot_deployments_total", mlabels{"outcome": "succeeded"}, 1)
	wantMetric(t, e, "c66bot_cloud66_requests_total", mlabels{"method": "GET", "endpoint": "/stacks", "status": "503"}, ">=", 1)
	wantMetric(t, e, "c66bot_cloud66_requests_total", mlabels{"method": "GET", "endpoint": "/stacks", "status": "200"}, ">=", 1)
	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "stacks", "outcome": "throttled"}, "==", 1)
	wantMetric(t, e, "c66bot_commands_total", mlabels{"command": "stacks", "outcome": "ok"}, "==", 1)
	wantMetric(t, e, "c66bot_slack_rate_limited_total", mlabels{"method": "chat.postMessage"}, "==", 1)
	// The 429 is not also an error, and the retry is a second call.
	if _, found := e.get("c66bot_slack_api_errors_total", mlabels{"method": "chat.postMessage", "error": "ratelimited"}); found {
		t.Error("a 429 was counted as an error too")
	}
	wantMetric(t, e, "c66bot_slack_api_calls_total", mlabels{"method": "chat.postMessage"}, ">=", 2)
}

func TestE2EReadyzAndSocketGaugeFollowTheSocket(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	ready := func() int {
		resp, err := http.Get(h.public + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp.StatusCode
	}
	waitReady := func(status int, connected float64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for ready() != status {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never answered %d", status)
			}
			time.Sleep(20 * time.Millisecond)
		}
		wantMetric(t, h.scrape(), "c66bot_socket_connected", mlabels{}, "==", connected)
	}
	waitReady(http.StatusOK, 1)

	// The socket drops and Slack refuses new connections for a while.
	h.slack.FailConnectionsOpen("", 1000)
	h.slack.DropConnections()
	waitReady(http.StatusServiceUnavailable, 0)

	h.slack.FailConnectionsOpen("", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.slack.WaitConnected(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitReady(http.StatusOK, 1)
	_, msg := h.run("U0ANA", "C0GENERAL", "help")
	mustContain(t, text(msg), "stacks")
}
