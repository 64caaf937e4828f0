package cloud66

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Sentinels matched by errors.Is against an *ErrorResponse, so callers can
// branch on the outcome without looking at status codes.
var (
	// ErrUnauthorized: 401, the token is missing, revoked or expired; the
	// user has to link their account again.
	ErrUnauthorized = errors.New("cloud66: unauthorized")
	// ErrForbidden: 403, the token lacks the scope or the user lacks access.
	ErrForbidden = errors.New("cloud66: forbidden")
	// ErrInsufficientScope: a 403 that says the token lacks a scope (see
	// ErrorResponse.InsufficientScope); it matches ErrForbidden too.
	ErrInsufficientScope = errors.New("cloud66: insufficient scope")
	// ErrNotFound: 404, unknown id or one the user may not see.
	ErrNotFound = errors.New("cloud66: not found")
	// ErrConflict: 409, typically the stack is busy.
	ErrConflict = errors.New("cloud66: conflict")
	// ErrThrottled: the hourly rate limit was hit (Cloud 66 answers 503
	// "throttled"; 429 is treated the same). See ErrorResponse.RetryAt.
	ErrThrottled = errors.New("cloud66: throttled")
)

// ErrorResponse is the error for any non-2xx answer from Cloud 66.
type ErrorResponse struct {
	StatusCode  int
	Method      string
	Endpoint    string // path template, never the query or ids
	Code        string // body "error", e.g. "not_found"
	Description string // body "error_description"
	Details     string // body "details"

	// AuthError is the error= of a WWW-Authenticate: Bearer challenge, e.g.
	// "insufficient_scope", and Scope its scope= (or the body's "scope"):
	// what OAuth 2 servers such as Doorkeeper say about a missing scope.
	AuthError string
	Scope     string

	// RetryAt is set only for throttled responses: from Retry-After when
	// present, else the start of the next clock hour, because Cloud 66's
	// limit is 3,000 requests per user per hour.
	RetryAt time.Time
}

// maxMessageLen bounds the server text quoted in Error, which ends up in
// chat messages and logs.
const maxMessageLen = 512

// Error returns "cloud66: GET /stacks/{uid}: 404 not_found: <message>". It is
// built only from the template and the server's message, so it never holds a
// token, id or query string.
func (e *ErrorResponse) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cloud66: %s %s: %d", e.Method, e.Endpoint, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if msg := e.Message(); msg != e.Code {
		b.WriteString(": " + truncate(msg, maxMessageLen))
	}
	return b.String()
}

// Message returns the most specific human-readable text available: details,
// then error_description, then error, then the HTTP status text.
func (e *ErrorResponse) Message() string {
	switch {
	case e.Details != "":
		return e.Details
	case e.Description != "":
		return e.Description
	case e.Code != "":
		return e.Code
	}
	if t := http.StatusText(e.StatusCode); t != "" {
		return t
	}
	return "unknown error"
}

// Is maps the status to the package sentinels.
func (e *ErrorResponse) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrInsufficientScope:
		_, ok := e.InsufficientScope()
		return ok
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrThrottled:
		return e.throttled()
	}
	return false
}

// InsufficientScope reports whether a 403 says the token lacks a scope, and
// names the scope when the answer does ("" when it does not).
//
// Cloud 66 documents only "403 — token lacks required scope". Its OAuth
// server is evidently Doorkeeper, which answers {"error":
// "insufficient_scope", "error_description": "Access to this resource
// requires scope \"redeploy\"."} and, in some versions, a WWW-Authenticate
// challenge with error="insufficient_scope". So any of these counts: the
// code or the challenge saying insufficient_scope, or a message that
// mentions a scope. The scope is the challenge's or the body's scope, else
// the names of Cloud 66's scopes found in the message.
func (e *ErrorResponse) InsufficientScope() (scope string, ok bool) {
	if e.StatusCode != http.StatusForbidden {
		return "", false
	}
	msg := e.Description + " " + e.Details
	if !strings.EqualFold(e.Code, "insufficient_scope") && !strings.EqualFold(e.AuthError, "insufficient_scope") &&
		!containsFold(msg, "scope") {
		return "", false
	}
	if e.Scope != "" {
		return e.Scope, true
	}
	return scopesIn(msg), true
}

// scopesIn returns the Cloud 66 scope names (reference §1.4, "reboot"
// included as its docs name it) that occur as words in msg, space
// separated in the order found.
func scopesIn(msg string) string {
	var found []string
	for _, w := range strings.FieldsFunc(strings.ToLower(msg), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r == '_')
	}) {
		switch w {
		case "public", "redeploy", "jobs", "users", "admin", "reboot":
			if !slices.Contains(found, w) {
				found = append(found, w)
			}
		}
	}
	return strings.Join(found, " ")
}

// throttled is derived from the exported fields only, so an ErrorResponse
// built by hand (in tests or fakes) behaves the same as a decoded one.
func (e *ErrorResponse) throttled() bool {
	if e.StatusCode == http.StatusTooManyRequests {
		return true
	}
	if e.StatusCode != http.StatusServiceUnavailable {
		return false
	}
	return strings.EqualFold(e.Code, "throttled") ||
		containsFold(e.Description, "throttl") || containsFold(e.Details, "throttl")
}

// transient reports whether repeating the same request later may succeed.
func (e *ErrorResponse) transient() bool {
	switch {
	case e.StatusCode == http.StatusRequestTimeout:
		return true
	case e.throttled():
		// Retrying within the hour only burns more of the budget.
		return false
	case e.StatusCode == http.StatusNotImplemented, strings.EqualFold(e.Code, "not_implemented"):
		// Cloud 66 documents not_implemented as a 503; it will not go away.
		return false
	}
	return e.StatusCode >= 500
}

// ArgError reports an invalid argument found before any request was sent.
type ArgError struct {
	Arg    string
	Reason string
}

// Error implements error.
func (e *ArgError) Error() string {
	return "cloud66: invalid argument " + e.Arg + ": " + e.Reason
}

// IsTransient reports whether err is worth retrying later: 5xx (except
// throttling), 408, timeouts and connection failures. It is false for 4xx,
// throttling (wait for RetryAt instead), invalid arguments and cancellation.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var er *ErrorResponse
	if errors.As(err, &er) {
		return er.transient()
	}
	var ae *ArgError
	if errors.As(err, &ae) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	for _, target := range []error{io.ErrUnexpectedEOF, io.EOF, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// checkResponse turns any non-2xx response into an *ErrorResponse; it is the
// only place error bodies are interpreted. It reads at most 64 KiB of the
// body; a larger body is treated as unparsable rather than truncated JSON.
func checkResponse(resp *http.Response, method, endpoint string, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	e := &ErrorResponse{StatusCode: resp.StatusCode, Method: method, Endpoint: endpoint}
	data, tooBig, _ := readLimited(resp.Body, maxErrorBodySize)
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	if !tooBig {
		var body struct {
			Error       json.RawMessage `json:"error"`
			Description json.RawMessage `json:"error_description"`
			Details     json.RawMessage `json:"details"`
			Scope       json.RawMessage `json:"scope"`
		}
		if json.Unmarshal(data, &body) == nil {
			e.Code = jsonText(body.Error)
			e.Description = jsonText(body.Description)
			e.Details = jsonText(body.Details)
			e.Scope = strings.Join(strings.Fields(jsonText(body.Scope)), " ")
		}
	}
	if resp.StatusCode == http.StatusForbidden {
		e.AuthError = bearerParam(resp.Header.Values("WWW-Authenticate"), "error")
		if s := bearerParam(resp.Header.Values("WWW-Authenticate"), "scope"); s != "" {
			e.Scope = strings.Join(strings.Fields(s), " ")
		}
	}
	// A proxy or maintenance page may say "throttled" in plain text; give it
	// the code so Is and IsTransient see it.
	if e.Code == "" && resp.StatusCode == http.StatusServiceUnavailable && containsFold(string(data), "throttl") {
		e.Code = "throttled"
	}
	if e.throttled() {
		e.RetryAt = retryAt(resp.Header.Get("Retry-After"), now)
	}
	return e
}

// bearerParam returns the value of param in the first Bearer challenge of
// WWW-Authenticate headers (RFC 6750 §3: Bearer realm="x", error="…",
// scope="…"), or "". Quoted values may hold commas and escaped quotes.
func bearerParam(headers []string, param string) string {
	for _, h := range headers {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "bearer") {
			continue
		}
		for rest != "" {
			var name, value string
			name, rest, _ = strings.Cut(strings.TrimLeft(rest, " ,"), "=")
			value, rest = authValue(strings.TrimLeft(rest, " "))
			if strings.EqualFold(strings.TrimSpace(name), param) {
				return value
			}
		}
		return ""
	}
	return ""
}

// authValue reads one auth-param value (a token or a quoted string) from
// the start of s and returns it and what follows.
func authValue(s string) (value, rest string) {
	if !strings.HasPrefix(s, `"`) {
		v, rest, _ := strings.Cut(s, ",")
		return strings.TrimSpace(v), rest
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// retryAt reads Retry-After (delay seconds or an HTTP date), falling back to
// the start of the next hour, when Cloud 66's hourly window resets.
func retryAt(header string, now time.Time) time.Time {
	header = strings.TrimSpace(header)
	if header != "" {
		if secs, err := strconv.ParseInt(header, 10, 64); err == nil && secs >= 0 && secs < 7*24*3600 {
			return now.Add(time.Duration(secs) * time.Second)
		}
		if t, err := http.ParseTime(header); err == nil {
			return t
		}
	}
	return now.Truncate(time.Hour).Add(time.Hour)
}

// jsonText extracts text from an error field, which is normally a string but
// could be a list of messages.
func jsonText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, "; ")
	}
	return ""
}

func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), substr)
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
