package cloud66

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

var sentinels = []error{ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrThrottled}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		status        int
		body          string
		wantSentinel  error // nil: matches none
		wantCode      string
		wantDesc      string
		wantDetails   string
		wantMessage   string
		wantError     string
		wantTransient bool
	}{
		{
			name: "401", status: 401, body: `{"error":"unauthenticated","error_description":"Token revoked"}`,
			wantSentinel: ErrUnauthorized, wantCode: "unauthenticated", wantDesc: "Token revoked", wantMessage: "Token revoked",
			wantError: "cloud66: GET /stacks/{uid}: 401 unauthenticated: Token revoked",
		},
		{
			name: "403 details preferred", status: 403, body: `{"error":"forbidden","error_description":"Forbidden","details":"Token lacks the redeploy scope"}`,
			wantSentinel: ErrForbidden, wantCode: "forbidden", wantDesc: "Forbidden", wantDetails: "Token lacks the redeploy scope",
			wantMessage: "Token lacks the redeploy scope", wantError: "cloud66: GET /stacks/{uid}: 403 forbidden: Token lacks the redeploy scope",
		},
		{
			name: "404", status: 404, body: `{"error":"not_found","error_description":"Stack not found"}`,
			wantSentinel: ErrNotFound, wantCode: "not_found", wantDesc: "Stack not found", wantMessage: "Stack not found",
			wantError: "cloud66: GET /stacks/{uid}: 404 not_found: Stack not found",
		},
		{
			name: "409", status: 409, body: `{"error":"conflict"}`,
			wantSentinel: ErrConflict, wantCode: "conflict", wantMessage: "conflict",
			wantError: "cloud66: GET /stacks/{uid}: 409 conflict",
		},
		{
			name: "503 throttled", status: 503, body: `{"error":"throttled","error_description":"Too many requests"}`,
			wantSentinel: ErrThrottled, wantCode: "throttled", wantDesc: "Too many requests", wantMessage: "Too many requests",
			wantError: "cloud66: GET /stacks/{uid}: 503 throttled: Too many requests",
		},
		{
			name: "503 description says throttled", status: 503, body: `{"error":"service_unavailable","error_description":"Request Throttled"}`,
			wantSentinel: ErrThrottled, wantCode: "service_unavailable", wantDesc: "Request Throttled", wantMessage: "Request Throttled",
			wantError: "cloud66: GET /stacks/{uid}: 503 service_unavailable: Request Throttled",
		},
		{
			name: "503 plain text throttled", status: 503, body: "Throttled: try again later",
			wantSentinel: ErrThrottled, wantCode: "throttled", wantMessage: "throttled",
			wantError: "cloud66: GET /stacks/{uid}: 503 throttled",
		},
		{
			name: "429", status: 429, body: ``,
			wantSentinel: ErrThrottled, wantMessage: "Too Many Requests",
			wantError: "cloud66: GET /stacks/{uid}: 429: Too Many Requests",
		},
		{
			name: "503 maintenance", status: 503, body: `{"error":"maintenance","details":"Back soon"}`,
			wantCode: "maintenance", wantDetails: "Back soon", wantMessage: "Back soon", wantTransient: true,
			wantError: "cloud66: GET /stacks/{uid}: 503 maintenance: Back soon",
		},
		{
			name: "503 not_implemented", status: 503, body: `{"error":"not_implemented"}`,
			wantCode: "not_implemented", wantMessage: "not_implemented",
			wantError: "cloud66: GET /stacks/{uid}: 503 not_implemented",
		},
		{
			name: "500 HTML body", status: 500, body: "<html><body>Internal error, token=abc</body></html>",
			wantMessage: "Internal Server Error", wantTransient: true,
			wantError: "cloud66: GET /stacks/{uid}: 500: Internal Server Error",
		},
		{
			name: "502 empty body", status: 502,
			wantMessage: "Bad Gateway", wantTransient: true,
			wantError: "cloud66: GET /stacks/{uid}: 502: Bad Gateway",
		},
		{
			name: "408", status: 408, body: `{"error":"time_out"}`,
			wantCode: "time_out", wantMessage: "time_out", wantTransient: true,
			wantError: "cloud66: GET /stacks/{uid}: 408 time_out",
		},
		{
			name: "400 list of details", status: 400, body: `{"error":"bad_request","details":["git_ref is invalid","services is invalid"]}`,
			wantCode: "bad_request", wantDetails: "git_ref is invalid; services is invalid", wantMessage: "git_ref is invalid; services is invalid",
			wantError: "cloud66: GET /stacks/{uid}: 400 bad_request: git_ref is invalid; services is invalid",
		},
		{
			name: "402 odd JSON types", status: 402, body: `{"error":{"nested":true},"error_description":17}`,
			wantMessage: "Payment Required", wantError: "cloud66: GET /stacks/{uid}: 402: Payment Required",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, api := setup(t, WithRetry(0, 0))
			api.HandleFunc("GET /stacks/s1.json", func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			_, err := c.GetStack(context.Background(), "s1")
			var er *ErrorResponse
			if !errors.As(err, &er) {
				t.Fatalf("err = %#v, want *ErrorResponse", err)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.wantSentinel; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, want)
				}
			}
			if er.StatusCode != tt.status || er.Method != "GET" || er.Endpoint != "/stacks/{uid}" ||
				er.Code != tt.wantCode || er.Description != tt.wantDesc || er.Details != tt.wantDetails {
				t.Errorf("ErrorResponse = %+v", er)
			}
			if got := er.Message(); got != tt.wantMessage {
				t.Errorf("Message() = %q, want %q", got, tt.wantMessage)
			}
			if got := err.Error(); got != tt.wantError {
				t.Errorf("Error() = %q, want %q", got, tt.wantError)
			}
			if got := IsTransient(err); got != tt.wantTransient {
				t.Errorf("IsTransient = %v, want %v", got, tt.wantTransient)
			}
			if (tt.wantSentinel == ErrThrottled) != !er.RetryAt.IsZero() {
				t.Errorf("RetryAt = %v for sentinel %v", er.RetryAt, tt.wantSentinel)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "s1") {
				t.Errorf("Error() leaks token or id: %q", err.Error())
			}
		})
	}
}

func TestRetryAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 10, 17, 23, 0, time.UTC)
	nextHour := time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name, retryAfter string
		status           int
		want             time.Time
	}{
		{name: "no header: next hour", status: 503, want: nextHour},
		{name: "seconds", status: 503, retryAfter: "120", want: now.Add(120 * time.Second)},
		{name: "zero seconds", status: 429, retryAfter: "0", want: now},
		{name: "HTTP date", status: 503, retryAfter: "Wed, 04 Mar 2026 10:30:00 GMT", want: time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)},
		{name: "garbage: next hour", status: 503, retryAfter: "soon", want: nextHour},
		{name: "negative: next hour", status: 429, retryAfter: "-5", want: nextHour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, api := setup(t, withClock(func() time.Time { return now }))
			api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				writeJSON(w, tt.status, `{"error":"throttled"}`)
			})
			_, err := c.ListStacks(context.Background())
			var er *ErrorResponse
			if !errors.As(err, &er) || !errors.Is(err, ErrThrottled) {
				t.Fatalf("err = %v, want throttled *ErrorResponse", err)
			}
			if !er.RetryAt.Equal(tt.want) {
				t.Errorf("RetryAt = %v, want %v", er.RetryAt, tt.want)
			}
		})
	}
}

func TestRetryAtNotSetWhenNotThrottled(t *testing.T) {
	t.Parallel()
	c, api := setup(t, WithRetry(0, 0))
	api.HandleFunc("GET /stacks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		writeJSON(w, 503, `{"error":"maintenance"}`)
	})
	_, err := c.ListStacks(context.Background())
	var er *ErrorResponse
	if !errors.As(err, &er) || !er.RetryAt.IsZero() {
		t.Fatalf("err = %v, RetryAt must stay zero", err)
	}
}

func TestErrorResponseBuiltByHand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    *ErrorResponse
		want error
	}{
		{&ErrorResponse{StatusCode: 503, Code: "throttled"}, ErrThrottled},
		{&ErrorResponse{StatusCode: 503, Details: "You have been throttled"}, ErrThrottled},
		{&ErrorResponse{StatusCode: 429}, ErrThrottled},
		{&ErrorResponse{StatusCode: 401}, ErrUnauthorized},
		{&ErrorResponse{StatusCode: 500, Code: "throttled"}, nil},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("wrapped: %w", tt.e)
		for _, s := range sentinels {
			if got, want := errors.Is(wrapped, s), s == tt.want; got != want {
				t.Errorf("%+v: errors.Is(%v) = %v, want %v", tt.e, s, got, want)
			}
		}
	}
	long := &ErrorResponse{StatusCode: 400, Method: "GET", Endpoint: "/stacks", Details: strings.Repeat("é", 600)}
	if msg := long.Error(); len(msg) > 600 || !strings.HasSuffix(msg, "…") {
		t.Errorf("long message not truncated: %d bytes", len(msg))
	}
	if (&ErrorResponse{StatusCode: 599}).Message() != "unknown error" {
		t.Error("unknown status message")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"canceled", context.Canceled, false},
		{"wrapped canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", context.DeadlineExceeded, true},
		{"net timeout", fmt.Errorf("x: %w", timeoutErr{}), true},
		{"op error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"conn reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"unexpected EOF", fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{"dns temporary", &net.DNSError{Err: "server misbehaving", Name: "app.cloud66.com"}, true},
		{"dns not found", &net.DNSError{Err: "no such host", Name: "app.cloud66.com", IsNotFound: true}, false},
		{"arg error", &ArgError{Arg: "uid", Reason: "empty"}, false},
		{"500", &ErrorResponse{StatusCode: 500}, true},
		{"504", &ErrorResponse{StatusCode: 504}, true},
		{"501", &ErrorResponse{StatusCode: 501}, false},
		{"408", &ErrorResponse{StatusCode: 408}, true},
		{"404", &ErrorResponse{StatusCode: 404}, false},
		{"throttled", &ErrorResponse{StatusCode: 503, Code: "throttled"}, false},
		{"429", &ErrorResponse{StatusCode: 429}, false},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.want {
			t.Errorf("%s: IsTransient(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestInsufficientScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		header    string // WWW-Authenticate
		body      string
		wantScope string
		wantOK    bool
	}{
		{
			name: "Doorkeeper body", status: 403,
			body:   `{"error":"insufficient_scope","error_description":"Access to this resource requires scope \"redeploy\"."}`,
			wantOK: true, wantScope: "redeploy",
		},
		{
			name: "Doorkeeper challenge with scope", status: 403,
			header: `Bearer realm="Doorkeeper", error="insufficient_scope", error_description="The request requires higher privileges, see scope", scope="redeploy"`,
			body:   `{"error":"forbidden"}`, wantOK: true, wantScope: "redeploy",
		},
		{
			name: "challenge without scope, body names none", status: 403,
			header: `Bearer error=insufficient_scope`, body: `{"error":"forbidden","error_description":"Forbidden"}`,
			wantOK: true,
		},
		{
			name: "body scope field", status: 403,
			body:   `{"error":"insufficient_scope","scope":"public  admin"}`,
			wantOK: true, wantScope: "public admin",
		},
		{
			name: "challenge scope wins over the message", status: 403,
			header: `Bearer scope="reboot", error="insufficient_scope"`,
			body:   `{"error":"insufficient_scope","error_description":"requires scope \"redeploy\""}`,
			wantOK: true, wantScope: "reboot",
		},
		{
			name: "Cloud 66's docs wording", status: 403,
			body:   `{"error":"forbidden","details":"Token lacks the redeploy scope"}`,
			wantOK: true, wantScope: "redeploy",
		},
		{
			name: "the docs' accounts wording", status: 403,
			body:   "{\"error\":\"forbidden\",\"error_description\":\"Token lacks required `users` scope or user lacks account access\"}",
			wantOK: true, wantScope: "users",
		},
		{
			name: "a quoted scope value with a comma and an escape", status: 403,
			header: `Bearer realm="a, b", error="insufficient_scope", scope="re\"deploy"`, body: `x`,
			wantOK: true, wantScope: `re"deploy`,
		},
		{name: "plain 403", status: 403, body: `{"error":"forbidden","error_description":"You are not a member of this stack"}`},
		{name: "non-JSON 403", status: 403, body: `<html>Forbidden</html>`},
		{name: "a Basic challenge is not read", status: 403, header: `Basic error="insufficient_scope"`, body: `{}`},
		{name: "401 says nothing of scope", status: 401, header: `Bearer error="insufficient_scope"`, body: `{"error":"insufficient_scope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, api := setup(t)
			api.HandleFunc("POST /stacks/st1/actions.json", func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("WWW-Authenticate", tt.header)
				}
				writeJSON(w, tt.status, tt.body)
			})
			_, err := c.RunStackAction(context.Background(), "st1", StackActionRequest{Command: CommandRestart})
			var er *ErrorResponse
			if !errors.As(err, &er) {
				t.Fatalf("err = %v", err)
			}
			scope, ok := er.InsufficientScope()
			if scope != tt.wantScope || ok != tt.wantOK {
				t.Errorf("InsufficientScope() = %q, %v; want %q, %v", scope, ok, tt.wantScope, tt.wantOK)
			}
			if errors.Is(err, ErrInsufficientScope) != tt.wantOK {
				t.Errorf("errors.Is(err, ErrInsufficientScope) = %v", !tt.wantOK)
			}
			if errors.Is(err, ErrForbidden) != (tt.status == 403) {
				t.Errorf("errors.Is(err, ErrForbidden) = %v", tt.status != 403)
			}
		})
	}
	// Built by hand, as commands' tests do, it reads the same.
	byHand := &ErrorResponse{StatusCode: 403, Code: "forbidden", Description: "token lacks required scope redeploy"}
	if scope, ok := byHand.InsufficientScope(); !ok || scope != "redeploy" {
		t.Errorf("by hand: %q, %v", scope, ok)
	}
}
