// Package web is c66bot's HTTP side: the login pages (Sign in with Slack,
// then Cloud 66's OAuth callback), the Cloud 66 webhooks, the bearer-token
// API under /api/v1, and /healthz, /readyz and /metrics. Slack itself never
// calls it (the bot runs in Socket Mode); people's browsers, Cloud 66 and
// the operator's tools do. Everything an outsider can call without
// credentials is limited in how often it may fail (refusals.go).
package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Accounts is the account linking the login pages drive;
// *accounts.Service satisfies it.
type Accounts interface {
	Pending(ctx context.Context, state string) (storage.PendingLogin, string, error)
	CompleteCallback(ctx context.Context, state, code string) (accounts.Linked, error)
	AbandonLogin(ctx context.Context, state string) (storage.PendingLogin, error)
}

// SignIn proves who a browser is with Sign in with Slack;
// *accounts.SlackSignIn satisfies it.
type SignIn interface {
	AuthorizeURL(state, nonce string) string
	Identify(ctx context.Context, code, nonce string) (storage.Identity, error)
}

// Responder answers in Slack through a response_url (the login prompt is
// replaced by its outcome); *bot.Replier satisfies it.
type Responder interface {
	Respond(ctx context.Context, responseURL string, m chat.Message, replaceOriginal bool) error
}

// DatabaseHealth is what readiness asks of the database; *storage.DB
// satisfies it.
type DatabaseHealth interface {
	Ping(ctx context.Context) error
	// WriteError is the error of the last write that failed to commit.
	WriteError() error
}

// Config is what the HTTP side serves. The app package fills it.
type Config struct {
	// PublicURL is where people's browsers reach the bot; without it the
	// login pages are not served (logins use the out-of-band flow).
	PublicURL string
	// SlackAPIURL and Cloud66URL are where the login pages' forms may lead.
	SlackAPIURL string
	Cloud66URL  string
	// Command is the slash command, for hints.
	Command string

	Accounts Accounts
	// SignIn is nil without a public URL.
	SignIn  SignIn
	Replies Responder
	Notices Notices

	Dedup         Dedup
	Subscriptions Subscriptions
	APITokens     APITokens
	Audit         Audit

	// SlackConnected and Database are what /readyz reports.
	SlackConnected func() bool
	Database       DatabaseHealth
	// Metrics serves /metrics.
	Metrics http.Handler

	// CookieKey binds each login step to the browser that took the one
	// before.
	CookieKey []byte
	Refusals  RefusalLimits
	Logger    *slog.Logger
}

// Server is the HTTP side.
type Server struct {
	cfg Config
	log *slog.Logger
	// refusals limits and aggregates failed unauthenticated requests.
	refusals *refusalLimiter
}

// New returns the HTTP side; Handler serves it, Run keeps its refusal log.
func New(cfg Config) *Server {
	return &Server{cfg: cfg, log: cfg.Logger, refusals: newRefusalLimiter(cfg.Refusals, cfg.Logger)}
}

// Run sums refusals up in the log every period, until ctx is done.
func (b *Server) Run(ctx context.Context) { b.refusals.run(ctx) }

// LoginURL is where the login button sends the person: our start page,
// from which the browser signs in with Slack before Cloud 66 is asked.
func (b *Server) LoginURL(start accounts.LoginStart) string {
	return b.cfg.PublicURL + startPath + "?state=" + url.QueryEscape(start.State)
}

// WebhookURL is the URL Cloud 66 calls for the subscription whose secret
// it carries; "" without a public URL.
func (b *Server) WebhookURL(secret string) string {
	if b.cfg.PublicURL == "" {
		return ""
	}
	return b.cfg.PublicURL + "/hooks/cloud66/" + secret
}

// HTTPServer is the server for Handler, with the timeouts and limits an
// endpoint on the internet needs.
func (b *Server) HTTPServer() *http.Server {
	return &http.Server{
		// The largest body anyone may send is a Cloud 66 webhook; handlers
		// bound their own bodies tighter.
		Handler:           http.MaxBytesHandler(b.Handler(), maxWebhookBody),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// net/http logs TLS and protocol noise; keep it, at debug level,
		// in the structured log.
		ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
}

// Handler routes every endpoint.
func (b *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", b.handleReady)
	// Prometheus scrapes this bot's own registry; no label carries a
	// person, channel, stack or token.
	mux.Handle("GET /metrics", b.cfg.Metrics)
	// Everything an outsider can call without credentials is limited in
	// how often it may fail, per client address (refusals.go).
	if b.cfg.PublicURL != "" {
		mux.HandleFunc("GET "+startPath, b.limited(true, b.handleStart))
		mux.HandleFunc("POST "+startPath, b.limited(true, b.handleStartConfirm))
		mux.HandleFunc("GET "+SlackCallbackPath, b.limited(true, b.handleSlackCallback))
		mux.HandleFunc("GET "+CallbackPath, b.limited(true, b.handleCallback))
	}
	mux.HandleFunc("POST /hooks/cloud66/{secret}", b.limited(false, b.handleCloud66Webhook))
	mux.HandleFunc("POST /api/v1/notify", b.limited(false, b.requireToken(admin.ScopeNotify, b.handleAPINotify)))
	mux.HandleFunc("GET /api/v1/audit", b.limited(false, b.requireToken(admin.ScopeAuditRead, b.handleAPIAudit)))
	return mux
}

// Ready says what /readyz says: whether the Slack socket is connected and
// the database answers and takes writes, each as a word.
func (b *Server) Ready(ctx context.Context) (checks map[string]string, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	checks = map[string]string{"slack_socket": "ok", "database": "ok"}
	ok = true
	if !b.cfg.SlackConnected() {
		checks["slack_socket"], ok = "not connected", false
	}
	switch {
	case b.cfg.Database.Ping(ctx) != nil:
		checks["database"], ok = "unavailable", false
	case b.cfg.Database.WriteError() != nil:
		// Reads still answer on a full disk; the last write that failed
		// (cleared by the next one that commits) is what tells.
		checks["database"], ok = "not writable", false
	}
	return checks, ok
}

func (b *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	checks, ok := b.Ready(r.Context())
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(checks)
}
