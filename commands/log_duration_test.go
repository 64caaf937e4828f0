package commands

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Every command's log line says how long it took with a unit ("883µs"),
// not as raw nanoseconds: done, failed and not understood alike.
func TestCommandLogsTookWithAUnit(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()}, func(deps *Deps) {
		deps.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	for _, text := range []string{"stacks", "stack nosuch", "stakcs", "locks now"} {
		send(t, r, text)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	seen := 0
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		took, ok := rec["took"]
		if !ok {
			continue
		}
		seen++
		s, isString := took.(string)
		if _, err := time.ParseDuration(s); !isString || err != nil {
			t.Errorf("took = %#v in %s, want a duration with its unit", took, line)
		}
	}
	if seen != 4 {
		t.Errorf("%d log lines carry took, want 4:\n%s", seen, strings.Join(lines, "\n"))
	}
}
