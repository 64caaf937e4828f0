// Package sandbox runs the real c66bot (app.New and Run, exactly what
// `c66bot serve` runs) against the in-process fake Slack (bot/bottest) and
// fake Cloud 66 (cloud66/cloud66test): no accounts, no network beyond
// 127.0.0.1, nothing kept after Close.
//
// On top of that it offers what a person needs to try the bot from a
// terminal: Render shows a Slack message as text, Console is a prompt where
// they type `/c66 …` as a chosen person in a chosen channel and press
// buttons by number, and Try runs one command for scripts and docs. The
// browser leg of `/c66 login` is played by the sandbox itself (the fake
// Cloud 66 approves at once), so linking completes on its own.
package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/app/apptest"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/slackapp"
)

// Defaults of the sandbox's world.
const (
	// DefaultUser is who types first: Ana, whose Cloud 66 account sees
	// every stack.
	DefaultUser = "U0ANA"
	// DefaultChannel is #general, a public channel the bot is in.
	DefaultChannel = bottest.ChannelGeneral
	// Command is the slash command, the default of C66BOT_COMMAND.
	Command = slackapp.DefaultCommand

	defaultDeployDuration = 20 * time.Second
	defaultPoll           = time.Second
	startTimeout          = 15 * time.Second
	stopTimeout           = 20 * time.Second
	browserTimeout        = 15 * time.Second
)

// Person is someone in the fake Slack workspace with a Cloud 66 login.
type Person struct {
	SlackID  string
	Name     string // Slack handle, shown as @name
	RealName string
	// Email is the Cloud 66 user the fake signs them in as.
	Email string
	// Sees says which stacks their Cloud 66 account sees (for the banner).
	Sees string
}

// People are the sandbox's people: the fake Cloud 66's two users. Anyone
// else typing gets a Cloud 66 account that sees no stacks.
func People() []Person {
	return []Person{
		{SlackID: "U0ANA", Name: "ana", RealName: "Ana Admin", Email: cloud66test.DefaultUser, Sees: "every stack"},
		{SlackID: "U0BEN", Name: "ben", RealName: "Ben Builder", Email: "ben@example.com", Sees: "five staging stacks"},
	}
}

// Options configure a sandbox. The zero value is what `c66bot sandbox`
// uses, minus the terminal.
type Options struct {
	// Out is where Console and Try print; nil discards.
	Out io.Writer
	// Color renders with ANSI styles (a terminal without NO_COLOR).
	Color bool
	// Terminal says Out is a terminal: lines that arrive while the prompt
	// is shown replace it in place instead of starting below it.
	Terminal bool
	// EchoInput prints each line read after the prompt, for input that a
	// terminal does not echo (a pipe, a test).
	EchoInput bool
	// Width wraps long lines; <= 0 means 100.
	Width int

	// DeployDuration is how long a simulated deployment runs, in real
	// time; default 20 s, long enough to see 🚀 before ✅.
	DeployDuration time.Duration
	// Poll is how often the bot looks at a running deployment; default 1 s.
	Poll time.Duration
	// Log receives the bot's JSON log (debug level); nil discards it. The
	// console is never the log: it would bury the conversation.
	Log io.Writer

	// Policy is the policy the bot runs with (DemoPolicy, LoadPolicy); nil
	// is the bot's default, as without C66BOT_POLICY: anyone linked may
	// change what their Cloud 66 account allows, production confirmed.
	Policy *policy.Policy
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.DeployDuration <= 0 {
		o.DeployDuration = defaultDeployDuration
	}
	if o.Poll <= 0 {
		o.Poll = defaultPoll
	}
}

// Sandbox is a running bot with its fake Slack and fake Cloud 66.
type Sandbox struct {
	// Slack and Cloud66 are the fakes, for tests and for looking around.
	Slack   *bottest.Server
	Cloud66 *cloud66test.Server
	// URL is the bot's public URL (its login pages), on 127.0.0.1.
	URL string

	opts   Options
	dir    string
	cancel context.CancelFunc
	// stopped is closed when the app's Run returns, with runErr set.
	stopped chan struct{}
	runErr  error

	// signIn serialises browser legs: the fake Cloud 66 has one
	// "signed-in user" for all browsers, set before each one.
	signIn sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Start starts the fakes and the bot and waits until the bot is connected
// to the fake Slack. The bot runs until Close or until ctx is done; Close
// must be called either way, to remove the temporary database.
func Start(ctx context.Context, o Options) (_ *Sandbox, err error) {
	o.defaults()
	// Short: the bot's admin socket lives beside the database, and a Unix
	// socket path must stay under about 100 bytes.
	dir, err := os.MkdirTemp("", "c66sandbox")
	if err != nil {
		return nil, fmt.Errorf("sandbox: temporary directory: %w", err)
	}
	s := &Sandbox{opts: o, dir: dir, stopped: make(chan struct{})}
	defer func() {
		if err != nil {
			s.teardown()
		}
	}()

	s.Slack = bottest.New()
	// A real install has chat:write.public (see the manifest), so the
	// deployment message can go to public channels the bot is not in.
	s.Slack.SetChatWritePublic(true)
	for _, p := range People() {
		s.Slack.AddUser(bottest.User{ID: p.SlackID, Name: p.Name, RealName: p.RealName, Email: p.Email, TZ: "Etc/UTC"})
	}
	// Real time: a person watches deployments move as they would for real.
	s.Cloud66 = cloud66test.New(cloud66test.WithDeployDuration(o.DeployDuration))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()

	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand panics instead)
	logger := slog.New(slog.DiscardHandler)
	if o.Log != nil {
		logger = slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// With a public URL the real redirect login runs, start page, Sign in
	// with Slack, browser binding and callback included.
	settings := apptest.Settings(s.Slack, s.Cloud66, s.URL)
	settings.DB = filepath.Join(dir, "c66bot.db")
	settings.Command = Command
	b, err := app.New(app.Config{
		Settings: settings,
		Listener: ln,
		Keys:     [][]byte{key},
		Logger:   logger,
		Version:  "sandbox",
		Now:      s.Cloud66.Clock.Now,
		Policy:   o.Policy,
		Tuning: app.Tuning{
			ShutdownTimeout: 5 * time.Second,
			// Polls every second or so: a person is watching, and the fake
			// Cloud 66 has no rate to protect.
			Poll:            deploy.PollConfig{Initial: o.Poll, Max: o.Poll},
			PostsPerSecond:  50,
			NotifyPollEvery: 5 * time.Second,
			// A Home shown in the console follows a deploy within a second.
			HomeMinGap: time.Second,
		},
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	go func() {
		s.runErr = b.Run(runCtx)
		close(s.stopped)
	}()

	wctx, wcancel := context.WithTimeout(ctx, startTimeout)
	defer wcancel()
	if err := s.Slack.WaitConnected(wctx, 1); err != nil {
		return nil, fmt.Errorf("sandbox: the bot did not connect to the fake Slack: %w", err)
	}
	return s, nil
}

// Close stops the bot (letting in-flight commands finish), closes the
// fakes and deletes the temporary database. It is safe to call twice.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.teardown() })
	return s.closeErr
}

func (s *Sandbox) teardown() error {
	var err error
	if s.cancel != nil {
		s.cancel()
		select {
		case <-s.stopped:
			err = s.runErr
		case <-time.After(stopTimeout):
			err = errors.New("sandbox: the bot did not stop in time")
		}
	}
	if s.Slack != nil {
		s.Slack.Close()
	}
	if s.Cloud66 != nil {
		s.Cloud66.Close()
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = fmt.Errorf("sandbox: remove %s: %w", s.dir, rerr)
	}
	return err
}

// Stopped is closed when the bot stops: after Close, when Start's ctx is
// done, or when it fails on its own (Err says why).
func (s *Sandbox) Stopped() <-chan struct{} { return s.stopped }

// Err is why the bot stopped; nil while it runs or after a clean stop.
func (s *Sandbox) Err() error {
	select {
	case <-s.stopped:
		return s.runErr
	default:
		return nil
	}
}

// Send types `/c66 text` as user in channel and returns the envelope ID,
// which the bot's reply carries (bottest.Message.EnvelopeID).
func (s *Sandbox) Send(ctx context.Context, user, channel, text string) (string, error) {
	return s.Slack.SendSlashCommand(ctx, bottest.SlashCommand{UserID: user, ChannelID: channel, Command: Command, Text: text})
}

// Press clicks button b of message from as user. An ephemeral message is
// clicked as Slack sends such clicks (no message ts); a channel message
// names its ts so the payload carries its current content.
func (s *Sandbox) Press(ctx context.Context, user string, from bottest.Message, b Button) (string, error) {
	a := bottest.BlockAction{UserID: user, ChannelID: from.Channel, ActionID: b.ActionID, BlockID: b.BlockID, Value: b.Value}
	if isEphemeral(from) {
		a.Ephemeral = true
	} else {
		a.MessageTS = from.TS
	}
	return s.Slack.SendBlockAction(ctx, a)
}

// Reply waits for the first message the bot sent through the response_url
// (or ack) of envelope id.
func (s *Sandbox) Reply(ctx context.Context, id string) (bottest.Message, error) {
	return s.Slack.WaitMessage(ctx, func(m bottest.Message) bool { return m.EnvelopeID == id })
}

// Email is the Cloud 66 user a Slack user signs in as: a person's own
// address, or a synthesised one that the fake Cloud 66 shows no stacks.
func (s *Sandbox) Email(user string) string {
	if u, ok := s.Slack.LookupUser(user); ok && u.Email != "" {
		return u.Email
	}
	return strings.ToLower(user) + "@example.com"
}

// UserName is the Slack handle of id ("ana"), or "" when it is no user.
func (s *Sandbox) UserName(id string) string {
	if u, ok := s.Slack.LookupUser(id); ok {
		return u.Name
	}
	return ""
}

// ChannelName is "general" for a channel and "@ana" for the bot's DM with
// Ana; "" when the fake Slack has no such conversation.
func (s *Sandbox) ChannelName(id string) string {
	c, ok := s.Slack.LookupChannel(id)
	switch {
	case !ok:
		return ""
	case c.IM:
		if n := s.UserName(c.User); n != "" {
			return "@" + n
		}
		return "@" + c.User
	}
	return c.Name
}

// LoginURL returns the bot's login start link in a message, if it has one.
func (s *Sandbox) LoginURL(m bottest.Message) (string, bool) {
	for _, l := range Render(m, RenderOptions{}).Links {
		if strings.HasPrefix(l.URL, s.URL+"/oauth/start?") {
			return l.URL, true
		}
	}
	return "", false
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
var pageText = regexp.MustCompile(`(?s)<h1>(.*?)</h1><p>(.*?)</p>`)

// SignIn plays user's browser for a login link: signed in to the fake
// Slack as user, it opens the bot's start page, presses Continue, signs in
// with Slack (the fake approves as user) and follows Cloud 66's redirect
// (the fake approves as user's Cloud 66 e-mail) back to the bot's
// callback, which links the account and confirms in Slack before
// answering. It returns the e-mail signed in as.
func (s *Sandbox) SignIn(ctx context.Context, user, startURL string) (string, error) {
	if !strings.HasPrefix(startURL, s.URL+"/oauth/start?") {
		return "", errors.New("not a login link of this bot")
	}
	email := s.Email(user)
	s.signIn.Lock()
	defer s.signIn.Unlock()
	s.Cloud66.SetAuthorizingUser(email)

	ctx, cancel := context.WithTimeout(ctx, browserTimeout)
	defer cancel()
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	s.Slack.SignIn(jar, user)
	browser := &http.Client{Jar: jar}
	page, status, err := fetch(ctx, browser, http.MethodGet, startURL, nil)
	if err != nil {
		return "", err
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if status != http.StatusOK || form.Get("state") == "" {
		return "", pageError(page, status)
	}
	page, status, err = fetch(ctx, browser, http.MethodPost, s.URL+"/oauth/start", form)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", pageError(page, status)
	}
	return email, nil
}

// fetch makes one browser request, following redirects, and returns the
// final page.
func fetch(ctx context.Context, c *http.Client, method, u string, form url.Values) (string, int, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "", 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		// The URL carries the login state: keep it out of the message.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", 0, fmt.Errorf("browser: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), resp.StatusCode, err
}

// pageError is what a login page said when it did not link.
func pageError(page string, status int) error {
	if m := pageText.FindStringSubmatch(page); m != nil {
		return fmt.Errorf("%s: %s", html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return fmt.Errorf("the login page answered %d", status)
}

// Link links user's Cloud 66 account without showing anything: `/c66
// login`, the browser leg, and the bot's confirmation in Slack.
func (s *Sandbox) Link(ctx context.Context, user, channel string) error {
	id, err := s.Send(ctx, user, channel, "login")
	if err != nil {
		return err
	}
	reply, err := s.Reply(ctx, id)
	if err != nil {
		return fmt.Errorf("no answer to login: %w", err)
	}
	start, ok := s.LoginURL(reply)
	if !ok {
		return fmt.Errorf("the login reply has no login link: %s", reply.Text)
	}
	if _, err := s.SignIn(ctx, user, start); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	confirm, err := s.Slack.WaitMessage(ctx, func(m bottest.Message) bool { return m.EnvelopeID == id && m.ReplaceOriginal })
	if err != nil {
		return fmt.Errorf("no confirmation after signing in: %w", err)
	}
	if !strings.Contains(confirm.Text, "Linked to Cloud 66") {
		return fmt.Errorf("not linked: %s", confirm.Text)
	}
	return nil
}

// renderOptions are the options Render gets for viewer.
func (s *Sandbox) renderOptions(viewer string, ref func(channel, ts string) string) RenderOptions {
	return RenderOptions{
		Viewer:      viewer,
		UserName:    s.UserName,
		ChannelName: s.ChannelName,
		Ref:         ref,
		Color:       s.opts.Color,
		Width:       s.opts.Width,
	}
}
