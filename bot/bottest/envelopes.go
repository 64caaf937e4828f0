package bottest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// envelope is a Socket Mode request sent to the app.
type envelope struct {
	id          string
	typ         string
	payload     json.RawMessage
	accepts     bool
	attempt     int    // retry_attempt, incremented by Redeliver
	retryReason string // retry_reason
	channel     string // for attributing ack replies
	user        string
	conn        int // the connection to deliver on; 0 = any

	// sentAt is when the last write of the frame began, in nanoseconds
	// of the real clock since Server.epoch: stamped once the connection's
	// write lock is held, so the fake's own queue of writers (a burst of
	// envelopes sent at once) is not counted as the client's ack time.
	// Atomic, because it is stamped outside s.mu.
	sentAt atomic.Int64
}

type envelopeFrame struct {
	EnvelopeID             string          `json:"envelope_id"`
	Type                   string          `json:"type"`
	Payload                json.RawMessage `json:"payload"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
	RetryAttempt           *int            `json:"retry_attempt,omitempty"`
	RetryReason            *string         `json:"retry_reason,omitempty"`
}

// frame encodes the envelope; s.mu must be held.
func (e *envelope) frame() ([]byte, error) {
	f := envelopeFrame{EnvelopeID: e.id, Type: e.typ, Payload: e.payload, AcceptsResponsePayload: e.accepts}
	if e.typ == "events_api" || e.attempt > 0 {
		attempt, reason := e.attempt, e.retryReason
		f.RetryAttempt, f.RetryReason = &attempt, &reason
	}
	return json.Marshal(f)
}

// SlashCommand describes a slash command invocation to send.
// Defaults: TeamID s.TeamID, UserID "U0USER", UserName from users.info,
// ChannelID "C0GENERAL", ChannelName from the channel, Command "/c66".
type SlashCommand struct {
	TeamID, EnterpriseID, UserID, UserName, ChannelID, ChannelName, Command, Text string
	// Connection, when not 0, delivers on that connection (see
	// ConnectionIDs) instead of a random one.
	Connection int
}

// BlockAction describes a button click to send.
// Defaults: TeamID s.TeamID, UserID "U0USER", ChannelID "C0GENERAL". When
// MessageTS names a message the bot posted, the payload carries its current
// text and blocks, and an empty BlockID or Value is taken from the button
// with ActionID in those blocks.
type BlockAction struct {
	TeamID, EnterpriseID, UserID, ChannelID, ActionID, BlockID, Value, MessageTS string
	Ephemeral                                                                    bool
	// Connection, when not 0, delivers on that connection (see
	// ConnectionIDs) instead of a random one: a double click that Slack
	// hands to two apps.
	Connection int
}

// SendSlashCommand sends a "slash_commands" envelope on one open connection
// (random among several), waiting for a connection until ctx is done. The
// payload carries a fresh response_url (s.URL + "/hooks/commands/<n>") and
// trigger_id. The envelope ID is returned even with an error, so the caller
// can Redeliver it.
func (s *Server) SendSlashCommand(ctx context.Context, c SlashCommand) (string, error) {
	id := newUUID()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	if c.TeamID == "" {
		c.TeamID = s.TeamID
	}
	if c.UserID == "" {
		c.UserID = DefaultUserID
	}
	if c.UserName == "" {
		u, _ := s.userLocked(c.UserID)
		c.UserName = u.Name
	}
	if c.ChannelID == "" {
		c.ChannelID = ChannelGeneral
	}
	if c.ChannelName == "" {
		c.ChannelName = s.channelNameLocked(c.ChannelID)
	}
	if c.Command == "" {
		c.Command = DefaultCommand
	}
	p := map[string]any{
		"token":                 "fakeVerificationToken",
		"team_id":               c.TeamID,
		"team_domain":           TeamDomain,
		"channel_id":            c.ChannelID,
		"channel_name":          c.ChannelName,
		"user_id":               c.UserID,
		"user_name":             c.UserName,
		"command":               c.Command,
		"text":                  c.Text,
		"api_app_id":            s.AppID,
		"is_enterprise_install": "false",
		"response_url":          s.issueHookLocked("commands", id, c.ChannelID, c.UserID, ""),
		"trigger_id":            s.issueTriggerLocked(c.UserID),
	}
	if c.EnterpriseID != "" {
		p["enterprise_id"] = c.EnterpriseID
		p["enterprise_name"] = "Fake Grid"
	}
	e, err := s.newEnvelopeLocked(id, "slash_commands", p, true)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	e.channel, e.user, e.conn = c.ChannelID, c.UserID, c.Connection
	s.mu.Unlock()
	return id, s.deliver(ctx, e)
}

// SendBlockAction sends an "interactive" envelope with a block_actions payload
// for a button click, with a fresh response_url (s.URL + "/hooks/actions/<n>").
func (s *Server) SendBlockAction(ctx context.Context, a BlockAction) (string, error) {
	id := newUUID()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	if a.TeamID == "" {
		a.TeamID = s.TeamID
	}
	if a.UserID == "" {
		a.UserID = DefaultUserID
	}
	if a.ChannelID == "" {
		a.ChannelID = ChannelGeneral
	}
	cur, hasMsg := s.current[msgKey(a.ChannelID, a.MessageTS)]
	hasMsg = hasMsg && a.MessageTS != "" && !a.Ephemeral
	buttonText := a.ActionID
	if hasMsg {
		if b, ok := findButton(cur.Blocks, a.ActionID); ok {
			if a.BlockID == "" {
				a.BlockID = b.blockID
			}
			if a.Value == "" {
				a.Value = b.value
			}
			if b.text != "" {
				buttonText = b.text
			}
		}
	}
	if a.BlockID == "" {
		a.BlockID = "block-0" // Slack always sends one (generated when the app set none)
	}
	if buttonText == "" {
		buttonText = "Button"
	}
	u, _ := s.userLocked(a.UserID)
	now := s.cfg.now()
	actionTS := fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
	p := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": a.UserID, "username": u.Name, "name": u.Name, "team_id": a.TeamID},
		"api_app_id":            s.AppID,
		"token":                 "fakeVerificationToken",
		"container":             map[string]any{"type": "message", "message_ts": a.MessageTS, "channel_id": a.ChannelID, "is_ephemeral": a.Ephemeral},
		"trigger_id":            s.issueTriggerLocked(a.UserID),
		"team":                  map[string]any{"id": a.TeamID, "domain": TeamDomain},
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": a.ChannelID, "name": s.channelNameLocked(a.ChannelID)},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          s.issueHookLocked("actions", id, a.ChannelID, a.UserID, a.MessageTS),
		"actions": []map[string]any{{
			"action_id": a.ActionID,
			"block_id":  a.BlockID,
			"text":      map[string]any{"type": "plain_text", "text": buttonText, "emoji": true},
			"value":     a.Value,
			"type":      "button",
			"action_ts": actionTS,
		}},
	}
	if a.EnterpriseID != "" {
		p["enterprise"] = map[string]any{"id": a.EnterpriseID, "name": "Fake Grid"}
	}
	if !a.Ephemeral {
		msg := map[string]any{"type": "message", "ts": a.MessageTS, "user": s.BotUserID, "bot_id": DefaultBotID, "app_id": s.AppID, "team": s.TeamID}
		if hasMsg {
			msg["text"] = cur.Text
			if cur.Blocks != nil {
				msg["blocks"] = cur.Blocks
			}
			if cur.ThreadTS != "" {
				msg["thread_ts"] = cur.ThreadTS
			}
		}
		p["message"] = msg
	}
	e, err := s.newEnvelopeLocked(id, "interactive", p, true)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	e.channel, e.user, e.conn = a.ChannelID, a.UserID, a.Connection
	s.mu.Unlock()
	return id, s.deliver(ctx, e)
}

// SendEnvelope sends an arbitrary envelope (for example type "events_api" or
// an "interactive" view_submission) and returns its fresh envelope ID. payload
// is marshalled to JSON (a json.RawMessage is sent as is).
func (s *Server) SendEnvelope(ctx context.Context, typ string, payload any, acceptsResponsePayload bool) (string, error) {
	id := newUUID()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	e, err := s.newEnvelopeLocked(id, typ, payload, acceptsResponsePayload)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	return id, s.deliver(ctx, e)
}

func (s *Server) newEnvelopeLocked(id, typ string, payload any, accepts bool) (*envelope, error) {
	raw, ok := payload.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			return nil, fmt.Errorf("bottest: encoding %s payload: %w", typ, err)
		}
	}
	e := &envelope{id: id, typ: typ, payload: raw, accepts: accepts}
	s.envelopes[id] = e
	return e, nil
}

// Redeliver sends an envelope again with the same envelope_id and
// retry_attempt+1 (retry_reason "timeout"), on any open connection.
func (s *Server) Redeliver(ctx context.Context, envelopeID string) error {
	s.mu.Lock()
	e := s.envelopes[envelopeID]
	if e == nil {
		s.mu.Unlock()
		return fmt.Errorf("bottest: unknown envelope %q", envelopeID)
	}
	e.attempt++
	e.retryReason = "timeout"
	e.conn = 0
	s.mu.Unlock()
	return s.deliver(ctx, e)
}

// WaitAck waits for the ack of the latest delivery of envelopeID (already
// received or future) and returns it.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var found Ack
	err := s.waitFor(ctx, func() bool {
		e := s.envelopes[envelopeID]
		for _, a := range s.acks {
			if a.EnvelopeID == envelopeID && (e == nil || a.attempt == e.attempt) {
				found = a.Ack
				return true
			}
		}
		return false
	})
	return found, err
}

// Acks returns a copy of every ack received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ack, len(s.acks))
	for i, a := range s.acks {
		out[i] = a.Ack
	}
	return out
}

// channelNameLocked is the channel_name Slack puts in payloads.
func (s *Server) channelNameLocked(id string) string {
	if ch := s.channels[id]; ch != nil && ch.Name != "" {
		return ch.Name
	}
	switch {
	case strings.HasPrefix(id, "D"):
		return "directmessage"
	case strings.HasPrefix(id, "G"):
		return "privategroup"
	}
	return strings.ToLower(id)
}

type button struct{ blockID, value, text string }

// findButton looks for the element with actionID in a blocks array.
func findButton(blocks json.RawMessage, actionID string) (button, bool) {
	if actionID == "" || blocks == nil {
		return button{}, false
	}
	var bs []struct {
		BlockID   string            `json:"block_id"`
		Elements  []json.RawMessage `json:"elements"`
		Accessory json.RawMessage   `json:"accessory"`
	}
	if json.Unmarshal(blocks, &bs) != nil {
		return button{}, false
	}
	for _, b := range bs {
		els := b.Elements
		if b.Accessory != nil {
			els = append(slices.Clone(els), b.Accessory)
		}
		for _, raw := range els {
			var el struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
				Text     struct {
					Text string `json:"text"`
				} `json:"text"`
			}
			if json.Unmarshal(raw, &el) == nil && el.ActionID == actionID {
				return button{blockID: b.BlockID, value: el.Value, text: el.Text.Text}, true
			}
		}
	}
	return button{}, false
}
