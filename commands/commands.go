// Package commands is the /c66 grammar: the command table, generated help,
// one file per command, Block Kit rendering, and the one place where errors
// become replies. It knows nothing about sockets or HTTP: package bot turns
// Slack payloads into a Request or an Action and posts the reply (a
// chat.Message).
//
// A command is data (Command), built by a constructor that takes only what
// it uses: the small interfaces of Deps it calls, the stack resolver when it
// takes a <stack>, the table itself for help. The buttons a command's
// messages carry are data too (Interaction), registered beside it and found
// by action id. Errors from either become a reply, an outcome and a log
// level through one table (errorTable, in errors.go).
package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/slackapp"
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
	// OpenView, set by the transport, opens a modal with TriggerID
	// (views.open); nil where there is none to open (the deploy form then
	// answers with the usage).
	OpenView func(ctx context.Context, view slack.ModalViewRequest) error
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

// Deps is everything the commands need from outside, in one place for
// whoever builds the Router. Inside, each command is built with only the
// parts it uses (see commandTable).
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
	// People shows Cloud 66's e-mails (triggered_by) as the Slack person
	// who linked that account in the same workspace; nil shows e-mails.
	People PeopleByEmail
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

// withDefaults fills what was left out.
func (d Deps) withDefaults() Deps {
	if d.Command == "" {
		d.Command = slackapp.DefaultCommand
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.WebhookURL == nil {
		d.WebhookURL = func(string) string { return "" }
	}
	if d.Cloud66URL == "" {
		d.Cloud66URL = cloud66.DefaultBaseURL
	}
	return d
}

// clientFor returns the person's own Cloud 66 client (Deps.Cloud66For).
type clientFor func(ctx context.Context, id storage.Identity) (Cloud66, error)

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
	// Verb marks commands that make (or undo) a change of that verb
	// (deploy, rollback, restart, maintenance, reboot): help hides them
	// from people the policy never lets use it.
	Verb string
	// Change names what the command changes, for the refusal when its
	// audit entry cannot be written ("lock the stack"); "" for commands
	// that change nothing (or only park a request).
	Change string
	Run    func(ctx context.Context, c *Call) (chat.Message, error)
	// Interactions are the buttons this command's replies carry (and the
	// messages it leads to), each handled beside the command.
	Interactions []*Interaction
}

// Call is one invocation of a command: the request and its words. What the
// command needs besides is given to its constructor.
type Call struct {
	Request Request
	Args    []string
	Command *Command
}

// Router holds the command table and runs commands and button presses.
type Router struct {
	table   *table
	errors  *errorReplies
	log     *slog.Logger
	observe func(command, outcome string, took time.Duration)
	// stacks caches stack name → stack per person (stackcache.go).
	stacks *stackCache
}

// NewRouter builds the router with the standard command table.
func NewRouter(deps Deps) *Router {
	deps = deps.withDefaults()
	stacks := &stackCache{}
	r := &Router{
		table:   newTable(deps.Command),
		log:     deps.Logger,
		observe: deps.Observe,
		stacks:  stacks,
		errors: &errorReplies{slash: deps.Command, now: deps.Now, accounts: deps.Accounts, loginURL: deps.LoginURL,
			log: deps.Logger, stacks: stacks, people: deps.People},
	}
	res := &resolver{clientFor: deps.Cloud66For, cache: stacks, now: deps.Now}
	for _, c := range commandTable(deps, r.table, res) {
		r.table.add(c)
	}
	return r
}

// commandTable is the /c66 grammar of DESIGN.md, in help order. Each
// command is built with only what it uses: the part of Deps it calls, the
// stack resolver when it takes a <stack>, the table itself for help.
func commandTable(d Deps, t *table, res *resolver) []*Command {
	slash := d.Command
	return []*Command{
		helpCommand(t, d.Deploy),
		loginCommand(d.Accounts, slash, d.LoginURL), logoutCommand(d.Accounts, res.cache), whoamiCommand(d.Accounts, d.Cloud66For),
		stacksCommand(d.Cloud66For, slash), stackCommand(res, d.Deploy, slash, d.Cloud66URL, d.Now),
		serversCommand(res, slash), serverCommand(res),
		deployCommand(d.Deploy, res), deploymentsCommand(res, d.Deploy, d.People, d.Cloud66URL, d.Now), cancelCommand(d.Deploy, res, d.People, d.Now),
		rollbackCommand(d.Deploy, res), restartCommand(d.Deploy, res), maintenanceCommand(d.Deploy, res), rebootCommand(d.Deploy, res),
		lockCommand(d.Deploy, res, slash), unlockCommand(d.Deploy, res, d.Now), locksCommand(d.Deploy, res, d.Now),
		subscribeCommand(d.Subscriptions, res, d.WebhookURL), unsubscribeCommand(d.Subscriptions, slash), subscriptionsCommand(d.Subscriptions, slash),
	}
}

// Commands returns the table, in help order.
func (r *Router) Commands() []*Command { return r.table.commands }

// Lookup finds a command by name or alias (case-insensitive).
func (r *Router) Lookup(name string) (*Command, bool) { return r.table.lookup(name) }

// Dispatch runs one request and always returns a reply: errors become
// replies through the error table (errors.go). Every request is logged
// once, with its request id, and reported to Deps.Observe.
func (r *Router) Dispatch(ctx context.Context, req Request) chat.Message {
	// Durations are real time, not Deps.Now: that clock is for expiries.
	start := time.Now()
	log := r.log.With("request_id", req.RequestID, "team", req.Identity().Team, "user", req.UserID, "channel", req.ChannelID)
	// Never log the command text or its words: `login <code>` carries a
	// secret, and a mistyped command may too.
	words, err := Split(req.Text)
	if err != nil {
		r.notUnderstood(ctx, log, UnknownCommand, start)
		return usageError(r.table.slash, fmt.Sprintf("I couldn't read that: %s.", err), nil)
	}
	if len(words) == 0 {
		words = []string{"help"}
	}
	cmd, ok := r.table.lookup(words[0])
	if !ok {
		r.notUnderstood(ctx, log, UnknownCommand, start)
		return r.table.unknown(words[0])
	}
	args := words[1:]
	if len(args) < cmd.MinArgs || (cmd.MaxArgs >= 0 && len(args) > cmd.MaxArgs) {
		r.notUnderstood(ctx, log, cmd.Name, start)
		return usageError(r.table.slash, "", cmd)
	}
	call := &Call{Request: req, Args: args, Command: cmd}
	reply, err := cmd.Run(ctx, call)
	class := classify(err)
	if err != nil {
		reply = class.reply(ctx, r.errors, failure{err: err, req: req, cmd: cmd, args: args, change: cmd.Change})
	}
	took := time.Since(start)
	r.report(cmd.Name, class.outcome, took)
	if err != nil {
		log.LogAttrs(ctx, class.level, "command failed", slog.String("command", cmd.Name), slog.Int("args", len(args)),
			slog.String("outcome", class.outcome), slog.String("took", logDuration(took)), slog.String("error", err.Error()))
		return reply
	}
	log.LogAttrs(ctx, class.level, "command done", slog.String("command", cmd.Name), slog.Int("args", len(args)),
		slog.String("outcome", class.outcome), slog.String("took", logDuration(took)))
	return reply
}

// notUnderstood logs and reports a request whose words did not fit the
// grammar: command is the table's name, or UnknownCommand.
func (r *Router) notUnderstood(ctx context.Context, log *slog.Logger, command string, start time.Time) {
	took := time.Since(start)
	r.report(command, OutcomeUsage, took)
	log.LogAttrs(ctx, slog.LevelInfo, "command not understood", slog.String("command", command),
		slog.String("outcome", OutcomeUsage), slog.String("took", logDuration(took)))
}

// logDuration is how a duration reads in a log line: with its unit, to
// the microsecond ("883µs", "1.204s"), as every duration the bot logs.
func logDuration(d time.Duration) string { return d.Round(time.Microsecond).String() }

func (r *Router) report(command, outcome string, took time.Duration) {
	if r.observe != nil {
		r.observe(command, outcome, took)
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
	for _, c := range NewRouter(Deps{}).Commands() {
		names = append(names, c.Name)
	}
	return names
}

// Outcome is how a command's error is counted: its row of the error table.
func Outcome(err error) string { return classify(err).outcome }
