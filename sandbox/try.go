package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// quietAfter is how long Try waits for more messages once everything it
// knows of has arrived: a deployment message is posted around the reply,
// and Cloud 66's last word goes in its thread just after the final edit.
const quietAfter = 700 * time.Millisecond

// TryOptions describe one command for Try.
type TryOptions struct {
	// Text is the command, with or without the leading "/c66".
	Text string
	// User and Channel are who types it where: IDs or names ("ben",
	// "#ops"); default U0ANA in C0GENERAL.
	User, Channel string
	// Wait bounds the whole run, following a deployment included;
	// default 30 s.
	Wait time.Duration
	// Press, when above 0, presses that button of the reply (for example
	// 1 to confirm a production deploy). Buttons are never pressed
	// otherwise.
	Press int
}

// Try runs one command in the sandbox and prints what the bot shows: the
// reply, and when a deployment starts, its message and every edit until it
// reaches a final state (or Wait runs out). A person who must be linked
// first is linked silently; `login` itself is shown, browser leg and all.
func (s *Sandbox) Try(ctx context.Context, t TryOptions) error {
	if t.Wait <= 0 {
		t.Wait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, t.Wait)
	defer cancel()
	user, channel := DefaultUser, DefaultChannel
	var err error
	if t.User != "" {
		if user, _, err = s.resolveUser(t.User); err != nil {
			return err
		}
	}
	if t.Channel != "" {
		if channel, _, err = s.resolveChannel(t.Channel); err != nil {
			return err
		}
	}
	text := strings.TrimSpace(t.Text)
	if rest, ok := strings.CutPrefix(text, Command); ok && (rest == "" || rest[0] == ' ') {
		text = strings.TrimSpace(rest)
	}
	if needsLink(text) {
		if err := s.Link(ctx, user, channel); err != nil {
			return fmt.Errorf("linking %s first: %w", user, err)
		}
	}

	scr := &screen{w: s.opts.Out}
	f := newFeed(s, scr, user, true)
	var wg sync.WaitGroup
	fctx, stop := context.WithCancel(ctx)
	from := lastSeq(s.Slack) // here: the goroutine may start late
	wg.Go(func() { f.run(fctx, from) })
	defer wg.Wait()
	defer stop()

	c := &console{sb: s, scr: scr, feed: f, user: user, channel: channel}
	scr.print(strings.TrimRight(c.prompt()+Command+" "+text, " "))
	w, err := f.send(func() (string, error) { return s.Send(ctx, user, channel, text) }, false)
	if err != nil {
		return err
	}
	if !wait(ctx, w, t.Wait) {
		return errors.New("no answer from the bot in time")
	}
	p := f.pressable()
	switch {
	case t.Press > 0 && p == nil:
		return fmt.Errorf("the answer has no buttons to press")
	case t.Press > 0 && t.Press > len(p.buttons):
		return fmt.Errorf("the answer has buttons 1 to %d", len(p.buttons))
	case t.Press > 0:
		b := p.buttons[t.Press-1]
		scr.print(f.note(fmt.Sprintf("(@%s pressed “%s”)", c.name(user), b.Label)))
		w, err := f.send(func() (string, error) { return s.Press(ctx, user, p.msg, b) }, true)
		if err != nil {
			return err
		}
		if !wait(ctx, w, t.Wait) {
			return errors.New("no answer to the button in time")
		}
	case p != nil:
		scr.print(f.note(fmt.Sprintf("(buttons are not pressed; add --press N to press one, e.g. --press 1 for “%s”)", p.buttons[0].Label)))
	}

	// Follow what the command started until it settles.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(f.openCards()) > 0 || f.quietFor() < quietAfter {
		select {
		case <-ctx.Done():
			if len(f.openCards()) > 0 {
				scr.print(f.note(fmt.Sprintf("(stopped waiting after %s; the deployment is still running)", t.Wait)))
			}
			return nil
		case <-tick.C:
		}
	}
	return nil
}

// needsLink reports whether a command needs a linked Cloud 66 account:
// everything but help and login.
func needsLink(text string) bool {
	verb, _, _ := strings.Cut(strings.ToLower(text), " ")
	switch verb {
	case "", "help", "login":
		return false
	}
	return true
}
