package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/storage"
)

// HomeViews renders a person's App Home; *commands.Home satisfies it.
type HomeViews interface {
	View(ctx context.Context, id storage.Identity) (slack.HomeTabViewRequest, error)
}

// viewPublisher is the Web API call that sets a Home; *slack.Client
// satisfies it.
type viewPublisher interface {
	PublishViewContext(ctx context.Context, req slack.PublishViewContextRequest) (*slack.ViewResponse, error)
}

// HomeConfig is what NewHome needs.
type HomeConfig struct {
	API   *slack.Client
	Views HomeViews
	// MinGap is the least time between two publishes of one person's Home:
	// views.publish is Tier 4 (about 100 a minute), and a deploy's card
	// moves faster than anyone reads a Home. Zero publishes at once.
	MinGap time.Duration
	// PublishTimeout bounds one render and publish; default 10s.
	PublishTimeout time.Duration
	Logger         *slog.Logger
}

// Home keeps App Homes current: it publishes a person's Home when they open
// it, and again when Touch says something on it changed, at most once per
// MinGap per person. Only people who opened their Home since this process
// started are republished: that set lives in memory, so after a restart a
// Home is refreshed again from its next opening (Slack keeps the last
// published view until then).
type Home struct {
	cfg   HomeConfig
	api   viewPublisher
	log   *slog.Logger
	after func(d time.Duration, f func()) // time.AfterFunc, a fake in tests

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run and after it ends
	opened  map[storage.Identity]bool
	last    map[storage.Identity]time.Time
	pending map[storage.Identity]bool
	// running are the Homes being rendered and published now, and dirty
	// those touched meanwhile: they are published again once that ends,
	// so an older view never lands after a newer one.
	running map[storage.Identity]bool
	dirty   map[storage.Identity]bool
}

// NewHome builds the App Home publisher; it publishes once Run runs.
func NewHome(cfg HomeConfig) *Home {
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Home{cfg: cfg, log: cfg.Logger, opened: map[storage.Identity]bool{}, last: map[storage.Identity]time.Time{}, pending: map[storage.Identity]bool{},
		running: map[storage.Identity]bool{}, dirty: map[storage.Identity]bool{}}
	if cfg.API != nil {
		h.api = cfg.API
	}
	h.after = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	return h
}

// Run lets publishes happen until ctx is done.
func (h *Home) Run(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	h.ctx = nil
	h.mu.Unlock()
}

// Opened publishes id's Home (they opened the tab) and remembers them.
func (h *Home) Opened(id storage.Identity) {
	if h == nil || !id.Valid() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opened[id] = true
	h.scheduleLocked(id)
}

// Touch republishes id's Home if they ever opened it; nil-safe.
func (h *Home) Touch(id storage.Identity) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opened[id] {
		h.scheduleLocked(id)
	}
}

// TouchAll republishes the Home of everyone who opened theirs (an approval
// request changed: who may approve it is the renderer's to judge); nil-safe.
func (h *Home) TouchAll() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.opened {
		h.scheduleLocked(id)
	}
}

// scheduleLocked publishes id's Home no sooner than MinGap after the last
// publish; touches while one is pending fold into it.
func (h *Home) scheduleLocked(id storage.Identity) {
	if h.pending[id] {
		return
	}
	if h.running[id] {
		h.dirty[id] = true
		return
	}
	h.pending[id] = true
	wait := time.Duration(0)
	if last, ok := h.last[id]; ok {
		wait = max(h.cfg.MinGap-time.Since(last), 0)
	}
	h.after(wait, func() { h.publish(id) })
}

func (h *Home) publish(id storage.Identity) {
	h.mu.Lock()
	delete(h.pending, id)
	h.running[id] = true
	base := h.ctx
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.running, id)
		h.last[id] = time.Now()
		if h.dirty[id] {
			delete(h.dirty, id)
			h.scheduleLocked(id)
		}
	}()
	if base == nil || h.api == nil {
		return
	}
	ctx, cancel := context.WithTimeout(base, h.cfg.PublishTimeout)
	defer cancel()
	view, err := h.cfg.Views.View(ctx, id)
	if err != nil {
		h.log.Warn("cannot render the app home", "team", id.Team, "user", id.User, "error", err.Error())
		return
	}
	if _, err := h.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: id.User, View: view}); err != nil {
		h.log.Warn("views.publish failed", "team", id.Team, "user", id.User, "error", err.Error())
	}
}

// submitEvent handles an Events API envelope (already acked) on the pool:
// app_home_opened on the Home tab publishes the person's Home.
func (b *Bot) submitEvent(env envelope, ev slackevents.EventsAPIEvent) {
	opened, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || opened.Tab != "home" || b.cfg.Home == nil {
		return
	}
	team := ev.TeamID
	if ev.EnterpriseID != "" {
		team = ev.EnterpriseID
	}
	id := storage.Identity{Team: team, User: opened.User}
	accepted := b.pool.submit(admission.Start, func(ctx context.Context) {
		if b.firstTime(ctx, env) {
			b.cfg.Home.Opened(id)
		}
	})
	if !accepted {
		b.metrics.QueueFull()
	}
}
