package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/c66bot/c66bot/cloud66"
)

// Errors of DecodeWebhook.
var (
	// ErrIgnored: a well-formed webhook of a type notify does not follow
	// (stack.created, job.fail, …). The handler should still answer 2xx so
	// Cloud 66 does not log a failure.
	ErrIgnored = errors.New("notify: event type not followed")
	// ErrNoStack: a followed webhook that names no stack. Cloud 66's
	// documented server.stopped/server.backon payloads carry only the
	// server's uid, so a handler that knows the stack from the subscription
	// behind the webhook URL may fill Event.StackUID in and Accept the
	// event DecodeWebhook returned alongside this error; otherwise it
	// answers 400.
	ErrNoStack = errors.New("notify: webhook names no stack")
)

// webhookKinds maps Cloud 66's event_type values to event kinds. The
// account.* types are the account-wide subscriptions of the same events.
var webhookKinds = map[string]string{
	"stack.redeploy.ok":      DeploySucceeded,
	"account.redeploy.ok":    DeploySucceeded,
	"stack.redeploy.fail":    DeployFailed,
	"account.redeploy.fail":  DeployFailed,
	"stack.deploy.started":   DeployStarted,
	"account.deploy.started": DeployStarted,
	"server.stopped":         ServerStopped,
	"server.backon":          ServerBack,
}

// webhookBody is the part of a webhook payload notify reads. Cloud 66
// documents the payload as the API object plus event_type and timestamp, but
// gives few examples, so every field is decoded leniently: a field of an
// unexpected type reads as absent instead of failing the whole webhook, which
// Cloud 66 would never send again.
type webhookBody struct {
	EventType flexString `json:"event_type"`
	Timestamp flexTime   `json:"timestamp"`

	// Stack events: the stack object itself. Server events: the server's
	// uid (not the stack's!), or the server object.
	UID         flexString `json:"uid"`
	Name        flexString `json:"name"`
	Environment flexString `json:"environment"`

	// Not in the documented payloads; read when present.
	StackUID      flexString      `json:"stack_uid"`
	StackName     flexString      `json:"stack_name"`
	ServerName    flexString      `json:"server_name"`
	Stack         json.RawMessage `json:"stack"`  // {uid, name, environment}, as service.* events nest it
	Server        json.RawMessage `json:"server"` // the server's uid, or {name, stack_uid, …}
	DeployContext json.RawMessage `json:"deploy_context"`
	GitHash       flexString      `json:"git_hash"`
	GitRef        flexString      `json:"git_ref"`
	DeploymentID  flexInt         `json:"deployment_id"`
	Message       flexString      `json:"message"`
}

// deployContext is the deploy_context of stack events. Only triggered_by,
// outcome, started_at and finished_at are documented; the git and id fields
// are read in case Cloud 66 sends them, never relied upon.
type deployContext struct {
	TriggeredBy  flexString      `json:"triggered_by"`
	Outcome      json.RawMessage `json:"outcome"` // "success", or {code, meaning} like the API
	StartedAt    flexTime        `json:"started_at"`
	FinishedAt   flexTime        `json:"finished_at"`
	GitHash      flexString      `json:"git_hash"`
	GitRef       flexString      `json:"git_ref"`
	DeploymentID flexInt         `json:"deployment_id"`
	ID           flexInt         `json:"id"`
	Message      flexString      `json:"message"`
}

// stackRef is a nested stack object.
type stackRef struct {
	UID         flexString `json:"uid"`
	Name        flexString `json:"name"`
	Environment flexString `json:"environment"`
}

// serverRef is a nested server object.
type serverRef struct {
	UID         flexString `json:"uid"`
	Name        flexString `json:"name"`
	StackUID    flexString `json:"stack_uid"`
	StackName   flexString `json:"stack_name"`
	Environment flexString `json:"environment"`
}

// DecodeWebhook turns a Cloud 66 webhook body into an Event with Source
// "webhook" and no Team (the handler knows the team from the webhook URL).
//
// Followed types: stack.redeploy.ok and account.redeploy.ok
// (deploy.succeeded), stack.redeploy.fail and account.redeploy.fail
// (deploy.failed, or deploy.cancelled when deploy_context's outcome says
// cancelled), stack.deploy.started and account.deploy.started
// (deploy.started), server.stopped (server.stopped) and server.backon
// (server.back). Any other type is ErrIgnored.
//
// Malformed JSON, a body that is not an object, or one without event_type
// is an error; so is a stack uid that is not letters, digits, '-' and '_'.
// A followed event naming no stack returns the partly decoded Event with an
// error wrapping ErrNoStack. The caller bounds the body's size.
func DecodeWebhook(body []byte) (Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, errors.New("notify: webhook body is not a JSON object")
	}
	var b webhookBody
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return Event{}, fmt.Errorf("notify: malformed webhook body: %w", err)
	}
	typ := strings.ToLower(strings.TrimSpace(string(b.EventType)))
	if typ == "" {
		return Event{}, errors.New("notify: webhook body has no event_type")
	}
	kind, ok := webhookKinds[typ]
	if !ok {
		return Event{}, fmt.Errorf("%w: %s", ErrIgnored, clip(typ, 64))
	}

	ev := Event{Kind: kind, Source: SourceWebhook, At: b.Timestamp.t}
	var st stackRef
	lenient(b.Stack, &st)

	if isDeployKind(kind) {
		var dc deployContext
		lenient(b.DeployContext, &dc)
		ev.StackUID = first(b.UID, st.UID, b.StackUID)
		ev.StackName = first(b.Name, st.Name, b.StackName)
		ev.Environment = first(b.Environment, st.Environment)
		ev.TriggeredBy = string(dc.TriggeredBy)
		ev.StartedAt = dc.StartedAt.t
		// The documented payload guarantees none of these; take them
		// when Cloud 66 happens to send them.
		ev.GitHash = first(dc.GitHash, b.GitHash)
		ev.GitRef = first(dc.GitRef, b.GitRef)
		ev.DeploymentID = int64(firstInt(dc.DeploymentID, dc.ID, b.DeploymentID))
		ev.Text = first(dc.Message, b.Message)
		if ev.At.IsZero() {
			ev.At = dc.FinishedAt.t
		}
		if ev.At.IsZero() {
			ev.At = dc.StartedAt.t
		}
		if kind == DeployFailed && (cloud66.Deployment{Outcome: cloud66.CodeMeaning{Meaning: outcomeText(dc.Outcome)}}).Cancelled() {
			ev.Kind = DeployCancelled
		}
	} else {
		var sv serverRef
		var serverUID string
		if !lenient(b.Server, &sv) {
			var s flexString
			lenient(b.Server, &s)
			serverUID = string(s)
		}
		// The top-level uid of a server event is the server's own.
		ev.StackUID = first(sv.StackUID, b.StackUID, st.UID)
		ev.StackName = first(sv.StackName, b.StackName, st.Name)
		ev.Environment = first(sv.Environment, st.Environment)
		ev.Server = first(sv.Name, b.ServerName, b.Name, flexString(serverUID), sv.UID, b.UID)
		ev.Text = string(b.Message)
	}
	ev = ev.normalized()
	if ev.StackUID == "" {
		return ev, fmt.Errorf("%w (%s)", ErrNoStack, typ)
	}
	if !cloud66.ValidUID(ev.StackUID) {
		return Event{}, fmt.Errorf("notify: webhook %s: invalid stack uid %q", typ, clip(ev.StackUID, cloud66.MaxUIDLen))
	}
	return ev, nil
}

// Field limits: generous for real values, small enough that a hostile body
// cannot make a dedup key exceed bbolt's key size or a message Slack's.
const (
	maxShort = 256
	maxText  = 2000
)

// normalized trims every text field and cuts it to its limit.
func (e Event) normalized() Event {
	e.StackUID = strings.TrimSpace(e.StackUID)
	e.StackName = clip(e.StackName, maxShort)
	e.Environment = clip(e.Environment, maxShort)
	e.GitHash = clip(e.GitHash, maxShort)
	e.GitRef = clip(e.GitRef, maxShort)
	e.TriggeredBy = clip(e.TriggeredBy, maxShort)
	e.Server = clip(e.Server, maxShort)
	e.Text = clip(e.Text, maxText)
	return e
}

// clip trims s and cuts it to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// lenient decodes raw into v and reports success; anything unexpected
// leaves v as it was.
func lenient(raw json.RawMessage, v any) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// first returns the first non-blank value.
func first(vals ...flexString) string {
	for _, v := range vals {
		if s := strings.TrimSpace(string(v)); s != "" {
			return s
		}
	}
	return ""
}

func firstInt(vals ...flexInt) flexInt {
	for _, v := range vals {
		if v > 0 {
			return v
		}
	}
	return 0
}

// outcomeText reads an outcome given as "failed" or as {code, meaning}.
func outcomeText(raw json.RawMessage) string {
	var s flexString
	if lenient(raw, &s) && s != "" {
		return string(s)
	}
	var cm struct {
		Meaning flexString `json:"meaning"`
	}
	lenient(raw, &cm)
	return string(cm.Meaning)
}

// flexString decodes a JSON string, or the text of a number; anything else
// reads as "".
type flexString string

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		*f = flexString(n.String())
		return nil
	}
	*f = ""
	return nil
}

// flexInt decodes a non-negative integer given as a number or a numeric
// string; anything else reads as 0.
type flexInt int64

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = 0
	var s flexString
	_ = s.UnmarshalJSON(b)
	if n, err := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64); err == nil && n > 0 {
		*f = flexInt(n)
	}
	return nil
}

// flexTime decodes epoch seconds (a number or a numeric string) or a
// timestamp in any layout Cloud 66 uses; anything else reads as zero.
type flexTime struct{ t time.Time }

// maxEpoch bounds accepted epoch seconds (year 9999), so a huge number
// cannot overflow into a nonsense time.
const maxEpoch = 253402300799

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *flexTime) UnmarshalJSON(b []byte) error {
	f.t = time.Time{}
	var s flexString
	_ = s.UnmarshalJSON(b)
	text := strings.TrimSpace(string(s))
	if text == "" {
		return nil
	}
	if secs, err := strconv.ParseFloat(text, 64); err == nil {
		if secs > 0 && secs <= maxEpoch && !math.IsNaN(secs) {
			whole, frac := math.Modf(secs)
			f.t = time.Unix(int64(whole), int64(frac*1e9)).UTC()
		}
		return nil
	}
	var ct cloud66.Time
	quoted, _ := json.Marshal(text)
	if ct.UnmarshalJSON(quoted) == nil {
		f.t = ct.Time
	}
	return nil
}
