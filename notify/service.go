package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
)

// Poster posts to a channel through the bot's per-channel queue (order kept,
// about one message a second, 429s waited out). Enqueue must not block on
// Slack; done is called once with the outcome, chat.ErrCannotPost (wrapped
// or not) when the bot may not post in channel. done records a successful
// post in the store before it returns; an implementation that calls it on
// the channel's worker, before the channel's next post, keeps what a crash
// can duplicate to the one post in flight.
type Poster interface {
	Enqueue(channel, threadTS string, m chat.Message, done func(ts string, err error))
	DM(ctx context.Context, to storage.Identity, m chat.Message) error
}

// Cloud66 is what polling needs of a subscriber's client; *cloud66.Client
// satisfies it.
type Cloud66 interface {
	ListStacks(ctx context.Context) ([]cloud66.Stack, error)
	ListDeploymentsPage(ctx context.Context, stackUID string, page int) ([]cloud66.Deployment, cloud66.Pagination, error)
}

// SubscriptionStore is where channel subscriptions live;
// *storage.SubscriptionStore satisfies it.
type SubscriptionStore interface {
	All(ctx context.Context) ([]storage.Subscription, error)
	MarkWebhookSeen(ctx context.Context, id string, at time.Time) error
	PauseChannel(ctx context.Context, team, channel, reason string) ([]storage.Subscription, error)
}

// OutboxStore is where accepted events wait until they are posted;
// *storage.OutboxStore satisfies it.
type OutboxStore interface {
	Enqueue(ctx context.Context, kind string, payload []byte) (storage.OutboxItem, error)
	Pending(ctx context.Context, limit int) ([]storage.OutboxItem, error)
	Ack(ctx context.Context, id uint64) error
	Retry(ctx context.Context, id uint64, next time.Time) (storage.OutboxItem, error)
	// MarkDone records a target as handled and, in the same transaction,
	// key as seen for ttl in the DedupStore.
	MarkDone(ctx context.Context, id uint64, target, key string, ttl time.Duration) error
}

// DedupStore says which happenings a channel has been told of already;
// *storage.DedupStore satisfies it.
type DedupStore interface {
	Seen(ctx context.Context, key string) (bool, error)
}

// WatchStore is where the bot's own deployments are, to tell them from
// deployments started elsewhere; *storage.WatchStore satisfies it.
type WatchStore interface {
	ForStack(ctx context.Context, stackUID string, since time.Time) ([]storage.Watch, error)
}

// Stores are where notify keeps what must survive a restart.
type Stores struct {
	Subscriptions SubscriptionStore
	Outbox        OutboxStore
	Dedup         DedupStore
	Watches       WatchStore
}

// Config wires a Service. Zero durations take the defaults.
type Config struct {
	Stores
	Slack Poster
	// Cloud66For returns the person's own client; it fails with an error
	// matching accounts.ErrNotLinked when they have not linked Cloud 66.
	Cloud66For func(ctx context.Context, id storage.Identity) (Cloud66, error)
	// Cloud66URL is the dashboard base for links: <it>/stacks/<uid>.
	Cloud66URL string
	// People shows who triggered a deployment as the Slack person who
	// linked that Cloud 66 e-mail in the channel's workspace; nil shows
	// the e-mail.
	People PeopleByEmail
	// Command is the slash command, for hints; default "/c66".
	Command string
	// Now is the clock of every decision (history floors, webhook
	// freshness, retry times); nil means time.Now. Waiting between polls
	// always runs on real time, so tests use millisecond intervals.
	Now    func() time.Time
	Logger *slog.Logger
	// PollEvery is a stack's poll interval when its budget allows, and how
	// often pollers are reconciled with the subscriptions; default 60s.
	PollEvery time.Duration
	// PollBudgetPerHour is how many Cloud 66 requests polling may make per
	// subscriber per hour; default 600, a fifth of the 3,000 Cloud 66
	// allows a person, leaving the rest to their commands and deployments.
	PollBudgetPerHour int
	// WebhookFresh: a stack whose webhook arrived within this is not
	// polled; default 2h.
	WebhookFresh time.Duration
	// VisibleRefresh is how often an "all" subscriber's list of visible
	// stacks is fetched again; default 10m.
	VisibleRefresh time.Duration

	// Leases holds the claims that make delivery exactly once and in order
	// across replicas on one database: one replica at a time, the one
	// holding "notify", delivers the outbox and runs the pollers; within
	// that, an outbox item is delivered under "outbox:<id>" and a happening
	// is posted in a channel under "post:<its dedup key>", which keep a
	// replica that lost "notify" without noticing from doubling a post. nil
	// means storage.NewLocalLeases(Now), enough for one process.
	Leases LeaseStore
	// Replica is the name this process takes leases under; "" means a
	// random one.
	Replica string
	// LeaseTTL is how long a claim lasts unrenewed: a replica that dies
	// mid-delivery leaves its items to the others within it. Claims are
	// renewed every third of it while the posts wait in their queues.
	// Default 20s.
	LeaseTTL time.Duration
	// DeliverEvery is how often the outbox is read again for retries come
	// due and for items other replicas accepted, and how often a replica
	// that does not deliver tries to take delivery over; default 1s, and
	// never slower than PollEvery.
	DeliverEvery time.Duration
}

// LeaseStore is where the replicas' leases live (Acquire, Renew,
// Release); *storage.LocalLeases satisfies it, and so does the PostgreSQL
// backend's.
type LeaseStore = leases.Store

// Defaults of Config.
const (
	defaultPollEvery      = 60 * time.Second
	defaultBudgetPerHour  = 600
	defaultWebhookFresh   = 2 * time.Hour
	defaultVisibleRefresh = 10 * time.Minute
	defaultLeaseTTL       = 20 * time.Second
	defaultDeliverEvery   = time.Second
)

// Delivery tuning.
const (
	// outboxKind marks notify's items in the shared outbox.
	outboxKind = "notify.event"
	// dedupTTL is how long a channel remembers having announced a
	// happening: far longer than any webhook-versus-poll race or retry.
	dedupTTL = 7 * 24 * time.Hour
	// outboxBatch is how many items one pass of the delivery loop reads.
	outboxBatch = 100
	// maxAttempts bounds the attempts at one item (about 40 minutes of
	// backoff in all), so a post Slack keeps refusing is not retried forever.
	maxAttempts = 10
	retryBase   = 5 * time.Second
	retryMax    = 15 * time.Minute
	// roleKey is the lease of the replica that delivers and polls.
	roleKey = "notify"
	// ownWindow: the bot's own deployment counts as the one an event is
	// about if it finished no more than this before the event.
	ownWindow = 10 * time.Minute
	// ownLookback is how far back the bot's own deployments are read for
	// an event; longer than deploy's two-hour timeout.
	ownLookback = 3 * time.Hour
	// clockSlack absorbs the skew between the bot's clock (when it asked
	// for a deployment) and Cloud 66's (when the deployment started).
	clockSlack = time.Minute
	// historyWindow: polling never announces deployments that started
	// longer ago than this, so a restart does not replay history.
	historyWindow = time.Hour
	// missRefresh bounds how often a subscriber's visible stacks are
	// fetched because an event named a stack not in them.
	missRefresh = time.Minute
	// markTimeout bounds the write that records a post Slack took; it is
	// made even while shutting down.
	markTimeout = 5 * time.Second
)

// ErrUnknownStack is returned by ResolveStack for a stack notify does not
// know in that workspace.
var ErrUnknownStack = errors.New("notify: unknown stack")

// AmbiguousError is returned by ResolveStack when a name matches several
// stacks; Stacks lists them as "name:environment".
type AmbiguousError struct {
	Ref    string
	Stacks []string
}

// Error reads `"shop" matches several stacks: shop:production, shop:staging`.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("notify: %q matches several stacks: %s", e.Ref, strings.Join(e.Stacks, ", "))
}

// Service delivers notifications and polls Cloud 66 for deployments. Its
// methods are safe for concurrent use.
type Service struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
	// gained hears when this replica takes the "notify" lease, so the
	// pollers start at once rather than at the next reconcile tick.
	gained chan struct{}

	mu        sync.Mutex
	running   bool
	visible   map[storage.Identity]*visibleEntry
	webhooks  map[teamStack]time.Time        // last webhook event per workspace and stack (Config.Now)
	bad       map[storage.Identity]time.Time // client refused (401, not linked) until then (Config.Now)
	throttled map[storage.Identity]time.Time // Cloud 66 throttled the person until then (real time)
	pollers   map[string]*poller             // by stack uid
	inflight  map[uint64]bool                // outbox items being delivered
	claims    map[string]bool                // dedup keys of posts in flight; true once another item waits for one
	items     map[uint64]*leases.Held        // the leases of the items being delivered
	posting   map[string]*leases.Held        // the leases of the dedup keys in claims
	role      *leases.Held                   // "notify" while this replica delivers and polls
	wg        sync.WaitGroup

	owner string // Config.Replica, or the random name taken in its place
	// renewSleep waits between the background renewals of a lease; real
	// time, replaced by tests.
	renewSleep func(ctx context.Context, d time.Duration) error

	// Test hooks, nil outside tests, set through export_test.go before Run
	// so a test can see polling stop without waiting on the clock:
	// reconciled hears after every reconcile pass the uids of the stacks
	// it left polled, sorted; pollerDone hears a stack's uid once its
	// poller's goroutine has returned.
	reconciled func(polled []string)
	pollerDone func(uid string)
	// drainHook, when set, runs at the start of every delivery pass, on
	// the delivery loop: a test counts passes with it, or holds one.
	drainHook func(ctx context.Context)
}

type teamStack struct{ team, stackUID string }

// New returns a Service; call Run to deliver and poll.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Command == "" {
		cfg.Command = slackapp.DefaultCommand
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = defaultPollEvery
	}
	if cfg.PollBudgetPerHour <= 0 {
		cfg.PollBudgetPerHour = defaultBudgetPerHour
	}
	if cfg.WebhookFresh <= 0 {
		cfg.WebhookFresh = defaultWebhookFresh
	}
	if cfg.VisibleRefresh <= 0 {
		cfg.VisibleRefresh = defaultVisibleRefresh
	}
	if cfg.Leases == nil {
		cfg.Leases = storage.NewLocalLeases(cfg.Now)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = defaultLeaseTTL
	}
	if cfg.DeliverEvery <= 0 {
		cfg.DeliverEvery = defaultDeliverEvery
	}
	return &Service{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "notify"),
		wake:      make(chan struct{}, 1),
		gained:    make(chan struct{}, 1),
		visible:   map[storage.Identity]*visibleEntry{},
		webhooks:  map[teamStack]time.Time{},
		bad:       map[storage.Identity]time.Time{},
		throttled: map[storage.Identity]time.Time{},
		pollers:   map[string]*poller{},
		inflight:  map[uint64]bool{},
		claims:    map[string]bool{},
		items:     map[uint64]*leases.Held{},
		posting:   map[string]*leases.Held{},
		owner:     leases.Owner(cfg.Replica),
		renewSleep: func(ctx context.Context, d time.Duration) error {
			if !sleep(ctx, d) {
				return ctx.Err()
			}
			return nil
		},
	}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Accept stores ev in the outbox and wakes delivery. Cloud 66 never retries
// a webhook, so an event must be on disk before the handler answers 202: a
// crash after that loses nothing, the next Run delivers it.
//
// ev must have a known Kind and a valid StackUID; a zero At becomes now
// (so the event's Key is fixed from here on) and an empty Source "api".
func (s *Service) Accept(ctx context.Context, ev Event) error {
	ev = ev.normalized()
	if err := ev.validate(); err != nil {
		return err
	}
	now := s.now()
	if ev.At.IsZero() {
		ev.At = now
	}
	if ev.Source == "" {
		ev.Source = SourceAPI
	}
	if err := s.enqueue(ctx, ev); err != nil {
		return err
	}
	if ev.Source == SourceWebhook && ev.Team != "" {
		s.mu.Lock()
		s.webhooks[teamStack{ev.Team, ev.StackUID}] = now
		s.mu.Unlock()
	}
	return nil
}

// enqueue writes ev to the outbox and wakes the delivery loop.
func (s *Service) enqueue(ctx context.Context, ev Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("notify: encode %s event: %w", ev.Kind, err)
	}
	if _, err := s.cfg.Outbox.Enqueue(ctx, outboxKind, payload); err != nil {
		return fmt.Errorf("notify: store %s event for %s: %w", ev.Kind, ev.StackUID, err)
	}
	s.poke()
	return nil
}

// poke wakes the delivery loop without blocking.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers the outbox and runs the pollers until ctx is done; it then
// waits for its goroutines and returns nil. Events accepted before Run, even
// by an earlier process, are delivered first.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("notify: Run called twice")
	}
	s.running = true
	s.mu.Unlock()

	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.deliverLoop(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.pollLoop(ctx)
	}()
	<-ctx.Done()
	s.wg.Wait()
	s.resign()

	s.mu.Lock()
	s.running = false
	s.pollers = map[string]*poller{}
	s.mu.Unlock()
	return nil
}

// ResolveStack finds the stack ref names among the stacks notify knows in
// team: those of the team's subscriptions and those its subscribers can see.
// ref is a uid, a name (case-insensitive) or name:environment. A name that
// matches several stacks is an *AmbiguousError; no match is an error
// wrapping ErrUnknownStack. When nothing matches, the subscribers' visible
// stacks are fetched once more before giving up.
func (s *Service) ResolveStack(ctx context.Context, team, ref string) (uid, name, environment string, err error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", "", "", fmt.Errorf("%w: empty name", ErrUnknownStack)
	}
	subs, err := s.cfg.Subscriptions.All(ctx)
	if err != nil {
		return "", "", "", fmt.Errorf("notify: resolve %q: %w", ref, err)
	}
	subs = slices.DeleteFunc(subs, func(sub storage.Subscription) bool { return team != "" && sub.Team != team })
	var subscribers []storage.Identity
	for _, sub := range subs {
		if !slices.Contains(subscribers, sub.Subscriber) {
			subscribers = append(subscribers, sub.Subscriber)
		}
	}

	for attempt := 0; ; attempt++ {
		known := map[string]stackInfo{}
		for _, sub := range subs {
			if sub.StackUID != "" {
				known[sub.StackUID] = stackInfo{UID: sub.StackUID, Name: sub.StackName, Environment: sub.Environment}
			}
		}
		for _, id := range subscribers {
			for uid, st := range s.cachedVisible(id) {
				if prev, ok := known[uid]; !ok || prev.Name == "" {
					known[uid] = st
				}
			}
		}
		found, err := matchStack(known, ref)
		if err == nil || !errors.Is(err, ErrUnknownStack) || attempt > 0 {
			return found.UID, found.Name, found.Environment, err
		}
		refreshed := false
		for _, id := range subscribers {
			if s.refreshVisible(ctx, id, missRefresh) {
				refreshed = true
			}
		}
		if !refreshed {
			return "", "", "", err
		}
	}
}

// matchStack applies ResolveStack's rules to the known stacks.
func matchStack(known map[string]stackInfo, ref string) (stackInfo, error) {
	for uid, st := range known {
		if strings.EqualFold(uid, ref) {
			return st, nil
		}
	}
	name, env, hasEnv := strings.Cut(ref, ":")
	var hits []stackInfo
	for _, st := range known {
		if strings.EqualFold(st.Name, name) && (!hasEnv || strings.EqualFold(st.Environment, env)) {
			hits = append(hits, st)
		}
	}
	switch len(hits) {
	case 0:
		return stackInfo{}, fmt.Errorf("%w: %q", ErrUnknownStack, ref)
	case 1:
		return hits[0], nil
	}
	names := make([]string, len(hits))
	for i, st := range hits {
		names[i] = bk.StackRef(st.Name, st.Environment)
		if slices.Contains(names[:i], names[i]) {
			names[i] += " (" + st.UID + ")"
		}
	}
	sort.Strings(names)
	return stackInfo{}, &AmbiguousError{Ref: ref, Stacks: names}
}
