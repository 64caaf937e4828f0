package commands

import (
	"strings"
	"testing"
)

// A command's help and its usage reply never show the usage line again as
// an example: `/c66 locks` under `/c66 locks` teaches nothing.
func TestHelpDropsExamplesThatRepeatTheUsage(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, true, &fakeCloud66{})
	for _, tt := range []struct {
		text      string
		want      []string
		wantNot   []string
		noExample bool
	}{
		{text: "help locks", want: []string{"`/c66 locks`"}, noExample: true},
		{text: "help whoami", want: []string{"`/c66 whoami`"}, noExample: true},
		{text: "help stacks", want: []string{"*Examples*", "`/c66 stacks`", "`/c66 stacks production`"}},
		{text: "locks now", want: []string{"Usage: `/c66 locks`."}, wantNot: []string{"for example"}},
	} {
		got := replyText(t, send(t, r, tt.text))
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: reply lacks %q:\n%s", tt.text, w, got)
			}
		}
		for _, w := range tt.wantNot {
			if strings.Contains(got, w) {
				t.Errorf("%s: reply has %q:\n%s", tt.text, w, got)
			}
		}
		if tt.noExample && (strings.Contains(got, "Examples") || strings.Count(got, "`/c66 ") != 1) {
			t.Errorf("%s: the usage line is repeated as an example:\n%s", tt.text, got)
		}
	}
}
