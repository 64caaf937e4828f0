package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestDocsExamples parses every YAML example in docs/policy.md, so the
// documentation cannot show a file the bot would refuse, and checks that
// the on-call example decides what the text under it says.
func TestDocsExamples(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1)
	if len(blocks) != 2 {
		t.Fatalf("docs/policy.md has %d YAML examples, want 2 (the reference and on-call)", len(blocks))
	}
	for i, b := range blocks {
		if _, err := Parse("docs/policy.md", b[1]); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
	oncall, err := Parse("docs/policy.md", blocks[1][1])
	if err != nil {
		t.FailNow()
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	saturday := time.Date(2026, 1, 3, 12, 0, 0, 0, london)
	carol := Subject{User: "U0CAROL", Groups: []string{"S0ONCALL"}, Channel: "C0INCIDENTS"}
	prod := func(action string) Target { return Target{"shop", "production", action} }
	tests := []struct {
		name    string
		t       Target
		allowed bool
		reason  string
		frozen  bool
	}{
		{"on-call restart at the weekend", prod(ActionRestart), true, "", false},
		{"on-call maintenance", prod(ActionMaintenance), true, "", false},
		{"on-call deploy", prod(ActionDeploy), false, "rule shop-releases lets only its deployers deploy shop · production", true},
		{"on-call reboot", prod(ActionReboot), false, "rule shop-reboots lets only its deployers reboot servers of shop · production", false},
		{"staging falls through to the default", Target{"shop", "staging", ActionDeploy}, true, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := oncall.Decide(carol, tt.t, saturday)
			if d.Allowed != tt.allowed || d.Reason != tt.reason || (d.Freeze != nil) != tt.frozen {
				t.Errorf("Decide(%+v) = %+v, want allowed %v, reason %q, frozen %v", tt.t, d, tt.allowed, tt.reason, tt.frozen)
			}
		})
	}
}
