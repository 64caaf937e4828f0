package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// maxLockReason keeps a reason readable in one line of every refusal.
const maxLockReason = 200

func lockCommand() *Command {
	return &Command{
		Name:    "lock",
		Deploys: true,
		Args:    "<stack> [reason…]",
		Summary: "Stop others deploying a stack, and say why.",
		Description: "Locks a stack: until you unlock it, nobody else can deploy it, and everyone who tries is told who locked it, why and since when. " +
			"Locking it again changes the reason.",
		Examples: []string{"lock shop:production release freeze until QA signs off", "lock api"},
		MinArgs:  1, MaxArgs: -1,
		Run: runLock,
	}
}

func runLock(ctx context.Context, c *Call) (chat.Message, error) {
	reason := strings.TrimSpace(strings.Join(c.Args[1:], " "))
	if len([]rune(reason)) > maxLockReason {
		return chat.Message{}, &UsageError{Problem: fmt.Sprintf("The reason is longer than %d characters.", maxLockReason)}
	}
	_, st, err := c.stackArg(ctx, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	l, err := c.Deps.Deploy.Lock(ctx, c.origin(), st, reason)
	if err != nil {
		return chat.Message{}, err
	}
	msg := fmt.Sprintf(":lock: <@%s> locked %s", bk.Esc(l.Owner.User), bk.StackLabel(st))
	if l.Reason != "" {
		msg += ": " + bk.Esc(l.Reason)
	}
	msg += fmt.Sprintf(". Nobody else can deploy it until `%s unlock %s`.", c.Deps.Command, bk.Esc(stackRefText(st)))
	return chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}, nil
}

func unlockCommand() *Command {
	return &Command{
		Name:        "unlock",
		Deploys:     true,
		Args:        "<stack>",
		Summary:     "Remove a stack's lock.",
		Description: "Removes the lock on a stack. Removing someone else's lock asks you to confirm, and tells them.",
		Examples:    []string{"unlock shop:production"},
		MinArgs:     1, MaxArgs: 1,
		Run: runUnlock,
	}
}

func runUnlock(ctx context.Context, c *Call) (chat.Message, error) {
	_, st, err := c.stackArg(ctx, c.Args[0])
	if err != nil {
		return chat.Message{}, err
	}
	res, err := c.Deps.Deploy.Unlock(ctx, c.origin(), st)
	if err != nil {
		return chat.Message{}, err
	}
	if res.Confirm != nil && res.Confirm.Lock != nil {
		l := res.Confirm.Lock
		blocks := []slack.Block{
			bk.Section(fmt.Sprintf(":unlock: %s is locked by <@%s> %s%s. Remove their lock? I'll tell them.",
				bk.StackLabel(st), bk.Esc(l.Owner.User), bk.Ago(c.Deps.Now(), l.Since), reasonSuffix(l.Reason))),
			slack.NewActionBlock("unlock_confirm",
				bk.Button(ActionUnlockConfirm, res.Confirm.IntentID, "Remove the lock", slack.StyleDanger),
				bk.Button(ActionAbort, res.Confirm.IntentID, "Leave it", slack.StyleDefault)),
			bk.Context(fmt.Sprintf("Only you can confirm. This expires %s.", bk.Date(res.Confirm.ExpiresAt, "{time}"))),
		}
		return chat.Message{Text: "Remove someone else's lock?", Blocks: blocks}, nil
	}
	msg := fmt.Sprintf(":unlock: <@%s> unlocked %s.", bk.Esc(c.Request.UserID), bk.StackLabel(st))
	return chat.Message{InChannel: true, Text: bk.Fallback(msg), Blocks: []slack.Block{bk.Section(msg)}}, nil
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + bk.Esc(reason)
}

func locksCommand() *Command {
	return &Command{
		Name:        "locks",
		Summary:     "Which stacks are locked, by whom and why.",
		Description: "Lists the locked stacks of this workspace with who locked them, why and since when.",
		Examples:    []string{"locks"},
		MinArgs:     0, MaxArgs: 0,
		Run: func(ctx context.Context, c *Call) (chat.Message, error) {
			locks, err := c.Deps.Deploy.Locks(ctx, c.Request.Identity().Team)
			if err != nil {
				return chat.Message{}, err
			}
			if len(locks) == 0 {
				return errorText(":unlock: No stack is locked."), nil
			}
			now := c.Deps.Now()
			var lines []string
			for _, l := range locks {
				lines = append(lines, lockLine(l, now))
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
