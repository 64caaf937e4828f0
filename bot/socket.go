package bot

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/admission"
	"github.com/c66bot/c66bot/internal/chat"
)

// eventLoop reads Socket Mode events. It never blocks on work: every
// envelope is acked first, then handed to the pool. slack-go stops reading
// the socket while this loop is busy, so a slow loop would miss pings and
// reconnect.
func (b *Bot) eventLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-b.socket.Events:
			b.handleEvent(ctx, evt)
		}
	}
}

func (b *Bot) handleEvent(ctx context.Context, evt socketmode.Event) {
	// When the envelope reached the loop, for c66bot_ack_latency_seconds.
	arrived := time.Now()
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		// slack-go sends this before every (re)connection attempt, so the
		// socket is down until the next Connected: /readyz and
		// c66bot_socket_connected say so.
		if b.connected.Swap(false) {
			b.log.Warn("slack socket reconnecting")
		} else {
			b.log.Debug("slack socket connecting")
		}
		return
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		if !b.connected.Swap(true) {
			b.log.Info("slack socket connected")
		}
		return
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		b.logConnectionError(evt.Data)
		return
	case socketmode.EventTypeInvalidAuth:
		// RunContext returns the refusal next, and Run reports it once
		// (see SlackAuthError); a second line here would only repeat it.
		b.connected.Store(false)
		b.log.Debug("slack refused the app token")
		return
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		// The payloads may hold a message; only the cause is logged.
		var cause error
		switch d := evt.Data.(type) {
		case *slack.IncomingEventError:
			cause = d.ErrorObj
		case *socketmode.ErrorBadMessage:
			cause = d.Cause
		case *socketmode.ErrorWriteFailed:
			cause = d.Cause
		}
		attrs := []any{"type", string(evt.Type)}
		if cause != nil {
			kind, detail := describeNetError(cause)
			attrs = append(attrs, "cause", kind, "error", detail)
		}
		b.log.Warn("slack socket error", attrs...)
		return
	}
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		return
	}
	b.cfg.Gate.Arrived()
	// A modal's submission and a select's options are the ack's payload:
	// acked from the pool (views.go), never waiting in this loop.
	if b.answerInAck(evt, arrived) {
		return
	}
	// Ack first, on every path: Slack shows the person an error after 3 s.
	// Only non-blocking bookkeeping (a histogram observation, counters)
	// happens around it.
	ackErr := b.socket.Ack(*evt.Request)
	b.metrics.Ack(time.Since(arrived), ackErr != nil)
	b.metrics.Envelope(string(evt.Type))
	if ackErr != nil {
		b.log.Warn("ack failed", "type", string(evt.Type), "error", ackErr.Error())
	}
	// What comes twice (Slack redelivers around reconnects, maybe to
	// another replica) is handled once: the check is the pool job's first
	// step, after the ack, since a shared store is a database round trip.
	env := envelope{id: evt.Request.EnvelopeID, typ: string(evt.Type)}
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			return
		}
		b.submitSlash(env, cmd)
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			return
		}
		if cb.Type == slack.InteractionTypeShortcut {
			b.submitShortcut(env, cb)
			return
		}
		if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) == 0 {
			return
		}
		b.submitActions(env, cb)
	case socketmode.EventTypeEventsAPI:
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if !ok {
			return
		}
		b.submitEvent(env, ev)
	}
}

// envelope names a Socket Mode envelope for its dedup check.
type envelope struct{ id, typ string }

// firstTime reports whether the envelope is handled for the first time,
// across replicas. A store that fails to answer lets it through: handling
// a redelivery twice (the deploy paths spend intents once anyway) beats
// dropping a command.
func (b *Bot) firstTime(ctx context.Context, env envelope) bool {
	var (
		first bool
		err   error
	)
	check := func() { first, err = b.dedup.FirstTime(ctx, "envelope:"+env.id, envelopeTTL) }
	if b.seen != nil {
		check() // memory: quicker than giving the CPU slot back
	} else {
		admission.WaitOutside(ctx, check) // a database round trip
	}
	switch {
	case err != nil:
		b.log.Warn("cannot check the envelope for a duplicate; handling it", "type", env.typ, "error", err.Error())
		return true
	case !first:
		b.metrics.DuplicateEnvelope()
		b.log.Info("duplicate envelope ignored", "type", env.typ)
	}
	return first
}

// submitActions runs the button presses of one envelope on the pool. Link
// buttons (URL buttons) also send a payload; the router ignores them and
// the ack was all they needed.
func (b *Bot) submitActions(env envelope, cb slack.InteractionCallback) {
	team := cb.User.TeamID
	if team == "" {
		team = cb.Team.ID
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	var acts []commands.Action
	for _, a := range cb.ActionCallback.BlockActions {
		act := commands.Action{
			TeamID:       team,
			EnterpriseID: cb.Enterprise.ID,
			UserID:       cb.User.ID,
			ChannelID:    channel,
			ActionID:     a.ActionID,
			Value:        elementValue(*a),
			ResponseURL:  cb.ResponseURL,
			RequestID:    newRequestID(),
		}
		inModal(&act, cb)
		acts = append(acts, act)
	}
	accepted := b.pool.submit(admission.Start, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		defer cancel()
		if !b.firstTime(ctx, env) {
			return
		}
		for _, act := range acts {
			reply, handled := b.router.HandleAction(ctx, act)
			if !handled || !b.viewReply(ctx, act, reply) {
				continue
			}
			err := b.replies.Respond(ctx, act.ResponseURL, reply.Message, reply.Replace)
			if err != nil {
				b.log.Warn("button reply failed", "request_id", act.RequestID, "error", err.Error())
			}
		}
	})
	if !accepted {
		b.metrics.QueueFull()
		b.log.Warn("queue full; button press refused", "request_id", acts[0].RequestID)
		go b.replyBusy(cb.ResponseURL, "Press the button again in a few seconds.")
	}
}

func (b *Bot) submitSlash(env envelope, cmd slack.SlashCommand) {
	req := commands.Request{
		TeamID:       cmd.TeamID,
		EnterpriseID: cmd.EnterpriseID,
		UserID:       cmd.UserID,
		ChannelID:    cmd.ChannelID,
		Text:         cmd.Text,
		ResponseURL:  cmd.ResponseURL,
		TriggerID:    cmd.TriggerID,
		OpenView:     b.viewOpener(cmd.TriggerID),
		RequestID:    newRequestID(),
	}
	accepted := b.pool.submit(admission.Start, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		defer cancel()
		if !b.firstTime(ctx, env) {
			return
		}
		reply := b.router.Dispatch(ctx, req)
		b.respond(ctx, req, reply)
	})
	if !accepted {
		b.metrics.QueueFull()
		b.log.Warn("command queue full; refusing", "request_id", req.RequestID)
		go b.replyBusy(req.ResponseURL, "Try again in a few seconds.")
	}
}

// replyBusy tells someone whose command or click found the queue full.
// It runs on its own goroutine, outside the full pool.
func (b *Bot) replyBusy(responseURL, next string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	busy := chat.Message{Text: ":hourglass: I'm very busy right now. " + next}
	if err := b.replies.Respond(ctx, responseURL, busy, false); err != nil {
		b.log.Warn("busy reply failed", "error", err.Error())
	}
}

// respond posts a command's reply through its response_url, which works in
// channels, private channels and DMs alike, whether or not the bot is in them.
func (b *Bot) respond(ctx context.Context, req commands.Request, reply chat.Message) {
	private := reply.Private
	reply.Private = nil
	if reply.Text == "" && len(reply.Blocks) == 0 && private == nil {
		return // the command answered otherwise (it opened a modal)
	}
	err := b.replies.Respond(ctx, req.ResponseURL, reply, false)
	if err != nil {
		b.log.LogAttrs(ctx, slog.LevelWarn, "reply failed", slog.String("request_id", req.RequestID), slog.String("error", err.Error()))
	}
	if private == nil {
		return
	}
	// Never in the channel, whatever it says: that is its point.
	p := *private
	p.InChannel, p.Private = false, nil
	if err := b.replies.Respond(ctx, req.ResponseURL, p, false); err != nil {
		b.log.LogAttrs(ctx, slog.LevelWarn, "private reply failed", slog.String("request_id", req.RequestID), slog.String("error", err.Error()))
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seenSet is the DedupStore of a single process: keys remembered in
// memory until they expire, so an envelope Slack delivers twice (around
// reconnects) is handled once.
type seenSet struct {
	mu sync.Mutex
	m  map[string]time.Time // key -> expiry
}

func newSeenSet() *seenSet {
	return &seenSet{m: map[string]time.Time{}}
}

// FirstTime records key for ttl and reports whether it is new (or its
// record expired).
func (s *seenSet) FirstTime(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.m[key]; ok && now.Before(exp) {
		return false, nil
	}
	s.m[key] = now.Add(ttl)
	return true, nil
}

func (s *seenSet) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, exp := range s.m {
		if !now.Before(exp) {
			delete(s.m, key)
		}
	}
}

// doctorAfterAttempts is how many failed connection attempts in a row make
// the log point at `c66bot doctor`: one or two are a blip, more are a
// setting or the network.
const doctorAfterAttempts = 3

// logConnectionError says why a Socket Mode connection attempt failed: the
// kind of failure (DNS, TLS, dial, an HTTP status, Slack's error code), the
// error itself, the Slack host, which attempt it was and when the next one
// comes; after a few in a row it points at `c66bot doctor`.
func (b *Bot) logConnectionError(data any) {
	attrs := []any{"host", b.slackHost()}
	attempt := 0
	if ce, ok := data.(*slack.ConnectionErrorEvent); ok && ce != nil {
		attempt = ce.Attempt
		attrs = append(attrs, "attempt", ce.Attempt, "retry_in", ce.Backoff.Round(time.Millisecond).String())
		if ce.ErrorObj != nil {
			kind, detail := describeNetError(ce.ErrorObj)
			attrs = append(attrs, "cause", kind, "error", detail)
		}
	}
	if attempt >= doctorAfterAttempts {
		attrs = append(attrs, "hint", fmt.Sprintf("%d attempts failed in a row: run `c66bot doctor` with the same settings to see what is wrong (network, DNS, proxy, SLACK_API_URL, SLACK_APP_TOKEN)", attempt))
	}
	b.log.Warn("slack socket connection failed; retrying", attrs...)
}

// slackHost is the host of the configured Slack Web API, where Socket Mode
// connections start (apps.connections.open).
func (b *Bot) slackHost() string {
	if u, err := url.Parse(b.cfg.SlackAPIURL); err == nil {
		return u.Host
	}
	return ""
}

// describeNetError names the kind of a failure to reach Slack and gives its
// text without any URL (a WebSocket URL carries a connection ticket).
func describeNetError(err error) (kind, detail string) {
	var (
		rl   *slack.RateLimitedError
		sc   slack.StatusCodeError
		se   slack.SlackErrorResponse
		dns  *net.DNSError
		op   *net.OpError
		cert *tls.CertificateVerificationError
		unk  x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
		rec  tls.RecordHeaderError
	)
	detail = redactURLs(err)
	switch {
	case errors.As(err, &rl):
		return "rate_limited", fmt.Sprintf("Slack rate-limited the connection; next try in %s", rl.RetryAfter)
	case errors.As(err, &sc):
		return "http_status", fmt.Sprintf("Slack answered HTTP %d", sc.Code)
	case errors.As(err, &se):
		return "slack_error", "Slack answered " + se.Err
	case errors.As(err, &dns):
		return "dns", detail
	case errors.As(err, &cert), errors.As(err, &unk), errors.As(err, &host), errors.As(err, &inv), errors.As(err, &rec):
		return "tls", detail
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout", detail
	case errors.As(err, &op):
		return "dial", detail
	case strings.Contains(detail, "websocket: bad handshake"):
		return "websocket", detail
	}
	return "other", detail
}

// redactURLs is err's text with the URL of any *url.Error dropped.
func redactURLs(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// SlackAuthError is Run's error when Slack refuses the app token for good
// (invalid_auth and the like), which no retry can fix. Its text is the one
// line an operator needs: which setting, and where the right value is.
type SlackAuthError struct {
	// Code is Slack's error code, or "HTTP 404" for apps.connections.open
	// not found.
	Code string
	err  error
}

func (e *SlackAuthError) Error() string {
	if e.Code == "HTTP 404" {
		return "Slack answered HTTP 404 to apps.connections.open for SLACK_APP_TOKEN: check SLACK_API_URL (normally https://slack.com/api/) and that Socket Mode is on for the app (Settings → Socket Mode)"
	}
	return "Slack refused SLACK_APP_TOKEN (" + e.Code + "): put the app-level token (xapp-…, scope connections:write) from the Slack app's Basic Information → App-Level Tokens in SLACK_APP_TOKEN; `c66bot doctor` checks it"
}

func (e *SlackAuthError) Unwrap() error { return e.err }

// socketRunError is Run's error for slack-go's RunContext ending: the
// refusals of the app token that slack-go gives up on become a
// *SlackAuthError, anything else is wrapped as it is.
func socketRunError(err error) error {
	var (
		se slack.SlackErrorResponse
		sc slack.StatusCodeError
	)
	switch {
	case errors.As(err, &se):
		switch se.Err {
		case "invalid_auth", "account_inactive", "not_authed", "token_revoked", "token_expired", "not_allowed_token_type":
			return &SlackAuthError{Code: se.Err, err: err}
		}
	case errors.As(err, &sc) && sc.Code == http.StatusNotFound:
		return &SlackAuthError{Code: "HTTP 404", err: err}
	}
	return fmt.Errorf("slack socket mode: %w", err)
}
