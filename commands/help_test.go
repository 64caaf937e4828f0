package commands

import (
	"slices"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/deploy"
)

// Help lists a verb's commands only to someone the policy could let use
// that verb (deploy, cancel, lock and unlock go with deploy), and the
// commands of no verb to everyone.
func TestHelpListsTheVerbsThePolicyAllows(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		mayUse  []deploy.Verb // nil: every verb
		noFlow  bool          // no deploy workflow: nothing to ask
		listed  []string
		missing []string
	}{
		{name: "every verb", listed: []string{"deploy", "cancel", "lock", "unlock", "rollback", "restart", "maintenance", "reboot"}},
		{name: "no verb", mayUse: []deploy.Verb{},
			missing: []string{"deploy", "cancel", "lock", "unlock", "rollback", "restart", "maintenance", "reboot"}},
		{name: "deploy only", mayUse: []deploy.Verb{deploy.VerbDeploy},
			listed: []string{"deploy", "cancel", "lock", "unlock"}, missing: []string{"rollback", "restart", "maintenance", "reboot"}},
		{name: "restart only", mayUse: []deploy.Verb{deploy.VerbRestart},
			listed: []string{"restart"}, missing: []string{"deploy", "cancel", "lock", "unlock", "rollback", "maintenance", "reboot"}},
		{name: "rollback and reboot", mayUse: []deploy.Verb{deploy.VerbRollback, deploy.VerbReboot},
			listed: []string{"rollback", "reboot"}, missing: []string{"deploy", "cancel", "lock", "unlock", "restart", "maintenance"}},
		{name: "maintenance", mayUse: []deploy.Verb{deploy.VerbMaintenance},
			listed: []string{"maintenance"}, missing: []string{"deploy", "rollback", "restart", "reboot"}},
		{name: "without a deploy workflow", noFlow: true, listed: []string{"deploy", "rollback", "restart", "maintenance", "reboot"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{mayUse: tt.mayUse}
			r, _ := newTestRouter(t, true, &fakeCloud66{}, func(deps *Deps) {
				if !tt.noFlow {
					deps.Deploy = d
				}
			})
			got := replyText(t, send(t, r, "help"))
			shown := func(name string) bool {
				c, ok := r.Lookup(name)
				if !ok {
					t.Fatalf("no command %q", name)
				}
				return strings.Contains(got, "`"+usage("/c66", c)+"` — ")
			}
			for _, name := range tt.listed {
				if !shown(name) {
					t.Errorf("help lacks %s:\n%s", name, got)
				}
			}
			for _, name := range tt.missing {
				if shown(name) {
					t.Errorf("help shows %s:\n%s", name, got)
				}
			}
			for _, c := range r.Commands() {
				if c.Verb == "" && !shown(c.Name) {
					t.Errorf("help lacks %s, which is no verb's:\n%s", c.Name, got)
				}
			}
		})
	}
}

// The commands of each verb are the ones help hides with it.
func TestCommandsOfEachVerb(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, false, &fakeCloud66{})
	got := map[string][]string{}
	for _, c := range r.Commands() {
		if c.Verb != "" {
			got[c.Verb] = append(got[c.Verb], c.Name)
		}
	}
	want := map[string][]string{
		"deploy": {"deploy", "cancel", "lock", "unlock"}, "rollback": {"rollback"}, "restart": {"restart"},
		"maintenance": {"maintenance"}, "reboot": {"reboot"},
	}
	for v, names := range want {
		if !slices.Equal(got[v], names) {
			t.Errorf("verb %s: commands %v, want %v", v, got[v], names)
		}
	}
	for v := range got {
		if !slices.Contains(deploy.Verbs(), deploy.Verb(v)) {
			t.Errorf("command verb %q is no deploy.Verb", v)
		}
	}
}
