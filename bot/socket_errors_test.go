package bot

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestDescribeNetError(t *testing.T) {
	t.Parallel()
	wsURL := "wss://wss-primary.slack.com/link/?ticket=c66-secret-ticket&app_id=A1"
	tests := []struct {
		name string
		err  error
		kind string
		want string
	}{
		{"dns", &url.Error{Op: "Post", URL: "https://slack.com/api/apps.connections.open", Err: &net.DNSError{Err: "no such host", Name: "slack.com", IsNotFound: true}},
			"dns", "lookup slack.com: no such host"},
		{"tls", &url.Error{Op: "Post", URL: "https://slack.com/api/apps.connections.open", Err: x509.UnknownAuthorityError{}},
			"tls", "certificate signed by unknown authority"},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, "dial", "connection refused"},
		{"http status", slack.StatusCodeError{Code: 502, Status: "502 Bad Gateway"}, "http_status", "Slack answered HTTP 502"},
		{"slack error", slack.SlackErrorResponse{Err: "internal_error"}, "slack_error", "Slack answered internal_error"},
		{"rate limited", &slack.RateLimitedError{RetryAfter: 3 * time.Second}, "rate_limited", "next try in 3s"},
		{"websocket", fmt.Errorf("dial %s: %w", "the link", errors.New("websocket: bad handshake")), "websocket", "bad handshake"},
		{"a url with a ticket", &url.Error{Op: "Get", URL: wsURL, Err: errors.New("unexpected EOF")}, "other", "Get: unexpected EOF"},
	}
	for _, tc := range tests {
		kind, detail := describeNetError(tc.err)
		if kind != tc.kind || !strings.Contains(detail, tc.want) {
			t.Errorf("%s: describeNetError = %q, %q; want %q containing %q", tc.name, kind, detail, tc.kind, tc.want)
		}
		if strings.Contains(detail, "ticket") {
			t.Errorf("%s: the connection ticket reached the text: %q", tc.name, detail)
		}
	}
}

func TestSocketRunError(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid_auth", "token_revoked", "account_inactive", "not_authed"} {
		err := socketRunError(slack.SlackErrorResponse{Err: code})
		var ae *SlackAuthError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "SLACK_APP_TOKEN ("+code+")") || !strings.Contains(err.Error(), "App-Level Tokens") {
			t.Errorf("%s: %v", code, err)
		}
	}
	if err := socketRunError(slack.StatusCodeError{Code: 404}); !strings.Contains(err.Error(), "Socket Mode is on") {
		t.Errorf("404: %v", err)
	}
	var ae *SlackAuthError
	if err := socketRunError(errors.New("boom")); errors.As(err, &ae) || err.Error() != "slack socket mode: boom" {
		t.Errorf("other: %v", err)
	}
}
