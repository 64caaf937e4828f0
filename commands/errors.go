package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

// errorReply is the single place where an error becomes what the person
// reads: the cause, and the next step. Replies are always ephemeral.
func (r *Router) errorReply(ctx context.Context, c *Call, err error) chat.Message {
	var (
		usage   *UsageError
		amb     *AmbiguousError
		nf      *NotFoundError
		c66     *cloud66.ErrorResponse
		locked  *deploy.LockedError
		busy    *deploy.BusyError
		refused *deploy.PolicyError
		frozen  *deploy.FrozenError
	)
	switch {
	case errors.As(err, &usage):
		return r.usageError(usage.Problem, c.Command)

	case errors.Is(err, storage.ErrNotAudited):
		// Every change is in the audit log or is not made.
		return errorText(":floppy_disk: I could not write the audit log, so I did not " + unauditedChange(c.Command) +
			". Tell whoever runs c66bot: the database is not writable (a full disk, or a read-only file).")

	case errors.Is(err, accounts.ErrNotLinked):
		return r.linkPrompt(ctx, c.Request, ":wave: You haven't linked your Cloud 66 account yet. Everything I do in Cloud 66 I do as you, with your own token.")

	case errors.Is(err, cloud66.ErrUnauthorized):
		// Cloud 66 tokens don't expire on their own: a 401 means the
		// person revoked the app or a team policy expired it. The stored
		// token is useless, so forget it.
		r.stacks.forget(c.Request.Identity(), "")
		if _, uerr := r.deps.Accounts.DropLink(ctx, c.Request.Identity(), "Cloud 66 answered 401: the token was revoked or expired"); uerr != nil {
			r.deps.Logger.WarnContext(ctx, "unlink after 401 failed", "request_id", c.Request.RequestID, "error", uerr.Error())
		}
		return r.linkPrompt(ctx, c.Request, ":lock: Your Cloud 66 link has expired or was revoked. Log in again to keep going.")

	case errors.Is(err, cloud66.ErrForbidden):
		detail := ""
		if errors.As(err, &c66) && c66.Message() != "" {
			detail = " Cloud 66 said: _" + bk.Esc(c66.Message()) + "_."
		}
		return errorText(":no_entry: Your Cloud 66 token isn't allowed to do that: it lacks a scope, or your Cloud 66 role on this stack doesn't permit it." + detail +
			" If you linked with fewer scopes, run `" + r.deps.Command + " login` again to re-link with `public redeploy`.")

	case errors.Is(err, cloud66.ErrThrottled):
		when := "in a few minutes"
		if errors.As(err, &c66) && !c66.RetryAt.IsZero() {
			when = "at " + bk.Date(c66.RetryAt, "{time}")
		}
		return errorText(":hourglass: Cloud 66 is throttling requests for your account (it allows 3,000 an hour per person). Try again " + when + ".")

	case errors.As(err, &amb):
		return ambiguousReply(r.deps.Command, c, amb)

	case errors.As(err, &locked):
		l := locked.Lock
		return errorText(fmt.Sprintf(":lock: *%s* · %s is locked by <@%s> %s%s. Ask them, or `%s unlock %s` (you'll be asked to confirm, and they'll be told).",
			bk.Esc(l.StackName), bk.Esc(l.Environment), bk.Esc(l.Owner.User), bk.Ago(r.deps.Now(), l.Since), reasonSuffix(l.Reason),
			r.deps.Command, bk.Esc(bk.StackRef(l.StackName, l.Environment))))

	case errors.As(err, &busy):
		w := busy.Watch
		msg := fmt.Sprintf(":rocket: A deployment of *%s* · %s is already running", bk.Esc(w.StackName), bk.Esc(w.Environment))
		if w.Owner.User != "" {
			msg += fmt.Sprintf(", started by <@%s> %s", bk.Esc(w.Owner.User), bk.Ago(r.deps.Now(), w.RequestedAt))
		}
		if busy.Link != "" {
			msg += " (" + bk.Link(busy.Link, "its message") + ")"
		}
		msg += fmt.Sprintf(". I run one deployment per stack at a time: wait for it, or `%s cancel %s`.", r.deps.Command, bk.Esc(bk.StackRef(w.StackName, w.Environment)))
		return errorText(msg)

	case errors.As(err, &refused):
		msg := ":no_entry_sign: Not allowed"
		if refused.Rule != "" {
			msg += " by policy rule *" + bk.Esc(refused.Rule) + "*"
		}
		return errorText(msg + ": " + bk.Esc(refused.Reason) + ". Nothing was sent to Cloud 66.")

	case errors.As(err, &frozen):
		msg := fmt.Sprintf(":ice_cube: Deploys are frozen (*%s*) until %s. Nothing was sent to Cloud 66.",
			bk.Esc(frozen.Freeze.Name), bk.Date(frozen.Freeze.Until, "{date_short_pretty} {time}"))
		if frozen.OverrideIntentID == "" {
			return errorText(msg + " An admin can override it.")
		}
		return chat.Message{Text: bk.Fallback(msg), Blocks: []slack.Block{
			bk.Section(msg + " You are an admin: you may override the freeze (it is recorded in the audit log)."),
			slack.NewActionBlock("freeze_override", bk.Button(ActionOverride, frozen.OverrideIntentID, "Override the freeze", slack.StyleDanger)),
		}}

	case errors.Is(err, deploy.ErrNothingRunning):
		return errorText(":zzz: Nothing is deploying on that stack right now, so there is nothing to cancel.")

	case errors.Is(err, deploy.ErrNotLocked):
		return errorText(":unlock: That stack isn't locked.")

	case errors.As(err, &nf):
		return notFoundReply(r.deps.Command, nf)

	case errors.Is(err, cloud66.ErrNotFound):
		return errorText(":mag: Cloud 66 says that doesn't exist, or your account can't see it. `" + r.deps.Command + " stacks` lists what you can see.")

	case errors.Is(err, cloud66.ErrConflict):
		msg := ":traffic_light: Cloud 66 refused because the stack is busy."
		if errors.As(err, &c66) && c66.Message() != "" {
			msg += " It said: _" + bk.Esc(c66.Message()) + "_."
		}
		return errorText(msg)

	case errors.Is(err, cloud66.ErrInvalidID):
		return errorText(":warning: Cloud 66 answered with a stack or server id that isn't shaped like a Cloud 66 id, so I didn't use that answer and changed nothing. Tell your admin (request " + c.Request.RequestID + ").")

	case errors.Is(err, context.DeadlineExceeded), cloud66.IsTransient(err):
		return errorText(":cloud: Cloud 66 didn't answer in time. Try again in a minute. (request " + c.Request.RequestID + ")")
	}
	return errorText(":warning: Something went wrong on my side. Try again; if it keeps happening, give your admin this request id: `" + c.Request.RequestID + "`.")
}

// unauditedChange names what a command or button would have changed, for
// the reply refusing it because its audit entry could not be written.
func unauditedChange(c *Command) string {
	name := ""
	if c != nil {
		name = c.Name
	}
	switch name {
	case "deploy", "redeploy", ActionDeployConfirm, ActionApprove, ActionOverride:
		return "deploy"
	case "lock":
		return "lock the stack"
	case "unlock", ActionUnlockConfirm:
		return "unlock the stack"
	case ActionCancelConfirm:
		return "cancel the deployment"
	case "login":
		return "link your Cloud 66 account"
	case "logout":
		return "forget your Cloud 66 token"
	case "subscribe":
		return "subscribe this channel"
	case "unsubscribe":
		return "unsubscribe this channel"
	}
	return "make that change"
}

// linkPrompt answers with a fresh login link so the person is one click
// from fixing it.
func (r *Router) linkPrompt(ctx context.Context, req Request, why string) chat.Message {
	start, err := r.deps.Accounts.BeginLogin(ctx, accountsLoginRequest(req))
	if err != nil {
		r.deps.Logger.ErrorContext(ctx, "begin login failed", "request_id", req.RequestID, "error", err.Error())
		return errorText(why + " Run `" + r.deps.Command + " login` to link it.")
	}
	return loginReply(r.deps, why, start)
}

func accountsLoginRequest(req Request) accounts.LoginRequest {
	return accounts.LoginRequest{Identity: req.Identity(), Channel: req.ChannelID, ResponseURL: req.ResponseURL}
}

// usageError answers with what was wrong and how the command is used.
func (r *Router) usageError(problem string, c *Command) chat.Message {
	var b strings.Builder
	if problem != "" {
		b.WriteString(problem)
		b.WriteString(" ")
	}
	if c == nil {
		b.WriteString("Try `" + r.deps.Command + " help`.")
		return errorText(strings.TrimSpace(b.String()))
	}
	b.WriteString("Usage: `" + r.Usage(c) + "`")
	if len(c.Examples) > 0 {
		b.WriteString(", for example `" + r.deps.Command + " " + c.Examples[0] + "`")
	}
	b.WriteString(". More: `" + r.deps.Command + " help " + c.Name + "`.")
	return errorText(b.String())
}

// unknown answers a word that is no command with the nearest ones.
func (r *Router) unknown(word string) chat.Message {
	var names []string
	for _, c := range r.commands {
		names = append(names, c.Name)
		names = append(names, c.Aliases...)
	}
	msg := fmt.Sprintf("I don't know the command `%s`.", bk.Esc(bk.Truncate(word, 40)))
	if s := suggest(strings.ToLower(word), names, 3); len(s) > 0 {
		msg += " Did you mean `" + r.deps.Command + " " + s[0] + "`?"
	}
	var usages []string
	for _, c := range r.commands {
		usages = append(usages, c.Name)
	}
	msg += "\nCommands: " + strings.Join(usages, ", ") + ". `" + r.deps.Command + " help` explains each."
	return errorText(msg)
}
