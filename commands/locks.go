package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// ActionUnlockConfirm is the Confirm of removing someone else's lock; its
// value is an intent id.
const ActionUnlockConfirm = "unlock_confirm"

// ActionLockNotify ("Tell me when it's free") and ActionLockQueue ("Deploy
// when it's free") are the buttons of a refusal by someone else's lock
// (lockedReply); their value is the id of the intent parking the refused
// change, never the change itself.
const (
	ActionLockNotify = "lock_wait_notify"
	ActionLockQueue  = "lock_wait_deploy"
)

type lockTaker interface {
	Lock(ctx context.Context, o deploy.Origin, stack cloud66.Stack, reason string) (deploy.LockResult, error)
	LockFor(ctx context.Context, o deploy.Origin, stack cloud66.Stack, reason string, d time.Duration) (deploy.LockResult, error)
	lockWaiter
}

// lockWaiter is what the lock refusal's buttons use.
type lockWaiter interface {
	WaitForLock(ctx context.Context, intentID string, by storage.Identity, kind storage.WaitKind) (storage.Lock, error)
}

// unlockFlow is what unlock and its Confirm button use.
type unlockFlow interface {
	Unlock(ctx context.Context, o deploy.Origin, stack cloud66.Stack) (deploy.UnlockResult, error)
	unlockConfirmer
}

type unlockConfirmer interface {
	ConfirmUnlock(ctx context.Context, intentID string, by storage.Identity) (storage.Lock, error)
}

type lockLister interface {
	Locks(ctx context.Context, team string) ([]storage.Lock, error)
}

// maxLockReason keeps a reason readable in one line of every refusal.
const maxLockReason = 200

func lockCommand(d lockTaker, res *resolver, slash string) *Command {
	return &Command{
		Name:    "lock",
		Verb:    string(deploy.VerbDeploy),
		Args:    "<stack> [for=<duration>] [reason…]",
		Summary: "Stop others deploying a stack, and say why.",
		Description: "Locks a stack: until you unlock it, nobody else can deploy it, and everyone who tries is told who locked it, why and since when. " +
			"Locking it again with a reason changes the reason; without one it keeps the reason it has. " +
			"With `for=` (30m, 2h, 1d; at most 7d) it lets go by itself then; without, I remind you after 4 hours that you still hold it.",
		Examples: []string{"lock shop:production release freeze until QA signs off", "lock shop:production for=2h migrating the orders table", "lock api:staging"},
		MinArgs:  1, MaxArgs: -1,
		Change:       "lock the stack",
		Run:          func(ctx context.Context, c *Call) (chat.Message, error) { return runLock(ctx, c, d, res, slash) },
		Interactions: lockWaitButtons(d),
	}
}

// LockArgs is a parsed `lock`: the stack, how long (0: until unlocked)
// and the reason.
type LockArgs struct {
	Stack  string
	For    time.Duration
	Reason string
}

// ParseLockArgs reads the words of `lock <stack> [for=<duration>]
// [reason…]`. for= counts only as the word after the stack, so a reason
// may say anything, "=" included; a duration that does not parse or is out
// of bounds is a *UsageError.
func ParseLockArgs(args []string) (LockArgs, error) {
	if len(args) == 0 || args[0] == "" {
		return LockArgs{}, &UsageError{Problem: "Which stack?"}
	}
	out := LockArgs{Stack: args[0]}
	rest := args[1:]
	if len(rest) > 0 {
		if key, val, ok := strings.Cut(rest[0], "="); ok && strings.EqualFold(key, "for") {
			d, err := ParseLockDuration(val)
			if err != nil {
				return LockArgs{}, err
			}
			out.For, rest = d, rest[1:]
		}
	}
	out.Reason = strings.TrimSpace(strings.Join(rest, " "))
	if len([]rune(out.Reason)) > maxLockReason {
		return LockArgs{}, &UsageError{Problem: fmt.Sprintf("The reason is longer than %d characters.", maxLockReason)}
	}
	return out, nil
}

// lockForProblem is what a bad for= is told.
const lockForProblem = "`for=` is how long the lock lasts, between 1 minute and 7 days: `for=30m`, `for=2h`, `for=1d`."

// ParseLockDuration reads a for= value: a Go duration ("30m", "2h",
// "1h30m") or whole days ("1d", "1d12h"), from deploy.MinLockFor to
// deploy.MaxLockFor; anything else is a *UsageError.
func ParseLockDuration(s string) (time.Duration, error) {
	bad := &UsageError{Problem: lockForProblem}
	var days time.Duration
	if i := strings.IndexAny(s, "dD"); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 8)
		if err != nil {
			return 0, bad
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if s != "" || days == 0 {
		if s == "" || s[0] == '-' || s[0] == '+' {
			return 0, bad
		}
		var err error
		if d, err = time.ParseDuration(strings.ToLower(s)); err != nil {
			return 0, bad
		}
	}
	d += days
	if d < deploy.MinLockFor || d > deploy.MaxLockFor {
		return 0, bad
	}
	return d, nil
}

func runLock(ctx context.Context, c *Call, d lockTaker, res *resolver, slash string) (chat.Message, error) {
	args, err := ParseLockArgs(c.Args)
	if err != nil {
		return chat.Message{}, err
	}
	reason := args.Reason
	_, st, err := res.stackArg(ctx, c.Request.Identity(), args.Stack)
	if err != nil {
		return chat.Message{}, err
	}
	var l deploy.LockResult
	if args.For == 0 {
		l, err = d.Lock(ctx, c.origin(), st, reason)
	} else {
		l, err = d.LockFor(ctx, c.origin(), st, reason, args.For)
	}
	if err != nil {
		return chat.Message{}, err
	}
	held := "since " + bk.Date(l.Since, "{date_short_pretty} {time}") + lockUntil(l.Lock)
	var msg string
	switch {
	case !l.Changed():
		// Nothing changed, so the channel hears nothing.
		return ephemeral(fmt.Sprintf(":lock: You already hold the lock on %s (%s)%s. Nothing changed; `%s lock %s <reason>` gives it a new reason.",
			bk.StackLabel(st), held, reasonSuffix(l.Reason), slash, bk.Esc(stackRefText(st)))), nil
	case l.AlreadyHeld && l.PreviousReason == "" && l.Reason != "":
		msg = fmt.Sprintf(":lock: <@%s> already holds the lock on %s (%s) and gave it a reason: %s.",
			bk.Esc(l.Owner.User), bk.StackLabel(st), held, bk.Esc(l.Reason))
	case l.AlreadyHeld && l.Reason != l.PreviousReason:
		msg = fmt.Sprintf(":lock: <@%s> already holds the lock on %s (%s) and changed its reason to: %s (it was: %s).",
			bk.Esc(l.Owner.User), bk.StackLabel(st), held, bk.Esc(l.Reason), bk.Esc(l.PreviousReason))
	case l.AlreadyHeld:
		// Only the expiry changed.
		msg = fmt.Sprintf(":lock: <@%s> still holds the lock on %s (since %s), now%s%s.", bk.Esc(l.Owner.User), bk.StackLabel(st),
			bk.Date(l.Since, "{date_short_pretty} {time}"), lockUntil(l.Lock), reasonSuffix(l.Reason))
	default:
		msg = fmt.Sprintf(":lock: <@%s> locked %s%s%s.", bk.Esc(l.Owner.User), bk.StackLabel(st), lockUntil(l.Lock), reasonSuffix(l.Reason))
	}
	if !l.Expires.IsZero() {
		msg += fmt.Sprintf(" Nobody else can deploy it until then, or until `%s unlock %s`.", slash, bk.Esc(stackRefText(st)))
	} else {
		msg += fmt.Sprintf(" Nobody else can deploy it until `%s unlock %s`.", slash, bk.Esc(stackRefText(st)))
	}
	return chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}, nil
}

func unlockCommand(d unlockFlow, res *resolver, now func() time.Time) *Command {
	return &Command{
		Name:        "unlock",
		Verb:        string(deploy.VerbDeploy),
		Args:        "<stack>",
		Summary:     "Remove a stack's lock.",
		Description: "Removes the lock on a stack. Removing someone else's lock asks you to confirm, and tells them.",
		Examples:    []string{"unlock shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Change:       "unlock the stack",
		Run:          func(ctx context.Context, c *Call) (chat.Message, error) { return runUnlock(ctx, c, d, res, now) },
		Interactions: []*Interaction{unlockConfirmButton(d)},
	}
}

func runUnlock(ctx context.Context, c *Call, d unlockFlow, res *resolver, now func() time.Time) (chat.Message, error) {
	_, st, err := res.stackArg(ctx, c.Request.Identity(), c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	result, err := d.Unlock(ctx, c.origin(), st)
	if err != nil {
		return chat.Message{}, err
	}
	if cf := result.Confirm; cf != nil && cf.Lock != nil {
		l := cf.Lock
		blocks := []slack.Block{
			bk.Section(fmt.Sprintf(":unlock: %s is locked by <@%s> %s%s. Remove their lock? I'll tell them.",
				bk.StackLabel(st), bk.Esc(l.Owner.User), bk.Ago(now(), l.Since), reasonSuffix(l.Reason))),
			slack.NewActionBlock("unlock_confirm",
				bk.Button(ActionUnlockConfirm, cf.IntentID, "Remove the lock", slack.StyleDanger),
				bk.Button(ActionAbort, cf.IntentID, "Leave it", slack.StyleDefault)),
			bk.Context(fmt.Sprintf("Only you can confirm. This expires %s.", bk.Date(cf.ExpiresAt, "{time}"))),
		}
		return chat.Message{Text: "Remove someone else's lock?", Blocks: blocks}, nil
	}
	msg := fmt.Sprintf(":unlock: <@%s> unlocked %s.", bk.Esc(c.Request.UserID), bk.StackLabel(st))
	return chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}, nil
}

// unlockConfirmButton removes someone else's lock once confirmed
// (runUnlock); the channel is told.
func unlockConfirmButton(d unlockConfirmer) *Interaction {
	return &Interaction{ActionID: ActionUnlockConfirm, Change: "unlock the stack", Run: func(ctx context.Context, a Action) (ActionReply, error) {
		l, err := d.ConfirmUnlock(ctx, a.Value, a.Identity())
		if err != nil {
			return ActionReply{}, err
		}
		msg := fmt.Sprintf(":unlock: <@%s> removed <@%s>'s lock on *%s* · %s.", bk.Esc(a.UserID), bk.Esc(l.Owner.User), bk.Esc(l.StackName), bk.Esc(l.Environment))
		return ActionReply{Replace: true, Message: chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}}, nil
	}}
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + bk.Esc(reason)
}

func locksCommand(d lockLister, res *resolver, now func() time.Time) *Command {
	return &Command{
		Name:        "locks",
		Summary:     "Which stacks are locked, by whom and why.",
		Description: "Lists the locked stacks of this workspace that your Cloud 66 account can see, with who locked them, why and since when.",
		Examples:    []string{"locks"},
		MinArgs:     0, MaxArgs: 0,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) { return runLocks(ctx, c, d, res, now) },
	}
}

func runLocks(ctx context.Context, c *Call, d lockLister, res *resolver, now func() time.Time) (chat.Message, error) {
	id := c.Request.Identity()
	// Which locks someone may see depends on their Cloud 66 account, so
	// someone without one sees none, and is told to link it.
	api, err := res.client(ctx, id)
	if err != nil {
		return chat.Message{}, err
	}
	locks, err := d.Locks(ctx, id.Team)
	if err != nil {
		return chat.Message{}, err
	}
	if locks, err = res.visibleLocks(ctx, api, id, locks); err != nil {
		return chat.Message{}, err
	}
	if len(locks) == 0 {
		// The same words whether or not hidden stacks are locked.
		return ephemeral(":unlock: No stack you can see is locked."), nil
	}
	at := now()
	var lines []string
	for _, l := range locks {
		lines = append(lines, lockLine(l, at))
	}
	title := fmt.Sprintf("Locked stacks (%d)", len(locks))
	blocks := []slack.Block{bk.Header(title)}
	blocks = append(blocks, listSections(lines, bk.MaxBlocks-1, func(n int) string { return fmt.Sprintf("…and %d more.", n) })...)
	return chat.Message{Text: title, Blocks: blocks}, nil
}

// visibleLocks keeps the locks on stacks the person's Cloud 66 account can
// see, in order, named as Cloud 66 names them now (a lock keeps the name
// its stack had when it was taken). It asks Cloud 66 nothing when there are
// no locks or every one is on a stack the person resolved by that name
// lately (stackCache); otherwise it lists their stacks once (ListStacks).
func (r *resolver) visibleLocks(ctx context.Context, api Cloud66, id storage.Identity, locks []storage.Lock) ([]storage.Lock, error) {
	cached := true
	for _, l := range locks {
		st, ok := r.cache.get(newStackKey(id, StackRef{Name: l.StackName, Environment: l.Environment}), r.now())
		if !ok || st.UID != l.StackUID {
			cached = false
			break
		}
	}
	if cached {
		return locks, nil
	}
	stacks, err := api.ListStacks(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]cloud66.Stack, len(stacks))
	for _, s := range stacks {
		seen[s.UID] = s
	}
	var visible []storage.Lock
	for _, l := range locks {
		if s, ok := seen[l.StackUID]; ok {
			l.StackName, l.Environment = s.Name, s.Environment
			visible = append(visible, l)
		}
	}
	return visible, nil
}

func lockLine(l storage.Lock, now time.Time) string {
	return fmt.Sprintf(":lock: *%s* · %s — %s", bk.Esc(l.StackName), bk.Esc(l.Environment), lockHolder(l, now))
}

// lockUntil is " until 14:00" for a lock that expires, "" otherwise.
func lockUntil(l storage.Lock) string {
	if l.Expires.IsZero() {
		return ""
	}
	return " until " + bk.Date(l.Expires, "{time}")
}

// lockWaitButtons are the buttons of a refusal by someone else's lock
// (lockedReply): the person refused joins the lock's queue. The refusal
// keeps its buttons, so one refusal may be answered with both.
func lockWaitButtons(d lockWaiter) []*Interaction {
	wait := func(kind storage.WaitKind, reply func(l storage.Lock) string) func(ctx context.Context, a Action) (ActionReply, error) {
		return func(ctx context.Context, a Action) (ActionReply, error) {
			l, err := d.WaitForLock(ctx, a.Value, a.Identity(), kind)
			if err != nil {
				return ActionReply{}, err
			}
			return ActionReply{Message: ephemeral(reply(l))}, nil
		}
	}
	label := func(l storage.Lock) string {
		return bk.StackLabel(cloud66.Stack{Name: l.StackName, Environment: l.Environment})
	}
	return []*Interaction{
		{ActionID: ActionLockNotify, Change: "wait for the lock", Run: wait(storage.WaitNotify, func(l storage.Lock) string {
			return fmt.Sprintf(":bell: I'll DM you when %s is free (<@%s>'s lock%s).", label(l), bk.Esc(l.Owner.User), lockUntil(l))
		})},
		{ActionID: ActionLockQueue, Change: "queue the change", Run: wait(storage.WaitDeploy, func(l storage.Lock) string {
			return fmt.Sprintf(":hourglass: Queued: when %s is free (<@%s>'s lock%s), I'll start it for you after the usual checks; "+
				"a protected environment asks you to confirm again, by DM. If someone else's queued change is first, I'll tell you.",
				label(l), bk.Esc(l.Owner.User), lockUntil(l))
		})},
	}
}

// ConfirmationMessage renders a parked change's confirmation, with the
// buttons only its requester can press, as the command that parked it
// would: deploy DMs it when a queued change on a protected environment
// comes up (deploy.Config.RenderConfirmation).
func ConfirmationMessage(cf *deploy.Confirmation) chat.Message { return changeConfirmation(cf) }
