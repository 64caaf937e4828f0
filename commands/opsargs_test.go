package commands

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

func TestParseOpsArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		verb    deploy.Verb
		in      string
		want    OpsArgs
		problem string
	}{
		// rollback <stack> [to=…] [lock=yes|no]
		{verb: deploy.VerbRollback, in: "shop", want: OpsArgs{Stack: "shop"}},
		{verb: deploy.VerbRollback, in: "shop to=1002 lock=no", want: OpsArgs{Stack: "shop", Options: map[string]string{"to": "1002", "lock": "no"}}},
		{verb: deploy.VerbRollback, in: "shop:production TO=abc1234 LOCK=Yes", want: OpsArgs{Stack: "shop:production", Options: map[string]string{"to": "abc1234", "lock": "Yes"}}},
		{verb: deploy.VerbRollback, in: "shop env=staging to=1002", want: OpsArgs{Stack: "shop:staging", Options: map[string]string{"to": "1002"}}},
		{verb: deploy.VerbRollback, in: "shop lock=maybe", problem: "`lock` is `yes` or `no`, not `maybe`."},
		{verb: deploy.VerbRollback, in: "shop to=1 to=2", problem: "`to` is given twice."},
		{verb: deploy.VerbRollback, in: "shop to=1 TO=1", problem: "`to` is given twice."},
		{verb: deploy.VerbRollback, in: "shop to=", problem: "`to` is empty."},
		{verb: deploy.VerbRollback, in: "shop service=web", problem: "Unknown option `service`; the keys are `to`, `lock`, `env`."},
		{verb: deploy.VerbRollback, in: "shop 1002", problem: "I don't understand `1002`."},
		{verb: deploy.VerbRollback, in: "to=1002", problem: "Which stack?"},
		{verb: deploy.VerbRollback, in: "", problem: "Which stack?"},
		{verb: deploy.VerbRollback, in: `"" to=1002`, problem: "Which stack?"},

		// restart <stack> [service=…]
		{verb: deploy.VerbRestart, in: "shop:staging", want: OpsArgs{Stack: "shop:staging"}},
		{verb: deploy.VerbRestart, in: "api service=web", want: OpsArgs{Stack: "api", Options: map[string]string{"service": "web"}}},
		{verb: deploy.VerbRestart, in: "api Service=web env=production", want: OpsArgs{Stack: "api:production", Options: map[string]string{"service": "web"}}},
		{verb: deploy.VerbRestart, in: "api service=web extra", problem: "I don't understand `extra`."},
		{verb: deploy.VerbRestart, in: "api web", problem: "I don't understand `web`."},
		{verb: deploy.VerbRestart, in: "api service=web service=worker", problem: "`service` is given twice."},
		{verb: deploy.VerbRestart, in: "api service=", problem: "`service` is empty."},
		{verb: deploy.VerbRestart, in: "api services=web", problem: "Unknown option `services`; the keys are `service`, `env`."},
		{verb: deploy.VerbRestart, in: "api colour=<!channel>", problem: "Unknown option `colour`"},

		// maintenance <stack> on|off
		{verb: deploy.VerbMaintenance, in: "shop on", want: OpsArgs{Stack: "shop", Words: []string{"on"}}},
		{verb: deploy.VerbMaintenance, in: "shop OFF", want: OpsArgs{Stack: "shop", Words: []string{"OFF"}}},
		{verb: deploy.VerbMaintenance, in: "shop on env=production", want: OpsArgs{Stack: "shop:production", Words: []string{"on"}}},
		{verb: deploy.VerbMaintenance, in: "shop", problem: "Something is missing."},
		{verb: deploy.VerbMaintenance, in: "shop env=production", problem: "Something is missing."},
		{verb: deploy.VerbMaintenance, in: "shop maybe", problem: "Maintenance mode is `on` or `off`, not `maybe`."},
		{verb: deploy.VerbMaintenance, in: "shop <!here>", problem: "not `&lt;!here&gt;`."},
		{verb: deploy.VerbMaintenance, in: "shop on off", problem: "I don't understand `off`."},
		{verb: deploy.VerbMaintenance, in: "shop env=production on", problem: "I don't understand `on`."},
		{verb: deploy.VerbMaintenance, in: "shop on value=1", problem: "Unknown option `value`; the keys are `env`."},

		// reboot <stack> <server> | <stack> group=… [strategy=…]
		{verb: deploy.VerbReboot, in: "shop web1", want: OpsArgs{Stack: "shop", Words: []string{"web1"}}},
		{verb: deploy.VerbReboot, in: "shop group=web strategy=serial", want: OpsArgs{Stack: "shop", Options: map[string]string{"group": "web", "strategy": "serial"}}},
		{verb: deploy.VerbReboot, in: "shop group=db", want: OpsArgs{Stack: "shop", Options: map[string]string{"group": "db"}}},
		{verb: deploy.VerbReboot, in: "shop web1 env=production", want: OpsArgs{Stack: "shop:production", Words: []string{"web1"}}},
		{verb: deploy.VerbReboot, in: "shop web1 group=web", problem: "Name one server, or a `group=`, not both."},
		{verb: deploy.VerbReboot, in: "shop group=web web1", problem: "I don't understand `web1`."},
		{verb: deploy.VerbReboot, in: "shop", problem: "Which server? Name one, or a group with `group=web`"},
		{verb: deploy.VerbReboot, in: "shop strategy=serial", problem: "Which server?"},
		{verb: deploy.VerbReboot, in: "shop web1 strategy=parallel", problem: "`strategy` is for a group of servers; one server simply reboots."},
		{verb: deploy.VerbReboot, in: "shop web1 web2", problem: "I don't understand `web2`."},
		{verb: deploy.VerbReboot, in: "shop group=web group=db", problem: "`group` is given twice."},
		{verb: deploy.VerbReboot, in: "shop group=", problem: "`group` is empty."},
		{verb: deploy.VerbReboot, in: "shop server=web1", problem: "Unknown option `server`; the keys are `group`, `strategy`, `env`."},

		// env=, for every verb alike.
		{verb: deploy.VerbRestart, in: "shop:production env=staging", problem: "The environment is given twice (`name:env` and `env=`)."},
		{verb: deploy.VerbRestart, in: "shop env=staging env=production", problem: "`env` is given twice."},
		{verb: deploy.VerbRestart, in: "shop env=", problem: "`env` is empty."},
		{verb: deploy.VerbRestart, in: "shop env=a=b", problem: "The environment `a=b` isn't an environment's name."},
		{verb: deploy.VerbRollback, in: "shop env=staging:x", problem: "The environment `staging:x` isn't an environment's name."},
		{verb: deploy.VerbReboot, in: "shop:production web1 env=production", problem: "The environment is given twice"},
	}
	for _, tt := range tests {
		t.Run(string(tt.verb)+" "+tt.in, func(t *testing.T) {
			t.Parallel()
			words, err := Split(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseOpsArgs(tt.verb, words)
			if tt.problem != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(ue.Problem, tt.problem) {
					t.Fatalf("ParseOpsArgs(%s, %q) = %+v, %v; want a usage error containing %q", tt.verb, tt.in, got, err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOpsArgs(%s, %q): %v", tt.verb, tt.in, err)
			}
			if got.Stack != tt.want.Stack || !slices.Equal(got.Words, tt.want.Words) || !maps.Equal(got.Options, tt.want.Options) {
				t.Fatalf("ParseOpsArgs(%s, %q) = %+v, want %+v", tt.verb, tt.in, got, tt.want)
			}
		})
	}
}

// A verb without a grammar is a programming error, not a person's.
func TestParseOpsArgsRefusesAVerbWithoutGrammar(t *testing.T) {
	t.Parallel()
	for _, v := range []deploy.Verb{deploy.VerbDeploy, "", "shutdown"} {
		_, err := ParseOpsArgs(v, []string{"shop"})
		if err == nil {
			t.Errorf("%q: no error", v)
		}
		var ue *UsageError
		if errors.As(err, &ue) {
			t.Errorf("%q: a usage error (%v), as if the person had typed it wrong", v, err)
		}
	}
}

// FuzzParseOpsArgs: for every verb, any words never panic; whatever is
// accepted is a stack and the verb's known options with values, and obeys
// the verb's rules; whatever is refused is a usage error shown safely.
func FuzzParseOpsArgs(f *testing.F) {
	for _, s := range []string{
		"shop to=1002 lock=no", "api service=web env=production", "shop on", "shop OFF env=staging",
		"shop web1", "shop group=web strategy=serial", "shop web1 group=web", "shop:production env=staging",
		`"" to=1`, "shop env=a env=b", "s lock=maybe", "s web1 strategy=serial", "s = ==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		for _, verb := range []deploy.Verb{deploy.VerbRollback, deploy.VerbRestart, deploy.VerbMaintenance, deploy.VerbReboot} {
			got, err := ParseOpsArgs(verb, words)
			if err != nil {
				var ue *UsageError
				if !errors.As(err, &ue) {
					t.Fatalf("%s %q: non-usage error %v", verb, words, err)
				}
				if strings.Contains(ue.Problem, "<!") || strings.Contains(ue.Problem, "<@") {
					t.Fatalf("%s %q: unescaped mrkdwn in %q", verb, words, ue.Problem)
				}
				continue
			}
			checkOpsArgs(t, verb, words, got)
		}
	})
}

// checkOpsArgs fails t unless got, accepted for verb from words, is a
// stack, known options with values, and what the verb's rules allow.
func checkOpsArgs(t *testing.T, verb deploy.Verb, words []string, got OpsArgs) {
	t.Helper()
	fail := func(why string) { t.Fatalf("%s %q accepted as %+v: %s", verb, words, got, why) }
	if got.Stack == "" || strings.Contains(got.Stack, "=") {
		fail("the stack is empty or has an =")
	}
	if got.Stack != words[0] && !strings.HasPrefix(got.Stack, words[0]+":") {
		fail("the stack is not the first word")
	}
	for k, v := range got.Options {
		if !slices.Contains(opsGrammars[verb].keys, k) {
			fail("unknown option " + k)
		}
		if v == "" {
			fail("empty " + k)
		}
	}
	switch verb {
	case deploy.VerbRollback, deploy.VerbRestart:
		if len(got.Words) != 0 {
			fail("a word besides the stack")
		}
	case deploy.VerbMaintenance:
		if len(got.Words) != 1 || !strings.EqualFold(got.Words[0], "on") && !strings.EqualFold(got.Words[0], "off") {
			fail("not one of on and off")
		}
	case deploy.VerbReboot:
		server, group := len(got.Words) == 1, got.Options["group"] != ""
		if len(got.Words) > 1 || server == group {
			fail("not one server or one group")
		}
		if server && got.Options["strategy"] != "" {
			fail("a strategy for one server")
		}
	}
	if l := got.Options["lock"]; l != "" && !strings.EqualFold(l, "yes") && !strings.EqualFold(l, "no") {
		fail("lock is neither yes nor no")
	}
}

// Every example in help is words its command's own parser accepts: deploy's
// options, and the grammar of each of the new verbs. Run as a person would
// type them, none is answered with the usage. (Whether they fit the
// sandbox's stacks is for the end-to-end tests.)
func TestExamplesParse(t *testing.T) {
	t.Parallel()
	parsers := map[string]func([]string) error{
		"deploy": func(args []string) error { _, err := ParseDeployArgs(args); return err },
	}
	for _, v := range []deploy.Verb{deploy.VerbRollback, deploy.VerbRestart, deploy.VerbMaintenance, deploy.VerbReboot} {
		parsers[string(v)] = func(args []string) error { _, err := ParseOpsArgs(v, args); return err }
	}
	r, heard := opsRouter(t, &fakeDeployer{result: deploy.Result{Watch: &storage.Watch{MessageTS: "1.2"}}})
	for _, c := range r.Commands() {
		parse, ok := parsers[c.Name]
		if !ok {
			if c.Verb != "" && c.Verb != string(deploy.VerbDeploy) {
				t.Errorf("%s is a command of verb %s, and its examples are not checked", c.Name, c.Verb)
			}
			continue
		}
		for _, e := range c.Examples {
			words, err := Split(e)
			if err != nil || len(words) < 2 {
				t.Errorf("example %q does not split into a command and its words: %v", e, err)
				continue
			}
			if err := parse(words[1:]); err != nil {
				t.Errorf("example %q: %v", e, err)
			}
			send(t, r, e)
			if got := heard.last(); got == c.Name+" "+OutcomeUsage {
				t.Errorf("example %q is answered with the usage", e)
			}
		}
		delete(parsers, c.Name)
	}
	for name := range parsers {
		t.Errorf("no command %q in the table", name)
	}
}
