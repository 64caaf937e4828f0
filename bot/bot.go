// Package bot is c66bot's Slack side and its wiring: the Socket Mode loop
// (ack first, then a bounded worker pool), replies through response_url,
// the HTTP server (OAuth start and callback, health, readiness, Prometheus
// metrics at /metrics from the bot's own registry), and Run, which is
// exactly what `c66bot serve` runs, so end-to-end tests drive the real thing.
package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/metrics"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// Config is everything Run needs; cmd/c66bot fills it from flags and the
// environment (DESIGN.md's settings table).
type Config struct {
	SlackAppToken string
	SlackBotToken string
	// SlackAPIURL is the Web API base with a trailing slash.
	SlackAPIURL string

	Cloud66URL          string
	Cloud66ClientID     string
	Cloud66ClientSecret string
	Cloud66Scopes       []string

	// PublicURL is where people's browsers reach this bot; empty selects
	// the out-of-band login flow.
	PublicURL string
	// SlackClientID and SlackClientSecret are the Slack app's own OAuth
	// credentials, for Sign in with Slack; required with PublicURL.
	SlackClientID     string
	SlackClientSecret string
	// Listen is the HTTP address; Listener, when set, is used instead
	// (tests pass one bound to port 0).
	Listen   string
	Listener net.Listener

	DBPath string
	// SecretKeys seal tokens at rest; the first seals, all open.
	SecretKeys [][]byte

	Command string
	Logger  *slog.Logger

	// Workers and Queue bound concurrent and waiting commands. Commands
	// mostly wait on Cloud 66 (hundreds of milliseconds), so many cheap
	// workers keep up with bursts: 256 serve ~800 commands a second at
	// 300 ms each.
	Workers int
	Queue   int
	// CommandTimeout bounds one command's work.
	CommandTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight commands may finish.
	ShutdownTimeout time.Duration
	// SocketPingInterval is how long without a ping from Slack before the
	// socket is considered dead (slack-go's default is 30 s).
	SocketPingInterval time.Duration
	// HTTPClient carries outbound calls to Cloud 66 and response_url.
	HTTPClient *http.Client
	Version    string

	// Poll tunes how deployments are followed (tests shorten it).
	Poll deploy.PollConfig
	// Protected environments need the requester's confirmation to deploy
	// (used when Policy is nil).
	Protected []string
	// Policy says who may deploy what from where; nil allows every linked
	// person, with production protected.
	Policy *policy.Policy
	// PostsPerSecond paces chat.postMessage per channel; Slack allows about
	// one a second. 0 means 1 (tests raise it).
	PostsPerSecond float64
	// NotifyPollEvery is how often a subscribed stack is polled when no
	// webhook arrives (tests shorten it); 0 means notify's default.
	NotifyPollEvery time.Duration
	// Now is the clock for expiries and deployment timing (tests share the
	// fake Cloud 66's clock); nil means time.Now.
	Now func() time.Time
	// AdminSocket is the Unix socket for local operator commands (audit);
	// default <db>.sock.
	AdminSocket string
	// Refusals limits failed unauthenticated requests per client address
	// (bad login states, unbound callbacks, unknown webhook secrets, bad
	// API tokens); zero values mean the defaults.
	Refusals RefusalLimits
}

func (c *Config) defaults() {
	if c.SlackAPIURL == "" {
		c.SlackAPIURL = slack.APIURL
	}
	if !strings.HasSuffix(c.SlackAPIURL, "/") {
		c.SlackAPIURL += "/"
	}
	if c.Cloud66URL == "" {
		c.Cloud66URL = cloud66.DefaultBaseURL
	}
	c.Cloud66URL = strings.TrimRight(c.Cloud66URL, "/")
	if len(c.Cloud66Scopes) == 0 {
		c.Cloud66Scopes = []string{"public", "redeploy"}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.DBPath == "" {
		c.DBPath = "c66bot.db"
	}
	if c.Command == "" {
		c.Command = "/c66"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Workers <= 0 {
		c.Workers = 256
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 2 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.HTTPClient == nil {
		// Many commands talk to the same two hosts (Cloud 66, Slack) at
		// once; Go's default keeps only 2 idle connections per host, so a
		// burst would pay a TLS handshake per request.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PostsPerSecond <= 0 {
		c.PostsPerSecond = 1
	}
	if c.AdminSocket == "" {
		c.AdminSocket = c.DBPath + ".sock"
	}
	c.Refusals.defaults()
}

// Validate reports the first missing or malformed setting.
func (c *Config) Validate() error {
	for _, r := range []struct{ name, val string }{
		{"SLACK_APP_TOKEN", c.SlackAppToken},
		{"SLACK_BOT_TOKEN", c.SlackBotToken},
		{"CLOUD66_CLIENT_ID", c.Cloud66ClientID},
		{"CLOUD66_CLIENT_SECRET", c.Cloud66ClientSecret},
	} {
		if r.val == "" {
			return fmt.Errorf("missing required setting %s", r.name)
		}
	}
	if !strings.HasPrefix(c.SlackAppToken, "xapp-") {
		return errors.New("SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write")
	}
	if !strings.HasPrefix(c.SlackBotToken, "xoxb-") {
		return errors.New("SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
	}
	for _, u := range []struct{ name, val string }{{"SLACK_API_URL", c.SlackAPIURL}, {"CLOUD66_URL", c.Cloud66URL}, {"C66BOT_PUBLIC_URL", c.PublicURL}} {
		if u.val == "" {
			continue
		}
		p, err := url.Parse(u.val)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s must be an http(s) URL", u.name)
		}
	}
	if len(c.SecretKeys) == 0 {
		return errors.New("no secret key to seal tokens with (C66BOT_SECRET_KEY)")
	}
	if c.PublicURL != "" && (c.SlackClientID == "" || c.SlackClientSecret == "") {
		return errors.New("C66BOT_PUBLIC_URL is set, so Sign in with Slack needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (Slack app → Basic Information → App Credentials)")
	}
	return nil
}

// Bot is a running c66bot.
type Bot struct {
	cfg      Config
	log      *slog.Logger
	accounts *accounts.Service
	deploys  *deploy.Service
	notifier *notify.Service
	poster   *poster
	groups   *groupResolver
	router   *commands.Router
	api      *slack.Client
	socket   *socketmode.Client
	listener net.Listener
	server   *http.Server
	pool     *pool
	replies  *replier
	seen     *seenSet
	// metrics is this bot's own registry and metrics, served at /metrics.
	metrics *metrics.Metrics
	// cookieKey binds a login to the browser that started it.
	cookieKey []byte
	// slackSignIn proves who a browser is (redirect flow only).
	slackSignIn *accounts.SlackSignIn
	// refusals limits and aggregates failed unauthenticated requests.
	refusals *refusalLimiter

	connected atomic.Bool

	// db is the database New opens and Run closes. The handlers reach it
	// through the fields below, each typed by the interface the file that
	// uses it declares.
	db            *storage.DB
	health        databaseHealth
	dedup         dedupStore
	subscriptions webhookSubscriptions
	apiTokens     apiTokenStore
	auditLog      auditLog
	admin         adminDatabase
	links         LinkCounter
}

// New builds a Bot: opens the database, and wires accounts, commands, the
// Slack clients and the HTTP server. Nothing runs until Run.
func New(cfg Config) (*Bot, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := storage.Open(storage.Options{Path: cfg.DBPath, Keys: cfg.SecretKeys, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", cfg.DBPath, err)
	}
	b := &Bot{cfg: cfg, log: cfg.Logger, db: db, seen: newSeenSet(10 * time.Minute),
		health: db, dedup: db.Dedup(), subscriptions: db.Subscriptions(), apiTokens: db.APITokens(),
		auditLog: db.Audit(), admin: db, links: db.Links()}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	b.metrics = metrics.New(metrics.Options{
		Commands:        commands.CommandNames(),
		Outcomes:        commands.Outcomes(),
		SocketConnected: b.connected.Load,
		ActiveWatches:   db.Watches().CountActive,
		Version:         cfg.Version,
		Logger:          cfg.Logger,
	})

	redirect := cloud66.OOBRedirectURL
	if cfg.PublicURL != "" {
		redirect = cfg.PublicURL + callbackPath
	}
	oauthCfg := cloud66.OAuthConfig(cloud66.OAuthSettings{
		BaseURL: cfg.Cloud66URL, ClientID: cfg.Cloud66ClientID, ClientSecret: cfg.Cloud66ClientSecret,
		RedirectURL: redirect, Scopes: cfg.Cloud66Scopes,
	})
	b.accounts = accounts.New(accounts.Config{
		Stores: accounts.Stores{Links: db.Links(), Logins: db.Logins()}, OAuth: oauthCfg, Cloud66URL: cfg.Cloud66URL, HTTPClient: cfg.HTTPClient, Now: cfg.Now,
		ClientOptions: []cloud66.Option{
			cloud66.WithUserAgent("c66bot/" + cfg.Version),
			// Every attempt, retries included: they all count against
			// Cloud 66's hourly limit. RequestInfo holds no URL or id.
			cloud66.WithRequestHook(func(ri cloud66.RequestInfo) {
				b.metrics.Cloud66Request(ri.Method, ri.Endpoint, ri.StatusCode, ri.Duration)
			}),
			// A stack or server whose id is not a Cloud 66 id is left out
			// of lists; say so, or it would vanish without a trace.
			cloud66.WithInvalidIDHook(func(e *cloud66.InvalidIDError) {
				b.log.Warn("ignored an item of a Cloud 66 answer", "error", e.Error(), "id", e.Value)
			}),
		},
	})
	mac := hmac.New(sha256.New, cfg.SecretKeys[0])
	mac.Write([]byte("c66bot login browser binding v1"))
	b.cookieKey = mac.Sum(nil)
	if cfg.PublicURL != "" {
		b.slackSignIn = accounts.NewSlackSignIn(accounts.SlackSignInConfig{
			WebURL: accounts.SlackWebURL(cfg.SlackAPIURL), APIURL: cfg.SlackAPIURL,
			ClientID: cfg.SlackClientID, ClientSecret: cfg.SlackClientSecret,
			RedirectURL: cfg.PublicURL + slackCallbackPath, HTTPClient: cfg.HTTPClient,
		})
	}
	b.refusals = newRefusalLimiter(cfg.Refusals, cfg.Logger)

	b.api = slack.New(cfg.SlackBotToken,
		slack.OptionAppLevelToken(cfg.SlackAppToken),
		slack.OptionAPIURL(cfg.SlackAPIURL),
		slack.OptionHTTPClient(cfg.HTTPClient),
	)
	b.replies = newReplier(cfg.HTTPClient, cfg.SlackAPIURL)
	b.poster = newPoster(b.api, b.replies, queueOptions{
		PerSecond: cfg.PostsPerSecond,
		Burst:     2,
		OnUnpostable: func(channel string, err error) {
			b.log.Warn("cannot post in channel", "channel", channel, "error", err.Error())
		},
		Logger: cfg.Logger,
	})
	b.poster.metrics = b.metrics
	pol := cfg.Policy
	if pol == nil {
		pol = policy.Default()
		if len(cfg.Protected) > 0 {
			pol.Protected = cfg.Protected
		}
	}
	b.groups = newGroupResolver(b.api, pol.GroupIDs(), cfg.Now)
	b.deploys = deploy.New(deploy.Config{
		Stores: deploy.Stores{Intents: db.Intents(), Locks: db.Locks(), Watches: db.Watches(), Audit: db.Audit()},
		Cloud66For: func(ctx context.Context, id storage.Identity) (deploy.Cloud66, error) {
			c, err := b.accounts.Client(ctx, id)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Slack:      b.poster,
		Cloud66URL: cfg.Cloud66URL,
		Command:    cfg.Command,
		Protected:  cfg.Protected,
		Policy:     pol,
		Groups:     b.groups.GroupsOf,
		Logger:     cfg.Logger,
		Poll:       cfg.Poll,
		Now:        cfg.Now,
		OnFinished: b.metrics.DeploymentFinished,
	})
	b.notifier = notify.New(notify.Config{
		Stores: notify.Stores{Subscriptions: db.Subscriptions(), Outbox: db.Outbox(), Dedup: db.Dedup(), Watches: db.Watches()},
		Slack:  b.poster,
		Cloud66For: func(ctx context.Context, id storage.Identity) (notify.Cloud66, error) {
			c, err := b.accounts.Client(ctx, id)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Cloud66URL: cfg.Cloud66URL,
		Command:    cfg.Command,
		Now:        cfg.Now,
		Logger:     cfg.Logger,
		PollEvery:  cfg.NotifyPollEvery,
	})

	b.router = commands.NewRouter(commands.Deps{
		Accounts:      b.accounts,
		Deploy:        b.deploys,
		Subscriptions: db.Subscriptions(),
		WebhookURL: func(secret string) string {
			if cfg.PublicURL == "" {
				return ""
			}
			return cfg.PublicURL + "/hooks/cloud66/" + secret
		},
		Cloud66For: func(ctx context.Context, id storage.Identity) (commands.Cloud66, error) {
			c, err := b.accounts.Client(ctx, id)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Command:    cfg.Command,
		Cloud66URL: cfg.Cloud66URL,
		LoginURL:   b.loginURL,
		Logger:     cfg.Logger,
		Now:        cfg.Now,
		Observe:    b.metrics.Command,
	})

	var smOpts []socketmode.Option
	if cfg.SocketPingInterval > 0 {
		smOpts = append(smOpts, socketmode.OptionPingInterval(cfg.SocketPingInterval))
	}
	b.socket = socketmode.New(b.api, smOpts...)

	if cfg.Listener != nil {
		b.listener = cfg.Listener
	} else {
		b.listener, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s (C66BOT_LISTEN): %w", cfg.Listen, err)
		}
	}
	b.server = b.newHTTPServer()
	ok = true
	return b, nil
}

// Addr is the HTTP server's address.
func (b *Bot) Addr() net.Addr { return b.listener.Addr() }

// Run serves until ctx is done or a part fails for good (for example Slack
// refusing the app token). On the way out it stops taking commands, lets
// in-flight ones finish within ShutdownTimeout, and closes the database.
func (b *Bot) Run(ctx context.Context) error {
	b.pool = newPool(b.cfg.Workers, b.cfg.Queue)
	b.log.Info("c66bot starting", "version", b.cfg.Version, "command", b.cfg.Command, "listen", b.listener.Addr().String(),
		"db", b.cfg.DBPath, "public_url", redactURL(b.cfg.PublicURL), "out_of_band_login", b.accounts.OutOfBand(),
		"cloud66_url", redactURL(b.cfg.Cloud66URL))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := b.socket.RunContext(gctx)
		if gctx.Err() != nil {
			return nil
		}
		return socketRunError(err)
	})
	g.Go(func() error { b.eventLoop(gctx); return nil })
	g.Go(func() error {
		if err := b.server.Serve(b.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), b.cfg.ShutdownTimeout)
		defer cancel()
		return b.server.Shutdown(sctx)
	})
	g.Go(func() error { b.sweep(gctx); return nil })
	g.Go(func() error { b.refusals.run(gctx); return nil })
	g.Go(func() error {
		if err := b.deploys.Run(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("deployments: %w", err)
		}
		return nil
	})
	g.Go(func() error { return b.serveAdmin(gctx) })
	g.Go(func() error {
		if err := b.notifier.Run(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("notifications: %w", err)
		}
		return nil
	})

	err := g.Wait()
	b.connected.Store(false)
	if !b.pool.shutdown(b.cfg.ShutdownTimeout) {
		b.log.Warn("shutdown: in-flight commands cancelled after the grace period", "grace", b.cfg.ShutdownTimeout)
	}
	qctx, qcancel := context.WithTimeout(context.Background(), b.cfg.ShutdownTimeout)
	if err := b.poster.Close(qctx); err != nil {
		b.log.Warn("shutdown: some Slack posts were not sent", "error", err.Error())
	}
	qcancel()
	if cerr := b.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	b.log.Info("c66bot stopped")
	return err
}

// redactURL drops credentials, query and fragment from a configured URL
// before it is logged: a URL pasted into the settings may carry a secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// sweep removes expired login states and dedup keys now and then.
func (b *Bot) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := b.db.SweepExpired(ctx); err != nil {
				b.log.Warn("sweep expired login states", "error", err.Error())
			} else if n > 0 {
				b.log.Debug("swept expired login states", "count", n)
			}
			b.seen.sweep(time.Now())
		}
	}
}

// Ready reports whether the socket is connected and the database answers
// and takes writes.
func (b *Bot) Ready(ctx context.Context) error {
	if !b.connected.Load() {
		return errors.New("slack socket not connected")
	}
	if err := b.health.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := b.health.WriteError(); err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	return nil
}
