// Package bottest is an in-process fake of the parts of Slack that the bot
// talks to: the Web API (under /api/), Socket Mode (apps.connections.open and
// the /link/ WebSocket), response_url hooks (under /hooks/) and Sign in with
// Slack (/openid/connect/…, openid.go).
//
// It is meant to be driven by the real slack-go client:
//
//	srv := bottest.Start(t)
//	api := slack.New(srv.BotToken,
//		slack.OptionAppLevelToken(srv.AppToken),
//		slack.OptionAPIURL(srv.APIURL()))
//	sm := socketmode.New(api, socketmode.OptionPingInterval(2*time.Second))
//
// The fake records everything the bot does (Web API calls, messages, acks) and
// lets a test (or the sandbox mode of the binary) inject slash commands, block
// actions, disconnects, dropped connections, API failures and rate limits.
//
// It enforces the Slack rules that matter to a bot: token types, channel
// membership (channel_not_found / not_in_channel / is_archived), Block Kit
// limits (50 blocks, text lengths), the chat.postMessage per-channel rate,
// response_url's 5 uses within 30 minutes, at most 10 Socket Mode connections,
// hello first and regular WebSocket PINGs.
//
// The package does not import "testing"; everything is safe for concurrent use.
package bottest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/slackapp"
)

// ErrClosed is returned by the waiting and sending methods once the server has
// been closed.
var ErrClosed = errors.New("bottest: server closed")

// ErrConnectionGone: an envelope was addressed to a connection that has
// closed.
var ErrConnectionGone = errors.New("bottest: the connection addressed has closed")

// TB is the subset of testing.TB that Start needs.
type TB interface {
	Helper()
	Cleanup(func())
}

// Fixed identities of the fake workspace.
const (
	DefaultAppToken  = "xapp-1-A0TEST-1-fake"
	DefaultBotToken  = "xoxb-fake-bot-token"
	DefaultTeamID    = "T0TEST"
	DefaultBotUserID = "U0BOT"
	DefaultAppID     = "A0TEST"
	// DefaultBotID is the bot_id (B…) reported by auth.test and on bot messages.
	DefaultBotID = "B0BOT"
	// DefaultUserID is the invoking user when a SlashCommand or BlockAction
	// leaves UserID empty.
	DefaultUserID = "U0USER"
	// DefaultCommand is the slash command used when SlashCommand.Command is empty.
	DefaultCommand = slackapp.DefaultCommand
	// TeamDomain is the workspace domain in payloads and auth.test.
	TeamDomain = "fake-team"
)

// Default channels.
const (
	ChannelGeneral = "C0GENERAL" // public, bot is a member
	ChannelPublic  = "C0PUBLIC"  // public, bot is not a member
	ChannelPrivate = "G0PRIVATE" // private, bot is not a member
	ChannelPrivBot = "C0PRIVBOT" // private, bot is a member
)

// Slack limits the fake enforces.
const (
	maxConnections     = 10
	maxBlocks          = 50
	maxTextLen         = 40000
	responseURLUses    = 5
	responseURLTTL     = 30 * time.Minute
	defaultPingEvery   = time.Second
	wsWriteTimeout     = 5 * time.Second
	maxRequestBodySize = 8 << 20
)

type config struct {
	pingInterval time.Duration
	postRate     float64
	postBurst    int
	now          func() time.Time
}

// Option configures a Server.
type Option func(*config)

// WithPingInterval sets how often the server sends WebSocket PING control
// frames to each Socket Mode connection (default 1s; the first PING follows
// hello at once). Keep it well below the client's socketmode.OptionPingInterval,
// which is the longest gap the client tolerates. Non-positive values are ignored.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pingInterval = d
		}
	}
}

// WithPostRate enables a per-channel token bucket for chat.postMessage:
// perSecond tokens are added per second up to burst. When the bucket is empty
// the call gets HTTP 429 with a Retry-After header. perSecond <= 0 disables the
// limit (the default). The bucket uses the clock set with WithNow.
func WithPostRate(perSecond float64, burst int) Option {
	return func(c *config) {
		c.postRate = perSecond
		c.postBurst = max(burst, 1)
	}
}

// WithNow sets the clock used for response_url expiry, the post rate bucket,
// message timestamps and the At fields of records. Latencies are always
// measured with the real monotonic clock. Default time.Now.
func WithNow(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// Channel describes a conversation of the fake workspace.
type Channel struct {
	ID, Name  string
	Private   bool
	BotMember bool
	Archived  bool
}

// User describes a member of the fake workspace for users.info.
// Users that were never added are synthesised for any ID that looks like a
// user ID (U… or W…).
type User struct {
	ID, Name, RealName, Email string
	TZ                        string // IANA name, e.g. "Europe/London"; default "Etc/UTC"
	TZOffset                  int    // seconds east of UTC
	IsBot, Deleted            bool
}

// MessageKind says how a recorded message was produced.
type MessageKind string

// Message kinds.
const (
	KindPost        MessageKind = "post"         // chat.postMessage
	KindUpdate      MessageKind = "update"       // chat.update
	KindEphemeral   MessageKind = "ephemeral"    // chat.postEphemeral
	KindResponseURL MessageKind = "response_url" // POST to a response_url
	// KindAck is a slash command acknowledged with a payload that carries
	// text or blocks: Slack shows that payload as the immediate reply.
	KindAck MessageKind = "ack"
)

// Message is one thing the bot made Slack show.
type Message struct {
	Kind    MessageKind
	Channel string
	User    string // chat.postEphemeral target; for response_url and ack: the invoking user
	TS      string // chat.postMessage/chat.update/ephemeral ts; for response_url: the ts of a new in_channel message or of the replaced original
	// ThreadTS is the parent ts for threaded replies.
	ThreadTS string
	Text     string
	Blocks   json.RawMessage // compact JSON array, nil when none

	// ResponseURL is the full response_url (s.URL + "/hooks/…") a KindResponseURL message was posted to.
	ResponseURL string
	// EnvelopeID is the Socket Mode envelope the response_url (or ack) belongs to.
	EnvelopeID      string
	ResponseType    string // "ephemeral" | "in_channel" | ""
	ReplaceOriginal bool
	DeleteOriginal  bool

	At  time.Time
	Seq int // global order, starting at 1
}

// APICall is one request to the Web API (Method is the API method name) or to
// a response_url (Method "response_url").
type APICall struct {
	Method string
	// Form holds form fields and query parameters; for JSON bodies it holds
	// the top-level fields (strings as is, anything else as JSON text).
	Form       url.Values
	JSON       json.RawMessage // the raw body when it was JSON
	Token      string          // the token presented (Bearer header or token field)
	Status     int             // HTTP status of the answer
	SlackError string          // "error" of an ok:false answer
	At         time.Time
}

// Ack is an acknowledgement read from a Socket Mode connection.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // nil when the ack had no payload
	// Latency runs from the envelope frame being written to the ack being read
	// (zero for acks of unknown envelopes).
	Latency time.Duration
	At      time.Time
	// Connection is the number of the connection the ack came on (see
	// ConnectionIDs): which app answered.
	Connection int
}

type ackRecord struct {
	Ack
	attempt int // retry_attempt of the delivery it answered
}

type chanState struct {
	Channel
	im   bool
	user string // for DMs
}

type hook struct {
	url        string
	envelopeID string
	channel    string
	user       string
	messageTS  string // block actions: the message the action came from
	issued     time.Time
	uses       int
}

type injected struct {
	slackErr   string
	status     int // FailNextHTTP: answer this HTTP status instead
	retryAfter time.Duration
	times      int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Server is a fake Slack. Create it with New or Start.
type Server struct {
	URL       string // base URL, e.g. http://127.0.0.1:12345
	AppToken  string // app-level token accepted by apps.connections.open
	BotToken  string // bot token accepted by the other methods
	TeamID    string
	BotUserID string
	AppID     string
	// ClientID and ClientSecret are the app's OAuth credentials, which
	// openid.connect.token checks (Sign in with Slack, openid.go).
	ClientID, ClientSecret string

	cfg config
	// epoch is the real-clock origin of envelope.sentAt.
	epoch time.Time
	hs    *httptest.Server
	wg    sync.WaitGroup // WebSocket handlers and their pingers

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	closed  bool

	channels        map[string]*chanState
	users           map[string]User
	dms             map[string]string   // user ID or sorted user list → conversation ID
	userGroups      map[string][]string // usergroup ID (S…) → member user IDs
	chatWritePublic bool

	lastTS   int64 // microseconds of the last ts handed out
	seq      int
	messages []Message
	current  map[string]Message // channel + "/" + ts → current state

	calls     []APICall
	failNext  map[string]*injected
	rateNext  map[string]*injected
	failOpen  injected
	buckets   map[string]*bucket
	hookSeq   map[string]int
	hooks     map[string]*hook // path → hook
	triggerN  int
	tickets   map[string]bool
	opened    int
	connSeq   int
	conns     map[*wsConn]struct{}
	noPings   bool
	envelopes map[string]*envelope
	acks      []ackRecord
	oidc      openIDProvider
	modals    modalState // views and trigger ids (modals.go)
}

// New starts a fake Slack on 127.0.0.1 with a random port. Call Close when done.
func New(opts ...Option) *Server {
	epoch := time.Now()
	cfg := config{pingInterval: defaultPingEvery, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Server{
		AppToken:   DefaultAppToken,
		BotToken:   DefaultBotToken,
		TeamID:     DefaultTeamID,
		BotUserID:  DefaultBotUserID,
		AppID:      DefaultAppID,
		cfg:        cfg,
		epoch:      epoch,
		changed:    make(chan struct{}),
		channels:   make(map[string]*chanState),
		users:      make(map[string]User),
		dms:        make(map[string]string),
		userGroups: make(map[string][]string),
		current:    make(map[string]Message),
		failNext:   make(map[string]*injected),
		rateNext:   make(map[string]*injected),
		buckets:    make(map[string]*bucket),
		hookSeq:    make(map[string]int),
		hooks:      make(map[string]*hook),
		tickets:    make(map[string]bool),
		conns:      make(map[*wsConn]struct{}),
		envelopes:  make(map[string]*envelope),
		oidc:       newOpenIDProvider(),
	}
	s.ClientID, s.ClientSecret = DefaultClientID, DefaultClientSecret
	for _, c := range []Channel{
		{ID: ChannelGeneral, Name: "general", BotMember: true},
		{ID: ChannelPublic, Name: "random"},
		{ID: ChannelPrivate, Name: "secret", Private: true},
		{ID: ChannelPrivBot, Name: "ops", Private: true, BotMember: true},
	} {
		s.channels[c.ID] = &chanState{Channel: c}
	}
	s.users[s.BotUserID] = User{ID: s.BotUserID, Name: "c66bot", RealName: "Cloud 66 Bot", TZ: "Etc/UTC", IsBot: true}

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/hooks/", s.handleHook)
	mux.HandleFunc("/link", s.handleLink)
	mux.HandleFunc("/link/", s.handleLink)
	mux.HandleFunc("/openid/connect/authorize", s.handleOpenIDAuthorize)
	mux.HandleFunc("GET /openid/connect/keys", s.handleOpenIDKeys)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleOpenIDConfiguration)
	s.hs = httptest.NewServer(mux)
	s.URL = s.hs.URL
	return s
}

// Start is New plus tb.Cleanup(s.Close).
func Start(tb TB, opts ...Option) *Server {
	tb.Helper()
	s := New(opts...)
	tb.Cleanup(s.Close)
	return s
}

// APIURL is the value for slack.OptionAPIURL (with the trailing slash).
func (s *Server) APIURL() string { return s.URL + "/api/" }

// Close closes every WebSocket connection, stops the HTTP server and waits for
// all of the server's goroutines. Waiting methods return ErrClosed. It is safe
// to call Close more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := slices.Collect(maps.Keys(s.conns))
	s.notifyLocked()
	s.mu.Unlock()

	for _, c := range conns {
		c.close()
	}
	s.hs.Close()
	s.wg.Wait()
}

// AddChannel adds or replaces a conversation.
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[c.ID] = &chanState{Channel: c}
}

// AddUser adds or replaces a user returned by users.info.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// AddUserGroup adds or replaces a user group (an S… ID) whose members
// usergroups.users.list returns, in the order given.
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userGroups[id] = slices.Clone(members)
}

// RemoveBot takes the bot out of channel, as when someone kicks it. Later
// posts there fail as the membership rules say: not_in_channel for a public
// channel (unless chat:write.public is granted), channel_not_found for a
// private one. AddChannel with BotMember set invites it back. Unknown
// channels are ignored.
func (s *Server) RemoveBot(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[channel]; ch != nil {
		ch.BotMember = false
		s.notifyLocked()
	}
}

// SetChatWritePublic grants or removes the chat:write.public scope: with it,
// public channels the bot is not a member of accept chat.postMessage and
// chat.postEphemeral.
func (s *Server) SetChatWritePublic(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatWritePublic = on
}

// FailNext makes the next times calls of the Web API method answer
// {ok:false,error:slackErr} (after the token check). method "response_url"
// makes the next posts to any live response_url answer HTTP 400 with
// slackErr, as Slack refuses a payload (invalid_blocks, msg_too_long);
// like those, a refused post shows nothing and spends none of the URL's
// uses.
func (s *Server) FailNext(method, slackErr string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times <= 0 {
		delete(s.failNext, method)
		return
	}
	s.failNext[method] = &injected{slackErr: slackErr, times: times}
}

// FailNextHTTP makes the next times calls of the Web API method answer with
// HTTP status and a non-JSON body, as Slack does on a 5xx (after the token
// check, and without doing anything). slack-go reports it as a
// slack.StatusCodeError. It replaces a pending FailNext for the method.
func (s *Server) FailNextHTTP(method string, status, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times <= 0 {
		delete(s.failNext, method)
		return
	}
	s.failNext[method] = &injected{status: status, times: times}
}

// RateLimitNext makes the next times calls of method answer HTTP 429 with a
// Retry-After header of retryAfter in whole seconds (rounded up, at least 1).
func (s *Server) RateLimitNext(method string, times int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times <= 0 {
		delete(s.rateNext, method)
		return
	}
	s.rateNext[method] = &injected{retryAfter: retryAfter, times: times}
}

// FailConnectionsOpen makes the next times apps.connections.open calls fail:
// with {ok:false,error:slackErr}, or with HTTP 500 when slackErr is "".
// slack-go treats invalid_auth, account_inactive, not_authed and token_revoked
// as fatal (RunContext returns); anything else is retried with backoff.
func (s *Server) FailConnectionsOpen(slackErr string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOpen = injected{slackErr: slackErr, times: max(times, 0)}
}

// Messages returns a copy of every recorded message in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// PostsIn returns the chat.postMessage messages recorded in channel, thread
// replies included, in the order Slack took them (as first posted: later
// chat.update calls are not applied).
func (s *Server) PostsIn(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Kind == KindPost && m.Channel == channel {
			out = append(out, m)
		}
	}
	return out
}

// MessagesFor returns the messages tied to a Socket Mode envelope: response_url
// posts made with the URL issued in it and the ack reply of a slash command.
func (s *Server) MessagesFor(envelopeID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if envelopeID != "" && m.EnvelopeID == envelopeID {
			out = append(out, m)
		}
	}
	return out
}

// Message returns the current state of a message posted with
// chat.postMessage (or an in_channel response_url reply) after any chat.update
// or replace_original. It reports false for unknown, deleted and ephemeral messages.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.current[msgKey(channel, ts)]
	return m, ok
}

// WaitMessage returns the first recorded message (already recorded or future)
// for which match returns true (a nil match accepts any message). match runs
// with the server's lock held, so it must not call back into the Server.
func (s *Server) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	var found Message
	next := 0
	err := s.waitFor(ctx, func() bool {
		for ; next < len(s.messages); next++ {
			if match == nil || match(s.messages[next]) {
				found = s.messages[next]
				return true
			}
		}
		return false
	})
	return found, err
}

// Calls returns a copy of every recorded API call in order.
func (s *Server) Calls() []APICall {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.calls)
	for i := range out {
		out[i].Form = cloneValues(out[i].Form)
	}
	return out
}

// CallCount is the number of recorded calls of method (any outcome).
func (s *Server) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// notifyLocked wakes every waiter. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (evaluated with s.mu held) is true, ctx is done or
// the server is closed.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Server) recordMessageLocked(m Message) Message {
	s.seq++
	m.Seq = s.seq
	m.At = s.cfg.now()
	s.messages = append(s.messages, m)
	s.notifyLocked()
	return m
}

func (s *Server) recordCallLocked(c APICall) {
	c.At = s.cfg.now()
	s.calls = append(s.calls, c)
	s.notifyLocked()
}

// nextTSLocked hands out increasing Slack timestamps ("1700000000.000100"),
// derived from the configured clock.
func (s *Server) nextTSLocked() string {
	us := s.cfg.now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

func (s *Server) nextTriggerIDLocked() string {
	s.triggerN++
	return fmt.Sprintf("%d.%d.%s", 1000000000+s.triggerN, 7000000, randHex(16))
}

func msgKey(channel, ts string) string { return channel + "/" + ts }

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on failure)
	return hex.EncodeToString(b)[:n]
}

// newUUID returns a random RFC 4122 version 4 UUID, like Slack's envelope IDs.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) host() string { return strings.TrimPrefix(s.URL, "http://") }
