package policy

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// mustParse parses a policy written in a test, failing the test on error.
func mustParse(t *testing.T, yaml string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// rulesPolicy exercises rule order and every field of a rule. Its default
// is deny so "no rule matches" is visible.
const rulesPolicy = `
admins: [U0BOSS, S0ADMINS]
default: deny
rules:
  - name: shop-production
    stacks: "shop*"
    environments: [production]
    deployers: [U0ALICE, S0OPS]
    channels: [C0DEPLOYS, C0OPS]
    approvals: 1
  - name: hotfix-unconfirmed       # confirm:false on a production rule
    stacks: hotfix
    environments: [Production]
    confirm: false
  - name: staging-confirmed        # confirm:true where nothing is protected
    environments: [staging]
    confirm: true
    approvals: 2
  - name: any-shop                 # never reached for production: the first rule wins
    stacks: "SHOP*"
`

// actionsPolicy lets on-call restart production and switch its maintenance
// mode but not deploy it, and lets only the boss reboot anything.
const actionsPolicy = `
admins: [U0BOSS]
default: deny
rules:
  - name: shop-deploys
    stacks: "shop*"
    environments: [production]
    actions: [deploy, rollback]
    deployers: [U0ALICE]
    channels: [C0DEPLOYS]
    approvals: 1
  - name: oncall-restarts
    stacks: "shop*"
    environments: [production]
    actions: [restart, maintenance]
    deployers: [S0ONCALL]
    channels: [C0INCIDENTS]
  - name: staging
    environments: [staging]
  - name: reboots
    actions: [reboot]
    deployers: [U0BOSS]
`

func TestDecide(t *testing.T) {
	t.Parallel()
	rules, acts := mustParse(t, rulesPolicy), mustParse(t, actionsPolicy)
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC) // a Wednesday, no freezes here
	alice := Subject{User: "U0ALICE", Channel: "C0DEPLOYS"}
	carol := Subject{User: "U0CAROL", Groups: []string{"S0ONCALL"}, Channel: "C0INCIDENTS"}
	boss := Subject{User: "U0BOSS", Channel: "C0RANDOM"}
	prod := func(action string) Target { return Target{"shop", "production", action} }
	deploys := Decision{Allowed: true, Rule: "shop-deploys", Confirm: true, Approvals: 1, Approvers: []string{"U0BOSS"}}
	tests := []struct {
		name string
		pol  *Policy
		s    Subject
		t    Target
		want Decision
	}{
		{
			name: "first rule wins, with approvals and approvers",
			pol:  rules, s: alice, t: Target{"shop", "production", ""},
			want: Decision{Allowed: true, Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"S0OPS", "U0BOSS", "S0ADMINS"}},
		},
		{
			name: "a later, looser rule does not rescue a refusal",
			pol:  rules, s: Subject{User: "U0BOB", Channel: "C0DEPLOYS"}, t: Target{"shop", "production", ""},
			want: Decision{Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"U0ALICE", "S0OPS", "U0BOSS", "S0ADMINS"},
				Reason:    "rule shop-production lets only its deployers deploy shop · production"},
		},
		{
			name: "glob is case-insensitive",
			pol:  rules, s: alice, t: Target{"Shop-EU", "production", ""},
			want: Decision{Allowed: true, Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"S0OPS", "U0BOSS", "S0ADMINS"}},
		},
		{
			name: "environments are case-insensitive",
			pol:  rules, s: alice, t: Target{"shop", "PRODUCTION", ""},
			want: Decision{Allowed: true, Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"S0OPS", "U0BOSS", "S0ADMINS"}},
		},
		{
			name: "deployer through a user group",
			pol:  rules, s: Subject{User: "U0CAROL", Groups: []string{"S0OTHER", "S0OPS"}, Channel: "C0OPS"}, t: Target{"shop", "production", ""},
			want: Decision{Allowed: true, Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"U0ALICE", "S0OPS", "U0BOSS", "S0ADMINS"}},
		},
		{
			name: "channel restriction",
			pol:  rules, s: Subject{User: "U0ALICE", Channel: "C0RANDOM"}, t: Target{"shop", "production", ""},
			want: Decision{Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"S0OPS", "U0BOSS", "S0ADMINS"},
				Reason:    "rule shop-production allows deploys only from <#C0DEPLOYS> or <#C0OPS>"},
		},
		{
			name: "no channel is not an allowed channel",
			pol:  rules, s: Subject{User: "U0ALICE"}, t: Target{"shop", "production", ""},
			want: Decision{Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"S0OPS", "U0BOSS", "S0ADMINS"},
				Reason:    "rule shop-production allows deploys only from <#C0DEPLOYS> or <#C0OPS>"},
		},
		{
			name: "no identity is no deployer",
			pol:  rules, s: Subject{Channel: "C0DEPLOYS"}, t: Target{"shop", "production", ""},
			want: Decision{Rule: "shop-production", Confirm: true, Approvals: 1,
				Approvers: []string{"U0ALICE", "S0OPS", "U0BOSS", "S0ADMINS"},
				Reason:    "rule shop-production lets only its deployers deploy shop · production"},
		},
		{
			name: "empty deployers and channels let everyone deploy from anywhere",
			pol:  rules, s: Subject{User: "U0ANYONE", Channel: "C0RANDOM"}, t: Target{"shop", "qa", ""},
			want: Decision{Allowed: true, Rule: "any-shop"},
		},
		{
			name: "confirm false on a production rule",
			pol:  rules, s: alice, t: Target{"hotfix", "production", ""},
			want: Decision{Allowed: true, Rule: "hotfix-unconfirmed"},
		},
		{
			name: "confirm true on staging, approvals from anyone",
			pol:  rules, s: alice, t: Target{"shop", "staging", ""},
			want: Decision{Allowed: true, Rule: "staging-confirmed", Confirm: true, Approvals: 2},
		},
		{
			name: "default deny, production still protected",
			pol:  rules, s: alice, t: Target{"api", "production", ""},
			want: Decision{Confirm: true, Reason: "no rule matches and the default is deny"},
		},
		{
			name: "built-in default allows and protects production",
			pol:  Default(), s: Subject{User: "U0ANYONE"}, t: Target{"api", "Production", ""},
			want: Decision{Allowed: true, Confirm: true},
		},
		{
			name: "built-in default does not protect staging",
			pol:  Default(), s: Subject{User: "U0ANYONE"}, t: Target{"api", "staging", ""},
			want: Decision{Allowed: true},
		},
		{pol: acts, name: "deploy under the deploy rule", s: alice, t: prod(ActionDeploy), want: deploys},
		{pol: acts, name: "no action is a deploy", s: alice, t: prod(""), want: deploys},
		{pol: acts, name: "rollback under the same rule", s: alice, t: prod(ActionRollback), want: deploys},
		{pol: acts, name: "the action's case is folded", s: alice, t: prod("RollBack"), want: deploys},
		{
			pol:  acts,
			name: "a rule for [deploy, rollback] does not govern restart",
			s:    alice, t: prod(ActionRestart),
			want: Decision{Rule: "oncall-restarts", Confirm: true,
				Reason: "rule oncall-restarts lets only its deployers restart shop · production"},
		},
		{
			pol:  acts,
			name: "on-call may restart production",
			s:    carol, t: prod(ActionRestart),
			want: Decision{Allowed: true, Rule: "oncall-restarts", Confirm: true},
		},
		{
			pol:  acts,
			name: "on-call may switch maintenance mode",
			s:    carol, t: prod(ActionMaintenance),
			want: Decision{Allowed: true, Rule: "oncall-restarts", Confirm: true},
		},
		{
			pol:  acts,
			name: "on-call may not deploy: today's words",
			s:    carol, t: prod(ActionDeploy),
			want: Decision{Rule: "shop-deploys", Confirm: true, Approvals: 1, Approvers: []string{"U0ALICE", "U0BOSS"},
				Reason: "rule shop-deploys lets only its deployers deploy shop · production"},
		},
		{
			pol:  acts,
			name: "deploy from the wrong channel: today's words",
			s:    Subject{User: "U0ALICE", Channel: "C0RANDOM"}, t: prod(""),
			want: Decision{Rule: "shop-deploys", Confirm: true, Approvals: 1, Approvers: []string{"U0BOSS"},
				Reason: "rule shop-deploys allows deploys only from <#C0DEPLOYS>"},
		},
		{
			pol:  acts,
			name: "rollback refusals name rollbacks",
			s:    Subject{User: "U0ALICE", Channel: "C0RANDOM"}, t: prod(ActionRollback),
			want: Decision{Rule: "shop-deploys", Confirm: true, Approvals: 1, Approvers: []string{"U0BOSS"},
				Reason: "rule shop-deploys allows rollbacks only from <#C0DEPLOYS>"},
		},
		{
			pol:  acts,
			name: "rollback by someone else",
			s:    carol, t: prod(ActionRollback),
			want: Decision{Rule: "shop-deploys", Confirm: true, Approvals: 1, Approvers: []string{"U0ALICE", "U0BOSS"},
				Reason: "rule shop-deploys lets only its deployers roll back shop · production"},
		},
		{
			pol:  acts,
			name: "restart from the wrong channel",
			s:    Subject{User: "U0CAROL", Groups: []string{"S0ONCALL"}, Channel: "C0DEPLOYS"}, t: prod(ActionRestart),
			want: Decision{Rule: "oncall-restarts", Confirm: true,
				Reason: "rule oncall-restarts allows restarts only from <#C0INCIDENTS>"},
		},
		{
			pol:  acts,
			name: "maintenance by someone else",
			s:    alice, t: prod(ActionMaintenance),
			want: Decision{Rule: "oncall-restarts", Confirm: true,
				Reason: "rule oncall-restarts lets only its deployers switch maintenance mode of shop · production"},
		},
		{
			pol:  acts,
			name: "maintenance from the wrong channel",
			s:    Subject{User: "U0CAROL", Groups: []string{"S0ONCALL"}}, t: prod(ActionMaintenance),
			want: Decision{Rule: "oncall-restarts", Confirm: true,
				Reason: "rule oncall-restarts allows maintenance mode switches only from <#C0INCIDENTS>"},
		},
		{
			pol:  acts,
			name: "reboot passes the rules that do not govern it",
			s:    carol, t: prod(ActionReboot),
			want: Decision{Rule: "reboots", Confirm: true,
				Reason: "rule reboots lets only its deployers reboot servers of shop · production"},
		},
		{
			pol:  acts,
			name: "reboot by its deployer, production still protected",
			s:    boss, t: prod(ActionReboot),
			want: Decision{Allowed: true, Rule: "reboots", Confirm: true},
		},
		{
			pol:  acts,
			name: "a rule without actions governs every verb",
			s:    boss, t: Target{"api", "staging", ActionReboot},
			want: Decision{Allowed: true, Rule: "staging"},
		},
		{
			pol:  acts,
			name: "no rule for the verb: the default, naming it",
			s:    carol, t: Target{"api", "production", ActionRestart},
			want: Decision{Confirm: true, Reason: "no rule matches restarts and the default is deny"},
		},
		{
			pol:  acts,
			name: "no rule for a deploy: today's words",
			s:    carol, t: Target{"api", "qa", ActionDeploy},
			want: Decision{Reason: "no rule matches and the default is deny"},
		},
		{
			pol:  acts,
			name: "no rule for maintenance",
			s:    carol, t: Target{"api", "qa", ActionMaintenance},
			want: Decision{Reason: "no rule matches maintenance mode switches and the default is deny"},
		},
		{
			pol:  acts,
			name: "an unknown action is refused, whatever the rules",
			s:    boss, t: Target{"api", "staging", "cancel"},
			want: Decision{Reason: `the policy knows no action "cancel" (deploy, rollback, restart, maintenance, reboot)`},
		},
		{
			name: "an unknown action is refused by the built-in default too",
			pol:  Default(), s: boss, t: Target{"api", "production", "redeploy"},
			want: Decision{Confirm: true, Reason: `the policy knows no action "redeploy" (deploy, rollback, restart, maintenance, reboot)`},
		},
		{
			name: "the built-in default allows every verb and protects production for each",
			pol:  Default(), s: boss, t: Target{"api", "production", ActionReboot},
			want: Decision{Allowed: true, Confirm: true},
		},
		{
			name: "a \"*\" covers a name with a / (path.Match's * would not), so a catch-all cannot be slipped past",
			pol:  mustParse(t, "rules:\n  - name: all\n    stacks: \"*\"\n    deployers: [U0ALICE]\n"),
			s:    Subject{User: "U0EVE"}, t: Target{"team/shop", "qa", ""},
			want: Decision{Rule: "all", Reason: "rule all lets only its deployers deploy team/shop · qa"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.pol.Decide(tt.s, tt.t, now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide(%+v, %+v) =\n%+v\nwant\n%+v", tt.s, tt.t, got, tt.want)
			}
		})
	}
}

func TestIsAdmin(t *testing.T) {
	t.Parallel()
	p := mustParse(t, rulesPolicy)
	tests := []struct {
		name   string
		user   string
		groups []string
		want   bool
	}{
		{"admin user", "U0BOSS", nil, true},
		{"through a group", "U0CAROL", []string{"S0ADMINS"}, true},
		{"deployer is not admin", "U0ALICE", []string{"S0OPS"}, false},
		{"nobody", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.IsAdmin(tt.user, tt.groups); got != tt.want {
				t.Errorf("IsAdmin(%q, %v) = %v, want %v", tt.user, tt.groups, got, tt.want)
			}
		})
	}
}

func TestCanApprove(t *testing.T) {
	t.Parallel()
	p, acts := mustParse(t, rulesPolicy), mustParse(t, actionsPolicy)
	dave := Subject{User: "U0DAVE", Groups: []string{"S0ONCALL"}}
	tests := []struct {
		name      string
		approver  Subject
		rule      string
		requester string
		want      bool
		pol       *Policy // nil for rulesPolicy
	}{
		{"requester never", Subject{User: "U0ALICE"}, "shop-production", "U0ALICE", false, nil},
		{"requester never, even an admin", Subject{User: "U0BOSS"}, "shop-production", "U0BOSS", false, nil},
		{"admin yes", Subject{User: "U0BOSS"}, "shop-production", "U0ALICE", true, nil},
		{"admin through a group", Subject{User: "U0DAVE", Groups: []string{"S0ADMINS"}}, "shop-production", "U0ALICE", true, nil},
		{"deployer yes", Subject{User: "U0ALICE"}, "shop-production", "U0CAROL", true, nil},
		{"deployer through a group", Subject{User: "U0CAROL", Groups: []string{"S0OPS"}}, "shop-production", "U0ALICE", true, nil},
		{"outsider no", Subject{User: "U0EVE"}, "shop-production", "U0ALICE", false, nil},
		{"rule name in other case", Subject{User: "U0ALICE"}, "Shop-Production", "U0CAROL", true, nil},
		{"rule without deployers: anyone else", Subject{User: "U0EVE"}, "staging-confirmed", "U0ALICE", true, nil},
		{"unknown rule: outsider no", Subject{User: "U0EVE"}, "gone", "U0ALICE", false, nil},
		{"unknown rule: admin yes", Subject{User: "U0BOSS"}, "gone", "U0ALICE", true, nil},
		{"default decided: only admins", Subject{User: "U0EVE"}, "", "U0ALICE", false, nil},
		{"no identity", Subject{}, "staging-confirmed", "U0ALICE", false, nil},
		// A rule names the same approvers for every verb it governs.
		{"on-call approve under the restart rule", dave, "oncall-restarts", "U0CAROL", true, acts},
		{"on-call do not approve under the deploy rule", dave, "shop-deploys", "U0CAROL", false, acts},
		{"the deploy rule's deployer approves its rollbacks", Subject{User: "U0ALICE"}, "shop-deploys", "U0CAROL", true, acts},
		{"admins approve under any rule", Subject{User: "U0BOSS"}, "oncall-restarts", "U0CAROL", true, acts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pol := p
			if tt.pol != nil {
				pol = tt.pol
			}
			if got := pol.CanApprove(tt.approver, tt.rule, tt.requester); got != tt.want {
				t.Errorf("CanApprove(%+v, %q, %q) = %v, want %v", tt.approver, tt.rule, tt.requester, got, tt.want)
			}
		})
	}
}

func TestMayDeploySomewhere(t *testing.T) {
	t.Parallel()
	const onlyAlice = "default: deny\nrules:\n  - name: shop\n    stacks: shop\n    deployers: [U0ALICE, S0OPS]\n    channels: [C0DEPLOYS]\n"
	tests := []struct {
		name string
		yaml string // "" for Default()
		s    Subject
		want bool
	}{
		{"built-in default: anyone", "", Subject{User: "U0EVE"}, true},
		{"example: outsiders may deploy other stacks", "rules:\n  - name: shop-production\n    stacks: \"shop*\"\n    environments: [production]\n    deployers: [U0ALICE, S0OPS]\n", Subject{User: "U0EVE"}, true},
		{"deny: a deployer, from any channel", onlyAlice, Subject{User: "U0ALICE", Channel: "C0RANDOM"}, true},
		{"deny: a deployer through a group", onlyAlice, Subject{User: "U0CAROL", Groups: []string{"S0OPS"}}, true},
		{"deny: an outsider", onlyAlice, Subject{User: "U0EVE"}, false},
		{"deny: a rule for everyone", "default: deny\nrules:\n  - name: qa\n    environments: [qa]\n", Subject{User: "U0EVE"}, true},
		{"catch-all rule hides the default", "rules:\n  - name: all\n    deployers: [U0ALICE]\n", Subject{User: "U0EVE"}, false},
		{"catch-all star glob hides later rules", "rules:\n  - name: all\n    stacks: \"*\"\n    deployers: [U0ALICE]\n  - name: never\n", Subject{User: "U0EVE"}, false},
		{"a narrower rule leaves the default reachable", "rules:\n  - name: prod\n    environments: [production]\n    deployers: [U0ALICE]\n", Subject{User: "U0EVE"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Default()
			if tt.yaml != "" {
				p = mustParse(t, tt.yaml)
			}
			if got := p.MayDeploySomewhere(tt.s); got != tt.want {
				t.Errorf("MayDeploySomewhere(%+v) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

func TestGroupIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"none", "default: allow\n", nil},
		{"example", "rules:\n  - name: shop\n    deployers: [U0ALICE, S0OPS]\n", []string{"S0OPS"}},
		{"admins and deployers, sorted, once each",
			"admins: [S0ZED, U0BOSS, S0ADM]\nrules:\n  - name: a\n    deployers: [S0OPS, S0ADM]\n  - name: b\n    deployers: [S0OPS, W0GUEST]\n",
			[]string{"S0ADM", "S0OPS", "S0ZED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustParse(t, tt.yaml).GroupIDs(); !slices.Equal(got, tt.want) {
				t.Errorf("GroupIDs() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMayUse(t *testing.T) {
	t.Parallel()
	carol := Subject{User: "U0CAROL", Groups: []string{"S0ONCALL"}}
	eve := Subject{User: "U0EVE"}
	const deployCatchAll = "rules:\n  - name: deploys\n    actions: [deploy]\n    deployers: [U0ALICE]\n"
	const restartCatchAll = "rules:\n  - name: restarts\n    stacks: \"*\"\n    actions: [restart]\n    deployers: [U0ALICE]\n  - name: everyone\n"
	tests := []struct {
		name   string
		yaml   string // "" for Default()
		s      Subject
		action string
		want   bool
	}{
		{"built-in default: every verb", "", eve, ActionReboot, true},
		{"built-in default: no verb is a deploy", "", eve, "", true},
		{"an unknown verb never", "", eve, "cancel", false},
		{"on-call may restart", actionsPolicy, carol, ActionRestart, true},
		{"on-call may switch maintenance mode", actionsPolicy, carol, ActionMaintenance, true},
		{"on-call may deploy staging (a rule for every verb)", actionsPolicy, carol, ActionDeploy, true},
		{"the verb's case is folded", actionsPolicy, carol, "Reboot", true},
		{"deny: a rule for another verb does not count", "default: deny\nrules:\n  - name: r\n    actions: [restart]\n    deployers: [S0ONCALL]\n", carol, ActionDeploy, false},
		{"deny: no verb is a deploy", "default: deny\nrules:\n  - name: r\n    actions: [restart]\n    deployers: [S0ONCALL]\n", carol, "", false},
		{"deny: the rule's own verb", "default: deny\nrules:\n  - name: r\n    actions: [restart]\n    deployers: [S0ONCALL]\n", carol, ActionRestart, true},
		{"deny: not the rule's deployer", "default: deny\nrules:\n  - name: r\n    actions: [restart]\n    deployers: [S0ONCALL]\n", eve, ActionRestart, false},
		{"a catch-all for deploys hides deploys", deployCatchAll, eve, ActionDeploy, false},
		{"a catch-all for deploys leaves restarts to the default", deployCatchAll, eve, ActionRestart, true},
		{"a catch-all for restarts hides the rules after it, for restarts", restartCatchAll, eve, ActionRestart, false},
		{"a catch-all for restarts leaves later rules to other verbs", restartCatchAll, eve, ActionRollback, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Default()
			if tt.yaml != "" {
				p = mustParse(t, tt.yaml)
			}
			if got := p.MayUse(tt.s, tt.action); got != tt.want {
				t.Errorf("MayUse(%+v, %q) = %v, want %v", tt.s, tt.action, got, tt.want)
			}
		})
	}
}
