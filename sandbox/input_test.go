package sandbox

import (
	"strings"
	"testing"
)

func TestCleanLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "/c66 deploy shop:staging", "/c66 deploy shop:staging"},
		{"arrow keys", "/c66 st\x1b[Dacks\x1b[A\x1b[B", "/c66 stacks"},
		{"modified arrow", "stacks\x1b[1;5C", "stacks"},
		{"SS3 keys", "\x1bOAstacks\x1bOP", "stacks"},
		{"Alt+key", "\x1bbstacks", "stacks"},
		{"OSC title", "\x1b]0;title\x07stacks\x1b]2;x\x1b\\", "stacks"},
		{"one-character CSI", "st\u009b2~acks", "stacks"},
		{"backspace erases", "stakcs\b\b\bcks", "stacks"},
		{"DEL erases", "stackz\x7fs", "stacks"},
		{"backspace at start", "\b\x7fhelp", "help"},
		{"tab is a space", "deploy\tshop", "deploy shop"},
		{"CR and other controls", "help\x00\x07\r", "help"},
		{"lone ESC at the end", "help\x1b", "help"},
		{"invalid UTF-8", "he\xfflp", "help"},
		{"emoji kept", "lock shop reason=🚀 release", "lock shop reason=🚀 release"},
		{"backspace erases a whole character", "shop·\b", "shop"},
	} {
		if got := cleanLine(tc.in); got != tc.want {
			t.Errorf("%s: cleanLine(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestConsoleStripsControlCharacters(t *testing.T) {
	t.Parallel()
	tm, _ := startConsole(t)
	tm.expect("ana in #general> ")
	tm.typeLine("/c66 hel\x1b[A\x1b[Dp\x1b[3~")
	// The prompt was shown before the line was typed: the echo follows.
	got := tm.expect("Cloud 66 from Slack")
	if !strings.HasPrefix(got, "/c66 help\n") {
		t.Errorf("the line was echoed as %q, want /c66 help", strings.SplitN(got, "\n", 2)[0])
	}
	if i := strings.Index(got, "\x1b"); i >= 0 {
		t.Errorf("an escape reached the output at %d:\n%q", i, got)
	}
	tm.typeLine(":usex\br ben")
	tm.expect("Now typing as @ben")
}
