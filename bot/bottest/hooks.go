package bottest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// issueHookLocked creates a response_url for an envelope and returns it.
// kind is "commands" or "actions".
func (s *Server) issueHookLocked(kind, envelopeID, channel, user, messageTS string) string {
	s.hookSeq[kind]++
	path := fmt.Sprintf("/hooks/%s/%d", kind, s.hookSeq[kind])
	h := &hook{
		url:        s.URL + path,
		envelopeID: envelopeID,
		channel:    channel,
		user:       user,
		messageTS:  messageTS,
		issued:     s.cfg.now(),
	}
	s.hooks[path] = h
	return h.url
}

// flexBool accepts true/false as JSON booleans or strings ("true").
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		*b = flexBool(t)
	case string:
		*b = flexBool(strings.EqualFold(t, "true"))
	case nil:
		*b = false
	default:
		return fmt.Errorf("bottest: %s is not a boolean", data)
	}
	return nil
}

type hookPayload struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	Attachments     json.RawMessage `json:"attachments"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal flexBool        `json:"replace_original"`
	DeleteOriginal  flexBool        `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

// handleHook serves response_url POSTs (/hooks/commands/<n>, /hooks/actions/<n>).
func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBodySize)
	body, readErr := io.ReadAll(r.Body)
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var form url.Values
	if ctype == "application/x-www-form-urlencoded" && readErr == nil {
		// Like incoming webhooks, accept payload=<json> as well.
		if f, err := url.ParseQuery(string(body)); err == nil {
			form = f
			if p := f.Get("payload"); p != "" {
				body = []byte(p)
			}
		}
	}

	s.mu.Lock()
	status, slackErr := http.StatusBadRequest, "invalid_payload"
	if readErr == nil {
		status, slackErr = s.hookLocked(r.Method, r.URL.Path, body)
	}
	call := APICall{Method: "response_url", Form: form, Status: status, SlackError: slackErr}
	if json.Valid(body) {
		call.JSON = body
	}
	s.recordCallLocked(call)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if slackErr != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": slackErr})
		return
	}
	_, _ = io.WriteString(w, `{"ok":true}`+"\n")
}

func (s *Server) hookLocked(method, path string, body []byte) (int, string) {
	if method != http.MethodPost {
		return http.StatusMethodNotAllowed, "method_not_allowed"
	}
	h := s.hooks[path]
	switch {
	case h == nil:
		return http.StatusNotFound, "no_service"
	case s.cfg.now().Sub(h.issued) > responseURLTTL:
		return http.StatusNotFound, "expired_url"
	case h.uses >= responseURLUses:
		return http.StatusNotFound, "used_url"
	}
	if inj := s.failNext["response_url"]; inj != nil {
		// Refused like a bad payload: nothing shown, no use spent.
		inj.times--
		if inj.times <= 0 {
			delete(s.failNext, "response_url")
		}
		return http.StatusBadRequest, inj.slackErr
	}
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return http.StatusBadRequest, "invalid_payload"
	}
	if utf8Len(p.Text) > maxTextLen {
		return http.StatusBadRequest, "msg_too_long"
	}
	blocksRaw := bytes.TrimSpace(p.Blocks)
	if len(blocksRaw) > 0 && blocksRaw[0] == '"' {
		// blocks sent as a JSON string holding the array
		var str string
		if json.Unmarshal(blocksRaw, &str) != nil {
			return http.StatusBadRequest, "invalid_blocks_format"
		}
		blocksRaw = []byte(str)
	}
	blocks, code, _ := parseBlocks(blocksRaw)
	if code != "" {
		return http.StatusBadRequest, code
	}
	att := strings.TrimSpace(string(p.Attachments))
	hasAttachments := att != "" && att != "[]" && att != "null"
	if p.Text == "" && blocks == nil && !hasAttachments && !bool(p.DeleteOriginal) {
		return http.StatusBadRequest, "no_text"
	}
	switch p.ResponseType {
	case "", "ephemeral", "in_channel":
	default:
		return http.StatusBadRequest, "invalid_response_type"
	}
	h.uses++

	m := Message{
		Kind:            KindResponseURL,
		Channel:         h.channel,
		User:            h.user,
		ThreadTS:        p.ThreadTS,
		Text:            p.Text,
		Blocks:          blocks,
		ResponseURL:     h.url,
		EnvelopeID:      h.envelopeID,
		ResponseType:    p.ResponseType,
		ReplaceOriginal: bool(p.ReplaceOriginal),
		DeleteOriginal:  bool(p.DeleteOriginal),
	}
	switch {
	case m.DeleteOriginal:
		m.TS = h.messageTS
		s.recordMessageLocked(m)
		if h.messageTS != "" {
			delete(s.current, msgKey(h.channel, h.messageTS))
		}
	case m.ReplaceOriginal:
		m.TS = h.messageTS
		rec := s.recordMessageLocked(m)
		key := msgKey(h.channel, h.messageTS)
		if cur, ok := s.current[key]; ok && h.messageTS != "" {
			cur.Text, cur.Blocks, cur.At, cur.Seq = m.Text, m.Blocks, rec.At, rec.Seq
			s.current[key] = cur
		}
	case m.ResponseType == "in_channel":
		m.TS = s.nextTSLocked()
		rec := s.recordMessageLocked(m)
		s.current[msgKey(rec.Channel, rec.TS)] = rec
	default:
		s.recordMessageLocked(m)
	}
	return http.StatusOK, ""
}
