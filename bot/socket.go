package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/c66bot/c66bot/commands"
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
		b.log.Warn("slack socket connection error; reconnecting")
		return
	case socketmode.EventTypeInvalidAuth:
		b.connected.Store(false)
		b.log.Error("slack refused the app token (invalid_auth): check SLACK_APP_TOKEN")
		return
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("slack socket error", "type", string(evt.Type))
		return
	}
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
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
	envelope := evt.Request.EnvelopeID
	if !b.seen.first(envelope, time.Now()) {
		b.metrics.DuplicateEnvelope()
		b.log.Info("duplicate envelope ignored", "type", string(evt.Type))
		return
	}
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			return
		}
		b.submitSlash(cmd)
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			return
		}
		if cb.Type != slack.InteractionTypeBlockActions {
			return
		}
		for _, a := range cb.ActionCallback.BlockActions {
			b.submitAction(cb, a)
		}
	}
}

// submitAction runs a button press on the pool. Link buttons (URL buttons)
// also send a payload; the router ignores them and the ack was all they needed.
func (b *Bot) submitAction(cb slack.InteractionCallback, a *slack.BlockAction) {
	team := cb.User.TeamID
	if team == "" {
		team = cb.Team.ID
	}
	act := commands.Action{
		TeamID:       team,
		EnterpriseID: cb.Enterprise.ID,
		UserID:       cb.User.ID,
		ChannelID:    cb.Channel.ID,
		ActionID:     a.ActionID,
		Value:        a.Value,
		ResponseURL:  cb.ResponseURL,
		RequestID:    newRequestID(),
	}
	if act.ChannelID == "" {
		act.ChannelID = cb.Container.ChannelID
	}
	accepted := b.pool.submit(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		defer cancel()
		reply, handled := b.router.HandleAction(ctx, act)
		if !handled {
			return
		}
		err := b.replies.post(ctx, act.ResponseURL, reply.Reply, reply.Replace)
		trackReply(b.metrics, err)
		if err != nil {
			b.log.Warn("button reply failed", "request_id", act.RequestID, "error", err.Error())
		}
	})
	if !accepted {
		b.metrics.QueueFull()
		b.log.Warn("queue full; button press refused", "request_id", act.RequestID)
		go b.replyBusy(act.ResponseURL, "Press the button again in a few seconds.")
	}
}

func (b *Bot) submitSlash(cmd slack.SlashCommand) {
	req := commands.Request{
		TeamID:       cmd.TeamID,
		EnterpriseID: cmd.EnterpriseID,
		UserID:       cmd.UserID,
		ChannelID:    cmd.ChannelID,
		Text:         cmd.Text,
		ResponseURL:  cmd.ResponseURL,
		TriggerID:    cmd.TriggerID,
		RequestID:    newRequestID(),
	}
	accepted := b.pool.submit(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.CommandTimeout)
		defer cancel()
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
	busy := commands.Reply{Text: ":hourglass: I'm very busy right now. " + next}
	if err := b.replies.post(ctx, responseURL, busy, false); err != nil {
		b.log.Warn("busy reply failed", "error", err.Error())
	}
}

// respond posts a command's reply through its response_url, which works in
// channels, private channels and DMs alike, whether or not the bot is in them.
func (b *Bot) respond(ctx context.Context, req commands.Request, reply commands.Reply) {
	err := b.replies.post(ctx, req.ResponseURL, reply, false)
	trackReply(b.metrics, err)
	if err != nil {
		b.log.LogAttrs(ctx, slog.LevelWarn, "reply failed", slog.String("request_id", req.RequestID), slog.String("error", err.Error()))
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// seenSet remembers envelope ids for a while so an envelope Slack delivers
// twice (around reconnects) is handled once.
type seenSet struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]time.Time
}

func newSeenSet(ttl time.Duration) *seenSet {
	return &seenSet{ttl: ttl, m: map[string]time.Time{}}
}

func (s *seenSet) first(id string, now time.Time) bool {
	if id == "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m[id]; ok && now.Sub(t) < s.ttl {
		return false
	}
	s.m[id] = now
	return true
}

func (s *seenSet) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.m {
		if now.Sub(t) >= s.ttl {
			delete(s.m, id)
		}
	}
}
