package sandbox

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/deploy"
)

// screen is the shared output: messages arrive from the feed while the
// console shows its prompt, so every write goes through here. A message
// that arrives while the prompt is shown gets its own lines and the prompt
// is shown again below it; on a terminal the prompt line is cleared first,
// so it is not left dangling above.
type screen struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	prompt   string
	shown    bool
}

// print writes text (one or more lines) on lines of its own.
func (sc *screen) print(text string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.shown {
		if sc.terminal {
			io.WriteString(sc.w, "\r\x1b[K")
		} else {
			io.WriteString(sc.w, "\n")
		}
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	io.WriteString(sc.w, text)
	if sc.shown {
		io.WriteString(sc.w, sc.prompt)
	}
}

// showPrompt writes the prompt and remembers it is on screen.
func (sc *screen) showPrompt(p string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.prompt, sc.shown = p, true
	io.WriteString(sc.w, p)
}

// entered says the person pressed Enter: the prompt line is finished.
// echo writes what they typed after it, for input a terminal did not echo.
func (sc *screen) entered(line string, echo bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if echo && sc.shown {
		io.WriteString(sc.w, line+"\n")
	}
	sc.shown = false
}

// leave ends the prompt line for good: the console is going away.
func (sc *screen) leave() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.shown {
		io.WriteString(sc.w, "\n")
	}
	sc.shown = false
}

// feed prints every message the bot makes the fake Slack show, in order,
// as it happens; remembers the latest message with buttons, so a number
// presses one; completes logins by playing the browser; and tells whoever
// waits for the answer to a command or a click when it has been printed.
type feed struct {
	sb        *Sandbox
	scr       *screen
	autoLogin bool

	mu      sync.Mutex
	viewer  string
	refs    map[string]string // channel/ts → "msg N"
	cards   []msgKey          // top-level channel posts, in order
	buttons *pressable
	waits   []*waiter
	lastAt  time.Time // when the latest message was printed
}

type msgKey struct{ channel, ts string }

// pressable is the latest message with action buttons. envs are the
// envelopes whose replace_original replies replace it: the command that
// produced it and every click on it.
type pressable struct {
	msg     bottest.Message
	buttons []Button
	envs    []string
}

// waiter waits for the answer to one envelope. After a login reply it
// waits on for the confirmation that replaces it.
type waiter struct {
	env   string
	login bool
	done  chan struct{}
}

func newFeed(sb *Sandbox, scr *screen, viewer string, autoLogin bool) *feed {
	return &feed{sb: sb, scr: scr, viewer: viewer, autoLogin: autoLogin, refs: map[string]string{}, lastAt: time.Now()}
}

// run prints messages with a Seq above after until ctx is done or the
// fake Slack closes.
func (f *feed) run(ctx context.Context, after int) {
	last := after
	for {
		m, err := f.sb.Slack.WaitMessage(ctx, func(m bottest.Message) bool { return m.Seq > last })
		if err != nil {
			return
		}
		last = m.Seq
		f.handle(ctx, m)
	}
}

// lastSeq is the Seq of the newest recorded message, where a feed that
// should show only what happens from now on starts.
func lastSeq(s *bottest.Server) int {
	ms := s.Messages()
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Seq
}

func (f *feed) setViewer(user string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.viewer = user
}

// ref names a channel message for people: "msg 1", "msg 2"… in the order
// they first appear. f.mu must be held.
func (f *feed) refLocked(channel, ts string) string {
	k := channel + "/" + ts
	if r, ok := f.refs[k]; ok {
		return r
	}
	r := fmt.Sprintf("msg %d", len(f.refs)+1)
	f.refs[k] = r
	return r
}

func (f *feed) handle(ctx context.Context, m bottest.Message) {
	f.mu.Lock()
	if !isEphemeral(m) && m.TS != "" {
		if m.ThreadTS != "" && m.ThreadTS != m.TS {
			f.refLocked(m.Channel, m.ThreadTS)
		} else if _, seen := f.refs[m.Channel+"/"+m.TS]; !seen {
			f.refLocked(m.Channel, m.TS)
			if m.Kind == bottest.KindPost {
				f.cards = append(f.cards, msgKey{m.Channel, m.TS})
			}
		}
	}
	// Refs are all assigned above, so Render may read them unlocked.
	refs := f.refs
	viewer := f.viewer
	f.mu.Unlock()

	rd := Render(m, f.sb.renderOptions(viewer, func(channel, ts string) string { return refs[channel+"/"+ts] }))
	f.scr.print(rd.Text)

	f.mu.Lock()
	switch {
	case len(rd.Buttons) > 0:
		f.buttons = &pressable{msg: m, buttons: rd.Buttons, envs: []string{m.EnvelopeID}}
	case f.buttons != nil && f.replaces(m):
		f.buttons = nil
	}
	f.mu.Unlock()

	linked := false
	if start, ok := f.sb.LoginURL(m); ok && f.autoLogin {
		email, err := f.sb.SignIn(ctx, m.User, start)
		if err != nil {
			f.scr.print(f.note("(browser) could not sign in to Cloud 66: " + err.Error()))
		} else {
			f.scr.print(f.note("(browser) signed in to Cloud 66 as " + email))
			linked = true
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAt = time.Now()
	f.waits = slices.DeleteFunc(f.waits, func(w *waiter) bool {
		if m.EnvelopeID == "" || w.env != m.EnvelopeID {
			return false
		}
		if linked {
			w.login = true
			return false
		}
		if w.login && !m.ReplaceOriginal {
			return false
		}
		close(w.done)
		return true
	})
}

// replaces reports whether m takes the place of the pressable message: a
// replace_original reply to its command or to a click on it, or an edit of
// the same channel message. f.mu must be held.
func (f *feed) replaces(m bottest.Message) bool {
	p := f.buttons
	switch {
	case m.ReplaceOriginal || m.DeleteOriginal:
		return slices.Contains(p.envs, m.EnvelopeID)
	case m.Kind == bottest.KindUpdate:
		return m.Channel == p.msg.Channel && m.TS == p.msg.TS
	}
	return false
}

// note styles a line the sandbox itself says (not the bot).
func (f *feed) note(s string) string {
	if f.sb.opts.Color {
		return ansiDim + s + ansiNoBoldDim
	}
	return s
}

// send runs send (a slash command or a click) and registers a waiter for
// its envelope before the answer can be handled. A click also marks its
// envelope as one whose replace_original replaces the pressable message.
func (f *feed) send(send func() (string, error), click bool) (*waiter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, err := send()
	if err != nil {
		return nil, err
	}
	w := &waiter{env: id, done: make(chan struct{})}
	f.waits = append(f.waits, w)
	if click && f.buttons != nil {
		f.buttons.envs = append(f.buttons.envs, id)
	}
	return w, nil
}

// pressable returns the latest message with buttons, or nil.
func (f *feed) pressable() *pressable {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buttons == nil {
		return nil
	}
	p := *f.buttons
	return &p
}

// quietFor is how long no message has arrived.
func (f *feed) quietFor() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.lastAt)
}

// openCards lists the deployment messages seen that have not reached a
// final state. A deployment message's text starts with its state's emoji
// (deploy.Card): ⏳ starting or queued, 🚀 deploying; anything else is
// final or not a deployment message.
func (f *feed) openCards() []msgKey {
	f.mu.Lock()
	cards := slices.Clone(f.cards)
	f.mu.Unlock()
	var open []msgKey
	for _, k := range cards {
		m, ok := f.sb.Slack.Message(k.channel, k.ts)
		if ok && deploy.CardInProgress(m.Text) {
			open = append(open, k)
		}
	}
	return open
}

// wait blocks until w's answer is printed, d passes or ctx is done, and
// reports whether the answer came.
func wait(ctx context.Context, w *waiter, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
