package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Call is one call the fake Slack received.
type Call struct {
	Kind    string // post, update, thread, respond, ephemeral, dm
	Channel string
	TS      string           // post: the ts returned; update, thread: the ts addressed
	User    string           // ephemeral: the user; dm: the recipient's user id
	To      storage.Identity // dm: the recipient
	URL     string           // respond: the response_url
	Msg     chat.Message
	Err     error // what the call returned; failed calls count only as attempts
}

// Text is everything a person could read in the call: the fallback and the
// blocks as JSON.
func (c Call) Text() string {
	return c.Msg.Text + "\n" + BlocksJSON(c.Msg.Blocks)
}

// BlocksJSON is blocks as JSON with Go's HTML escapes (\u003c for <, and
// so on) undone, so tests see the mrkdwn exactly as Slack will read it.
// Some slack-go blocks marshal themselves and escape regardless of the
// encoder's setting, hence the replacer.
func BlocksJSON(blocks any) string {
	b, err := json.Marshal(blocks)
	if err != nil {
		return "!" + err.Error()
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

// Slack records every call in order under a mutex. It is both deploy's
// Slack (Post, Update, Thread, Respond, Ephemeral, DM) and notify's Poster
// (Enqueue, DM), whose post it answers asynchronously like the bot's
// per-channel queue.
//
// Posts and ephemerals in a channel set with SetCannot fail with
// chat.ErrCannotPost, as where the bot is not a member. FailNext and Hold
// shape Enqueue only: the next n posts to a channel fail transiently, or
// every post to a held channel waits in its queue for good, as behind a
// long Retry-After, neither recorded nor answered.
type Slack struct {
	mu     sync.Mutex
	calls  []Call
	seq    int // successful posts, for their ts
	cannot map[string]bool
	failN  map[string]int
	held   map[string]int // channel -> posts waiting there
}

// NewSlack returns a Slack that accepts everything.
func NewSlack() *Slack {
	return &Slack{cannot: map[string]bool{}, failN: map[string]int{}, held: map[string]int{}}
}

// record appends c and returns it, with its ts when it is a successful
// post.
func (f *Slack) record(c Call) Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recordLocked(c)
}

func (f *Slack) recordLocked(c Call) Call {
	if c.Kind == "post" && c.Err == nil {
		f.seq++
		c.TS = fmt.Sprintf("1741082400.%06d", f.seq)
	}
	f.calls = append(f.calls, c)
	return c
}

// cannotPostLocked is the error of a post to channel where the bot may not
// post, else nil.
func (f *Slack) cannotPostLocked(channel string) error {
	if f.cannot[channel] {
		return fmt.Errorf("%w (not_in_channel)", chat.ErrCannotPost)
	}
	return nil
}

// Post posts m in channel and returns its ts.
func (f *Slack) Post(_ context.Context, channel string, m chat.Message) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.recordLocked(Call{Kind: "post", Channel: channel, Msg: m, Err: f.cannotPostLocked(channel)})
	return c.TS, c.Err
}

// Update edits the message ts in channel.
func (f *Slack) Update(_ context.Context, channel, ts string, m chat.Message) error {
	f.record(Call{Kind: "update", Channel: channel, TS: ts, Msg: m})
	return nil
}

// Thread replies under the message ts in channel.
func (f *Slack) Thread(_ context.Context, channel, ts string, m chat.Message) error {
	f.record(Call{Kind: "thread", Channel: channel, TS: ts, Msg: m})
	return nil
}

// Respond answers through a response_url.
func (f *Slack) Respond(_ context.Context, url string, m chat.Message) error {
	f.record(Call{Kind: "respond", URL: url, Msg: m})
	return nil
}

// Ephemeral shows m to user alone in channel.
func (f *Slack) Ephemeral(_ context.Context, channel, user string, m chat.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recordLocked(Call{Kind: "ephemeral", Channel: channel, User: user, Msg: m, Err: f.cannotPostLocked(channel)}).Err
}

// DM sends m to to directly.
func (f *Slack) DM(_ context.Context, to storage.Identity, m chat.Message) error {
	f.record(Call{Kind: "dm", User: to.User, To: to, Msg: m})
	return nil
}

// Enqueue posts m in channel through the queue and calls done with the
// outcome on another goroutine.
func (f *Slack) Enqueue(channel, _ string, m chat.Message, done func(ts string, err error)) {
	f.mu.Lock()
	if _, ok := f.held[channel]; ok {
		f.held[channel]++
		f.mu.Unlock()
		return
	}
	err := f.cannotPostLocked(channel)
	if err == nil && f.failN[channel] > 0 {
		f.failN[channel]--
		err = errors.New("slack: connection reset by peer")
	}
	c := f.recordLocked(Call{Kind: "post", Channel: channel, Msg: m, Err: err})
	f.mu.Unlock()
	go done(c.TS, c.Err)
}

// SetCannot makes channel one the bot may not post in from now on.
func (f *Slack) SetCannot(channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cannot[channel] = true
}

// FailNext makes the next n posts Enqueue makes to channel fail
// transiently.
func (f *Slack) FailNext(channel string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failN[channel] = n
}

// Hold makes Enqueue's posts to channel wait in its queue from now on.
func (f *Slack) Hold(channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.held[channel]; !ok {
		f.held[channel] = 0
	}
}

// Waiting counts the posts held in channel's queue.
func (f *Slack) Waiting(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[channel]
}

// Calls returns the successful calls of kind ("" = every kind), in order.
func (f *Slack) Calls(kind string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if c.Err == nil && (kind == "" || c.Kind == kind) {
			out = append(out, c)
		}
	}
	return out
}

// Last returns the newest successful call of kind addressing ts ("" = any
// ts), and whether there is one.
func (f *Slack) Last(kind, ts string) (Call, bool) {
	calls := f.Calls(kind)
	for i := len(calls) - 1; i >= 0; i-- {
		if ts == "" || calls[i].TS == ts {
			return calls[i], true
		}
	}
	return Call{}, false
}

// Posts returns the successful posts in channel ("" = every channel).
func (f *Slack) Posts(channel string) []Call {
	var out []Call
	for _, c := range f.Calls("post") {
		if channel == "" || c.Channel == channel {
			out = append(out, c)
		}
	}
	return out
}

// Attempts counts the posts tried in channel, failed ones included.
func (f *Slack) Attempts(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Kind == "post" && c.Channel == channel {
			n++
		}
	}
	return n
}
