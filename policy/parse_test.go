package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseExample parses the DESIGN.md example, copied verbatim into
// testdata, and checks every field, so the documented shape and the code
// cannot drift apart.
func TestParseExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("policy.yaml", data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(got.Freezes) != 1 || got.Freezes[0].Location == nil || got.Freezes[0].Location.String() != "Europe/London" {
		t.Fatalf("freeze location = %+v, want one freeze in Europe/London", got.Freezes)
	}
	got.Freezes[0].Location = nil // *time.Location is compared by name above
	confirm := true
	want := &Policy{
		Admins:       []string{"U0BOSS"},
		Protected:    []string{"production"},
		DefaultAllow: true,
		Rules: []Rule{{
			Name:         "shop-production",
			Stacks:       "shop*",
			Environments: []string{"production"},
			Deployers:    []string{"U0ALICE", "S0OPS"},
			Channels:     []string{"C0DEPLOYS"},
			Confirm:      &confirm,
			Approvals:    1,
			Actions:      []string{"deploy", "rollback"},
			Line:         5,
		}},
		Freezes: []Freeze{{
			Name:         "weekend",
			From:         WeekTime{Day: time.Friday, Minute: 16 * 60},
			To:           WeekTime{Day: time.Monday, Minute: 8 * 60},
			Environments: []string{"production"},
			Line:         15,
		}},
		Source: "policy.yaml",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(example) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseDefaultsAndExtensions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want func(*Policy) string // "" when fine, else what is wrong
	}{
		{"absent keys keep the defaults", "rules: []\n", func(p *Policy) string {
			if !p.DefaultAllow || !reflect.DeepEqual(p.Protected, []string{"production"}) || p.Admins != nil || p.Rules != nil || p.Freezes != nil {
				return "want default allow, production protected, nothing else"
			}
			return ""
		}},
		{"empty protected list protects nothing", "protected_environments: []\n", func(p *Policy) string {
			if p.Protected == nil || len(p.Protected) != 0 {
				return "want an empty, non-nil Protected"
			}
			return ""
		}},
		{"null protected list keeps production", "protected_environments:\ndefault: deny\n", func(p *Policy) string {
			if !reflect.DeepEqual(p.Protected, []string{"production"}) || p.DefaultAllow {
				return "want production protected and default deny"
			}
			return ""
		}},
		{"default is case-insensitive", "default: DENY\n", func(p *Policy) string {
			if p.DefaultAllow {
				return "want deny"
			}
			return ""
		}},
		{"null values mean absent", "rules:\n  - name: x\n    confirm: ~\n    approvals: ~\n    stacks: ~\n    deployers:\n", func(p *Policy) string {
			if r := p.Rules[0]; r.Confirm != nil || r.Approvals != 0 || r.Stacks != "" || r.Deployers != nil {
				return "want an empty rule"
			}
			return ""
		}},
		{"freeze stacks glob and one-digit hour", "freeze:\n  - name: eu\n    from: wed 9:30\n    to: WED 10:00\n    timezone: UTC\n    stacks: \"shop-eu*\"\n", func(p *Policy) string {
			f := p.Freezes[0]
			if f.Stacks != "shop-eu*" || f.From != (WeekTime{time.Wednesday, 570}) || f.To != (WeekTime{time.Wednesday, 600}) || f.Location != time.UTC {
				return "want the eu freeze"
			}
			return ""
		}},
		{"anchors and aliases are followed", "admins: &a [U0BOSS]\nrules:\n  - name: x\n    deployers: *a\n", func(p *Policy) string {
			if !reflect.DeepEqual(p.Rules[0].Deployers, []string{"U0BOSS"}) {
				return "want the aliased list"
			}
			return ""
		}},
		{"a trailing empty document is fine", "default: allow\n---\n", func(p *Policy) string { return "" }},
		{"approvals reachable through a group", "rules:\n  - name: x\n    deployers: [S0OPS]\n    approvals: 3\n", func(p *Policy) string {
			if p.Rules[0].Approvals != 3 {
				return "want 3 approvals"
			}
			return ""
		}},
		{"approvals reachable through admins", "admins: [U0BOSS]\nrules:\n  - name: x\n    deployers: [U0ALICE]\n    approvals: 1\n", func(p *Policy) string { return "" }},
		{"actions absent: every verb", "rules:\n  - name: r\n" + aFreeze + "}\n", wantActions(nil, nil)},
		{"actions null: every verb", "rules:\n  - name: r\n    actions:\n" + aFreeze + ", actions: ~}\n", wantActions(nil, nil)},
		{"actions empty: every verb", "rules:\n  - name: r\n    actions: []\n" + aFreeze + ", actions: []}\n", wantActions([]string{}, []string{})},
		{"every action by name", "rules:\n  - name: r\n    actions: [deploy, rollback, restart, maintenance, reboot]\n" + aFreeze + ", actions: [deploy]}\n",
			wantActions(Actions(), []string{"deploy"})},
		{"actions in any case, kept lower-case", "rules:\n  - name: r\n    actions: [Restart, REBOOT]\n" + aFreeze + ", actions: [Deploy, rollBack]}\n",
			wantActions([]string{"restart", "reboot"}, []string{"deploy", "rollback"})},
		{"actions as a block list", "rules:\n  - name: r\n    actions:\n      - restart\n      - maintenance\n" + aFreeze + "}\n",
			wantActions([]string{"restart", "maintenance"}, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse("policy.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if problem := tt.want(p); problem != "" {
				t.Errorf("%s; got %+v", problem, p)
			}
		})
	}
}

// aFreeze opens a one-line freeze for the actions cases, which close it.
const aFreeze = "freeze:\n  - {name: f, from: \"Fri 16:00\", to: \"Mon 08:00\", timezone: UTC"

// wantActions checks the first rule's and the first freeze's Actions.
func wantActions(rule, freeze []string) func(*Policy) string {
	return func(p *Policy) string {
		if got := p.Rules[0].Actions; !reflect.DeepEqual(got, rule) {
			return fmt.Sprintf("rule actions = %#v, want %#v", got, rule)
		}
		if got := p.Freezes[0].Actions; !reflect.DeepEqual(got, freeze) {
			return fmt.Sprintf("freeze actions = %#v, want %#v", got, freeze)
		}
		return ""
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const weekend = "freeze:\n  - name: weekend\n    from: \"Fri 16:00\"\n    to: \"Mon 08:00\"\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"bad YAML syntax", "admins: [U0BOSS]\ndefault: allow\n  rules: []\n",
			"policy.yaml:3: bad YAML: mapping values are not allowed in this context"},
		{"unclosed list", "admins: [U0BOSS\ndefault: allow\n",
			"policy.yaml:1: bad YAML: did not find expected ',' or ']'"},
		{"unquoted star glob", "rules:\n  - name: all\n    stacks: *\n",
			`policy.yaml:3: bad YAML: did not find expected alphabetic or numeric character (quote a glob that starts with *, like stacks: "*")`},
		{"tab indentation", "default: allow\nrules:\n\t- name: a\n",
			"policy.yaml:3: bad YAML: found character that cannot start any token (YAML indents with spaces, not tabs)"},
		{"empty file", "", "policy.yaml: the policy file is empty; unset C66BOT_POLICY for the built-in default"},
		{"only comments", "# nothing yet\n", "policy.yaml: the policy file is empty; unset C66BOT_POLICY for the built-in default"},
		{"second document", "default: allow\n---\nadmins: [U0BOSS]\n",
			"policy.yaml:2: the file holds a second YAML document (after ---); put everything in one"},
		{"root is a list", "- admins\n",
			"policy.yaml:1: the policy must be a mapping of keys (admins, protected_environments, default, rules, freeze), not a list"},
		{"unknown top-level key with suggestion", "default: allow\nrules: []\nadmin: [U0BOSS]\n",
			`policy.yaml:3: unknown key "admin" (did you mean "admins"?)`},
		{"unknown key in other case", "Default: deny\n", `policy.yaml:1: unknown key "Default" (did you mean "default"?)`},
		{"unknown key by prefix", "protected: [production]\n",
			`policy.yaml:1: unknown key "protected" (did you mean "protected_environments"?)`},
		{"unknown key without suggestion", "colour: blue\n",
			`policy.yaml:1: unknown key "colour" (known keys: admins, protected_environments, default, rules, freeze)`},
		{"duplicate key", "default: allow\nrules: []\ndefault: deny\n",
			`policy.yaml:3: key "default" appears twice (first on line 1)`},
		{"unknown rule key", "rules:\n  - name: shop\n    deployer: [U0ALICE]\n",
			`policy.yaml:3: rule 1 (shop): unknown key "deployer" (did you mean "deployers"?)`},
		{"unknown rule key above the name", "rules:\n  - enviroments: [production]\n    name: shop\n",
			`policy.yaml:2: rule 1 (shop): unknown key "enviroments" (did you mean "environments"?)`},
		{"merge key", "rules:\n  - &base\n    name: a\n  - <<: *base\n    name: b\n",
			"policy.yaml:4: rule 2 (b): merge keys (<<) are not supported; write the keys out"},
		{"default maybe", "default: maybe\n", `policy.yaml:1: default must be allow or deny, not "maybe"`},
		{"default empty", "default:\n", `policy.yaml:1: default must be allow or deny, not ""`},
		{"rules not a list", "rules: shop\n", `policy.yaml:1: rules must be a list (items starting with -), not "shop"`},
		{"rule not a mapping", "rules:\n  - shop\n",
			`policy.yaml:2: rule 1: must be a mapping of keys (name, stacks, environments, deployers, channels, confirm, approvals, actions), not "shop"`},
		{"rule without a name", "rules:\n  - stacks: shop\n",
			"policy.yaml:2: rule 1: name is missing; every rule needs one, since refusals name it"},
		{"rule name a list", "rules:\n  - name: [a]\n", "policy.yaml:2: rule 1: name must be a single value, not a list"},
		{"duplicate rule names", "rules:\n  - name: shop\n  - name: blog\n  - name: Shop\n",
			`policy.yaml:4: rule 3 (Shop): name "Shop" is already used by rule 1 (line 2)`},
		{"bad glob", "rules:\n  - name: shop\n    stacks: \"shop[\"\n",
			`policy.yaml:3: rule 1 (shop): stacks "shop[" is not a valid glob (path.Match syntax: *, ?, [a-z], \ to escape)`},
		{"stacks as a list", "rules:\n  - name: shop\n    stacks: [shop, blog]\n",
			"policy.yaml:3: rule 1 (shop): stacks must be a single value, not a list"},
		{"environments as a string", "rules:\n  - name: shop\n    environments: production, staging\n",
			`policy.yaml:3: rule 1 (shop): environments must be a list, like [production], not "production, staging"`},
		{"empty environment", "rules:\n  - name: shop\n    environments: [production, \"\"]\n",
			"policy.yaml:3: rule 1 (shop): environments holds an empty item"},
		{"bad deployer id", "rules:\n  - name: shop\n    deployers: [U0ALICE, alice]\n",
			`policy.yaml:3: rule 1 (shop): deployer "alice" is not a Slack user or user-group id (U…, W… or S…)`},
		{"deployer by name", "rules:\n  - name: shop\n    deployers:\n      - \"@alice\"\n",
			`policy.yaml:4: rule 1 (shop): deployer "@alice" is not a Slack user or user-group id (U…, W… or S…); use the id, not the name, since names can change`},
		{"lower-case admin id", "admins: [u0boss]\n",
			`policy.yaml:1: admin "u0boss" is not a Slack user or user-group id (U…, W… or S…); Slack ids are upper case`},
		{"channel name", "rules:\n  - name: shop\n    channels: [\"#deploys\"]\n",
			`policy.yaml:3: rule 1 (shop): channel "#deploys" is not a Slack channel id (C…, G… or D…); use the id, not the name, since names can change`},
		{"user id as channel", "rules:\n  - name: shop\n    channels: [U0ALICE]\n",
			`policy.yaml:3: rule 1 (shop): channel "U0ALICE" is not a Slack channel id (C…, G… or D…)`},
		{"approvals -1", "admins: [U0BOSS]\ndefault: allow\nrules:\n  - name: blog\n  - name: shop-production\n    stacks: \"shop*\"\n    approvals: -1\n",
			"policy.yaml:7: rule 2 (shop-production): approvals must be 0 or more"},
		{"approvals 11", "rules:\n  - name: shop\n    approvals: 11\n", "policy.yaml:3: rule 1 (shop): approvals must be 10 or fewer"},
		{"approvals a word", "rules:\n  - name: shop\n    approvals: one\n",
			`policy.yaml:3: rule 1 (shop): approvals must be a whole number from 0 to 10, not "one"`},
		{"approvals quoted", "rules:\n  - name: shop\n    approvals: \"1\"\n",
			`policy.yaml:3: rule 1 (shop): approvals must be a whole number from 0 to 10, not "1"`},
		{"approvals nobody can give", "admins: [U0ALICE]\nrules:\n  - name: shop\n    deployers: [U0ALICE, U0BOB]\n    approvals: 2\n",
			"policy.yaml:5: rule 1 (shop): approvals is 2, but its deployers and the admins are only 2, and nobody approves their own deploy"},
		{"confirm yes", "rules:\n  - name: shop\n    confirm: yes\n", `policy.yaml:3: rule 1 (shop): confirm must be true or false, not "yes"`},
		{"unknown action with a suggestion", "rules:\n  - name: shop\n    actions: [deploy, restrat]\n",
			`policy.yaml:3: rule 1 (shop): action "restrat" is not one of deploy, rollback, restart, maintenance, reboot (did you mean "restart"?)`},
		{"redeploy is not a policy verb", "rules:\n  - name: shop\n    actions:\n      - rollback\n      - redeploy\n",
			`policy.yaml:5: rule 1 (shop): action "redeploy" is not one of deploy, rollback, restart, maintenance, reboot (did you mean "deploy"?)`},
		{"unknown action without a suggestion", "rules:\n  - name: shop\n    actions: [cancel]\n",
			`policy.yaml:3: rule 1 (shop): action "cancel" is not one of deploy, rollback, restart, maintenance, reboot`},
		{"action listed twice", "rules:\n  - name: shop\n    actions: [restart, deploy, Restart]\n",
			`policy.yaml:3: rule 1 (shop): action "Restart" is listed twice`},
		{"actions as a string", "rules:\n  - name: shop\n    actions: deploy, rollback\n",
			`policy.yaml:3: rule 1 (shop): actions must be a list, like [deploy, rollback], not "deploy, rollback"`},
		{"actions holds a list", "rules:\n  - name: shop\n    actions: [[deploy]]\n",
			"policy.yaml:3: rule 1 (shop): actions must hold single values, not a list"},
		{"empty action", "rules:\n  - name: shop\n    actions: [deploy, \"\"]\n",
			"policy.yaml:3: rule 1 (shop): actions holds an empty item"},
		{"misspelt actions key", "rules:\n  - name: shop\n    action: [deploy]\n",
			`policy.yaml:3: rule 1 (shop): unknown key "action" (did you mean "actions"?)`},
		{"unknown freeze action", weekend + "    timezone: UTC\n    actions: [restart, reboots]\n",
			`policy.yaml:6: freeze weekend: action "reboots" is not one of deploy, rollback, restart, maintenance, reboot (did you mean "reboot"?)`},
		{"bad day", weekend + "    timezone: UTC\n" + "  - name: late\n    from: \"Friday 16:00\"\n    to: \"Fri 20:00\"\n    timezone: UTC\n",
			`policy.yaml:7: freeze late: from "Friday 16:00" is not a day and time like "Fri 16:00" (three-letter English day, 24-hour HH:MM)`},
		{"bad time", "freeze:\n  - name: late\n    from: \"Fri 16:60\"\n    to: \"Fri 20:00\"\n    timezone: UTC\n",
			`policy.yaml:3: freeze late: from "Fri 16:60" is not a day and time like "Fri 16:00" (three-letter English day, 24-hour HH:MM)`},
		{"24:00", "freeze:\n  - name: late\n    from: \"Fri 16:00\"\n    to: \"Fri 24:00\"\n    timezone: UTC\n",
			`policy.yaml:4: freeze late: to "Fri 24:00" is not a day and time like "Fri 16:00" (three-letter English day, 24-hour HH:MM; midnight at the end of a day is 00:00 of the next)`},
		{"12-hour clock", "freeze:\n  - name: late\n    from: \"Fri 4pm\"\n    to: \"Fri 20:00\"\n    timezone: UTC\n",
			`policy.yaml:3: freeze late: from "Fri 4pm" is not a day and time like "Fri 16:00" (three-letter English day, 24-hour HH:MM)`},
		{"missing to", "freeze:\n  - name: late\n    from: \"Fri 16:00\"\n    timezone: UTC\n",
			`policy.yaml:2: freeze late: to is missing (a day and time like "Fri 16:00")`},
		{"from equals to", "freeze:\n  - name: late\n    from: \"Fri 16:00\"\n    to: \"fri 16:00\"\n    timezone: UTC\n",
			"policy.yaml:4: freeze late: from and to are both Fri 16:00, so the window is empty"},
		{"unknown timezone", "admins: [U0BOSS]\nrules:\n  - name: shop\n    stacks: \"shop*\"\n    environments: [production]\n    deployers: [U0ALICE]\n    channels: [C0DEPLOYS]\n" + weekend + "    timezone: Mars/Olympus\n",
			`policy.yaml:12: freeze weekend: timezone "Mars/Olympus" is unknown`},
		{"missing timezone", weekend, "policy.yaml:2: freeze weekend: timezone is missing (an IANA zone like Europe/London, or UTC)"},
		{"host timezone", weekend + "    timezone: Local\n",
			`policy.yaml:5: freeze weekend: timezone "Local" depends on the host; name a zone like Europe/London`},
		{"freeze without a name", "freeze:\n  - from: \"Fri 16:00\"\n    to: \"Mon 08:00\"\n    timezone: UTC\n",
			"policy.yaml:2: freeze 1: name is missing; every freeze needs one, since refusals name it"},
		{"unknown freeze key", weekend + "    timezone: UTC\n    tz: UTC\n",
			`policy.yaml:6: freeze weekend: unknown key "tz" (did you mean "to"?)`},
		{"duplicate freeze", weekend + "    timezone: UTC\n  - name: Weekend\n    from: \"Sat 00:00\"\n    to: \"Sun 00:00\"\n    timezone: UTC\n",
			`policy.yaml:6: freeze Weekend: name "Weekend" is already used by the freeze on line 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse("policy.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", p, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error\n got %q\nwant %q", got, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "policy.yaml" {
				t.Errorf("error %#v is not an *Error naming policy.yaml", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string
		wantErr  string
		notExist bool
	}{
		{name: "example", path: filepath.Join("testdata", "policy.yaml")},
		{name: "missing file", path: filepath.Join("testdata", "nope.yaml"),
			wantErr: "testdata/nope.yaml: cannot read the policy file: no such file or directory", notExist: true},
		{name: "a directory", path: "testdata", wantErr: "testdata: cannot read the policy file: is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Load(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if p.Source != tt.path || len(p.Rules) != 1 {
					t.Errorf("Load = %+v, want the example from %s", p, tt.path)
				}
				return
			}
			if err == nil || err.Error() != filepath.FromSlash(tt.wantErr) {
				t.Fatalf("Load error = %v, want %q", err, tt.wantErr)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notExist)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "p.yaml", Line: 7, Problem: "x"}, "p.yaml:7: x"},
		{Error{File: "p.yaml", Problem: "x"}, "p.yaml: x"},
		{Error{Line: 2, Problem: "x"}, "policy:2: x"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, want string }{
		{"admin", "admins"},
		{"ADMINS", "admins"},
		{"protected_environment", "protected_environments"},
		{"rule", "rules"},
		{"freezes", "freeze"},
		{"a", ""},
		{"colour", ""},
		{strings.Repeat("x", 1000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.key[:min(len(tt.key), 20)], func(t *testing.T) {
			t.Parallel()
			if got := suggest(tt.key, topKeys()); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}
