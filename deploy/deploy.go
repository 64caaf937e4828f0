package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/clock"
	"github.com/c66bot/c66bot/internal/leases"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/slackapp"
	"github.com/c66bot/c66bot/storage"
)

// Errors callers map to replies (see package commands).
var (
	// ErrNotYours: someone other than the requester pressed a confirmation
	// button. The intent stays usable for its requester.
	ErrNotYours = errors.New("deploy: only the person who asked can answer this")
	// ErrIntentGone: the confirmation was already answered (a double click,
	// a duplicate delivery) or never existed.
	ErrIntentGone = errors.New("deploy: this request was already answered")
	// ErrNothingRunning: cancel found no running deployment on the stack.
	ErrNothingRunning = errors.New("deploy: no deployment is running on that stack")
	// ErrNotLocked: unlock on a stack nobody has locked.
	ErrNotLocked = errors.New("deploy: the stack is not locked")
	// ErrIntentExpired is storage.ErrIntentExpired itself, so callers may
	// test for either name with errors.Is.
	ErrIntentExpired = storage.ErrIntentExpired
	// ErrOwnApproval: the requester pressed Approve on their own request.
	// Their click never counts, so one person cannot be both halves of a
	// two-person check; the request stays open for others.
	ErrOwnApproval = errors.New("deploy: the requester's own approval does not count")
)

// Intent kinds stored by this package.
const (
	kindDeploy = "deploy"
	kindCancel = "cancel"
	kindUnlock = "unlock"
	// kindOverride backs the Override button of a freeze refusal offered to
	// an admin.
	kindOverride = "override"
	// kindApproval backs the Approve and Reject buttons of an approval
	// request posted in the channel.
	kindApproval = "approval"
)

// Params are the optional redeploy parameters a person may give.
type Params struct {
	Ref      string   // git branch, tag or commit; "" = the stack's branch
	Services []string // "name" or "name:tag" (Docker/Maestro stacks)
	Profile  string   // a deployment profile name
	Strategy string   // "", serial, parallel, rolling or fast
}

// Keys of Params.Map. They are also the audit args, so they read well.
const (
	paramRef      = "ref"
	paramServices = "services"
	paramProfile  = "profile"
	paramStrategy = "strategy"
)

// Map returns p as a map for intents, watches and the audit log; empty
// parameters are left out.
func (p Params) Map() map[string]string {
	m := map[string]string{}
	if p.Ref != "" {
		m[paramRef] = p.Ref
	}
	if len(p.Services) > 0 {
		m[paramServices] = strings.Join(p.Services, ",")
	}
	if p.Profile != "" {
		m[paramProfile] = p.Profile
	}
	if p.Strategy != "" {
		m[paramStrategy] = p.Strategy
	}
	return m
}

// ParamsFromMap is the inverse of Params.Map; unknown keys are ignored.
func ParamsFromMap(m map[string]string) Params {
	p := Params{Ref: m[paramRef], Profile: m[paramProfile], Strategy: m[paramStrategy]}
	for _, s := range strings.Split(m[paramServices], ",") {
		if s = strings.TrimSpace(s); s != "" {
			p.Services = append(p.Services, s)
		}
	}
	return p
}

// validate catches a strategy Cloud 66 would refuse before a protected
// environment asks for a confirmation that could only fail.
func (p Params) validate() error {
	switch p.Strategy {
	case "", "serial", "parallel", "rolling", "fast":
		return nil
	}
	return fmt.Errorf("deploy: unknown strategy %q: want serial, parallel, rolling or fast", p.Strategy)
}

// Origin is who asked and where: the Slack request behind an action.
type Origin struct {
	Identity    storage.Identity
	Channel     string
	ResponseURL string
	RequestID   string
}

// maxUserReference is Cloud 66's limit for user_reference.
const maxUserReference = 255

// UserReference is the user_reference sent with a redeploy:
// "c66bot:<team>:<user>:<channel>:<request id>". It ties the Cloud 66 action
// to the Slack request for audit, and lets the watcher find the action of a
// queued deploy. It is a pure function of o, and at most 255 bytes: a
// request id that would not fit is replaced by its SHA-256, which keeps it
// unique where cutting it would not.
func UserReference(o Origin) string {
	prefix := "c66bot:" + o.Identity.Team + ":" + o.Identity.User + ":" + o.Channel + ":"
	ref := prefix + o.RequestID
	if len(ref) <= maxUserReference {
		return ref
	}
	sum := sha256.Sum256([]byte(o.RequestID))
	ref = prefix + hex.EncodeToString(sum[:])
	if len(ref) <= maxUserReference {
		return ref
	}
	// Only absurd ids get here; cut on a rune boundary so the value stays
	// valid UTF-8 in JSON.
	n := maxUserReference
	for n > 0 && !utf8.RuneStart(ref[n]) {
		n--
	}
	return ref[:n]
}

// Cloud66 is what deploy needs of a person's Cloud 66 client;
// *cloud66.Client satisfies it.
type Cloud66 interface {
	GetStack(ctx context.Context, uid string) (*cloud66.Stack, error)
	ListDeploymentsPage(ctx context.Context, stackUID string, page int) ([]cloud66.Deployment, cloud66.Pagination, error)
	Redeploy(ctx context.Context, stackUID string, req cloud66.RedeployRequest) (*cloud66.RedeployResult, error)
	RunStackAction(ctx context.Context, stackUID string, req cloud66.StackActionRequest) (*cloud66.AsyncAction, error)
	RebootServer(ctx context.Context, stackUID, serverUID string) (*cloud66.AsyncAction, error)
	RebootServers(ctx context.Context, stackUID string, req cloud66.RebootRequest) (*cloud66.AsyncAction, error)
	ListServers(ctx context.Context, stackUID string) ([]cloud66.Server, error)
	GetAction(ctx context.Context, stackUID string, id int64) (*cloud66.AsyncAction, error)
	ListActions(ctx context.Context, stackUID string) ([]cloud66.AsyncAction, error)
	ListActionsByReference(ctx context.Context, stackUID, ref string) ([]cloud66.AsyncAction, error)
	CancelDeployment(ctx context.Context, stackUID string, id int64) (*cloud66.Result, error)
}

// IntentStore is where pending confirmations and approvals live;
// *storage.IntentStore satisfies it.
type IntentStore interface {
	Create(ctx context.Context, in storage.Intent) (storage.Intent, error)
	Consume(ctx context.Context, id string, check func(storage.Intent) error) (storage.Intent, error)
	Update(ctx context.Context, id string, fn func(*storage.Intent) error) (storage.Intent, error)
	// Get reads an intent without spending it (rollback offers).
	Get(ctx context.Context, id string) (storage.Intent, error)
}

// LockStore is where stack locks live; *storage.LockStore satisfies it.
// The writes that make a change take its audit entry, written in the same
// transaction; they fail with storage.ErrNotAudited when it cannot be, and
// then make no change. So do WatchStore's.
type LockStore interface {
	Acquire(ctx context.Context, l storage.Lock, audit ...storage.AuditEntry) (held storage.Lock, acquired bool, err error)
	Get(ctx context.Context, team, stackUID string) (storage.Lock, error)
	Release(ctx context.Context, team, stackUID string, audit ...storage.AuditEntry) (storage.Lock, error)
	List(ctx context.Context, team string) ([]storage.Lock, error)
	// The lock queue (lockqueue.go): waiters, expiry and the reminder.
	AddWaiter(ctx context.Context, team, stackUID string, w storage.LockWaiter) (storage.Lock, storage.LockWaiter, error)
	MarkReminded(ctx context.Context, team, stackUID string, since time.Time) (bool, error)
	ReleaseExpired(ctx context.Context, team, stackUID string, now time.Time, audit ...storage.AuditEntry) (storage.Lock, error)
	All(ctx context.Context) ([]storage.Lock, error)
}

// WatchStore is where the deployments being followed live;
// *storage.WatchStore satisfies it.
type WatchStore interface {
	Start(ctx context.Context, w storage.Watch, audit ...storage.AuditEntry) (storage.Watch, error)
	Save(ctx context.Context, w storage.Watch, audit ...storage.AuditEntry) error
	Get(ctx context.Context, id string) (storage.Watch, error)
	Active(ctx context.Context) ([]storage.Watch, error)
	ActiveForStack(ctx context.Context, stackUID string) (storage.Watch, error)
	Delete(ctx context.Context, id string, audit ...storage.AuditEntry) error
}

// AuditStore takes the audit entries of what happens outside the stores (a
// call to Cloud 66 about to be made, a refusal); *storage.AuditStore
// satisfies it.
type AuditStore interface {
	Append(ctx context.Context, e storage.AuditEntry) (storage.AuditEntry, error)
}

// Stores are where deploy keeps what must survive a restart.
type Stores struct {
	Intents IntentStore
	Locks   LockStore
	Watches WatchStore
	Audit   AuditStore
}

// Slack is how deploy reaches Slack; package bot implements it with
// chat.postMessage, chat.update, chat.postEphemeral and response_url.
type Slack interface {
	// Post returns chat.ErrCannotPost when the bot may not post in
	// channel; the deployment message then goes through the response_url.
	Post(ctx context.Context, channel string, m chat.Message) (ts string, err error)
	Update(ctx context.Context, channel, ts string, m chat.Message) error
	Thread(ctx context.Context, channel, threadTS string, m chat.Message) error
	// Respond posts through a response_url; m.InChannel decides visibility.
	Respond(ctx context.Context, responseURL string, m chat.Message) error
	Ephemeral(ctx context.Context, channel, user string, m chat.Message) error
	DM(ctx context.Context, to storage.Identity, m chat.Message) error
}

// EmailNoter records the Cloud 66 e-mail of a linked person;
// *accounts.Service satisfies it.
type EmailNoter interface {
	NoteEmail(ctx context.Context, id storage.Identity, email string) error
}

// Config wires a Service.
type Config struct {
	Stores
	// Cloud66For returns the person's own client; it fails with an error
	// matching accounts.ErrNotLinked when they have not linked Cloud 66.
	Cloud66For func(ctx context.Context, id storage.Identity) (Cloud66, error)
	Slack      Slack
	// Cloud66URL is the dashboard base for links: <it>/stacks/<uid>.
	Cloud66URL string
	// Command is the slash command, for hints such as "/c66 login".
	Command string
	// Protected lists the environments whose deploys need confirmation,
	// matched case-insensitively; nil means ["production"]. It is used only
	// when Policy is nil: a policy file has its own protected_environments.
	Protected []string
	// Policy decides who may deploy what, from where, with what
	// confirmation, approvals and freezes. nil means policy.Default() with
	// Protected as its protected environments, which is the behaviour
	// without a policy file: everyone linked may deploy, the protected
	// environments ask for confirmation.
	Policy Policy
	// Groups returns the ids of the Slack user groups user is in, for
	// rules and admins that name groups; the bot resolves and caches them.
	// nil means nobody is in any group.
	Groups func(ctx context.Context, user string) ([]string, error)
	// Now is the clock for every timestamp and for timeout and watchdog
	// decisions; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	Poll   PollConfig
	// OnFinished, when set, hears once of every followed deployment that
	// reaches a final state: "succeeded", "failed", "cancelled" or
	// "unknown" (no result, the owner's link gone, the timeout). It runs on
	// the watcher's goroutine right after the state is saved and must be
	// quick. Redeploys Cloud 66 refused outright were never followed and
	// are not reported.
	OnFinished func(state string)
	// Home, when set, is told whose App Home changed (home.go).
	Home HomeToucher
	// People, when set, learns a person's Cloud 66 e-mail from the action
	// of a deployment they started through the bot (Cloud 66 has no "who am
	// I" endpoint), so Cloud 66's e-mails can be shown as them.
	People EmailNoter

	// Leases holds the watch leases ("watch:<id>"): with several replicas
	// on one database, each followed action is followed by the one replica
	// holding its lease. nil means storage.NewLocalLeases(Now), which is
	// enough for one process.
	Leases LeaseStore
	// Replica is the name this process takes leases under; "" means a
	// random one.
	Replica string
	// LeaseTTL is how long a watch's lease lasts unrenewed: a replica that
	// dies loses its watches within it. It is renewed every third of it and
	// before every save. Default 15s.
	LeaseTTL time.Duration
	// ClaimEvery is how often Run looks for active watches nobody holds
	// (a dead replica's) and takes them over. Default 5s, so a dead
	// replica's watch moves again within LeaseTTL+ClaimEvery = 20s, with
	// room under the 30 s promised for a poll and the card's edit.
	ClaimEvery time.Duration
	// RenderConfirmation renders a confirmation with its buttons, for the
	// DM that asks the person again when their queued change on a
	// protected environment comes up (package commands renders them); nil
	// sends a plain DM asking them to run it again.
	RenderConfirmation func(*Confirmation) chat.Message
	// LockSweepEvery is how often Run releases expired locks and reminds
	// the owners of long-held ones; default 30s.
	LockSweepEvery time.Duration
	// Budgets keeps each person's budget of Cloud 66 requests
	// (Poll.BudgetPerHour), shared by the replicas. nil means
	// storage.NewLocalBudgets(time.Now).
	Budgets BudgetStore
}

// LeaseStore is where the replicas' leases live (Acquire, Renew,
// Release); *storage.LocalLeases satisfies it, and so does the PostgreSQL
// backend's.
type LeaseStore = leases.Store

// Defaults of the lease settings.
const (
	defaultLeaseTTL   = 15 * time.Second
	defaultClaimEvery = 5 * time.Second
)

// PollConfig shapes how deployments are followed; zero fields take the
// defaults.
type PollConfig struct {
	Initial  time.Duration // first poll interval; default 5s
	Max      time.Duration // backoff cap; default 30s
	Timeout  time.Duration // hard limit per deployment, then state unknown; default 2h
	Watchdog time.Duration // nothing moved for this long while deploying: one thread post; default 20m
	// BudgetPerHour is how many Cloud 66 requests one person's watches may
	// make per hour; default 1000, a third of Cloud 66's 3,000 per person
	// per hour, which leaves the rest for the person's commands.
	BudgetPerHour int
}

// Defaults of PollConfig.
const (
	defaultPollInitial   = 5 * time.Second
	defaultPollMax       = 30 * time.Second
	defaultPollTimeout   = 2 * time.Hour
	defaultWatchdog      = 20 * time.Minute
	defaultBudgetPerHour = 1000
)

func (p PollConfig) withDefaults() PollConfig {
	if p.Initial <= 0 {
		p.Initial = defaultPollInitial
	}
	if p.Max <= 0 {
		p.Max = defaultPollMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Timeout <= 0 {
		p.Timeout = defaultPollTimeout
	}
	if p.Watchdog <= 0 {
		p.Watchdog = defaultWatchdog
	}
	if p.BudgetPerHour <= 0 {
		p.BudgetPerHour = defaultBudgetPerHour
	}
	return p
}

// Policy is what deploy needs of a policy; *policy.Policy satisfies it.
type Policy interface {
	Decide(s policy.Subject, t policy.Target, now time.Time) policy.Decision
	IsAdmin(user string, groups []string) bool
	CanApprove(approver policy.Subject, rule, requester string) bool
	MayUse(s policy.Subject, action string) bool
}

// Service runs deployments, confirmations, approvals and locks. Its
// methods are safe for concurrent use.
type Service struct {
	cfg    Config
	policy Policy
	log    *slog.Logger
	budget *budget
	// sleep waits between polls. It is real time even when Config.Now is a
	// test clock, so tests set millisecond intervals; a test in this package
	// may replace it to drive a fake clock in step with the polls.
	sleep func(ctx context.Context, d time.Duration) error
	// renewSleep waits between the passes of Run's lease keeper (one for
	// every watch's lease) and claimSleep between Run's passes over the
	// active watches; real time, replaced by tests like sleep.
	renewSleep func(ctx context.Context, d time.Duration) error
	claimSleep func(ctx context.Context, d time.Duration) error
	// lockSleep waits between the sweeps of the locks (lockLoop).
	lockSleep func(ctx context.Context, d time.Duration) error
	// owner is Config.Replica, or the random name taken in its place.
	owner string

	// watchMu serialises read-modify-write of stored watches, so a cancel
	// noted by ConfirmCancel is never overwritten by a watcher's save.
	watchMu sync.Mutex

	// resumeMu orders Run's resume against starts: see Run and start.
	resumeMu sync.RWMutex

	// approvalMu orders the changes to approval requests with the edits of
	// their channel message, so concurrent clicks never leave the message
	// showing an older count than the stored one. Approvals come at the
	// pace of people clicking, so one lock for every request is enough.
	approvalMu sync.Mutex
	// approvals are the open approval requests, for the App Home (home.go).
	approvals openApprovals

	mu        sync.Mutex
	runCtx    context.Context // non-nil while Run runs
	keeper    *leases.Keeper  // renews the watches' leases while Run runs
	following map[string]bool // watch ids with a watcher goroutine
	starting  map[string]bool // watch ids a start is still setting up
	// panicked are the watches whose watcher panicked here: not claimed
	// again by this process, so a bug does not loop every ClaimEvery; their
	// leases expire and another replica (or the next Run) may try.
	panicked map[string]bool
	wg       sync.WaitGroup
}

// New returns a Service; call Run to follow deployments.
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
	cfg.Poll = cfg.Poll.withDefaults()
	if cfg.Leases == nil {
		cfg.Leases = storage.NewLocalLeases(cfg.Now)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = defaultLeaseTTL
	}
	if cfg.ClaimEvery <= 0 {
		cfg.ClaimEvery = defaultClaimEvery
	}
	if cfg.LockSweepEvery <= 0 {
		cfg.LockSweepEvery = defaultLockSweepEvery
	}
	if cfg.Budgets == nil {
		cfg.Budgets = storage.NewLocalBudgets(time.Now)
	}
	pol := cfg.Policy
	if p, ok := pol.(*policy.Policy); ok && p == nil {
		// A *policy.Policy variable left nil (no policy file) is no policy,
		// not a policy that panics on the first deploy.
		pol = nil
	}
	if pol == nil {
		def := policy.Default()
		if cfg.Protected != nil {
			def.Protected = slices.Clone(cfg.Protected)
		}
		pol = def
	}
	return &Service{
		cfg:        cfg,
		policy:     pol,
		log:        cfg.Logger,
		budget:     newBudget(cfg.Budgets, cfg.Poll.BudgetPerHour),
		sleep:      clock.Sleep,
		renewSleep: clock.Sleep,
		claimSleep: clock.Sleep,
		lockSleep:  clock.Sleep,
		owner:      leases.Owner(cfg.Replica),
		following:  map[string]bool{},
		starting:   map[string]bool{},
		panicked:   map[string]bool{},
	}
}

// Protected reports whether environment is one of the policy's protected
// environments, whose deploys need confirmation unless a rule says
// otherwise (see Decide for the answer of a given person and stack).
func (s *Service) Protected(environment string) bool {
	if p, ok := s.policy.(*policy.Policy); ok {
		return slices.ContainsFunc(p.Protected, func(e string) bool { return strings.EqualFold(e, environment) })
	}
	// Another implementation can only be asked through Decide; a target
	// with no stack name is the closest to "the environment in general".
	return s.policy.Decide(policy.Subject{}, policy.Target{Environment: environment}, s.now()).Confirm
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// finished reports a followed deployment's final state to OnFinished.
func (s *Service) finished(state storage.WatchState) {
	if s.cfg.OnFinished != nil {
		s.cfg.OnFinished(string(state))
	}
}

// logger returns the logger for one Slack request.
func (s *Service) logger(o Origin) *slog.Logger {
	if o.RequestID == "" {
		return s.log
	}
	return s.log.With("request_id", o.RequestID)
}

// LockedError is returned when someone else holds the stack's lock.
type LockedError struct {
	Lock storage.Lock
	// WaitIntentID, when set, parks the refused change (of Verb) for the
	// refusal's "Tell me when it's free" and "Deploy when it's free"
	// buttons (WaitForLock).
	WaitIntentID string
	Verb         Verb
}

// Error reads "shop:production is locked by U1 since 2025-03-04 10:00 UTC: reason".
func (e *LockedError) Error() string {
	msg := fmt.Sprintf("%s is locked by %s since %s", stackRef(e.Lock.StackName, e.Lock.Environment, e.Lock.StackUID),
		e.Lock.Owner.User, e.Lock.Since.UTC().Format("2006-01-02 15:04 UTC"))
	if e.Lock.Reason != "" {
		msg += ": " + e.Lock.Reason
	}
	return msg
}

// BusyError is returned when the bot is already deploying the stack; it
// runs one deployment per stack at a time.
type BusyError struct {
	Watch storage.Watch
	// Link is the Slack permalink of the running deployment's message, ""
	// when it has none (it went through a response_url).
	Link string
}

// Error reads "shop:production is already being deployed (requested by U1)".
func (e *BusyError) Error() string {
	return fmt.Sprintf("%s is already being deployed (requested by %s)",
		stackRef(e.Watch.StackName, e.Watch.Environment, e.Watch.StackUID), e.Watch.Owner.User)
}

func newBusyError(w storage.Watch) *BusyError {
	return &BusyError{Watch: w, Link: messageLink(w.Channel, w.MessageTS)}
}

// messageLink is Slack's permalink form for a message, which works without
// calling chat.getPermalink: https://slack.com/archives/<channel>/p<ts without the dot>.
func messageLink(channel, ts string) string {
	if channel == "" || ts == "" {
		return ""
	}
	return "https://slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// stackRef names a stack in plain text: "shop:production", or its uid.
func stackRef(name, environment, uid string) string {
	switch {
	case name == "":
		return uid
	case environment == "":
		return name
	}
	return name + ":" + environment
}

// Confirmation is what a person is asked to confirm, with what the buttons
// need: the intent id behind them and when it expires.
type Confirmation struct {
	IntentID string
	Kind     string // "deploy" (any change), "cancel" or "unlock"
	// Verb and Change say which change a "deploy" confirmation starts.
	Verb   Verb
	Change Change
	Stack  cloud66.Stack
	Params Params
	// Live is what runs now (the is_live deployment, else the newest
	// finished one) and Target what a rollback goes back to; nil when
	// unknown or not asked for. LiveHash and LiveRef are Live's.
	Live, Target      *cloud66.Deployment
	LiveHash, LiveRef string
	Running           *cloud66.Deployment // for cancel: the deployment to stop
	RunningOwner      string              // for cancel: the Slack user who started Running through the bot, if one did
	Lock              *storage.Lock       // for unlock: the lock to remove
	ExpiresAt         time.Time
}

// Result is the outcome of Deploy and Override: exactly one of the fields
// is set.
type Result struct {
	// Confirm: a protected environment; the person must press Confirm.
	Confirm *Confirmation
	// Watch: the deployment started (or was queued) and is followed.
	Watch *storage.Watch
	// Approval: the policy wants approvals; a request was posted in the
	// channel and the deploy starts when enough people approve it.
	Approval *ApprovalRequest
}

// UnlockResult is the outcome of Unlock: exactly one of the fields is set.
type UnlockResult struct {
	Released *storage.Lock // the person's own lock, removed
	Confirm  *Confirmation // someone else's lock: removing it needs confirmation
}

// consume spends an intent of kind for by. Someone else's click leaves it
// for the requester (ErrNotYours); a spent or unknown id is ErrIntentGone.
func (s *Service) consume(ctx context.Context, intentID, kind string, by storage.Identity) (storage.Intent, error) {
	return s.spend(ctx, intentID, kind, func(in storage.Intent) error {
		if in.Kind != kind {
			// A button of another kind carrying this id is a forgery or a
			// bug; either way there is nothing for it to answer.
			return ErrIntentGone
		}
		if in.Requester != by {
			return ErrNotYours
		}
		return nil
	})
}

// spend consumes an intent after check (see storage.IntentStore.Consume): an
// error from check keeps the intent and is returned as is; a spent or
// unknown id is ErrIntentGone; kind only names the intent in errors.
func (s *Service) spend(ctx context.Context, intentID, kind string, check func(storage.Intent) error) (storage.Intent, error) {
	var refusal error
	in, err := s.cfg.Intents.Consume(ctx, intentID, func(in storage.Intent) error {
		refusal = check(in)
		return refusal
	})
	switch {
	case err == nil:
		return in, nil
	case refusal != nil && err == refusal:
		return in, err
	case errors.Is(err, storage.ErrIntentExpired):
		return in, expiredError(in)
	case errors.Is(err, storage.ErrNotFound):
		return in, ErrIntentGone
	}
	return in, fmt.Errorf("deploy: consume %s intent: %w", kind, err)
}

// audit appends to the audit log what is no change: a refusal, a request
// parked for confirmation or approval. A failure is logged and blocks
// nothing. Changes never come here: their entry is written with the change
// (or, for a call to Cloud 66, before it) and a failure refuses the change.
func (s *Service) audit(ctx context.Context, e storage.AuditEntry) {
	e.At = s.now()
	if _, err := s.cfg.Audit.Append(context.WithoutCancel(ctx), e); err != nil {
		s.log.WarnContext(ctx, "audit write failed", "action", e.Action, "stack_uid", e.StackUID, "error", err.Error())
	}
}

// auditRefusal audits e as refused with err, unless err is that the audit
// log could not be written: trying again would fail the same way, so that
// refusal is logged instead.
func (s *Service) auditRefusal(ctx context.Context, e storage.AuditEntry, err error) {
	if errors.Is(err, storage.ErrNotAudited) {
		s.log.ErrorContext(ctx, "refused a change: the audit log cannot be written", "action", e.Action, "stack_uid", e.StackUID, "error", err.Error())
		return
	}
	e.Result = errResult(err)
	s.audit(ctx, e)
}

func auditEntry(o Origin, action, uid, name, env string) storage.AuditEntry {
	return storage.AuditEntry{
		Team: o.Identity.Team, User: o.Identity.User, Channel: o.Channel,
		Action: action, StackUID: uid, StackName: stackRef(name, env, uid),
	}
}

// errResult is how an error reads in the audit log's result column.
func errResult(err error) string {
	var le *LockedError
	var be *BusyError
	var pe *PolicyError
	var fe *FrozenError
	switch {
	case errors.As(err, &pe):
		if pe.Rule == "" {
			return "refused: " + pe.Reason
		}
		return "refused: rule " + pe.Rule + ": " + pe.Reason
	case errors.As(err, &fe):
		res := "refused: frozen (" + fe.Freeze.Name + ")"
		if !fe.Freeze.Until.IsZero() {
			res += " until " + fe.Freeze.Until.UTC().Format(time.RFC3339)
		}
		if fe.OverrideIntentID != "" {
			res += "; override offered"
		}
		return res
	case errors.Is(err, ErrOwnApproval):
		return "refused: own approval"
	case errors.As(err, new(*OptionError)), errors.As(err, new(*RollbackError)), errors.As(err, new(*FinishedError)):
		return "refused: " + strings.TrimPrefix(strings.TrimPrefix(err.Error(), "deploy: "), "rollback: ")
	case errors.As(err, &le):
		return "refused: locked by " + le.Lock.Owner.User
	case errors.As(err, &be):
		return "refused: already deploying"
	case errors.Is(err, ErrNotYours):
		return "refused: not the requester"
	case errors.Is(err, ErrIntentGone):
		return "refused: already answered"
	case errors.Is(err, storage.ErrIntentExpired):
		return "refused: expired"
	}
	return "error: " + err.Error()
}
