// Package metrics is c66bot's Prometheus instrumentation: one registry per
// bot (never the global DefaultRegisterer, so several bots can run in one
// process, as the end-to-end tests do), the metric definitions, small typed
// helpers the rest of the bot calls, and the /metrics handler.
//
// Every label value is bounded: helpers map anything outside a fixed set
// (command names from the command table, known outcomes, Slack methods and
// error codes, Cloud 66 endpoint templates) to "unknown" or "other". No
// label ever carries a user, team, channel, stack, token or URL.
//
// A nil *Metrics is valid and records nothing, so code paths built without
// metrics (unit tests) need no special casing.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "c66bot"

// Label values that stand in for anything outside a bounded set.
const (
	// Unknown is the command label of a word that is no command.
	Unknown = "unknown"
	// Other replaces an outcome, method, error code, endpoint or envelope
	// type that is not in its fixed set.
	Other = "other"
)

// Slack Web API methods (and response_url posts) the bot instruments.
const (
	SlackPostMessage      = "chat.postMessage"
	SlackUpdate           = "chat.update"
	SlackPostEphemeral    = "chat.postEphemeral"
	SlackConversationOpen = "conversations.open"
	SlackUserGroupsList   = "usergroups.users.list"
	SlackResponseURL      = "response_url"
	// The deploy form (a modal).
	SlackViewsOpen   = "views.open"
	SlackViewsUpdate = "views.update"
)

func slackMethods() []string {
	return []string{
		SlackPostMessage, SlackUpdate, SlackPostEphemeral, SlackConversationOpen,
		SlackUserGroupsList, SlackResponseURL, SlackViewsOpen, SlackViewsUpdate,
	}
}

// Error classes for Slack calls that failed without a Slack error code.
const (
	SlackErrHTTP4xx       = "http_4xx"
	SlackErrHTTP5xx       = "http_5xx"
	SlackErrTimeout       = "timeout"
	SlackErrCanceled      = "canceled"
	SlackErrRequestFailed = "request_failed"
	SlackErrURLRefused    = "url_refused"
)

// slackErrors are the Slack error codes worth telling apart, plus the
// classes above; any other code is counted as Other.
func slackErrors() []string {
	return []string{
		"not_in_channel", "channel_not_found", "is_archived", "restricted_action",
		"restricted_action_read_only_channel", "restricted_action_thread_only_channel",
		"ekm_access_denied", "invalid_auth", "not_authed", "token_revoked", "token_expired",
		"account_inactive", "missing_scope", "no_permission", "not_allowed_token_type",
		"msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format", "invalid_arguments",
		"message_not_found", "cant_update_message", "edit_window_closed", "user_not_found",
		"user_not_in_channel", "user_disabled", "cannot_dm_bot", "team_access_not_granted",
		"too_many_attachments", "too_many_users", "no_such_subteam",
		"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited",
		SlackErrHTTP4xx, SlackErrHTTP5xx, SlackErrTimeout, SlackErrCanceled, SlackErrRequestFailed, SlackErrURLRefused,
	}
}

// envelopeTypes are the Socket Mode envelope types the bot acks.
func envelopeTypes() []string { return []string{"slash_commands", "interactive", "events_api"} }

// deploymentOutcomes are the final states of a followed deployment.
func deploymentOutcomes() []string { return []string{"succeeded", "failed", "cancelled", "unknown"} }

func httpMethods() []string {
	return []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
}

// Options wires a Metrics.
type Options struct {
	// Commands are the command names that may appear in the command label;
	// any other is counted as Unknown.
	Commands []string
	// Outcomes are the command outcomes that may appear in the outcome
	// label; any other is counted as Other.
	Outcomes []string
	// SocketConnected backs c66bot_socket_connected; nil leaves it out.
	SocketConnected func() bool
	// ActiveWatches backs c66bot_active_watches; nil leaves it out. It is
	// called at each scrape with ActiveWatchesTimeout; when it fails or is
	// late the sample is left out of that scrape rather than guessed.
	ActiveWatches        func(ctx context.Context) (int, error)
	ActiveWatchesTimeout time.Duration
	// Version is exposed as c66bot_build_info{version}.
	Version string
	// Replica, when set, labels every metric replica="<it>", so the
	// replicas of one bot on one database tell apart in one dashboard.
	Replica string
	// Logger gets the errors of the /metrics handler; nil discards them.
	Logger *slog.Logger
}

// Metrics holds the bot's registry and metrics. Its methods are safe for
// concurrent use and never block.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	// allow holds the label values that may appear; anything else becomes
	// Unknown or Other.
	allow struct {
		commands, outcomes, slackMethods, slackErrors, envelopeTypes, deploymentOutcomes, httpMethods map[string]bool
	}

	commandsTotal    *prometheus.CounterVec
	commandDuration  *prometheus.HistogramVec
	ackLatency       prometheus.Histogram
	ackFailures      prometheus.Counter
	envelopes        *prometheus.CounterVec
	duplicates       prometheus.Counter
	queueFull        prometheus.Counter
	cloud66Requests  *prometheus.CounterVec
	cloud66Duration  *prometheus.HistogramVec
	slackCalls       *prometheus.CounterVec
	slackErrors      *prometheus.CounterVec
	slackRateLimited *prometheus.CounterVec
	deployments      *prometheus.CounterVec
}

// New builds a registry with the Go and process collectors and every c66bot
// metric on it.
func New(o Options) *Metrics {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ActiveWatchesTimeout <= 0 {
		o.ActiveWatchesTimeout = time.Second
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: o.Logger,

		commandsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "commands_total",
			Help: "Slash commands handled, by command name (from the command table; anything else is \"unknown\") and outcome.",
		}, []string{"command", "outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "command_duration_seconds",
			Help:    "Time a slash command took to produce its reply, by command name.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"command"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "ack_latency_seconds",
			Help: "Time from a Socket Mode envelope reaching the event loop to its ack being queued.",
			// The ack is a channel send on the socket loop: buckets start
			// at 50 µs and end at Slack's 3 s deadline.
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 3},
		}),
		ackFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "ack_failures_total",
			Help: "Socket Mode acks that could not be queued.",
		}),
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "envelopes_total",
			Help: "Socket Mode envelopes acked, by type.",
		}, []string{"type"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "envelopes_duplicate_total",
			Help: "Socket Mode envelopes delivered again and ignored.",
		}),
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "queue_full_total",
			Help: "Commands and button presses refused because the work queue was full.",
		}),
		cloud66Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cloud66_requests_total",
			Help: "Cloud 66 API attempts (retries included), by method, endpoint template and HTTP status (\"transport_error\" when no answer came).",
		}, []string{"method", "endpoint", "status"}),
		cloud66Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cloud66_request_duration_seconds",
			Help:    "Duration of Cloud 66 API attempts, by method and endpoint template.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "endpoint"}),
		slackCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "slack_api_calls_total",
			Help: "Slack Web API calls (each 429 retry included) and response_url posts, by method.",
		}, []string{"method"}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "slack_api_errors_total",
			Help: "Failed Slack Web API calls and response_url posts other than 429s, by method and Slack error code or class.",
		}, []string{"method", "error"}),
		slackRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "slack_rate_limited_total",
			Help: "Slack Web API calls answered 429, by method.",
		}, []string{"method"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deployments_total",
			Help: "Followed deployments that reached a final state, by outcome.",
		}, []string{"outcome"}),
	}
	m.allow.commands = set(o.Commands)
	m.allow.outcomes = set(o.Outcomes)
	m.allow.slackMethods = set(slackMethods())
	m.allow.slackErrors = set(slackErrors())
	m.allow.envelopeTypes = set(envelopeTypes())
	m.allow.deploymentOutcomes = set(deploymentOutcomes())
	m.allow.httpMethods = set(httpMethods())
	// reg is where everything registers: the registry itself, or it with
	// the replica label on every metric.
	reg := prometheus.Registerer(m.reg)
	if o.Replica != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"replica": o.Replica}, m.reg)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commandsTotal, m.commandDuration, m.ackLatency, m.ackFailures, m.envelopes, m.duplicates, m.queueFull,
		m.cloud66Requests, m.cloud66Duration, m.slackCalls, m.slackErrors, m.slackRateLimited, m.deployments,
	)
	// Outcomes that are rare but alerted on exist from the start, so a
	// rate() over them works before the first one happens.
	for _, o := range deploymentOutcomes() {
		m.deployments.WithLabelValues(o)
	}
	if o.Version != "" {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Always 1; the version label says which c66bot runs.",
			ConstLabels: prometheus.Labels{"version": o.Version},
		}, func() float64 { return 1 }))
	}
	if o.SocketConnected != nil {
		connected := o.SocketConnected
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "socket_connected",
			Help: "1 while the Slack Socket Mode connection is up, else 0.",
		}, func() float64 {
			if connected() {
				return 1
			}
			return 0
		}))
	}
	if o.ActiveWatches != nil {
		reg.MustRegister(&countCollector{
			desc: prometheus.NewDesc(namespace+"_active_watches",
				"Deployments being followed (the database's active set), read at scrape time.", nil, nil),
			count:   o.ActiveWatches,
			timeout: o.ActiveWatchesTimeout,
		})
	}
	return m
}

func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Registry is the bot's registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails leaves its metrics out; the rest is still served.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{m.log},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	return promhttp.InstrumentMetricHandler(m.reg, h)
}

// slogPrinter adapts slog to promhttp's Logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics handler", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}

// Command records one slash command: command is its canonical name from
// the command table (or Unknown), outcome one of Options.Outcomes.
func (m *Metrics) Command(command, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	if !m.allow.commands[command] {
		command = Unknown
	}
	outcome = oneOf(outcome, m.allow.outcomes)
	m.commandsTotal.WithLabelValues(command, outcome).Inc()
	m.commandDuration.WithLabelValues(command).Observe(took.Seconds())
}

// Ack records how long an envelope took from the event loop to its ack;
// failed is set when the ack could not be queued.
func (m *Metrics) Ack(took time.Duration, failed bool) {
	if m == nil {
		return
	}
	m.ackLatency.Observe(took.Seconds())
	if failed {
		m.ackFailures.Inc()
	}
}

// Envelope counts an acked Socket Mode envelope of type typ.
func (m *Metrics) Envelope(typ string) {
	if m == nil {
		return
	}
	m.envelopes.WithLabelValues(oneOf(typ, m.allow.envelopeTypes)).Inc()
}

// DuplicateEnvelope counts an envelope delivered again and ignored.
func (m *Metrics) DuplicateEnvelope() {
	if m == nil {
		return
	}
	m.duplicates.Inc()
}

// QueueFull counts a command or button press refused for a full queue.
func (m *Metrics) QueueFull() {
	if m == nil {
		return
	}
	m.queueFull.Inc()
}

// Cloud66Request records one Cloud 66 API attempt. endpoint is the path
// template (e.g. "/stacks/{uid}"); status 0 means the transport failed.
func (m *Metrics) Cloud66Request(method, endpoint string, status int, took time.Duration) {
	if m == nil {
		return
	}
	method = oneOf(method, m.allow.httpMethods)
	endpoint = endpointLabel(endpoint)
	m.cloud66Requests.WithLabelValues(method, endpoint, statusLabel(status)).Inc()
	m.cloud66Duration.WithLabelValues(method, endpoint).Observe(took.Seconds())
}

// statusLabel is the HTTP status as text, or "transport_error" for 0.
func statusLabel(status int) string {
	switch {
	case status == 0:
		return "transport_error"
	case status < 100 || status > 599:
		return Other
	}
	return strconv.Itoa(status)
}

// endpointLabel keeps a Cloud 66 endpoint template as it is, and refuses
// anything that does not look like one (a path with a literal id would
// make one series per stack).
func endpointLabel(e string) string {
	if e == "" || len(e) > 64 || e[0] != '/' {
		return Other
	}
	for _, r := range e {
		switch {
		case r >= 'a' && r <= 'z', r == '/', r == '_', r == '{', r == '}', r == '.', r == '-':
		default:
			// Upper case, digits and anything else: ids, not templates.
			return Other
		}
	}
	return e
}

// SlackCall records one Slack Web API call (or response_url post) of
// method. errCode is "" on success, else the Slack error code or one of
// the SlackErr classes; rateLimited marks a 429, which is counted in
// c66bot_slack_rate_limited_total instead of the errors.
func (m *Metrics) SlackCall(method, errCode string, rateLimited bool) {
	if m == nil {
		return
	}
	method = oneOf(method, m.allow.slackMethods)
	m.slackCalls.WithLabelValues(method).Inc()
	switch {
	case rateLimited:
		m.slackRateLimited.WithLabelValues(method).Inc()
	case errCode != "":
		m.slackErrors.WithLabelValues(method, oneOf(errCode, m.allow.slackErrors)).Inc()
	}
}

// DeploymentFinished counts a followed deployment that reached state
// (succeeded, failed, cancelled or unknown).
func (m *Metrics) DeploymentFinished(state string) {
	if m == nil {
		return
	}
	m.deployments.WithLabelValues(oneOf(state, m.allow.deploymentOutcomes)).Inc()
}

func oneOf(v string, allowed map[string]bool) string {
	if allowed[v] {
		return v
	}
	return Other
}

// countCollector exposes a gauge read at scrape time from a function that
// may be slow or fail (a database count). It waits at most timeout; a late
// or failed read leaves the sample out of that scrape, and a late read that
// finishes afterwards is discarded.
type countCollector struct {
	desc    *prometheus.Desc
	count   func(ctx context.Context) (int, error)
	timeout time.Duration
}

func (c *countCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := c.count(ctx)
		res <- result{n, err}
	}()
	select {
	case r := <-res:
		if r.err == nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(r.n))
		}
	case <-ctx.Done():
	}
}
