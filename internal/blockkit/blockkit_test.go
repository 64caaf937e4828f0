package blockkit

import (
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
)

func TestEscapeAndCode(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, esc, code string }{
		{"shop", "shop", "`shop`"},
		{"<!channel> & <@U1>", "&lt;!channel&gt; &amp; &lt;@U1&gt;", "`&lt;!channel&gt; &amp; &lt;@U1&gt;`"},
		{"<https://evil.example|click>", "&lt;https://evil.example|click&gt;", "`&lt;https://evil.example|click&gt;`"},
		{"a`b", "a`b", "`a'b`"},
	}
	for _, tt := range tests {
		if got := Esc(tt.in); got != tt.esc {
			t.Errorf("Esc(%q) = %q, want %q", tt.in, got, tt.esc)
		}
		if got := Code(tt.in); got != tt.code {
			t.Errorf("Code(%q) = %q, want %q", tt.in, got, tt.code)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	if got := Truncate("héllo wörld", 5); got != "héll…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate("short", 10); got != "short" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate(strings.Repeat("x", 5000), MaxSectionText); len([]rune(got)) != MaxSectionText {
		t.Errorf("Truncate to the section limit gave %d runes", len([]rune(got)))
	}
}

func TestDurationAgoDate(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		42 * time.Second:              "42 s",
		3*time.Minute + 5*time.Second: "3 min 05 s",
		time.Hour + 2*time.Minute:     "1 h 02 min",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", 5 * time.Minute: "5 min ago", 2 * time.Hour: "2 h ago", 72 * time.Hour: "3 days ago",
	} {
		if got := Ago(now, now.Add(-d)); got != want {
			t.Errorf("Ago(-%v) = %q, want %q", d, got, want)
		}
	}
	if got := Date(now, "{time}"); got != "<!date^1795435200^{time}|2026-11-23 12:00 UTC>" {
		t.Errorf("Date = %q", got)
	}
}

func TestStatesAreWordsWithEmoji(t *testing.T) {
	t.Parallel()
	if got := StatusText(cloud66.StatusFailed); got != ":x: Deployment failed" {
		t.Errorf("StatusText = %q", got)
	}
	if got := HealthText(cloud66.HealthImpaired); got != ":large_yellow_circle: Impaired" {
		t.Errorf("HealthText = %q", got)
	}
	if got := StackLabel(cloud66.Stack{Name: "<!here>", Environment: "prod"}); got != "*&lt;!here&gt;* · prod" {
		t.Errorf("StackLabel = %q", got)
	}
	if got := Fields("a", "", "b"); len(got.Fields) != 2 {
		t.Errorf("Fields kept %d", len(got.Fields))
	}
}
