package web

import (
	"container/list"
	"context"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RefusalLimits bound what failed requests from one client address cost:
// every bad login state, unbound callback, unknown webhook secret or bad
// API token spends one of the address's tokens; an address without one is
// answered 429 before any work is done.
type RefusalLimits struct {
	// Burst is how many failures an address may have at once (default 20).
	Burst int
	// PerMinute is how fast an address earns failures back (default 30).
	PerMinute float64
	// Addresses bounds the table of addresses; the least recently seen is
	// forgotten first (default 4096).
	Addresses int
	// LogEvery is how often the refusals of a kind are summed up in one
	// log line after the first (default one minute).
	LogEvery time.Duration
}

func (l *RefusalLimits) defaults() {
	if l.Burst <= 0 {
		l.Burst = 20
	}
	if l.PerMinute <= 0 {
		l.PerMinute = 30
	}
	if l.Addresses <= 0 {
		l.Addresses = 4096
	}
	if l.LogEvery <= 0 {
		l.LogEvery = time.Minute
	}
}

// Kinds of refusal, each with its log message.
const (
	refusedWebhookSecret = "webhook_secret"
	refusedAPIToken      = "api_token"
	refusedLoginState    = "login_state"
	refusedUnbound       = "login_unbound"
	refusedCrossSite     = "login_cross_site"
	refusedStartNonce    = "login_start_nonce"
	refusedSlackReplay   = "login_slack_replay"
	refusedWrongPerson   = "login_wrong_person"
	refusedSlackCode     = "login_slack_code"
	refusedSlackToken    = "login_slack_id_token"
	refusedCloud66Code   = "login_cloud66_code"
	refusedOverLimit     = "over_limit"
)

var refusalMessages = map[string]string{
	refusedWebhookSecret: "webhooks with an unknown secret refused",
	refusedAPIToken:      "API requests with a missing, unknown or revoked token refused",
	refusedLoginState:    "logins with an unknown or used state refused",
	refusedUnbound:       "login steps from a browser that did not start them refused",
	refusedCrossSite:     "login forms sent from another site refused",
	refusedStartNonce:    "login forms without this browser's one-time nonce refused",
	refusedSlackReplay:   "Slack sign-ins replayed refused",
	refusedWrongPerson:   "logins signed in to Slack as someone else refused",
	refusedSlackCode:     "Slack sign-ins with a code Slack refused",
	refusedSlackToken:    "Slack sign-ins whose id_token did not verify refused",
	refusedCloud66Code:   "Cloud 66 callbacks with a code Cloud 66 refused",
	refusedOverLimit:     "requests from addresses over the failure limit answered 429",
}

// refusalLimiter keeps a token bucket per client address, in a table of
// bounded size, and sums refusals up for the log: the first of a kind in a
// period is logged at once, the rest as one line with a count at the end
// of the period. A flood of bad requests costs a few log lines, not one
// each.
type refusalLimiter struct {
	limits RefusalLimits
	log    *slog.Logger

	mu      sync.Mutex
	lru     *list.List // of *clientBucket, most recently seen first
	clients map[string]*list.Element
	counts  map[string]int // kind → refusals this period, the logged first one included
}

type clientBucket struct {
	key string
	lim *rate.Limiter
}

func newRefusalLimiter(l RefusalLimits, log *slog.Logger) *refusalLimiter {
	l.defaults()
	return &refusalLimiter{limits: l, log: log, lru: list.New(), clients: map[string]*list.Element{}, counts: map[string]int{}}
}

// clientKey is who a request comes from: the connection's address, never
// a header the client writes (X-Forwarded-For). IPv6 clients are keyed by
// their /64, which one host usually holds whole.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// bucketLocked finds or makes the bucket of key, forgetting the least
// recently seen address when the table is full.
func (l *refusalLimiter) bucketLocked(key string) *rate.Limiter {
	if e, ok := l.clients[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*clientBucket).lim
	}
	for l.lru.Len() >= l.limits.Addresses {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.clients, old.Value.(*clientBucket).key)
	}
	c := &clientBucket{key: key, lim: rate.NewLimiter(rate.Limit(l.limits.PerMinute/60), l.limits.Burst)}
	l.clients[key] = l.lru.PushFront(c)
	return c.lim
}

// retryAfter is how long key must wait before its next failure is allowed;
// zero when it may go on. Asking does not add to the table.
func (l *refusalLimiter) retryAfter(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.clients[key]
	if !ok {
		return 0
	}
	tokens := e.Value.(*clientBucket).lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / (l.limits.PerMinute / 60) * float64(time.Second))
}

// refuse records a failure of kind from key: it spends a token and is
// counted for the log.
func (l *refusalLimiter) refuse(kind, key string, now time.Time) {
	l.mu.Lock()
	l.bucketLocked(key).AllowN(now, 1)
	l.counts[kind]++
	first := l.counts[kind] == 1
	l.mu.Unlock()
	if first {
		l.log.Info(refusalMessages[kind], "kind", kind, "client", key,
			"note", "more of this kind are counted and logged together every "+l.limits.LogEvery.String())
	}
}

// report logs the refusals of each kind since the last report, beyond the
// first that was logged at once, and starts a new period.
func (l *refusalLimiter) report() {
	l.mu.Lock()
	counts := l.counts
	l.counts = map[string]int{}
	l.mu.Unlock()
	for kind, n := range counts {
		if n > 1 {
			l.log.Info(refusalMessages[kind], "kind", kind, "count", n-1, "period", l.limits.LogEvery.String())
		}
	}
}

// run reports every LogEvery, and once more on the way out.
func (l *refusalLimiter) run(ctx context.Context) {
	t := time.NewTicker(l.limits.LogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.report()
			return
		case <-t.C:
			l.report()
		}
	}
}

// limited answers 429 with Retry-After, before any work, to a client whose
// failures are over the limit; html picks a page or a JSON error.
func (b *Server) limited(html bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := clientKey(r)
		wait := b.refusals.retryAfter(key, time.Now())
		if wait <= 0 {
			next(w, r)
			return
		}
		b.refusals.refuse(refusedOverLimit, key, time.Now())
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		msg := "Too many failed requests from your address. Try again in " + strconv.Itoa(secs) + " seconds."
		if html {
			b.page(w, http.StatusTooManyRequests, pageData{Title: "Slow down", Body: msg})
			return
		}
		writeJSONError(w, http.StatusTooManyRequests, msg)
	}
}

// refuse records a failed request for the limit and the log.
func (b *Server) refuse(r *http.Request, kind string) {
	b.refusals.refuse(kind, clientKey(r), time.Now())
}
