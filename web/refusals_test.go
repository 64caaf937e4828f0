package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ remote, xff, want string }{
		{"192.0.2.7:51000", "", "192.0.2.7"},
		{"192.0.2.7:51000", "10.9.9.9", "192.0.2.7"}, // a header the client writes is not who it is
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "", "2001:db8:1:2::/64"}, // the same /64
		{"[::ffff:192.0.2.7]:80", "", "192.0.2.7"},
		{"@", "", "@"}, // a Unix socket or anything unparsable: as it is
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientKey(r); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

func TestRefusalLimiter(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	l := newRefusalLimiter(RefusalLimits{Burst: 2, PerMinute: 60, Addresses: 3, LogEvery: time.Minute}, slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	// Asking about an address never seen neither limits nor stores it.
	if d := l.retryAfter("a", now); d != 0 || l.lru.Len() != 0 {
		t.Fatalf("unknown address: %v, table %d", d, l.lru.Len())
	}
	l.refuse(refusedWebhookSecret, "a", now)
	if d := l.retryAfter("a", now); d != 0 {
		t.Errorf("within the burst: retry after %v", d)
	}
	l.refuse(refusedWebhookSecret, "a", now)
	if d := l.retryAfter("a", now); d != time.Second {
		t.Errorf("over the burst at one a second: retry after %v, want 1s", d)
	}
	if d := l.retryAfter("a", now.Add(time.Second)); d != 0 {
		t.Errorf("a second later: retry after %v", d)
	}

	// A thousand addresses fit in a table of three.
	for i := range 1000 {
		l.refuse(refusedAPIToken, fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
	}
	if l.lru.Len() != 3 || len(l.clients) != 3 {
		t.Errorf("table holds %d (%d), want 3", l.lru.Len(), len(l.clients))
	}
	if _, ok := l.clients["a"]; ok {
		t.Error("the least recently seen address was kept")
	}

	// The log: the first of each kind at once, the rest as one count.
	l.report()
	l.report() // nothing new: nothing logged
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d log lines, want 4:\n%s", len(lines), logs.String())
	}
	for _, want := range []string{"kind=webhook_secret count=1", "kind=api_token count=999"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
