// Package bot is c66bot's Slack transport, and only that: the Socket Mode
// loop (ack first, on every path, then a bounded worker pool), dispatch of
// slash commands and button presses to package commands, replies through
// response_url (Replier), and posting paced per channel (Poster), which
// deploy and notify use. The app package builds it and everything it talks
// to; the HTTP side lives in package web, operator tools in package admin.
package bot

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/metrics"
)

// Router runs what people send: slash commands and button presses, with
// their replies; *commands.Router satisfies it.
type Router interface {
	Dispatch(ctx context.Context, req commands.Request) chat.Message
	HandleAction(ctx context.Context, a commands.Action) (commands.ActionReply, bool)
}

// Config is what the transport needs. The app package sets every field;
// there are no defaults here (they live in one place, the app), except
// that a process on its own may leave Dedup nil.
type Config struct {
	// API is the Web API client, with the app-level token for Socket Mode.
	API *slack.Client
	// SlackAPIURL is the Web API base, named in connection logs.
	SlackAPIURL string
	Router      Router
	Replies     *Replier
	Metrics     *metrics.Metrics
	Logger      *slog.Logger
	// Workers and Queue bound concurrent and waiting commands.
	Workers int
	Queue   int
	// CommandTimeout bounds one command's work.
	CommandTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight commands may finish.
	ShutdownTimeout time.Duration
	// PingInterval is how long without a ping from Slack before the
	// socket is considered dead; zero keeps slack-go's 30 s.
	PingInterval time.Duration
	// Dedup remembers the envelopes handled ("envelope:<id>", for
	// envelopeTTL), shared by the replicas: Slack redelivers an envelope it
	// thinks went unacknowledged, on any of the app's connections, so with
	// several replicas the second delivery may reach another one. nil means
	// a set in this process's memory.
	Dedup DedupStore
	// Gate bounds the workers computing at once (see package admission);
	// nil lets every worker compute at once.
	Gate *admission.Gate
	// Home publishes App Homes (app_home_opened); nil leaves the events
	// acked and unanswered.
	Home *Home
}

// DedupStore records keys seen; *storage.DedupStore satisfies it.
type DedupStore interface {
	// FirstTime records key for ttl and reports whether this is the first
	// time it has been seen (or the earlier record expired); of two
	// concurrent callers exactly one gets true.
	FirstTime(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// envelopeTTL is how long an envelope id is remembered: far longer than
// Slack's redeliveries of it.
const envelopeTTL = 10 * time.Minute

// Bot is the Slack transport.
type Bot struct {
	cfg     Config
	log     *slog.Logger
	router  Router
	replies *Replier
	metrics *metrics.Metrics
	socket  *socketmode.Client
	pool    *pool
	dedup   DedupStore
	// seen is dedup when it is the in-memory set, which Run sweeps.
	seen *seenSet

	connected atomic.Bool
}

// New builds the transport; nothing runs until Run.
func New(cfg Config) *Bot {
	var opts []socketmode.Option
	if cfg.PingInterval > 0 {
		opts = append(opts, socketmode.OptionPingInterval(cfg.PingInterval))
	}
	b := &Bot{
		cfg: cfg, log: cfg.Logger, router: cfg.Router, replies: cfg.Replies, metrics: cfg.Metrics,
		socket: socketmode.New(cfg.API, opts...),
		pool:   newPool(cfg.Workers, cfg.Queue, cfg.Gate),
		dedup:  cfg.Dedup,
	}
	if b.dedup == nil {
		b.seen = newSeenSet()
		b.dedup = b.seen
	}
	return b
}

// Connected reports whether the Socket Mode connection is up (for /readyz
// and c66bot_socket_connected).
func (b *Bot) Connected() bool { return b.connected.Load() }

// Run holds the Socket Mode connection and handles what arrives until ctx
// is done or Slack refuses the app token for good (*SlackAuthError). On the
// way out it stops taking commands and lets in-flight ones finish within
// ShutdownTimeout.
func (b *Bot) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := b.socket.RunContext(gctx)
		if gctx.Err() != nil {
			return nil
		}
		return socketRunError(err)
	})
	g.Go(func() error { b.eventLoop(gctx); return nil })
	if b.cfg.Home != nil {
		g.Go(func() error { b.cfg.Home.Run(gctx); return nil })
	}
	if b.seen != nil {
		g.Go(func() error { b.sweepSeen(gctx); return nil })
	}
	err := g.Wait()
	b.connected.Store(false)
	if !b.pool.shutdown(b.cfg.ShutdownTimeout) {
		b.log.Warn("shutdown: in-flight commands cancelled after the grace period", "grace", b.cfg.ShutdownTimeout.String())
	}
	return err
}

// sweepSeen forgets old envelope ids now and then.
func (b *Bot) sweepSeen(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.seen.sweep(now)
		}
	}
}
