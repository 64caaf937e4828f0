package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/metrics"
)

// errResponseURLRefused: the response_url is not on a host we trust. A
// response_url is a bearer capability supplied in a payload, so we only
// post to Slack's own hooks host, or to the Slack API host we were
// configured with (a proxy or a test Slack), never anywhere else.
var errResponseURLRefused = errors.New("response_url host not allowed")

// Replier answers through response_url, only on Slack's hosts, falling
// back to plain text when Slack refuses a layout.
type Replier struct {
	client  *http.Client
	apiHost string
	apiTLS  bool
	// metrics counts every post; nil counts nothing.
	metrics *metrics.Metrics
}

// NewReplier returns a Replier posting with client; slackAPIURL's host is
// trusted for response_urls besides hooks.slack.com (a proxy or a test
// Slack).
func NewReplier(client *http.Client, slackAPIURL string, m *metrics.Metrics) *Replier {
	r := &Replier{client: client, metrics: m}
	if u, err := url.Parse(slackAPIURL); err == nil {
		r.apiHost = strings.ToLower(u.Host)
		r.apiTLS = u.Scheme == "https"
	}
	return r
}

// allowed reports whether raw is a response_url we may post to.
func (r *Replier) allowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "https" && host == "hooks.slack.com" {
		return true
	}
	if host == r.apiHost && host != "" {
		return u.Scheme == "https" || (u.Scheme == "http" && !r.apiTLS)
	}
	return false
}

// Respond sends m to a response_url, replacing the message the URL belongs
// to when replaceOriginal is set, and counts the post.
func (r *Replier) Respond(ctx context.Context, responseURL string, m chat.Message, replaceOriginal bool) error {
	err := r.post(ctx, responseURL, m, replaceOriginal)
	trackReply(r.metrics, err)
	return err
}

// post sends reply to a response_url. A reply Slack refuses for its form
// (its blocks, its length) is sent again as plain text with a note, so the
// person is never left without an answer; Slack took nothing the first time,
// so nothing is shown twice. Errors never include the URL: it is a
// credential for that conversation.
func (r *Replier) post(ctx context.Context, responseURL string, reply chat.Message, replaceOriginal bool) error {
	if !r.allowed(responseURL) {
		return errResponseURLRefused
	}
	msg := &slack.WebhookMessage{
		Text:            reply.Text,
		ResponseType:    slack.ResponseTypeEphemeral,
		ReplaceOriginal: replaceOriginal,
	}
	if reply.InChannel {
		msg.ResponseType = slack.ResponseTypeInChannel
	}
	if len(reply.Blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: reply.Blocks}
	}
	err := r.send(ctx, responseURL, msg)
	if !isRefusedLayout(err) {
		return err
	}
	msg.Text, msg.Blocks = plainFallback(reply.Text, reply.Blocks), nil
	if ferr := r.send(ctx, responseURL, msg); ferr != nil {
		return fmt.Errorf("%w; and as plain text: %w", err, ferr)
	}
	return nil
}

// maxHookAnswer bounds how much of a response_url answer is read: Slack
// answers "ok" or an error code.
const maxHookAnswer = 4 << 10

// send posts msg to a response_url. It reads Slack's answer, which
// slack-go's webhook helper throws away, because the error code in it
// (invalid_blocks, msg_too_long) is what tells a refused layout from a
// dead URL. Slack answers errors with a 4xx status and the code as plain
// text (incoming-webhook style) or as {"ok":false,"error":…}; both are read.
func (r *Replier) send(ctx context.Context, responseURL string, msg *slack.WebhookMessage) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("post to response_url: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("post to response_url: bad request")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("post to response_url: %s", redactURLError(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxHookAnswer))
	code := hookErrorCode(answer)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return fmt.Errorf("post to response_url: %w", &slack.RateLimitedError{RetryAfter: time.Duration(secs) * time.Second})
	case resp.StatusCode != http.StatusOK && refusedLayout(code):
		return fmt.Errorf("post to response_url: HTTP %d: %w", resp.StatusCode, slack.SlackErrorResponse{Err: code})
	case resp.StatusCode != http.StatusOK && code != "":
		return fmt.Errorf("post to response_url: %w (%s)", slack.StatusCodeError{Code: resp.StatusCode, Status: resp.Status}, code)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("post to response_url: %w", slack.StatusCodeError{Code: resp.StatusCode, Status: resp.Status})
	case code != "":
		// 200 with {"ok":false,…}.
		return fmt.Errorf("post to response_url: %w", slack.SlackErrorResponse{Err: code})
	}
	return nil
}

// hookErrorCode finds Slack's error code in a response_url answer: the
// "error" of a JSON answer whose "ok" is false, or a plain-text answer that
// is a single code such as invalid_blocks. "ok" and anything else give "".
func hookErrorCode(answer []byte) string {
	answer = bytes.TrimSpace(answer)
	var j struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(answer, &j) == nil {
		if j.OK != nil && !*j.OK {
			return j.Error
		}
		return ""
	}
	if len(answer) == 0 || len(answer) > 64 || string(answer) == "ok" {
		return ""
	}
	for _, c := range answer {
		if (c < 'a' || c > 'z') && c != '_' {
			return ""
		}
	}
	return string(answer)
}

// refusedLayout reports whether Slack's error code means it refused the
// message for its form: blocks it cannot show, or too much text. The same
// content as plain text can go through, and since Slack took nothing,
// sending it again shows nothing twice.
func refusedLayout(code string) bool {
	switch code {
	case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long":
		return true
	}
	return false
}

// isRefusedLayout reports whether err is Slack refusing a message's form
// (see refusedLayout).
func isRefusedLayout(err error) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && refusedLayout(se.Err)
}

// Plain-text fallback bounds. Slack refuses text over 40,000 characters;
// staying well under it leaves room for the note.
const maxFallbackText = 12000

// fallbackNote ends every plain-text fallback, so the reader knows there
// was more (a layout, buttons) than they see.
const fallbackNote = "_(this message could not be shown in full: Slack refused its layout, so here it is as plain text)_"

// plainFallback is a message Slack refused for its blocks or length, as
// plain text: the text of its blocks in order (or the message text when
// the blocks hold none), cut to a length Slack accepts, and the note.
// mrkdwn stays mrkdwn (Slack renders message text as mrkdwn); plain_text
// objects are escaped so they cannot turn into mentions or links.
func plainFallback(text string, blocks []slack.Block) string {
	body := strings.TrimSpace(blocksText(blocks))
	if body == "" {
		body = strings.TrimSpace(text)
	}
	if r := []rune(body); len(r) > maxFallbackText {
		body = string(r[:maxFallbackText]) + "…"
	}
	if body == "" {
		return fallbackNote
	}
	return body + "\n\n" + fallbackNote
}

// blocksText collects the visible text of blocks, one block per line.
func blocksText(blocks []slack.Block) string {
	var lines []string
	add := func(t *slack.TextBlockObject) {
		if t == nil || strings.TrimSpace(t.Text) == "" {
			return
		}
		if t.Type == slack.PlainTextType {
			lines = append(lines, escapePlain(t.Text))
			return
		}
		lines = append(lines, t.Text)
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			add(b.Text)
		case *slack.SectionBlock:
			add(b.Text)
			for _, f := range b.Fields {
				add(f)
			}
		case *slack.ContextBlock:
			for _, el := range b.ContextElements.Elements {
				if t, ok := el.(*slack.TextBlockObject); ok {
					add(t)
				}
			}
		}
	}
	return strings.Join(lines, "\n")
}

// escapePlain escapes the three characters Slack gives meaning to in
// message text.
func escapePlain(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// redactURLError drops a URL that net/http puts into its errors.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " response_url: " + ue.Err.Error()
	}
	return err.Error()
}
