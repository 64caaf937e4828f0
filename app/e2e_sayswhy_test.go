package app_test

// Saying why, end to end: a Slack that cannot be reached is logged with the
// cause of each failed attempt.

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/app"
)

// With Slack unreachable, each failed connection attempt is logged with its
// cause, the host and the attempt number, and after a few the log points at
// c66bot doctor.
func TestE2ESocketConnectionErrorsSayWhy(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "c66sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	logs := &syncBuffer{}
	cfg := botConfig(filepath.Join(dir, "c66bot.db"))
	cfg.Settings.SlackAPIURL = "http://127.0.0.1:1/api/" // nothing listens there
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	b, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitUntil(t, 20*time.Second, "a third failed attempt in the log", func() bool { return strings.Contains(logs.String(), `"attempt":3`) })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	var lines []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "slack socket connection failed; retrying" {
			lines = append(lines, m)
		}
	}
	if len(lines) < 3 {
		t.Fatalf("%d connection failures logged:\n%s", len(lines), logs)
	}
	for i, m := range lines[:3] {
		if m["host"] != "127.0.0.1:1" || m["cause"] != "dial" || !strings.Contains(m["error"].(string), "connection refused") || m["attempt"] != float64(i+1) {
			t.Errorf("failure %d logged as %v", i+1, m)
		}
		hint, _ := m["hint"].(string)
		if (i+1 >= 3) != strings.Contains(hint, "c66bot doctor") {
			t.Errorf("attempt %d: hint %q", i+1, hint)
		}
	}
	if strings.Contains(logs.String(), cfg.Settings.SlackAppToken) {
		t.Error("the app token reached the log")
	}
}

// Slack answering apps.connections.open with a 5xx is logged as such.
func TestE2ESocketHTTPErrorIsLogged(t *testing.T) {
	t.Parallel()
	h := startHarnessWith(t, harnessOptions{}, func(h *harness, c *app.Config) {
		h.slack.FailConnectionsOpen("", 2)
	})
	logs := h.logs.String()
	for _, want := range []string{`"cause":"http_status"`, `"error":"Slack answered HTTP 500"`, `"attempt":2`} {
		mustContain(t, logs, want)
	}
	if strings.Contains(logs, "c66bot doctor") {
		t.Error("two failures already point at doctor")
	}
}
