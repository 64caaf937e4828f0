// Package policy reads the optional policy file (C66BOT_POLICY, DESIGN.md
// "The policy file") and answers the questions changes and help ask of it:
// may this person deploy, roll back, restart, switch maintenance mode or
// reboot this stack from this channel, do they have to confirm, how many
// approvals do they need and from whom, and is the target frozen right now.
//
// The bot acts in Cloud 66 with the requester's own token, so Cloud 66 has
// already decided what a person can do; a policy can only narrow that. It is
// a package of its own, below deploy and commands, because both consult it
// (deploy before it starts anything, commands to hide in help the verbs a
// person may never use) and neither should own the file format.
//
// The package is pure: apart from reading the file in [Load] (and the zone
// data time.LoadLocation reads) it does no I/O and keeps no state, so a
// *Policy can be shared by every goroutine and swapped whole on reload.
//
// # Deciding
//
// [Policy.Decide] takes the first rule whose stacks glob, environments and
// actions match the target, like a firewall: order rules from the most
// specific to the most general. That rule alone decides whether the person
// may use the verb (its deployers, user groups included, and its channels),
// whether they must confirm, and how many approvals they need. When no rule
// matches, the default (allow unless the file says deny) decides. Freezes
// are reported beside that decision rather than folded into it, because an
// admin may override a freeze but never a rule.
//
// The verbs are [Actions]; deploy and commands use these constants so the
// words in the file and in the code are the same.
//
// # Errors
//
// [Parse] refuses anything it does not understand, including unknown keys
// anywhere in the file: a misspelt key would otherwise be ignored and the
// policy silently weaker than its author believes. Every problem is an
// [*Error] that names the file and line, so the operator can fix it from the
// single log line the bot prints when it refuses to start.
package policy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The verbs a rule or a freeze may govern (their actions key). A Target
// with no Action is a deploy.
const (
	ActionDeploy      = "deploy"
	ActionRollback    = "rollback"
	ActionRestart     = "restart"
	ActionMaintenance = "maintenance"
	ActionReboot      = "reboot"
)

// Actions lists every verb, in the order the docs name them. It is a new
// slice each time, so no caller can change it for everyone.
func Actions() []string {
	return []string{ActionDeploy, ActionRollback, ActionRestart, ActionMaintenance, ActionReboot}
}

// IsAction reports whether a is one of [Actions], exactly (lower case).
func IsAction(a string) bool {
	return slices.Contains(Actions(), a)
}

// Policy is a parsed policy file. Build it with [Parse], [Load] or
// [Default]; treat it as read-only once built, since it is shared.
type Policy struct {
	// Admins are Slack user or user-group ids that may override a freeze.
	Admins []string
	// Protected lists the environments (compared case-insensitively) whose
	// deploys need the requester's confirmation unless a rule says
	// otherwise: protected_environments, ["production"] when the key is
	// absent.
	Protected []string
	// DefaultAllow decides when no rule matches: default: allow (true, also
	// when the key is absent) or deny (false).
	DefaultAllow bool
	// Rules are tried in order; the first whose stacks, environments and
	// actions match the target decides.
	Rules []Rule
	// Freezes are windows of the week during which changes are refused
	// unless an admin overrides.
	Freezes []Freeze
	// Source is the file the policy came from, for messages; "" for the
	// built-in [Default].
	Source string
}

// Rule says who may use which verbs on which stacks and environments, and
// from where.
type Rule struct {
	// Name is unique in the file (case-insensitively) and named in every
	// refusal the rule causes.
	Name string
	// Stacks is a path.Match glob matched case-insensitively against the
	// stack name; "" matches every stack.
	Stacks string
	// Environments the rule covers, compared case-insensitively; empty
	// means every environment.
	Environments []string
	// Actions are the verbs the rule governs, each one of [Actions]; empty
	// means every verb. A rule that does not govern the verb asked for is
	// skipped as if its stacks did not match.
	Actions []string
	// Deployers are the Slack user ids (U…, W…) and user-group ids (S…)
	// that may use the rule's verbs; empty means every linked person.
	Deployers []string
	// Channels are the channel ids (C…, G…, D…) the rule's verbs may be
	// used from; empty means anywhere.
	Channels []string
	// Confirm, when set, overrides Policy.Protected for this rule.
	Confirm *bool
	// Approvals is how many approvals (0..10) the requester needs from other
	// deployers of the rule or admins.
	Approvals int
	// Line is where the rule starts in the file (1-based), for messages.
	Line int
}

// Freeze is a weekly window, in wall-clock time of its zone, during which
// changes to the targets it covers are refused unless an admin overrides.
type Freeze struct {
	// Name is unique in the file and shown in refusals.
	Name string
	// From is the first minute of the window (inclusive).
	From WeekTime
	// To is the minute the window ends (exclusive). It may come before
	// From in the week, in which case the window wraps over Saturday night.
	To WeekTime
	// Location is the zone From and To are read in; nil means UTC.
	Location *time.Location
	// Environments the freeze covers, compared case-insensitively; empty
	// means every environment.
	Environments []string
	// Stacks is a path.Match glob on the stack name, case-insensitive; ""
	// means every stack.
	Stacks string
	// Actions are the verbs the freeze stops, each one of [Actions]; empty
	// means every verb, so a freeze stops restarts and reboots too unless
	// it says otherwise.
	Actions []string
	// Line is where the freeze starts in the file (1-based), for messages.
	Line int
}

// Subject is the person asking, as Slack identifies them.
type Subject struct {
	// User is the Slack user id.
	User string
	// Groups are the ids of the user groups the user belongs to; only the
	// ones [Policy.GroupIDs] lists matter.
	Groups []string
	// Channel is the channel id the request came from.
	Channel string
}

// Target is what a change would change, and how.
type Target struct {
	// StackName is the Cloud 66 stack name (not its uid: rules are written
	// by people, who know stacks by name).
	StackName string
	// Environment is the stack's environment, e.g. production.
	Environment string
	// Action is the verb asked for, one of [Actions]; "" means
	// [ActionDeploy]. Any other word is refused, whatever the rules say.
	Action string
}

// Decision is the policy's answer for one request.
type Decision struct {
	// Allowed says whether the rules (or the default) let the subject use
	// the target's verb on it from that channel. It ignores freezes.
	Allowed bool
	// Rule is the name of the rule that decided; "" when the default did.
	Rule string
	// Reason says why not, as plain words for Slack; "" when Allowed. The
	// stack and environment names appear verbatim and channels as <#C…>
	// mentions.
	Reason string
	// Confirm says the requester must confirm: the rule's confirm when it
	// sets one, else whether the environment is protected.
	Confirm bool
	// Approvals is how many approvals from others the change needs.
	Approvals int
	// Approvers, when Approvals > 0, are the ids (users and groups) that may
	// approve: the rule's deployers and the admins, without the requester.
	// Nil with Approvals > 0 means any linked person except the requester,
	// because the rule lets everyone use its verbs.
	Approvers []string
	// Freeze is non-nil when a freeze covers the target (its verb included)
	// now. Callers refuse the change unless an admin overrides.
	Freeze *FreezeHit
}

// FreezeHit names the freeze that covers a target now.
type FreezeHit struct {
	// Name is the freeze in force now (the first in the file when several
	// are).
	Name string
	// Until is when the target reopens to the verb, in UTC. Freezes that
	// overlap or follow each other without a gap count as one, so this is
	// the end of the last of them, not of the first.
	Until time.Time
}

// Default is the policy without a file: every linked person may deploy any
// stack from anywhere, production needs the requester's confirmation, and
// nothing is frozen.
func Default() *Policy {
	return &Policy{Protected: []string{"production"}, DefaultAllow: true}
}

// Decide answers whether s may use t's verb on t at now. The first rule
// whose stacks, environments and actions match t decides Allowed, Confirm
// and Approvals; with no such rule the default does. Confirmation by
// protected_environments applies to every verb. Freeze is filled
// independently of Allowed, so a caller can tell "not yours to deploy" from
// "frozen, ask an admin". Refusals name the verb ("allows restarts only
// from …"); a deploy's read as they always have.
func (p *Policy) Decide(s Subject, t Target, now time.Time) Decision {
	t.Action = actionOf(t.Action)
	d := Decision{Confirm: containsFold(p.Protected, t.Environment)}
	w, known := verbWords(t.Action)
	if !known {
		// A caller's mistake, not the file's: refuse rather than let a rule
		// with no actions (every verb) stretch to a word nobody wrote it for.
		d.Reason = "the policy knows no action " + strconv.Quote(t.Action) + " (" + strings.Join(Actions(), ", ") + ")"
		return d
	}
	r := p.match(t)
	if r == nil {
		d.Allowed = p.DefaultAllow
		if !d.Allowed {
			d.Reason = "no rule matches and the default is deny"
			if t.Action != ActionDeploy {
				d.Reason = "no rule matches " + w.plural + " and the default is deny"
			}
		}
	} else {
		d.Rule = r.Name
		if r.Confirm != nil {
			d.Confirm = *r.Confirm
		}
		d.Approvals = r.Approvals
		if r.Approvals > 0 {
			d.Approvers = p.approvers(r, s.User)
		}
		switch {
		case !r.admits(s):
			d.Reason = "rule " + r.Name + " lets only its deployers " + w.verb + " " + targetLabel(t)
		case len(r.Channels) > 0 && !slices.Contains(r.Channels, s.Channel):
			d.Reason = "rule " + r.Name + " allows " + w.plural + " only from " + channelList(r.Channels)
		default:
			d.Allowed = true
		}
	}
	d.Freeze = p.freezeHit(t, now)
	return d
}

// IsAdmin reports whether the user, or one of the groups they are in, is
// among the admins.
func (p *Policy) IsAdmin(user string, groups []string) bool {
	return inIDs(p.Admins, user, groups)
}

// CanApprove reports whether approver may approve a change that rule (the
// Decision.Rule) let requester ask for, whatever its verb: a rule names the
// same approvers for every verb it governs. The requester never may, whatever
// else they are, so one person cannot be both halves of a two-person check.
// Admins always may; otherwise the approver must be one of the rule's
// deployers, or anyone when the rule has none. An unknown rule name
// (including "", or a rule renamed by a reload) leaves only admins: when in
// doubt, the stricter answer.
func (p *Policy) CanApprove(approver Subject, rule string, requester string) bool {
	if approver.User == "" || approver.User == requester {
		return false
	}
	if p.IsAdmin(approver.User, approver.Groups) {
		return true
	}
	r := p.rule(rule)
	return r != nil && r.admits(approver)
}

// MayUse reports whether some stack, environment and channel exist where s
// could be allowed to use action ("" is a deploy). It is false only when no
// rule and no default could ever let them, which is when help hides the
// verb. Only rules governing action count. Channels are ignored (the person
// could go there), and so are freezes (they end) and the overlap of rules,
// except that a rule matching every stack and environment makes the rules
// after it and the default unreachable for its verbs.
func (p *Policy) MayUse(s Subject, action string) bool {
	action = actionOf(action)
	if !IsAction(action) {
		return false
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.governs(action) {
			continue
		}
		if r.admits(s) {
			return true
		}
		if matchesAll(r.Stacks) && len(r.Environments) == 0 {
			return false
		}
	}
	return p.DefaultAllow
}

// MayDeploySomewhere is MayUse(s, ActionDeploy), for the callers that
// predate the other verbs.
func (p *Policy) MayDeploySomewhere(s Subject) bool {
	return p.MayUse(s, ActionDeploy)
}

// GroupIDs lists, sorted and without repeats, every user-group id (S…) the
// admins and the rules' deployers mention, so the bot resolves the
// membership of only those groups.
func (p *Policy) GroupIDs() []string {
	var ids []string
	add := func(list []string) {
		for _, id := range list {
			if isGroupID(id) {
				ids = append(ids, id)
			}
		}
	}
	add(p.Admins)
	for _, r := range p.Rules {
		add(r.Deployers)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// isGroupID reports whether id names a Slack user group rather than a user.
func isGroupID(id string) bool {
	return strings.HasPrefix(id, "S")
}

// match is the first rule covering t, or nil.
func (p *Policy) match(t Target) *Rule {
	for i := range p.Rules {
		r := &p.Rules[i]
		if matchStack(r.Stacks, t.StackName) && matchEnv(r.Environments, t.Environment) && r.governs(t.Action) {
			return r
		}
	}
	return nil
}

// rule finds a rule by name. Names are unique case-insensitively, so
// folding case cannot pick the wrong one.
func (p *Policy) rule(name string) *Rule {
	if name == "" {
		return nil
	}
	for i := range p.Rules {
		if strings.EqualFold(p.Rules[i].Name, name) {
			return &p.Rules[i]
		}
	}
	return nil
}

// approvers is who may approve under r: its deployers then the admins,
// without repeats and without the requester, who may never approve. Nil
// when r has no deployers, which means anyone but the requester.
func (p *Policy) approvers(r *Rule, requester string) []string {
	if len(r.Deployers) == 0 {
		return nil
	}
	var out []string
	for _, id := range slices.Concat(r.Deployers, p.Admins) {
		if id != requester && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// freezeHit reports the freeze covering t (its verb included) at now, if
// any, with the time t reopens to that verb. Back-to-back or overlapping
// windows are followed to the end of the last one, so "frozen until" is
// never a moment when another freeze takes over. Each hop ends at least one window, and a window cannot
// start again before the others have ended, so len(Freezes)+1 hops are
// enough; the bound also stops windows that cover the whole week from
// looping forever (Until is then where the search stopped).
func (p *Policy) freezeHit(t Target, now time.Time) *FreezeHit {
	var hit *FreezeHit
	at := now
	for range len(p.Freezes) + 1 {
		var end time.Time
		for _, f := range p.Freezes {
			if !f.covers(t) {
				continue
			}
			if on, until := f.Active(at); on {
				if hit == nil {
					hit = &FreezeHit{Name: f.Name}
				}
				if until.After(end) {
					end = until
				}
			}
		}
		if end.IsZero() {
			break
		}
		hit.Until = end
		at = end
	}
	return hit
}

// covers reports whether the freeze applies to t at all, whatever the time.
func (f Freeze) covers(t Target) bool {
	return matchStack(f.Stacks, t.StackName) && matchEnv(f.Environments, t.Environment) && includesAction(f.Actions, t.Action)
}

// governs reports whether the rule governs action.
func (r *Rule) governs(action string) bool {
	return includesAction(r.Actions, action)
}

// includesAction reports whether a rule's or freeze's actions include action,
// empty actions meaning every verb.
func includesAction(actions []string, action string) bool {
	return len(actions) == 0 || slices.Contains(actions, action)
}

// actionOf is the verb a caller asked for, a deploy when it names none.
// Case is folded so a caller's "Restart" is not refused for its capital.
func actionOf(action string) string {
	if action == "" {
		return ActionDeploy
	}
	return strings.ToLower(action)
}

// words is how refusals name a verb.
type words struct {
	verb   string // after "lets only its deployers", before the target
	plural string // after "allows" and "no rule matches"
}

// verbWords is how refusals name action; false when it is no verb. The
// deploy words keep today's refusals word for word.
func verbWords(action string) (words, bool) {
	switch action {
	case ActionDeploy:
		return words{"deploy", "deploys"}, true
	case ActionRollback:
		return words{"roll back", "rollbacks"}, true
	case ActionRestart:
		return words{"restart", "restarts"}, true
	case ActionMaintenance:
		return words{"switch maintenance mode of", "maintenance mode switches"}, true
	case ActionReboot:
		return words{"reboot servers of", "reboots"}, true
	}
	return words{}, false
}

// admits reports whether s is one of the rule's deployers, directly or
// through a group; a rule without deployers admits every linked person.
func (r *Rule) admits(s Subject) bool {
	return len(r.Deployers) == 0 || inIDs(r.Deployers, s.User, s.Groups)
}

// inIDs reports whether user or one of groups is in ids. An empty user never
// matches, so a request with no identity cannot slip through.
func inIDs(ids []string, user string, groups []string) bool {
	if user != "" && slices.Contains(ids, user) {
		return true
	}
	for _, g := range groups {
		if g != "" && slices.Contains(ids, g) {
			return true
		}
	}
	return false
}

// matchStack matches a stack glob case-insensitively; Parse has checked the
// glob, so an error cannot happen for a parsed policy and counts as no match
// for a hand-built one. A glob that matchesAll matches every name, a "/" in
// it included (which path.Match's * would not): someone who writes "*"
// means every stack, and MayUse relies on it.
func matchStack(glob, name string) bool {
	if matchesAll(glob) {
		return true
	}
	ok, err := path.Match(strings.ToLower(glob), strings.ToLower(name))
	return ok && err == nil
}

// matchesAll reports whether a stacks glob obviously covers every stack.
func matchesAll(glob string) bool {
	return glob == "" || glob == "*"
}

// matchEnv reports whether env is in envs, empty envs meaning all.
func matchEnv(envs []string, env string) bool {
	return len(envs) == 0 || containsFold(envs, env)
}

// containsFold is slices.Contains ignoring case.
func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(e string) bool { return strings.EqualFold(e, s) })
}

// targetLabel is how refusals name a target: "shop · production".
func targetLabel(t Target) string {
	if t.Environment == "" {
		return t.StackName
	}
	return t.StackName + " · " + t.Environment
}

// channelList renders channel ids as Slack mentions: "<#C1>, <#C2> or <#C3>".
func channelList(ids []string) string {
	m := make([]string, len(ids))
	for i, id := range ids {
		m[i] = "<#" + id + ">"
	}
	if len(m) == 1 {
		return m[0]
	}
	return strings.Join(m[:len(m)-1], ", ") + " or " + m[len(m)-1]
}
