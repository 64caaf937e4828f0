package sandbox

import (
	"fmt"

	"github.com/c66bot/c66bot/policy"
)

// DemoPolicyYAML is the policy `c66bot sandbox` runs with when it is given
// no --policy file, so an approval and a freeze can be tried at once. The
// freeze is two windows because one may not start where it ends (Parse
// refuses an empty window): together they cover the whole week.
const DemoPolicyYAML = `# The sandbox's demo policy (c66bot sandbox --policy FILE to use your own).
admins: [U0ANA]                    # ana may override a freeze
protected_environments: [production]
default: allow
rules:
  - name: shop-production          # ana's deploy waits for ben's approval, and ben's for ana's
    stacks: shop
    environments: [production]
    actions: [deploy, rollback]
    deployers: [U0ANA, U0BEN]
    approvals: 1
freeze:
  - name: demo-freeze              # payments:staging is always frozen
    from: "Mon 00:00"
    to: "Sun 23:59"
    timezone: UTC
    stacks: payments
    environments: [staging]
  - name: demo-freeze-last-minute
    from: "Sun 23:59"
    to: "Mon 00:00"
    timezone: UTC
    stacks: payments
    environments: [staging]
`

// demoPolicySource names the demo policy in messages and the banner.
const demoPolicySource = "the built-in demo policy"

// DemoPolicy is DemoPolicyYAML, parsed.
func DemoPolicy() *policy.Policy {
	p, err := policy.Parse(demoPolicySource, []byte(DemoPolicyYAML))
	if err != nil {
		panic(fmt.Sprintf("sandbox: the demo policy does not parse: %v", err)) // a test catches this
	}
	return p
}

// PolicyNone is the --policy value that runs the sandbox without a policy
// file, as a bot without C66BOT_POLICY runs.
const PolicyNone = "none"

// LoadPolicy is the policy for `c66bot sandbox --policy arg`: the demo
// policy for "", none (nil: the bot's default) for PolicyNone, else the
// file arg, whose problems read "<file>:<line>: <problem>".
func LoadPolicy(arg string) (*policy.Policy, error) {
	switch arg {
	case "":
		return DemoPolicy(), nil
	case PolicyNone:
		return nil, nil
	}
	p, err := policy.Load(arg)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}
