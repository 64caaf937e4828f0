package policy

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// FuzzParse feeds Parse arbitrary bytes. The seed corpus is in
// testdata/fuzz/FuzzParse. A policy file is written by hand and read at
// start-up, so a crash on a bad one would take the bot down with a stack
// trace instead of a line naming the problem; and whatever Parse accepts,
// Decide and the other questions must answer without panicking.
func FuzzParse(f *testing.F) {
	// Each target is asked about with every verb, no verb (a deploy) and a
	// word that is no verb.
	targets := []Target{{"shop", "production", ""}, {"Shop-EU", "staging", ""}, {"", "", ""}, {"a/b", "qa", ""}}
	actions := append(Actions(), "", "cancel")
	subjects := []Subject{
		{User: "U0ALICE", Groups: []string{"S0OPS"}, Channel: "C0DEPLOYS"},
		{User: "U0BOSS"},
		{},
	}
	times := []time.Time{
		time.Date(2026, 1, 2, 16, 0, 0, 0, time.UTC),   // a Friday afternoon
		time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), // London's clocks go back
		time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC),  // London's clocks go forward
		time.Date(2026, 11, 1, 6, 15, 0, 0, time.UTC),  // New York's clocks go back
	}
	// Random bytes seldom make a policy Parse accepts, so the input is also
	// dropped, as a YAML double-quoted string (Go's quoting is a subset of
	// YAML's escapes), into the value slots that take free text: that runs
	// validation and Decide on odd globs, zones, week times and names.
	templates := []string{
		"rules:\n  - name: %[1]s\n    stacks: %[1]s\n    environments: [%[1]s]\n    deployers: [S0OPS]\n    approvals: 1\n",
		"freeze:\n  - name: f\n    from: %[1]s\n    to: \"Mon 08:00\"\n    timezone: UTC\n    stacks: %[1]s\n",
		"freeze:\n  - name: f\n    from: \"Fri 16:00\"\n    to: %[1]s\n    timezone: %[1]s\n    environments: [%[1]s]\n",
		"rules:\n  - name: r\n    actions: [%[1]s]\n    deployers: [U0ALICE]\nfreeze:\n  - name: f\n    from: \"Fri 16:00\"\n    to: \"Mon 08:00\"\n    timezone: UTC\n    actions: [restart, %[1]s]\n",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(name string, data []byte, extra Target) {
			p, err := Parse(name, data)
			if err != nil {
				var pe *Error
				if !errors.As(err, &pe) || pe.File != name || pe.Line < 0 || pe.Problem == "" {
					t.Fatalf("Parse error %#v is not a complete *Error", err)
				}
				return
			}
			if p.Source != name {
				t.Fatalf("Source = %q", p.Source)
			}
			for _, r := range p.Rules {
				if r.Name == "" || r.Approvals < 0 || r.Approvals > maxApprovals || r.Line < 1 || !allActions(r.Actions) {
					t.Fatalf("accepted a bad rule %+v", r)
				}
			}
			for _, fr := range p.Freezes {
				if fr.Name == "" || fr.From == fr.To || fr.Location == nil || fr.Line < 1 || !allActions(fr.Actions) {
					t.Fatalf("accepted a bad freeze %+v", fr)
				}
			}
			p.GroupIDs()
			for _, s := range subjects {
				if p.MayDeploySomewhere(s) != p.MayUse(s, ActionDeploy) {
					t.Fatalf("MayDeploySomewhere(%+v) and MayUse(deploy) differ", s)
				}
				p.IsAdmin(s.User, s.Groups)
				for _, r := range p.Rules {
					p.CanApprove(s, r.Name, "U0ALICE")
				}
				for _, a := range actions {
					mayUse := p.MayUse(s, a)
					for _, tg := range append(targets, extra) {
						tg.Action = a
						for _, now := range times {
							d := p.Decide(s, tg, now)
							if d.Allowed == (d.Reason != "") {
								t.Fatalf("Decide(%+v, %+v) = %+v: Reason must be set exactly when refused", s, tg, d)
							}
							if d.Allowed && !mayUse {
								t.Fatalf("Decide(%+v, %+v) allowed, but MayUse(%q) = false", s, tg, a)
							}
							if d.Freeze != nil && !d.Freeze.Until.After(now) {
								t.Fatalf("Decide(%+v, %+v, %v): freeze %+v does not end after now", s, tg, now, d.Freeze)
							}
						}
					}
				}
			}
		}
		text := string(data)
		check("fuzz.yaml", data, Target{StackName: text, Environment: text})
		for i, tmpl := range templates {
			check(fmt.Sprintf("template%d.yaml", i), fmt.Appendf(nil, tmpl, strconv.Quote(text)), Target{StackName: text, Environment: text})
		}
	})
}

// allActions reports whether every item is one of Actions, as Parse keeps
// them (lower case).
func allActions(list []string) bool {
	for _, a := range list {
		if !IsAction(a) {
			return false
		}
	}
	return true
}
