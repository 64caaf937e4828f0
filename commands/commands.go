// Package commands is the /c66 grammar: the command table, generated help,
// one file per command, Block Kit rendering, and the one place where errors
// become replies. It knows nothing about sockets or HTTP: package bot turns
// Slack payloads into a Request and posts the reply (a chat.Message).
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Request is one slash command as the person sent it.
type Request struct {
	TeamID       string
	EnterpriseID string
	UserID       string
	ChannelID    string
	Text         string
	ResponseURL  string
	TriggerID    string
	// RequestID correlates logs for this command; never shown to Slack
	// except in "something went wrong" replies.
	RequestID string
}

// Identity is who sent the request: the enterprise (on Enterprise Grid,
// where user ids are global) or the workspace, and the user id.
func (r Request) Identity() storage.Identity {
	team := r.EnterpriseID
	if team == "" {
		team = r.TeamID
	}
	return storage.Identity{Team: team, User: r.UserID}
}

// Linker is the account-linking service the commands use.
type Linker interface {
	BeginLogin(ctx context.Context, r accounts.LoginRequest) (accounts.LoginStart, error)
	CompleteOutOfBand(ctx context.Context, id storage.Identity, code string) (accounts.Linked, error)
	Link(ctx context.Context, id storage.Identity) (storage.Link, error)
	Unlink(ctx context.Context, id storage.Identity) (bool, error)
	// DropLink forgets a token Cloud 66 refused; why goes into the audit log.
	DropLink(ctx context.Context, id storage.Identity, why string) (bool, error)
	OutOfBand() bool
}

// Cloud66 is the read side of the Cloud 66 API the commands use.
type Cloud66 interface {
	ListStacks(ctx context.Context) ([]cloud66.Stack, error)
	GetStack(ctx context.Context, uid string) (*cloud66.Stack, error)
	ListServers(ctx context.Context, stackUID string) ([]cloud66.Server, error)
	GetServer(ctx context.Context, stackUID, serverUID string) (*cloud66.Server, error)
	ListDeploymentsPage(ctx context.Context, stackUID string, page int) ([]cloud66.Deployment, cloud66.Pagination, error)
}

// Deps is everything commands need from outside.
type Deps struct {
	Accounts      Linker
	Deploy        Deployer
	Subscriptions Subscriptions
	// WebhookURL turns a subscription's secret into the URL Cloud 66
	// calls; "" when the bot has no public URL.
	WebhookURL func(secret string) string
	// Cloud66For returns a client acting with the person's own token, or
	// accounts.ErrNotLinked.
	Cloud66For func(ctx context.Context, id storage.Identity) (Cloud66, error)
	// Command is the slash command, e.g. "/c66", used in help and hints.
	Command string
	// Cloud66URL is the dashboard base for "open in Cloud 66" links.
	Cloud66URL string
	// LoginURL turns a login into the link the person's browser opens (the
	// bot's own start page in the redirect flow). Nil means the Cloud 66
	// authorize URL itself.
	LoginURL func(accounts.LoginStart) string
	Logger   *slog.Logger
	Now      func() time.Time
	// Observe, when set, hears of every slash command once it is answered:
	// command is the canonical name from the command table, or "unknown"
	// for a word that is no command (the word itself is never passed on:
	// it may be anything a person typed); outcome is one of Outcomes().
	// It runs on the command's goroutine and must be quick.
	Observe func(command, outcome string, took time.Duration)
}

// Command is one /c66 verb, as data: the help is generated from it.
type Command struct {
	Name    string
	Aliases []string
	// Args is the usage after the name, e.g. "<stack> [filter]".
	Args        string
	Summary     string
	Description string
	Examples    []string
	// MinArgs and MaxArgs bound the words after the name (-1: no bound).
	MinArgs, MaxArgs int
	// Deploys marks commands that change deployments: help hides them from
	// people the policy never lets deploy.
	Deploys bool
	Run     func(ctx context.Context, c *Call) (chat.Message, error)
}

// Call is one invocation of a command.
type Call struct {
	Request Request
	Args    []string
	Deps    *Deps
	Command *Command
	Router  *Router
}

// Cloud66 returns the caller's own Cloud 66 client.
func (c *Call) Cloud66(ctx context.Context) (Cloud66, error) {
	return c.Deps.Cloud66For(ctx, c.Request.Identity())
}

// Router holds the command table and runs commands.
type Router struct {
	deps     Deps
	commands []*Command
	byName   map[string]*Command
	// stacks caches stack name → stack per person (stackcache.go); its
	// zero value is ready.
	stacks stackCache
}

// NewRouter builds the router with the standard command table.
func NewRouter(deps Deps) *Router {
	if deps.Command == "" {
		deps.Command = "/c66"
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.WebhookURL == nil {
		deps.WebhookURL = func(string) string { return "" }
	}
	if deps.Cloud66URL == "" {
		deps.Cloud66URL = cloud66.DefaultBaseURL
	}
	r := &Router{deps: deps, byName: map[string]*Command{}}
	for _, c := range table() {
		r.add(c)
	}
	return r
}

func (r *Router) add(c *Command) {
	r.commands = append(r.commands, c)
	for _, n := range append([]string{c.Name}, c.Aliases...) {
		if _, dup := r.byName[n]; dup {
			panic("commands: duplicate command name " + n)
		}
		r.byName[n] = c
	}
}

// Commands returns the table, in help order.
func (r *Router) Commands() []*Command { return r.commands }

// Lookup finds a command by name or alias (case-insensitive).
func (r *Router) Lookup(name string) (*Command, bool) {
	c, ok := r.byName[strings.ToLower(name)]
	return c, ok
}

// table is the /c66 grammar of DESIGN.md, in help order.
func table() []*Command {
	return []*Command{
		helpCommand(),
		loginCommand(), logoutCommand(), whoamiCommand(),
		stacksCommand(), stackCommand(),
		serversCommand(), serverCommand(),
		deployCommand(), deploymentsCommand(), cancelCommand(),
		lockCommand(), unlockCommand(), locksCommand(),
		subscribeCommand(), unsubscribeCommand(), subscriptionsCommand(),
	}
}

// Dispatch runs one request and always returns a reply: errors are mapped
// to ephemeral replies here and nowhere else. Every request is logged once,
// with its request id, and reported to Deps.Observe.
func (r *Router) Dispatch(ctx context.Context, req Request) chat.Message {
	// Durations are real time, not Deps.Now: that clock is for expiries.
	start := time.Now()
	log := r.deps.Logger.With("request_id", req.RequestID, "team", req.Identity().Team, "user", req.UserID, "channel", req.ChannelID)
	// Never log the command text or its words: `login <code>` carries a
	// secret, and a mistyped command may too.
	words, err := Split(req.Text)
	if err != nil {
		r.notUnderstood(ctx, log, UnknownCommand, start)
		return r.usageError(fmt.Sprintf("I couldn't read that: %s.", err), nil)
	}
	if len(words) == 0 {
		words = []string{"help"}
	}
	cmd, ok := r.Lookup(words[0])
	if !ok {
		r.notUnderstood(ctx, log, UnknownCommand, start)
		return r.unknown(words[0])
	}
	args := words[1:]
	if len(args) < cmd.MinArgs || (cmd.MaxArgs >= 0 && len(args) > cmd.MaxArgs) {
		r.notUnderstood(ctx, log, cmd.Name, start)
		return r.usageError("", cmd)
	}
	call := &Call{Request: req, Args: args, Deps: &r.deps, Command: cmd, Router: r}
	reply, err := cmd.Run(ctx, call)
	if err != nil {
		reply = r.errorReply(ctx, call, err)
	}
	took := time.Since(start)
	outcome := Outcome(err)
	r.observe(cmd.Name, outcome, took)
	if err != nil {
		log.LogAttrs(ctx, levelFor(err), "command failed", slog.String("command", cmd.Name), slog.Int("args", len(args)),
			slog.String("outcome", outcome), slog.Duration("took", took), slog.String("error", err.Error()))
		return reply
	}
	log.LogAttrs(ctx, slog.LevelInfo, "command done", slog.String("command", cmd.Name), slog.Int("args", len(args)),
		slog.String("outcome", outcome), slog.Duration("took", took))
	return reply
}

// notUnderstood logs and reports a request whose words did not fit the
// grammar: command is the table's name, or UnknownCommand.
func (r *Router) notUnderstood(ctx context.Context, log *slog.Logger, command string, start time.Time) {
	took := time.Since(start)
	r.observe(command, OutcomeUsage, took)
	log.LogAttrs(ctx, slog.LevelInfo, "command not understood", slog.String("command", command),
		slog.String("outcome", OutcomeUsage), slog.Duration("took", took))
}

func (r *Router) observe(command, outcome string, took time.Duration) {
	if r.deps.Observe != nil {
		r.deps.Observe(command, outcome, took)
	}
}

// UnknownCommand is the command name reported for words that are no command.
const UnknownCommand = "unknown"

// Command outcomes, as reported to Deps.Observe and logged.
const (
	OutcomeOK = "ok"
	// OutcomeUsage: the words did not fit (unknown command, wrong number
	// of words, bad options).
	OutcomeUsage = "usage"
	// OutcomeNotFound: no such stack or server, or an ambiguous name.
	OutcomeNotFound = "not_found"
	// OutcomeNotLinked: the person has not linked Cloud 66.
	OutcomeNotLinked = "not_linked"
	// OutcomeUnauthorized: Cloud 66 refused the person's token (401).
	OutcomeUnauthorized = "cloud66_unauthorized"
	// OutcomeForbidden: the token lacks a scope or role (403).
	OutcomeForbidden = "cloud66_forbidden"
	// OutcomeThrottled: Cloud 66's hourly limit.
	OutcomeThrottled = "throttled"
	// OutcomeRefused: the bot, the policy or Cloud 66 declined: a lock, a
	// running deployment, a freeze, a policy rule, a button that isn't
	// the presser's or was already answered, nothing to cancel or unlock.
	OutcomeRefused = "refused"
	// OutcomeUnavailable: Cloud 66 did not answer in time or failed (5xx).
	OutcomeUnavailable = "unavailable"
	// OutcomeError: anything else, a bug or an outage on our side.
	OutcomeError = "error"
)

// Outcomes lists every outcome Outcome can return.
func Outcomes() []string {
	return []string{OutcomeOK, OutcomeUsage, OutcomeNotFound, OutcomeNotLinked, OutcomeUnauthorized, OutcomeForbidden,
		OutcomeThrottled, OutcomeRefused, OutcomeUnavailable, OutcomeError}
}

// CommandNames lists the canonical names of the command table (no aliases),
// the only command names Deps.Observe hears besides UnknownCommand.
func CommandNames() []string {
	var names []string
	for _, c := range table() {
		names = append(names, c.Name)
	}
	return names
}

// Outcome classifies a command's error the way errorReply answers it.
func Outcome(err error) string {
	var (
		ue  *UsageError
		amb *AmbiguousError
		nf  *NotFoundError
		le  *deploy.LockedError
		be  *deploy.BusyError
	)
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &ue):
		return OutcomeUsage
	case errors.Is(err, accounts.ErrNotLinked):
		return OutcomeNotLinked
	case errors.Is(err, cloud66.ErrUnauthorized):
		return OutcomeUnauthorized
	case errors.Is(err, cloud66.ErrForbidden):
		return OutcomeForbidden
	case errors.Is(err, cloud66.ErrThrottled):
		return OutcomeThrottled
	case errors.As(err, &amb), errors.As(err, &nf), errors.Is(err, cloud66.ErrNotFound):
		return OutcomeNotFound
	case errors.As(err, &le), errors.As(err, &be), errors.As(err, new(*deploy.PolicyError)), errors.As(err, new(*deploy.FrozenError)),
		errors.Is(err, deploy.ErrNotYours), errors.Is(err, deploy.ErrOwnApproval), errors.Is(err, deploy.ErrIntentGone),
		errors.Is(err, storage.ErrIntentExpired), errors.Is(err, deploy.ErrNothingRunning), errors.Is(err, deploy.ErrNotLocked),
		errors.Is(err, cloud66.ErrConflict):
		return OutcomeRefused
	case errors.Is(err, context.DeadlineExceeded), cloud66.IsTransient(err):
		return OutcomeUnavailable
	}
	return OutcomeError
}

// levelFor keeps expected, person-caused failures out of warning logs.
func levelFor(err error) slog.Level {
	var ue *UsageError
	var amb *AmbiguousError
	var nf *NotFoundError
	var le *deploy.LockedError
	var be *deploy.BusyError
	switch {
	case errors.As(err, &ue), errors.As(err, &amb), errors.As(err, &nf), errors.Is(err, accounts.ErrNotLinked),
		errors.As(err, &le), errors.As(err, &be), errors.Is(err, deploy.ErrNotYours), errors.Is(err, deploy.ErrIntentGone),
		errors.Is(err, storage.ErrIntentExpired), errors.Is(err, deploy.ErrNothingRunning), errors.Is(err, deploy.ErrNotLocked),
		errors.As(err, new(*deploy.PolicyError)), errors.As(err, new(*deploy.FrozenError)), errors.Is(err, deploy.ErrOwnApproval):
		return slog.LevelInfo
	case errors.Is(err, cloud66.ErrUnauthorized), errors.Is(err, cloud66.ErrForbidden), errors.Is(err, cloud66.ErrThrottled):
		return slog.LevelWarn
	}
	return slog.LevelError
}

// Usage is the one-line usage of a command, e.g. "/c66 servers <stack>".
func (r *Router) Usage(c *Command) string {
	u := r.deps.Command + " " + c.Name
	if c.Args != "" {
		u += " " + c.Args
	}
	return u
}
