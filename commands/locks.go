package commands

import (
	"context"
	"fmt"
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

type lockTaker interface {
	Lock(ctx context.Context, o deploy.Origin, stack cloud66.Stack, reason string) (storage.Lock, error)
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
		Args:    "<stack> [reason…]",
		Summary: "Stop others deploying a stack, and say why.",
		Description: "Locks a stack: until you unlock it, nobody else can deploy it, and everyone who tries is told who locked it, why and since when. " +
			"Locking it again changes the reason.",
		Examples: []string{"lock shop:production release freeze until QA signs off", "lock api"},
		MinArgs:  1, MaxArgs: -1,
		Change: "lock the stack",
		Run:    func(ctx context.Context, c *Call) (chat.Message, error) { return runLock(ctx, c, d, res, slash) },
	}
}

func runLock(ctx context.Context, c *Call, d lockTaker, res *resolver, slash string) (chat.Message, error) {
	reason := strings.TrimSpace(strings.Join(c.Args[1:], " "))
	if len([]rune(reason)) > maxLockReason {
		return chat.Message{}, &UsageError{Problem: fmt.Sprintf("The reason is longer than %d characters.", maxLockReason)}
	}
	_, st, err := res.stackArg(ctx, c.Request.Identity(), c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	l, err := d.Lock(ctx, c.origin(), st, reason)
	if err != nil {
		return chat.Message{}, err
	}
	msg := fmt.Sprintf(":lock: <@%s> locked %s", bk.Esc(l.Owner.User), bk.StackLabel(st))
	if l.Reason != "" {
		msg += ": " + bk.Esc(l.Reason)
	}
	msg += fmt.Sprintf(". Nobody else can deploy it until `%s unlock %s`.", slash, bk.Esc(stackRefText(st)))
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

func locksCommand(d lockLister, now func() time.Time) *Command {
	return &Command{
		Name:        "locks",
		Summary:     "Which stacks are locked, by whom and why.",
		Description: "Lists the locked stacks of this workspace with who locked them, why and since when.",
		Examples:    []string{"locks"},
		MinArgs:     0, MaxArgs: 0,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			locks, err := d.Locks(ctx, c.Request.Identity().Team)
			if err != nil {
				return chat.Message{}, err
			}
			if len(locks) == 0 {
				return ephemeral(":unlock: No stack is locked."), nil
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
		},
	}
}

func lockLine(l storage.Lock, now time.Time) string {
	return fmt.Sprintf(":lock: *%s* · %s — <@%s> %s%s", bk.Esc(l.StackName), bk.Esc(l.Environment), bk.Esc(l.Owner.User), bk.Ago(now, l.Since), reasonSuffix(l.Reason))
}
