package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/bot"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/metrics"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
	"github.com/c66bot/c66bot/web"
)

// Config is everything New needs: the operator's Settings, and what tests,
// the sandbox and the bench put in place of what serve makes itself. Zero
// fields take the defaults, which are set here and nowhere else.
type Config struct {
	Settings Settings
	Version  string
	// Logger is the structured log; nil logs nothing.
	Logger *slog.Logger

	// Listener, when set, is used instead of listening on Settings.Listen
	// (tests pass one bound to port 0).
	Listener net.Listener
	// HTTPClient carries outbound calls to Cloud 66, Slack and
	// response_url; nil means one tuned for bursts.
	HTTPClient *http.Client
	// Now is the clock for expiries and deployment timing (tests share the
	// fake Cloud 66's clock); nil means time.Now.
	Now func() time.Time
	// Keys, when set, seal tokens instead of Settings.SecretKey or the key
	// file beside the database; the first seals, all open.
	Keys [][]byte
	// Policy, when set, is used instead of loading Settings.Policy.
	Policy *policy.Policy
	Tuning Tuning
}

// Tuning shapes how the parts run; serve uses the defaults, tests shorten
// or raise them.
type Tuning struct {
	// Workers and Queue bound concurrent and waiting commands. Commands
	// mostly wait on Cloud 66 (hundreds of milliseconds), so many cheap
	// workers keep up with bursts: 256 serve ~800 commands a second at
	// 300 ms each. Defaults 256 and 1024.
	Workers int
	Queue   int
	// CPUSlots is how many workers may compute at once; the others wait
	// parked, so the socket's reader and ack writer always find a
	// processor free (package admission). Default GOMAXPROCS − 1, at
	// least 1.
	CPUSlots int
	// CommandTimeout bounds one command's work (default 2 min).
	CommandTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight work may finish (default
	// 20 s).
	ShutdownTimeout time.Duration
	// SocketPingInterval is how long without a ping from Slack before the
	// socket is considered dead; zero keeps slack-go's 30 s.
	SocketPingInterval time.Duration
	// Poll tunes how Cloud 66 actions are followed.
	Poll deploy.PollConfig
	// Protected environments need the requester's confirmation to deploy
	// when there is no policy file; nil means production.
	Protected []string
	// PostsPerSecond paces chat.postMessage per channel; Slack allows about
	// one a second (default 1).
	PostsPerSecond float64
	// NotifyPollEvery is how often a subscribed stack is polled when no
	// webhook arrives; zero means notify's default.
	NotifyPollEvery time.Duration
	// Refusals limits failed unauthenticated requests per client address.
	Refusals web.RefusalLimits
	// AdminSocket is the Unix socket for local operator commands; default
	// <db>.sock.
	AdminSocket string
	// HomeMinGap is the least time between two publishes of one person's
	// App Home (views.publish is Tier 4, ~100/min); default 3 s.
	HomeMinGap time.Duration
}

func (c Config) withDefaults() Config {
	c.Settings = c.Settings.withDefaults()
	s := &c.Settings
	if !strings.HasSuffix(s.SlackAPIURL, "/") {
		s.SlackAPIURL += "/"
	}
	s.Cloud66URL = strings.TrimRight(s.Cloud66URL, "/")
	s.PublicURL = strings.TrimRight(s.PublicURL, "/")
	if s.Replica == "" && s.DatabaseURL != "" {
		// The pod's or host's name tells replicas apart in leases, metrics
		// and pg_stat_activity; a bot on its own file needs no name.
		s.Replica, _ = os.Hostname()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Replica != "" {
		c.Logger = c.Logger.With("replica", s.Replica)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	t := &c.Tuning
	if t.Workers <= 0 {
		t.Workers = 256
	}
	if c.HTTPClient == nil {
		// Many commands talk to the same two hosts (Cloud 66, Slack) at
		// once; Go's default keeps only 2 idle connections per host (100
		// in all), so over HTTP/1.1 a burst would dial (and shake TLS
		// hands) again for most requests. Each worker has one call in
		// flight at a time, bar a listing's pages; HTTP/2 needs only one.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = t.Workers
		tr.MaxIdleConns = 2 * t.Workers
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	// Round trips give the command's CPU slot back while they wait (see
	// package admission); every outbound call goes through this client.
	gated := *c.HTTPClient
	base := gated.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if _, ok := base.(admission.Transport); !ok {
		gated.Transport = admission.Transport{Base: base}
	}
	c.HTTPClient = &gated
	if t.Queue <= 0 {
		t.Queue = 1024
	}
	if t.CPUSlots <= 0 {
		t.CPUSlots = admission.DefaultSlots()
	}
	if t.CommandTimeout <= 0 {
		t.CommandTimeout = 2 * time.Minute
	}
	if t.ShutdownTimeout <= 0 {
		t.ShutdownTimeout = 20 * time.Second
	}
	if t.PostsPerSecond <= 0 {
		t.PostsPerSecond = 1
	}
	if t.HomeMinGap <= 0 {
		t.HomeMinGap = 3 * time.Second
	}
	if t.AdminSocket == "" {
		t.AdminSocket = s.DB + ".sock"
	}
	return c
}

// App is a c66bot: every part, built and wired, ready to Run.
type App struct {
	cfg      Config
	log      *slog.Logger
	keys     KeySource
	db       *backend
	metrics  *metrics.Metrics
	accounts *accounts.Service
	deploys  *deploy.Service
	notifier *notify.Service
	poster   *bot.Poster
	bot      *bot.Bot
	web      *web.Server
	listener net.Listener
	server   *http.Server
}

// New builds every part: it checks the settings, finds the sealing keys,
// opens the database and wires accounts, deploy, notify, commands, the
// Slack transport, the HTTP side and the admin socket. Nothing runs until
// Run. Errors about the keys, the database or the listen address are
// *StartError.
func New(cfg Config) (*App, error) {
	cfg = cfg.withDefaults()
	s := cfg.Settings
	if err := s.Check(); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger}
	pol, err := cfg.policy()
	if err != nil {
		return nil, err
	}
	keys, err := a.sealingKeys()
	if err != nil {
		return nil, &StartError{Keys: a.keys, DB: s.DB, Err: err}
	}
	db, err := openBackend(context.Background(), cfg, keys)
	if err != nil {
		return nil, &StartError{Keys: a.keys, DB: s.DB, Err: err}
	}
	a.db = db
	ok := false
	defer func() {
		if !ok {
			db.whole.Close()
		}
	}()

	a.metrics = metrics.New(metrics.Options{
		Commands:        commands.CommandNames(),
		Outcomes:        commands.Outcomes(),
		SocketConnected: func() bool { return a.bot != nil && a.bot.Connected() },
		ActiveWatches:   db.watches.CountActive,
		Version:         cfg.Version,
		Replica:         s.Replica,
		Logger:          cfg.Logger,
	})

	redirect := cloud66.OOBRedirectURL
	if s.PublicURL != "" {
		redirect = s.PublicURL + web.CallbackPath
	}
	a.accounts = accounts.New(accounts.Config{
		Stores: accounts.Stores{Links: db.links, Logins: db.logins},
		OAuth: cloud66.OAuthConfig(cloud66.OAuthSettings{
			BaseURL: s.Cloud66URL, ClientID: s.Cloud66ClientID, ClientSecret: s.Cloud66ClientSecret,
			RedirectURL: redirect, Scopes: s.scopes(),
		}),
		Cloud66URL: s.Cloud66URL, HTTPClient: cfg.HTTPClient, Now: cfg.Now,
		ClientOptions: []cloud66.Option{
			cloud66.WithUserAgent("c66bot/" + cfg.Version),
			// Every attempt, retries included: they all count against
			// Cloud 66's hourly limit. RequestInfo holds no URL or id.
			cloud66.WithRequestHook(func(ri cloud66.RequestInfo) {
				a.metrics.Cloud66Request(ri.Method, ri.Endpoint, ri.StatusCode, ri.Duration)
			}),
			// A stack or server whose id is not a Cloud 66 id is left out
			// of lists; say so, or it would vanish without a trace.
			cloud66.WithInvalidIDHook(func(e *cloud66.InvalidIDError) {
				a.log.Warn("ignored an item of a Cloud 66 answer", "error", e.Error(), "id", e.Value)
			}),
		},
	})

	api := slack.New(s.SlackBotToken,
		slack.OptionAppLevelToken(s.SlackAppToken),
		slack.OptionAPIURL(s.SlackAPIURL),
		slack.OptionHTTPClient(cfg.HTTPClient),
	)
	replies := bot.NewReplier(cfg.HTTPClient, s.SlackAPIURL, a.metrics)
	a.poster = bot.NewPoster(api, replies, a.metrics, bot.PostOptions{
		PerSecond: cfg.Tuning.PostsPerSecond,
		Burst:     2,
		OnUnpostable: func(channel string, err error) {
			a.log.Warn("cannot post in channel", "channel", channel, "error", err.Error())
		},
		Logger:  cfg.Logger,
		Leases:  db.leases,
		Replica: s.Replica,
	})
	groups := bot.NewGroupResolver(api, pol.GroupIDs(), cfg.Now)

	// The App Home reads the stores, not deploy, so deploy can tell it
	// whose Home changed; the login link is the web side's, built below.
	home := bot.NewHome(bot.HomeConfig{
		API: api, MinGap: cfg.Tuning.HomeMinGap, Logger: cfg.Logger,
		Views: commands.NewHome(commands.HomeDeps{
			Accounts: a.accounts, Watches: db.watches, Locks: db.locks, Subscriptions: db.subscriptions,
			Cloud66For: clientFor[commands.Cloud66](a.accounts),
			LoginURL:   func(ls accounts.LoginStart) string { return a.web.LoginURL(ls) },
			Approvals: func(ctx context.Context, id storage.Identity) ([]deploy.PendingApproval, error) {
				return a.deploys.PendingApprovals(ctx, id)
			},
			Command: s.Command, Now: cfg.Now, Logger: cfg.Logger,
		}),
	})
	a.deploys = deploy.New(deploy.Config{
		Stores:     deploy.Stores{Intents: db.intents, Locks: db.locks, Watches: db.watches, Audit: db.audit},
		Cloud66For: clientFor[deploy.Cloud66](a.accounts),
		Slack:      a.poster,
		Cloud66URL: s.Cloud66URL,
		Command:    s.Command,
		Protected:  cfg.Tuning.Protected,
		Policy:     pol,
		Groups:     groups.GroupsOf,
		Logger:     cfg.Logger,
		Poll:       cfg.Tuning.Poll,
		Now:        cfg.Now,
		OnFinished: a.metrics.DeploymentFinished,
		Home:       home,
		People:     a.accounts, // learns Cloud 66 e-mails from redeploys
		Leases:     db.leases,
		Budgets:    db.budgets,
		Replica:    s.Replica,
		// A queued deploy on a protected environment asks again by DM.
		RenderConfirmation: commands.ConfirmationMessage,
	})
	a.notifier = notify.New(notify.Config{
		Stores:     notify.Stores{Subscriptions: db.subscriptions, Outbox: db.outbox, Dedup: db.dedup, Watches: db.watches},
		Slack:      a.poster,
		Cloud66For: clientFor[notify.Cloud66](a.accounts),
		People:     a.accounts,
		Cloud66URL: s.Cloud66URL,
		Command:    s.Command,
		Now:        cfg.Now,
		Logger:     cfg.Logger,
		PollEvery:  cfg.Tuning.NotifyPollEvery,
		Leases:     db.leases,
		Replica:    s.Replica,
	})

	var signIn web.SignIn
	if s.PublicURL != "" {
		signIn = accounts.NewSlackSignIn(accounts.SlackSignInConfig{
			WebURL: accounts.SlackWebURL(s.SlackAPIURL), APIURL: s.SlackAPIURL,
			ClientID: s.SlackClientID, ClientSecret: s.SlackClientSecret,
			RedirectURL: s.PublicURL + web.SlackCallbackPath, HTTPClient: cfg.HTTPClient,
		})
	}
	a.web = web.New(web.Config{
		PublicURL: s.PublicURL, SlackAPIURL: s.SlackAPIURL, Cloud66URL: s.Cloud66URL, Command: s.Command,
		Accounts: a.accounts, SignIn: signIn, Replies: replies, Notices: a.notifier,
		Dedup: db.dedup, Subscriptions: db.subscriptions, APITokens: db.apiTokens, Audit: db.audit,
		SlackConnected: func() bool { return a.bot.Connected() },
		Database:       db.whole,
		Metrics:        a.metrics.Handler(),
		CookieKey:      cookieKey(keys[0]),
		Refusals:       cfg.Tuning.Refusals,
		Logger:         cfg.Logger,
	})

	router := commands.NewRouter(commands.Deps{
		Accounts:      a.accounts,
		Deploy:        a.deploys,
		Subscriptions: db.subscriptions,
		WebhookURL:    a.web.WebhookURL,
		Cloud66For:    clientFor[commands.Cloud66](a.accounts),
		People:        a.accounts,
		Command:       s.Command,
		Cloud66URL:    s.Cloud66URL,
		LoginURL:      a.web.LoginURL,
		Logger:        cfg.Logger,
		Now:           cfg.Now,
		Observe:       a.metrics.Command,
	})
	a.bot = bot.New(bot.Config{
		API: api, SlackAPIURL: s.SlackAPIURL, Router: router, Replies: replies, Metrics: a.metrics, Logger: cfg.Logger,
		Workers: cfg.Tuning.Workers, Queue: cfg.Tuning.Queue,
		CommandTimeout: cfg.Tuning.CommandTimeout, ShutdownTimeout: cfg.Tuning.ShutdownTimeout,
		PingInterval: cfg.Tuning.SocketPingInterval,
		Dedup:        db.envelopes,
		Gate:         admission.NewGate(cfg.Tuning.CPUSlots),
		Home:         home,
	})

	if cfg.Listener != nil {
		a.listener = cfg.Listener
	} else if a.listener, err = net.Listen("tcp", s.Listen); err != nil {
		return nil, &StartError{Keys: a.keys, DB: s.DB, Err: fmt.Errorf("listen on %s (C66BOT_LISTEN): %w", s.Listen, err)}
	}
	a.server = a.web.HTTPServer()
	ok = true
	return a, nil
}

// Each consumer's Cloud 66 interface is what *cloud66.Client does, checked
// here so clientFor's conversion cannot fail.
var (
	_ deploy.Cloud66   = (*cloud66.Client)(nil)
	_ notify.Cloud66   = (*cloud66.Client)(nil)
	_ commands.Cloud66 = (*cloud66.Client)(nil)
)

// clientFor adapts accounts' per-person Cloud 66 client to the interface a
// consumer declares (Go has no covariant results).
func clientFor[C any](acc *accounts.Service) func(ctx context.Context, id storage.Identity) (C, error) {
	return func(ctx context.Context, id storage.Identity) (C, error) {
		var none C
		c, err := acc.Client(ctx, id)
		if err != nil {
			return none, err
		}
		client, ok := any(c).(C)
		if !ok {
			return none, fmt.Errorf("app: *cloud66.Client does not satisfy %T", none)
		}
		return client, nil
	}
}

// cookieKey derives the key that binds each login step to its browser from
// the sealing key, so it survives restarts and needs no setting of its own.
func cookieKey(sealing []byte) []byte {
	mac := hmac.New(sha256.New, sealing)
	mac.Write([]byte("c66bot login browser binding v1"))
	return mac.Sum(nil)
}

// policy is the policy in force: Config.Policy, the file Settings.Policy
// names, or the default (everyone linked may deploy; the protected
// environments ask for confirmation).
func (c Config) policy() (*policy.Policy, error) {
	if c.Policy != nil {
		return c.Policy, nil
	}
	if path := c.Settings.Policy; path != "" {
		pol, err := policy.Load(path)
		if err != nil {
			// policy errors read "<file>:<line>: <problem>" already.
			return nil, fmt.Errorf("C66BOT_POLICY: %w", err)
		}
		return pol, nil
	}
	pol := policy.Default()
	if len(c.Tuning.Protected) > 0 {
		pol.Protected = c.Tuning.Protected
	}
	return pol, nil
}

// Addr is the HTTP server's address.
func (a *App) Addr() net.Addr { return a.listener.Addr() }

// Keys says where the sealing keys came from.
func (a *App) Keys() KeySource { return a.keys }

// Ready reports whether the Slack socket is connected and the database
// answers and takes writes (what /readyz says).
func (a *App) Ready(ctx context.Context) error {
	checks, ok := a.web.Ready(ctx)
	if ok {
		return nil
	}
	switch {
	case checks["slack_socket"] != "ok":
		return errors.New("slack socket not connected")
	case checks["database"] == "not writable":
		return fmt.Errorf("database not writable: %w", a.db.whole.WriteError())
	}
	return errors.New("database " + checks["database"])
}

// Run serves until ctx is done or a part fails for good (Slack refusing
// the app token, say). Every part runs under one errgroup; on the way out
// they stop in reverse order of their making: commands in flight finish
// within ShutdownTimeout, queued Slack posts are sent, and the database is
// closed last.
func (a *App) Run(ctx context.Context) error {
	s, t := a.cfg.Settings, a.cfg.Tuning
	a.log.Info("c66bot starting", "version", a.cfg.Version, "listen", a.listener.Addr().String(),
		"out_of_band_login", a.accounts.OutOfBand(), "settings", s)
	a.warnings()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.bot.Run(gctx) })
	g.Go(func() error {
		if err := a.server.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), t.ShutdownTimeout)
		defer cancel()
		return a.server.Shutdown(sctx)
	})
	g.Go(func() error { a.web.Run(gctx); return nil })
	g.Go(func() error { a.sweep(gctx); return nil })
	g.Go(func() error {
		if err := a.deploys.Run(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("deployments: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := a.notifier.Run(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("notifications: %w", err)
		}
		return nil
	})
	if a.db.bolt != nil {
		// bbolt lets one process open the file, so the operator commands
		// reach it through this socket while the bot runs; on PostgreSQL
		// they open the database themselves.
		g.Go(func() error {
			return admin.Serve(gctx, admin.Config{
				Path: t.AdminSocket, Audit: a.db.audit, Tokens: a.db.apiTokens, Database: a.db.bolt, Links: a.db.links,
				Ready: a.Ready, Logger: a.log,
			})
		})
	}
	err := g.Wait()

	qctx, qcancel := context.WithTimeout(context.Background(), t.ShutdownTimeout)
	if perr := a.poster.Close(qctx); perr != nil {
		a.log.Warn("shutdown: some Slack posts were not sent", "error", perr.Error())
	}
	qcancel()
	if cerr := a.db.whole.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	a.log.Info("c66bot stopped")
	return err
}

// Close releases what New took, for an App that never ran (Run closes
// everything itself).
func (a *App) Close() error {
	if a.cfg.Listener == nil {
		a.listener.Close()
	}
	return a.db.whole.Close()
}

// sweep removes expired login states and dedup keys now and then.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.db.whole.SweepExpired(ctx); err != nil {
				a.log.Warn("sweep expired login states", "error", err.Error())
			} else if n > 0 {
				a.log.Debug("swept expired login states", "count", n)
			}
		}
	}
}
