package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// UsageError: the words don't fit the command; the reply is its usage.
type UsageError struct {
	// Problem says what was wrong, e.g. "unknown key `colour`".
	Problem string
}

func (e *UsageError) Error() string { return "usage: " + e.Problem }

// AmbiguousError: a stack name matches several stacks.
type AmbiguousError struct {
	Arg        string
	Candidates []cloud66.Stack
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%q matches %d stacks", e.Arg, len(e.Candidates))
}

// NotFoundError: no stack (or server) of that name.
type NotFoundError struct {
	// Kind is "stack" or "server".
	Kind        string
	Arg         string
	Suggestions []string
	// Within names the stack a server was looked for in.
	Within string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.Arg) }

// errorClass is one row of the error table: the errors it matches, the
// outcome they are counted as (Deps.Observe, the logs), the level they are
// logged at, and what the person reads. Dispatch and HandleAction answer
// every error through it, so a reply, its count and its log line cannot
// disagree.
type errorClass struct {
	// name identifies the row in tests.
	name    string
	matches func(error) bool
	outcome string
	// level keeps expected, person-caused failures out of warning logs:
	// info for what the person can fix or was told, warn for Cloud 66
	// refusing their token or throttling it, error for our side.
	level slog.Level
	// replace: when a button's press fails this way, its reply replaces
	// the message the button was on, so a spent or expired confirmation
	// loses its buttons. Someone else's click must not touch the owner's
	// message, so few rows set it.
	replace bool
	reply   func(ctx context.Context, e *errorReplies, f failure) chat.Message
}

// failure is one error to answer and what it answers.
type failure struct {
	err  error
	req  Request
	cmd  *Command // nil for a button
	args []string
	// change names what the command or button would have changed.
	change string
}

// okClass is the class of no error.
var okClass = errorClass{name: "ok", outcome: OutcomeOK, level: slog.LevelInfo}

// errorTable is the one place where an error becomes what the person reads
// (the cause, and the next step; always ephemeral), its outcome and its log
// level. Rows are tried in order and the first that matches decides;
// fallbackClass answers the rest.
func errorTable() []errorClass {
	return []errorClass{
		// Buttons: refusals of a press, before anything about its errors.
		{name: "own approval", matches: is(deploy.ErrOwnApproval), outcome: OutcomeRefused, level: slog.LevelInfo,
			reply: text(":raised_hand: Your own approval doesn't count: someone else has to approve your deploy.")},
		{name: "not yours", matches: is(deploy.ErrNotYours), outcome: OutcomeRefused, level: slog.LevelInfo,
			reply: text(":no_entry_sign: This button belongs to the person who asked for it. Nothing was sent.")},
		{name: "already answered", matches: is(deploy.ErrIntentGone), outcome: OutcomeRefused, level: slog.LevelInfo, replace: true,
			reply: text(":information_source: This was already confirmed or cancelled. Nothing more was sent.")},
		{name: "expired", matches: is(storage.ErrIntentExpired), outcome: OutcomeRefused, level: slog.LevelInfo, replace: true,
			reply: expiredReply},

		{name: "usage", matches: as[*UsageError], outcome: OutcomeUsage, level: slog.LevelInfo, reply: usageReply},
		// Every change is in the audit log or is not made.
		{name: "not audited", matches: is(storage.ErrNotAudited), outcome: OutcomeError, level: slog.LevelError, reply: notAuditedReply},
		{name: "not linked", matches: is(accounts.ErrNotLinked), outcome: OutcomeNotLinked, level: slog.LevelInfo, reply: notLinkedReply},
		{name: "cloud66 401", matches: is(cloud66.ErrUnauthorized), outcome: OutcomeUnauthorized, level: slog.LevelWarn, reply: unauthorizedReply},
		{name: "cloud66 missing scope", matches: is(cloud66.ErrInsufficientScope), outcome: OutcomeForbidden, level: slog.LevelWarn, reply: scopeReply},
		{name: "cloud66 403", matches: is(cloud66.ErrForbidden), outcome: OutcomeForbidden, level: slog.LevelWarn, reply: forbiddenReply},
		{name: "cloud66 throttled", matches: is(cloud66.ErrThrottled), outcome: OutcomeThrottled, level: slog.LevelWarn, reply: throttledReply},
		{name: "ambiguous", matches: as[*AmbiguousError], outcome: OutcomeNotFound, level: slog.LevelInfo, reply: ambiguousReply},
		{name: "locked", matches: as[*deploy.LockedError], outcome: OutcomeRefused, level: slog.LevelInfo, reply: lockedReply},
		{name: "lock queue full", matches: is(storage.ErrTooManyWaiters), outcome: OutcomeRefused, level: slog.LevelInfo,
			reply: text(":hourglass: Too many people are already waiting for that lock; ask its holder instead.")},
		{name: "lock duration", matches: as[*deploy.LockDurationError], outcome: OutcomeUsage, level: slog.LevelInfo, reply: lockDurationReply},
		{name: "busy", matches: as[*deploy.BusyError], outcome: OutcomeRefused, level: slog.LevelInfo, reply: busyReply},
		{name: "policy", matches: as[*deploy.PolicyError], outcome: OutcomeRefused, level: slog.LevelInfo, reply: policyReply},
		{name: "frozen", matches: as[*deploy.FrozenError], outcome: OutcomeRefused, level: slog.LevelInfo, reply: frozenReply},
		{name: "option", matches: as[*deploy.OptionError], outcome: OutcomeUsage, level: slog.LevelInfo, reply: optionReply},
		{name: "rollback", matches: as[*deploy.RollbackError], outcome: OutcomeRefused, level: slog.LevelInfo, reply: rollbackReply},
		{name: "nothing running", matches: is(deploy.ErrNothingRunning), outcome: OutcomeRefused, level: slog.LevelInfo,
			reply: text(":zzz: Nothing is deploying on that stack right now, so there is nothing to cancel.")},
		// A cancel pressed after its deployment ended: how it ended; the
		// spent confirmation loses its buttons (only its owner gets here).
		{name: "cancel: already finished", matches: as[*deploy.FinishedError], outcome: OutcomeRefused, level: slog.LevelInfo, replace: true,
			reply: cancelFinishedReply},
		{name: "not locked", matches: is(deploy.ErrNotLocked), outcome: OutcomeRefused, level: slog.LevelInfo, reply: notLockedReply},
		{name: "not found", matches: as[*NotFoundError], outcome: OutcomeNotFound, level: slog.LevelInfo, reply: notFoundReply},
		{name: "cloud66 404", matches: is(cloud66.ErrNotFound), outcome: OutcomeNotFound, level: slog.LevelInfo, reply: cloud66NotFoundReply},
		{name: "cloud66 409", matches: is(cloud66.ErrConflict), outcome: OutcomeRefused, level: slog.LevelInfo, reply: conflictReply},
		{name: "cloud66 invalid id", matches: is(cloud66.ErrInvalidID), outcome: OutcomeError, level: slog.LevelError, reply: invalidIDReply},
		{name: "cloud66 unavailable", matches: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) || cloud66.IsTransient(err) },
			outcome: OutcomeUnavailable, level: slog.LevelError, reply: unavailableReply},
		// Known failures on our side, for which the generic answer is the
		// right one: the store closing or read-only, a call we got wrong.
		{name: "our side", matches: func(err error) bool {
			return errors.Is(err, storage.ErrClosed) || errors.Is(err, storage.ErrReadOnly) || errors.Is(err, storage.ErrSealed) ||
				errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrStackBusy) ||
				as[*cloud66.ArgError](err)
		}, outcome: OutcomeError, level: slog.LevelError, reply: somethingWentWrong},
	}
}

// fallbackClass answers an error no row matches: a bug, or an outage on
// our side. The test of the table fails for every exported error of the
// bot's packages that reaches it.
var fallbackClass = errorClass{name: "fallback", matches: func(error) bool { return true }, outcome: OutcomeError,
	level: slog.LevelError, reply: somethingWentWrong}

// classify returns err's row of the error table; okClass for nil.
func classify(err error) errorClass {
	if err == nil {
		return okClass
	}
	for _, c := range errorTable() {
		if c.matches(err) {
			return c
		}
	}
	return fallbackClass
}

// is matches err against a sentinel, with errors.Is.
func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// as matches err against an error type, with errors.As.
func as[E error](err error) bool {
	_, ok := errors.AsType[E](err)
	return ok
}

// text is a reply that is always the same words.
func text(s string) func(context.Context, *errorReplies, failure) chat.Message {
	return func(context.Context, *errorReplies, failure) chat.Message { return ephemeral(s) }
}

// errorReplies is what the error table's replies need: the slash command
// for hints, the clock, the account service to offer a login or forget a
// refused token, and the stack cache to drop with it.
type errorReplies struct {
	slash    string
	now      func() time.Time
	accounts errorLinker
	loginURL func(accounts.LoginStart) string
	log      *slog.Logger
	stacks   *stackCache
	people   PeopleByEmail // nil: Cloud 66's e-mails as they are
}

// errorLinker is what the replies need of the account service.
type errorLinker interface {
	BeginLogin(ctx context.Context, r accounts.LoginRequest) (accounts.LoginStart, error)
	DropLink(ctx context.Context, id storage.Identity, why string) (bool, error)
}

// expiredReply replaces an expired confirmation, buttons and all, with
// the command to run again.
func expiredReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	again := "the command"
	if ex, ok := errors.AsType[*deploy.ExpiredError](f.err); ok && ex.Words != "" {
		again = "`" + e.slash + " " + bk.Esc(ex.Words) + "`"
	}
	return ephemeral(":hourglass: This confirmation expired; run " + again + " again. Nothing was sent.")
}

func usageReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	usage, _ := errors.AsType[*UsageError](f.err)
	return usageError(e.slash, usage.Problem, f.cmd)
}

func notAuditedReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	change := f.change
	if ve, ok := errors.AsType[*deploy.VerbError](f.err); ok {
		// A Confirm button starts whatever change was parked.
		change = changeWords[ve.Verb]
	}
	if change == "" {
		change = "make that change"
	}
	return ephemeral(":floppy_disk: I could not write the audit log, so I did not " + change +
		". Tell whoever runs c66bot: the database is not writable (a full disk, or a read-only file).")
}

func notLinkedReply(ctx context.Context, e *errorReplies, f failure) chat.Message {
	return e.linkPrompt(ctx, f.req, ":wave: You haven't linked your Cloud 66 account yet. Everything I do in Cloud 66 I do as you, with your own token.")
}

// unauthorizedReply also forgets the person's token. Cloud 66 tokens don't
// expire on their own: a 401 means the person revoked the app or a team
// policy expired it, so the stored token is useless.
func unauthorizedReply(ctx context.Context, e *errorReplies, f failure) chat.Message {
	e.stacks.forget(f.req.Identity(), "")
	if _, err := e.accounts.DropLink(ctx, f.req.Identity(), "Cloud 66 answered 401: the token was revoked or expired"); err != nil {
		e.log.WarnContext(ctx, "unlink after 401 failed", "request_id", f.req.RequestID, "error", err.Error())
	}
	return e.linkPrompt(ctx, f.req, ":lock: Your Cloud 66 link has expired or was revoked. Log in again to keep going.")
}

func forbiddenReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	detail := ""
	if c66, ok := errors.AsType[*cloud66.ErrorResponse](f.err); ok && c66.Message() != "" {
		detail = " Cloud 66 said: _" + bk.Esc(c66.Message()) + "_."
	}
	return ephemeral(":no_entry: Your Cloud 66 token isn't allowed to do that: it lacks a scope, or your Cloud 66 role on this stack doesn't permit it." + detail +
		" If you linked with fewer scopes, run `" + e.slash + " login` again to re-link with `public redeploy`.")
}

// changeWords are what each verb would have done, after "so I did not".
var changeWords = map[deploy.Verb]string{
	deploy.VerbDeploy: "deploy", deploy.VerbRollback: "roll back", deploy.VerbRestart: "restart",
	deploy.VerbMaintenance: "change maintenance mode", deploy.VerbReboot: "reboot",
}

// scopeReply names the scope the person's link lacks and how to grant it:
// log in again, with the scope in CLOUD66_SCOPES.
func scopeReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	scope, said := "redeploy", ""
	if c66, ok := errors.AsType[*cloud66.ErrorResponse](f.err); ok {
		if s, _ := c66.InsufficientScope(); s != "" {
			scope = s
		}
		if m := c66.Message(); m != "" {
			said = " Cloud 66 said: _" + bk.Esc(m) + "_."
		}
	}
	msg := ":key: Your Cloud 66 link lacks the " + bk.Code(scope) + " scope this needs." + said + " Run `" + e.slash + " login` again to grant it"
	ve, _ := errors.AsType[*deploy.VerbError](f.err)
	if f.cmd != nil && f.cmd.Name == "reboot" || ve != nil && ve.Verb == deploy.VerbReboot {
		// Cloud 66's reboot pages name a "reboot" scope its scope table
		// does not list; say so rather than guess.
		msg += " (Cloud 66's reboot pages also mention a `reboot` scope: if logging in again does not help, ask whoever runs c66bot to add it to CLOUD66_SCOPES)"
	}
	return ephemeral(msg + ". Nothing was changed.")
}

func throttledReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	when := "in a few minutes"
	if c66, ok := errors.AsType[*cloud66.ErrorResponse](f.err); ok && !c66.RetryAt.IsZero() {
		when = "at " + bk.Date(c66.RetryAt, "{time}")
	}
	return ephemeral(":hourglass: Cloud 66 is throttling requests for your account (it allows 3,000 an hour per person). Try again " + when + ".")
}

func notLockedReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	e, ok := errors.AsType[*deploy.NotLockedError](f.err)
	if !ok || e.StackName == "" {
		return ephemeral(":unlock: That stack isn't locked.")
	}
	return ephemeral(fmt.Sprintf(":unlock: %s isn't locked.", bk.StackLabel(cloud66.Stack{Name: e.StackName, Environment: e.Environment})))
}

// lockedReply names the lock's holder and, when the refused change was
// parked for it, offers to wait: a DM when the lock goes, or the change
// run then (lock.go's lockWaitButtons handle them).
func lockedReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	locked, _ := errors.AsType[*deploy.LockedError](f.err)
	l := locked.Lock
	msg := fmt.Sprintf(":lock: *%s* · %s is locked by <@%s> %s%s%s. Ask them, or `%s unlock %s` (you'll be asked to confirm, and they'll be told).",
		bk.Esc(l.StackName), bk.Esc(l.Environment), bk.Esc(l.Owner.User), bk.Ago(e.now(), l.Since), lockUntil(l), reasonSuffix(l.Reason),
		e.slash, bk.Esc(bk.StackRef(l.StackName, l.Environment)))
	if locked.WaitIntentID == "" {
		return ephemeral(msg)
	}
	queue := "Deploy when it's free"
	if v := locked.Verb; v != "" && v != deploy.VerbDeploy {
		queue = upperFirst(string(v)) + " when it's free"
	}
	return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{
		bk.Section(msg),
		slack.NewActionBlock("lock_wait",
			bk.Button(ActionLockNotify, locked.WaitIntentID, "Tell me when it's free", slack.StyleDefault),
			bk.Button(ActionLockQueue, locked.WaitIntentID, queue, slack.StylePrimary)),
	}}
}

func lockDurationReply(_ context.Context, _ *errorReplies, _ failure) chat.Message {
	return ephemeral(":no_entry_sign: " + lockForProblem + " Nothing was changed.")
}

func busyReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	busy, _ := errors.AsType[*deploy.BusyError](f.err)
	w := busy.Watch
	msg := fmt.Sprintf(":rocket: A %s of *%s* · %s is already running", deploy.Noun(w), bk.Esc(w.StackName), bk.Esc(w.Environment))
	if w.Owner.User != "" {
		msg += fmt.Sprintf(", started by <@%s> %s", bk.Esc(w.Owner.User), bk.Ago(e.now(), w.RequestedAt))
	}
	if busy.Link != "" {
		msg += " (" + bk.Link(busy.Link, "its message") + ")"
	}
	if deploy.Noun(w) == "deployment" || deploy.Noun(w) == "rollback" {
		msg += fmt.Sprintf(". I run one change per stack at a time: wait for it, or `%s cancel %s`.", e.slash, bk.Esc(bk.StackRef(w.StackName, w.Environment)))
	} else {
		msg += ". I run one change per stack at a time: wait for it to finish."
	}
	return ephemeral(msg)
}

func policyReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	refused, _ := errors.AsType[*deploy.PolicyError](f.err)
	msg := ":no_entry_sign: Not allowed"
	if refused.Rule != "" {
		msg += " by policy rule *" + bk.Esc(refused.Rule) + "*"
	}
	return ephemeral(msg + ": " + bk.Esc(refused.Reason) + ". Nothing was sent to Cloud 66.")
}

// frozenReply offers an admin the Override button (deploy.go handles it).
func frozenReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	frozen, _ := errors.AsType[*deploy.FrozenError](f.err)
	msg := fmt.Sprintf(":ice_cube: %s are frozen (*%s*) until %s. Nothing was sent to Cloud 66.",
		frozen.Verb.Plural(), bk.Esc(frozen.Freeze.Name), bk.Date(frozen.Freeze.Until, "{date_short_pretty} {time}"))
	if frozen.OverrideIntentID == "" {
		return ephemeral(msg + " An admin can override it.")
	}
	return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{
		bk.Section(msg + " You are an admin: you may override the freeze (it is recorded in the audit log)."),
		slack.NewActionBlock("freeze_override", bk.Button(ActionOverride, frozen.OverrideIntentID, "Override the freeze", slack.StyleDanger)),
	}}
}

// optionReply names the option Cloud 66 would refuse for this stack.
func optionReply(_ context.Context, e *errorReplies, f failure) chat.Message {
	oe, _ := errors.AsType[*deploy.OptionError](f.err)
	msg := ":no_entry_sign: " + upperFirst(bk.EscText(oe.Problem)) + ". Nothing was sent to Cloud 66."
	if f.cmd != nil {
		msg += " `" + e.slash + " help " + f.cmd.Name + "` shows the options."
	}
	return ephemeral(msg)
}

// rollbackReply says why there is nothing to roll back to.
func rollbackReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	re, _ := errors.AsType[*deploy.RollbackError](f.err)
	return ephemeral(":rewind: I can't roll back: " + bk.EscText(re.Problem) + ". Nothing was sent to Cloud 66.")
}

// upperFirst capitalises the first letter of s.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func cloud66NotFoundReply(_ context.Context, e *errorReplies, _ failure) chat.Message {
	return ephemeral(":mag: Cloud 66 says that doesn't exist, or your account can't see it. `" + e.slash + " stacks` lists what you can see.")
}

func conflictReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	msg := ":traffic_light: Cloud 66 refused because the stack is busy."
	if c66, ok := errors.AsType[*cloud66.ErrorResponse](f.err); ok && c66.Message() != "" {
		msg += " It said: _" + bk.Esc(c66.Message()) + "_."
	}
	return ephemeral(msg)
}

func invalidIDReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	return ephemeral(":warning: Cloud 66 answered with a stack or server id that isn't shaped like a Cloud 66 id, so I didn't use that answer and changed nothing. Tell your admin (request " + f.req.RequestID + ").")
}

func unavailableReply(_ context.Context, _ *errorReplies, f failure) chat.Message {
	return ephemeral(":cloud: Cloud 66 didn't answer in time. Try again in a minute. (request " + f.req.RequestID + ")")
}

func somethingWentWrong(_ context.Context, _ *errorReplies, f failure) chat.Message {
	return ephemeral(":warning: Something went wrong on my side. Try again; if it keeps happening, give your admin this request id: `" + f.req.RequestID + "`.")
}

// linkPrompt answers with a fresh login link so the person is one click
// from fixing it.
func (e *errorReplies) linkPrompt(ctx context.Context, req Request, why string) chat.Message {
	start, err := e.accounts.BeginLogin(ctx, accountsLoginRequest(req))
	if err != nil {
		e.log.ErrorContext(ctx, "begin login failed", "request_id", req.RequestID, "error", err.Error())
		return ephemeral(why + " Run `" + e.slash + " login` to link it.")
	}
	return loginReply(e.slash, e.loginURL, why, start)
}

func accountsLoginRequest(req Request) accounts.LoginRequest {
	return accounts.LoginRequest{Identity: req.Identity(), Channel: req.ChannelID, ResponseURL: req.ResponseURL}
}
