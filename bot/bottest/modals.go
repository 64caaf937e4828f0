package bottest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Modals: views.open and views.update, the trigger ids they need, and the
// envelopes a person's hands make with a modal (a global shortcut, typing
// in an external select, choosing in it, submitting).

// triggerTTL is how long Slack accepts a trigger id for views.open.
const triggerTTL = 3 * time.Second

type trigger struct {
	user string
	at   time.Time
	used bool
}

// View is a modal the bot opened, as the fake holds it.
type View struct {
	ID, Hash, User, CallbackID, PrivateMetadata string
	// Title is the title's text, as the bot last sent it.
	Title string
	// Blocks is the view's blocks as the bot last sent them.
	Blocks json.RawMessage
	// Updates counts views.update calls on it.
	Updates int
	// Closed is set once a submission closed it.
	Closed bool
}

type modalState struct {
	triggers map[string]*trigger
	views    map[string]*View
	order    []string // view ids, in the order opened
	seq      int
}

// issueTriggerLocked hands out a trigger id for user, valid triggerTTL
// for one views.open.
func (s *Server) issueTriggerLocked(user string) string {
	id := s.nextTriggerIDLocked()
	if s.modals.triggers == nil {
		s.modals.triggers = map[string]*trigger{}
		s.modals.views = map[string]*View{}
	}
	s.modals.triggers[id] = &trigger{user: user, at: s.cfg.now()}
	return id
}

type viewBody struct {
	Type            string          `json:"type"`
	CallbackID      string          `json:"callback_id"`
	PrivateMetadata string          `json:"private_metadata"`
	Blocks          json.RawMessage `json:"blocks"`
	Title           struct {
		Text string `json:"text"`
	} `json:"title"`
}

func parseView(raw string) (viewBody, string) {
	var v viewBody
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil {
		return v, "invalid_arguments"
	}
	if v.Type != "modal" {
		return v, "invalid_arguments"
	}
	if _, bad, _ := parseBlocks(v.Blocks); bad != "" {
		return v, bad
	}
	return v, ""
}

func (s *Server) apiViewsOpen(req *apiRequest) apiResult {
	id := req.form.Get("trigger_id")
	tr := s.modals.triggers[id]
	switch {
	case tr == nil:
		return errResult("invalid_trigger_id")
	case tr.used:
		return errResult("exchanged_trigger_id")
	case s.cfg.now().Sub(tr.at) > triggerTTL:
		return errResult("expired_trigger_id")
	}
	body, bad := parseView(req.form.Get("view"))
	if bad != "" {
		return errResult(bad)
	}
	tr.used = true
	s.modals.seq++
	v := &View{ID: fmt.Sprintf("V%08d", s.modals.seq), Hash: randHex(8), User: tr.user,
		CallbackID: body.CallbackID, PrivateMetadata: body.PrivateMetadata, Blocks: body.Blocks, Title: body.Title.Text}
	s.modals.views[v.ID] = v
	s.modals.order = append(s.modals.order, v.ID)
	s.notifyLocked()
	return okResult(map[string]any{"view": s.viewPayloadLocked(v, nil)})
}

func (s *Server) apiViewsUpdate(req *apiRequest) apiResult {
	v := s.modals.views[req.form.Get("view_id")]
	if v == nil || v.Closed {
		return errResult("not_found")
	}
	if h := req.form.Get("hash"); h != "" && h != v.Hash {
		return errResult("hash_conflict")
	}
	body, bad := parseView(req.form.Get("view"))
	if bad != "" {
		return errResult(bad)
	}
	v.CallbackID, v.PrivateMetadata, v.Blocks, v.Title = body.CallbackID, body.PrivateMetadata, body.Blocks, body.Title.Text
	v.Hash = randHex(8)
	v.Updates++
	s.notifyLocked()
	return okResult(map[string]any{"view": s.viewPayloadLocked(v, nil)})
}

// OpenViews are the modals open for user, oldest first.
func (s *Server) OpenViews(user string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, id := range s.modals.order {
		if v := s.modals.views[id]; v.User == user && !v.Closed {
			out = append(out, *v)
		}
	}
	return out
}

// WaitView waits for a modal of user that match accepts (open or since
// closed). match runs with the server locked: it must not call the
// server.
func (s *Server) WaitView(ctx context.Context, user string, match func(View) bool) (View, error) {
	var found View
	err := s.waitFor(ctx, func() bool {
		for _, id := range s.modals.order {
			if v := s.modals.views[id]; v.User == user && match(*v) {
				found = *v
				return true
			}
		}
		return false
	})
	return found, err
}

// Shortcut describes a global shortcut to send. Defaults: TeamID
// s.TeamID, UserID "U0USER".
type Shortcut struct {
	TeamID, UserID, CallbackID string
}

// SendShortcut sends an "interactive" envelope of type shortcut, with a
// fresh trigger id.
func (s *Server) SendShortcut(ctx context.Context, sc Shortcut) (string, error) {
	s.mu.Lock()
	if sc.TeamID == "" {
		sc.TeamID = s.TeamID
	}
	if sc.UserID == "" {
		sc.UserID = DefaultUserID
	}
	u, _ := s.userLocked(sc.UserID)
	p := map[string]any{
		"type": "shortcut", "token": "fakeVerificationToken", "action_ts": s.nextTSLocked(),
		"team":                  map[string]any{"id": sc.TeamID, "domain": TeamDomain},
		"user":                  map[string]any{"id": sc.UserID, "username": u.Name, "team_id": sc.TeamID},
		"is_enterprise_install": false, "callback_id": sc.CallbackID,
		"trigger_id": s.issueTriggerLocked(sc.UserID),
	}
	s.mu.Unlock()
	return s.SendEnvelope(ctx, "interactive", p, false)
}

// viewElement is one element of an input block, by the fields the state
// needs.
type viewElement struct {
	blockID, actionID, typ string
	optional               bool
	dispatch               bool
}

func (v *View) elements() []viewElement {
	var blocks []struct {
		Type           string `json:"type"`
		BlockID        string `json:"block_id"`
		Optional       bool   `json:"optional"`
		DispatchAction bool   `json:"dispatch_action"`
		Element        struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
		} `json:"element"`
	}
	_ = json.Unmarshal(v.Blocks, &blocks)
	var out []viewElement
	for _, b := range blocks {
		if b.Type == "input" {
			out = append(out, viewElement{b.BlockID, b.Element.ActionID, b.Element.Type, b.Optional, b.DispatchAction})
		}
	}
	return out
}

// elementState is an element's entry in a view's state for value ("" for
// nothing chosen or typed).
func elementState(e viewElement, value string) map[string]any {
	st := map[string]any{"type": e.typ}
	switch e.typ {
	case "external_select", "static_select":
		if value != "" {
			st["selected_option"] = map[string]any{"value": value, "text": map[string]any{"type": "plain_text", "text": value}}
		} else {
			st["selected_option"] = nil
		}
	case "conversations_select":
		st["selected_conversation"] = value
	default:
		if value != "" {
			st["value"] = value
		} else {
			st["value"] = nil
		}
	}
	return st
}

// viewPayloadLocked is a view as Slack puts it in payloads, its state
// holding values (block id → value).
func (s *Server) viewPayloadLocked(v *View, values map[string]string) map[string]any {
	state := map[string]any{}
	for _, e := range v.elements() {
		state[e.blockID] = map[string]any{e.actionID: elementState(e, values[e.blockID])}
	}
	return map[string]any{
		"id": v.ID, "team_id": s.TeamID, "type": "modal", "blocks": v.Blocks, "private_metadata": v.PrivateMetadata,
		"callback_id": v.CallbackID, "state": map[string]any{"values": state}, "hash": v.Hash,
		"title":  map[string]any{"type": "plain_text", "text": "Modal"},
		"app_id": s.AppID, "bot_id": DefaultBotID, "root_view_id": v.ID, "previous_view_id": nil,
	}
}

// viewEnvelopeLocked is the common part of the payloads made inside a
// view: who, and the view with values as its state.
func (s *Server) viewEnvelopeLocked(typ, user, viewID string, values map[string]string) (map[string]any, *View, error) {
	if user == "" {
		user = DefaultUserID
	}
	v := s.modals.views[viewID]
	if v == nil || v.Closed || v.User != user {
		return nil, nil, fmt.Errorf("bottest: no modal %q open for %s", viewID, user)
	}
	for block := range values {
		if !slices.ContainsFunc(v.elements(), func(e viewElement) bool { return e.blockID == block }) {
			return nil, nil, fmt.Errorf("bottest: the modal has no input block %q", block)
		}
	}
	u, _ := s.userLocked(user)
	return map[string]any{
		"type": typ, "token": "fakeVerificationToken", "api_app_id": s.AppID,
		"team":                  map[string]any{"id": s.TeamID, "domain": TeamDomain},
		"user":                  map[string]any{"id": user, "username": u.Name, "name": u.Name, "team_id": s.TeamID},
		"container":             map[string]any{"type": "view", "view_id": v.ID},
		"view":                  s.viewPayloadLocked(v, values),
		"is_enterprise_install": false,
	}, v, nil
}

func (s *Server) element(v *View, block string) (viewElement, error) {
	for _, e := range v.elements() {
		if e.blockID == block {
			return e, nil
		}
	}
	return viewElement{}, fmt.Errorf("bottest: the modal has no input block %q", block)
}

// Suggest types typed into the external select of block in the user's
// modal (a block_suggestion) and returns the option values the app's ack
// offered, in order.
func (s *Server) Suggest(ctx context.Context, user, viewID, block, typed string) ([]string, error) {
	s.mu.Lock()
	p, v, err := s.viewEnvelopeLocked("block_suggestion", user, viewID, nil)
	var e viewElement
	if err == nil {
		e, err = s.element(v, block)
	}
	if err == nil && e.typ != "external_select" {
		err = fmt.Errorf("bottest: block %q is a %s, not an external_select", block, e.typ)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p["action_id"], p["block_id"], p["value"] = e.actionID, e.blockID, typed
	id, err := s.SendEnvelope(ctx, "interactive", p, true)
	if err != nil {
		return nil, err
	}
	ack, err := s.WaitAck(ctx, id)
	if err != nil {
		return nil, err
	}
	var answer struct {
		Options []struct {
			Value string `json:"value"`
		} `json:"options"`
	}
	if ack.Payload == nil || json.Unmarshal(ack.Payload, &answer) != nil || answer.Options == nil {
		return nil, fmt.Errorf("bottest: the ack of a block_suggestion carries no options: %s", ack.Payload)
	}
	var out []string
	for _, o := range answer.Options {
		out = append(out, o.Value)
	}
	return out, nil
}

// ChooseInView picks value in the select of block in the user's modal; when
// the block dispatches actions (dispatch_action), that is a block_actions
// envelope, whose id is returned. values is the rest of the modal's state.
func (s *Server) ChooseInView(ctx context.Context, user, viewID, block, value string, values map[string]string) (string, error) {
	s.mu.Lock()
	state := map[string]string{block: value}
	for k, v := range values {
		state[k] = v
	}
	p, v, err := s.viewEnvelopeLocked("block_actions", user, viewID, state)
	var e viewElement
	if err == nil {
		e, err = s.element(v, block)
	}
	if err == nil && !e.dispatch {
		err = fmt.Errorf("bottest: block %q does not dispatch actions", block)
	}
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	action := elementState(e, value)
	action["action_id"], action["block_id"], action["action_ts"] = e.actionID, e.blockID, s.nextTSLocked()
	p["actions"] = []any{action}
	p["trigger_id"] = s.issueTriggerLocked(v.User)
	s.mu.Unlock()
	return s.SendEnvelope(ctx, "interactive", p, false)
}

// Submission is the app's answer to a view_submission: its ack's
// response_action and errors (block id → message).
type Submission struct {
	ResponseAction string
	Errors         map[string]string
}

// ErrRequiredEmpty is SubmitView's error for a required input left empty:
// Slack's client would not send it.
var ErrRequiredEmpty = errors.New("bottest: a required input is empty; Slack would not submit")

// SubmitView submits the user's modal with values (block id → value) as
// its state and returns the app's answer from the ack. A submission the
// app answers without errors closes the modal.
func (s *Server) SubmitView(ctx context.Context, user, viewID string, values map[string]string) (Submission, error) {
	s.mu.Lock()
	p, v, err := s.viewEnvelopeLocked("view_submission", user, viewID, values)
	if err == nil {
		for _, e := range v.elements() {
			if !e.optional && values[e.blockID] == "" {
				err = fmt.Errorf("%w: %s", ErrRequiredEmpty, e.blockID)
			}
		}
	}
	if err != nil {
		s.mu.Unlock()
		return Submission{}, err
	}
	p["trigger_id"] = s.issueTriggerLocked(v.User)
	p["response_urls"] = []any{}
	s.mu.Unlock()
	id, err := s.SendEnvelope(ctx, "interactive", p, true)
	if err != nil {
		return Submission{}, err
	}
	ack, err := s.WaitAck(ctx, id)
	if err != nil {
		return Submission{}, err
	}
	var sub struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if ack.Payload != nil {
		if err := json.Unmarshal(ack.Payload, &sub); err != nil {
			return Submission{}, fmt.Errorf("bottest: the submission's ack is not JSON: %w", err)
		}
	}
	if sub.ResponseAction != "errors" {
		s.mu.Lock()
		v.Closed = true
		s.notifyLocked()
		s.mu.Unlock()
	}
	return Submission{ResponseAction: sub.ResponseAction, Errors: sub.Errors}, nil
}
