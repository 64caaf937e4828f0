package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/gitweb"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// Verb is a kind of change c66bot makes in Cloud 66. Its word is the
// policy's action, the start of its audit actions and the command's name.
// Every verb runs on the same machinery: policy, lock, confirmation or
// approvals, the audited claim of the stack, one Cloud 66 call, one card
// followed to the end and resumed after a restart.
type Verb string

// The verbs: the policy's actions, so a rule's `actions:` and the verbs
// are one vocabulary.
const (
	VerbDeploy      Verb = policy.ActionDeploy
	VerbRollback    Verb = policy.ActionRollback
	VerbRestart     Verb = policy.ActionRestart
	VerbMaintenance Verb = policy.ActionMaintenance
	VerbReboot      Verb = policy.ActionReboot
)

// Verbs lists every verb, in help order.
func Verbs() []Verb {
	return []Verb{VerbDeploy, VerbRollback, VerbRestart, VerbMaintenance, VerbReboot}
}

// verbOf is the verb a watch follows; records from before there were
// other verbs have none and are deploys.
func verbOf(w storage.Watch) Verb {
	if w.Verb == "" {
		return VerbDeploy
	}
	return Verb(w.Verb)
}

// shipsCode reports whether the verb runs a deployment (a redeploy in
// Cloud 66): it can be queued, cancelled, found by user_reference, and
// ends with a git hash.
func (v Verb) shipsCode() bool { return v == VerbDeploy || v == VerbRollback }

// Scope is the Cloud 66 OAuth scope the verb's call needs. Cloud 66's
// scope table puts stack actions, redeploys and cancels under redeploy;
// its reboot pages also mention a "reboot" scope, which its scope table
// does not list, so redeploy is asked for and the reply to a refusal
// names both (see commands).
func (v Verb) Scope() string { return "redeploy" }

// Change is one change asked of Cloud 66: the verb and what it needs.
type Change struct {
	Verb Verb
	// Params are a deploy's options. A rollback carries the ref (the
	// earlier deployment's git hash) or, on a Docker stack, its services
	// with their image tags.
	Params Params
	// Service restarts one service only (Docker stacks); "" restarts the
	// stack.
	Service string
	// On turns maintenance mode on; false turns it off.
	On bool
	// Server and ServerName reboot one server (its uid, and its name for
	// people); Group and RebootStrategy reboot a group of servers.
	Server, ServerName    string
	Group, RebootStrategy string
	// Servers names the servers a reboot affects, for the confirmation and
	// the card.
	Servers []string
	// From is the git hash live before a rollback: the card says what was
	// left, and the lock taken afterwards says why.
	From string
	// Lock: after a rollback starts, lock the stack for its requester, so
	// nobody redeploys the bad commit by reflex.
	Lock bool
	// Repo is the stack's repository as a web address on GitHub, GitLab or
	// Bitbucket (see gitweb), for links to commits and comparisons; "" for
	// any other git server, and for Docker stacks.
	Repo string
	// LiveHash is the git hash that was live when a deploy was asked for
	// (known when its confirmation read it), so the card can link what
	// changed.
	LiveHash string
	// Branch is the stack's git branch, what a deploy without a ref ships.
	Branch string

	// live and target are the deployments a rollback leaves and goes back
	// to, read when it was asked for, for its confirmation; not stored.
	live, target *cloud66.Deployment
}

// Keys of the change's own parameters, beside Params' keys, in intents,
// watches and the audit log.
const (
	paramService        = "service"
	paramMaintenance    = "maintenance"
	paramServer         = "server"
	paramServerName     = "server_name"
	paramGroup          = "group"
	paramRebootStrategy = "reboot_strategy"
	paramServers        = "servers"
	paramFrom           = "rolled_back_from"
	paramLockAfter      = "lock_after"
	paramRepo           = "git_repo"
	paramLiveHash       = "live_hash"
	paramBranch         = "git_branch"
)

// Map returns the change's parameters as a map for intents, watches and
// the audit log; empty ones are left out.
func (c Change) Map() map[string]string {
	m := c.Params.Map()
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(paramService, c.Service)
	if c.Verb == VerbMaintenance {
		m[paramMaintenance] = onOff(c.On)
	}
	set(paramServer, c.Server)
	set(paramServerName, c.ServerName)
	set(paramGroup, c.Group)
	set(paramRebootStrategy, c.RebootStrategy)
	set(paramServers, strings.Join(c.Servers, ","))
	set(paramFrom, c.From)
	set(paramRepo, c.Repo)
	set(paramLiveHash, c.LiveHash)
	set(paramBranch, c.Branch)
	if c.Verb == VerbRollback {
		m[paramLockAfter] = yesNo(c.Lock)
	}
	return m
}

// changeFromMap is the inverse of Change.Map for verb.
func changeFromMap(verb Verb, m map[string]string) Change {
	c := Change{
		Verb: verb, Params: ParamsFromMap(m),
		Service: m[paramService], On: m[paramMaintenance] == "on",
		Server: m[paramServer], ServerName: m[paramServerName],
		Group: m[paramGroup], RebootStrategy: m[paramRebootStrategy],
		From: m[paramFrom], Lock: m[paramLockAfter] == "yes",
		Repo: m[paramRepo], LiveHash: m[paramLiveHash], Branch: m[paramBranch],
	}
	for _, s := range strings.Split(m[paramServers], ",") {
		if s != "" {
			c.Servers = append(c.Servers, s)
		}
	}
	return c
}

// repo is the change's repository, when it is on a host gitweb links to.
// It is parsed again from what was stored, so a value that did not come
// from repoAddress never becomes a link.
func (c Change) repo() (gitweb.Repo, bool) { return gitweb.Parse(c.Repo) }

// repoAddress is how a Change records the stack's repository: its web
// address, or "" when it is not on a host gitweb knows.
func repoAddress(git string) string {
	r, ok := gitweb.Parse(git)
	if !ok {
		return ""
	}
	return r.Web()
}

// Shipping is what a deploy ships: its ref, else the stack's branch; ""
// when neither is known.
func (c Change) Shipping() string {
	if c.Params.Ref != "" {
		return c.Params.Ref
	}
	return c.Branch
}

// RefText names what a deploy ships, as mrkdwn: "`v2.1`", or
// "`main` (the stack's branch)", or none when the branch is unknown.
func (c Change) RefText(none string) string {
	switch {
	case c.Params.Ref != "":
		return bk.Code(c.Params.Ref)
	case c.Branch != "":
		return bk.Code(c.Branch) + " (the stack's branch)"
	}
	return none
}

// ChangesLink links the comparison between what was live when the change
// was asked for and what it ships, labelled "abc1234…main"; "" when the
// repository is not on a host gitweb knows or what is live is unknown.
func (c Change) ChangesLink() string { return CompareLink(c.Repo, c.LiveHash, c.Shipping()) }

// watchChange is the change a watch follows.
func watchChange(w storage.Watch) Change { return changeFromMap(verbOf(w), w.Params) }

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Reboot groups and strategies, as Cloud 66 takes them (reference §4, the
// official client's StackReboot).
var (
	rebootGroups     = []string{"all", "web", "haproxy", "db", "mysql", "postgresql", "redis", "mongodb", "elasticsearch", "sidekiq"}
	rebootStrategies = []string{"serial", "parallel"}
)

// RebootGroups lists the server groups a reboot may name.
func RebootGroups() []string { return slices.Clone(rebootGroups) }

// validate catches what Cloud 66 would refuse before anyone is asked to
// confirm a change that could only fail: a deploy's options against the
// stack's type (as Cloud 66's CLI checks them), a reboot's group and
// strategy.
func (c Change) validate(stack cloud66.Stack) error {
	switch c.Verb {
	case VerbDeploy:
		if err := c.Params.validate(); err != nil {
			return err
		}
		return c.Params.validateFor(stack)
	case VerbReboot:
		if c.Server == "" && !slices.Contains(rebootGroups, c.Group) {
			return &OptionError{Problem: fmt.Sprintf("unknown server group %q: want one of %s", c.Group, strings.Join(rebootGroups, ", "))}
		}
		if c.RebootStrategy != "" && !slices.Contains(rebootStrategies, c.RebootStrategy) {
			return &OptionError{Problem: fmt.Sprintf("unknown reboot strategy %q: want serial or parallel", c.RebootStrategy)}
		}
	case VerbRestart:
		if c.Service != "" && stack.Kind() != cloud66.KindDocker && stack.Kind() != cloud66.KindOther {
			return &OptionError{Problem: fmt.Sprintf("`service` is only for Docker stacks, and %s is %s", stackRef(stack.Name, stack.Environment, stack.UID), stack.Kind())}
		}
	}
	return nil
}

// OptionError is a change's option that Cloud 66 would refuse for this
// stack (a Docker-only option on a Rails stack, an unknown group); nothing
// was sent. Problem is plain words with inline code marks.
type OptionError struct {
	Problem string
}

func (e *OptionError) Error() string { return "deploy: " + e.Problem }

// triggered is Cloud 66's answer to the call that starts a change.
type triggered struct {
	ActionID int64
	Queued   bool
	// Refused is set when Cloud 66 answered but did not take the change,
	// with its reason.
	Refused string
}

// trigger makes the one Cloud 66 call that starts c on stackUID; ref is
// the user_reference (only redeploys carry one). None of these calls is
// ever retried: a lost answer may hide a change Cloud 66 made.
func (c Change) trigger(ctx context.Context, c66 Cloud66, stackUID, ref string) (triggered, error) {
	var (
		a   *cloud66.AsyncAction
		err error
	)
	switch c.Verb {
	case VerbDeploy, VerbRollback:
		res, err := c66.Redeploy(ctx, stackUID, cloud66.RedeployRequest{
			GitRef:            c.Params.Ref,
			Services:          c.Params.Services,
			DeploymentProfile: c.Params.Profile,
			DeployStrategy:    c.Params.Strategy,
			UserReference:     ref,
		})
		if err != nil {
			return triggered{}, err
		}
		if !res.OK {
			return triggered{Refused: res.Message}, nil
		}
		return triggered{ActionID: res.AsyncActionID, Queued: res.Queued}, nil
	case VerbRestart:
		req := cloud66.StackActionRequest{Command: cloud66.CommandRestart}
		if c.Service != "" {
			req = cloud66.StackActionRequest{Command: cloud66.CommandServiceRestart, ServiceName: c.Service}
		}
		a, err = c66.RunStackAction(ctx, stackUID, req)
	case VerbMaintenance:
		v := 0
		if c.On {
			v = 1
		}
		a, err = c66.RunStackAction(ctx, stackUID, cloud66.StackActionRequest{Command: cloud66.CommandMaintenanceMode, Value: &v})
	case VerbReboot:
		if c.Server != "" {
			a, err = c66.RebootServer(ctx, stackUID, c.Server)
		} else {
			a, err = c66.RebootServers(ctx, stackUID, cloud66.RebootRequest{Group: c.Group, Strategy: c.RebootStrategy})
		}
	default:
		return triggered{}, fmt.Errorf("deploy: unknown verb %q", c.Verb)
	}
	if err != nil {
		return triggered{}, err
	}
	return triggered{ActionID: a.ID}, nil
}

// actionNames are the async action names Cloud 66 gives c's action
// (reference §6.2), to find it when its start got no answer.
func (c Change) actionNames() []string {
	switch c.Verb {
	case VerbRestart:
		if c.Service != "" {
			return []string{"service_restart"}
		}
		return []string{"restart", "stack_restart"}
	case VerbMaintenance:
		return []string{"maintenance_mode"}
	case VerbReboot:
		if c.Server != "" {
			return []string{"server_reboot"}
		}
		return []string{"stack_reboot"}
	}
	return []string{"application_deployment", "deployment", "redeploy"}
}

// Phrase says, as mrkdwn, what c does to the stack labelled label (already
// mrkdwn): "deploy `v2.1` to *shop* · production", "restart *shop* · staging".
func (c Change) Phrase(label string) string {
	switch c.Verb {
	case VerbRollback:
		to := "the earlier deployment"
		if c.Params.Ref != "" {
			to = bk.Code(shortHash(c.Params.Ref))
		}
		if len(c.Params.Services) > 0 {
			to = codeList(c.Params.Services)
		}
		return "roll " + label + " back to " + to
	case VerbRestart:
		if c.Service != "" {
			return "restart the service " + bk.Code(c.Service) + " of " + label
		}
		return "restart " + label
	case VerbMaintenance:
		return "turn maintenance mode " + onOff(c.On) + " for " + label
	case VerbReboot:
		return "reboot " + c.serversText() + " of " + label
	}
	return "deploy " + c.RefText("the default branch") + " to " + label
}

// Noun is what the watch follows, in words: "deployment", "restart"…
func Noun(w storage.Watch) string { return wordingOf(watchChange(w)).noun }

// Plural names the verb's changes for a freeze: "Deploys", "Restarts".
func (v Verb) Plural() string {
	switch v {
	case VerbRollback:
		return "Rollbacks"
	case VerbRestart:
		return "Restarts"
	case VerbMaintenance:
		return "Maintenance mode changes"
	case VerbReboot:
		return "Reboots"
	}
	return "Deploys"
}

// Doing is what the watch's change does while it runs, to put before the
// stack in a reply: "deploying", "restarting", "turning maintenance mode
// on for"…
func Doing(w storage.Watch) string {
	c := watchChange(w)
	if c.Verb == VerbMaintenance {
		return "turning maintenance mode " + onOff(c.On) + " for"
	}
	return wordingOf(c).runningText
}

// NounOf is the change c names in words: "deployment", "restart"…
func NounOf(c Change) string { return wordingOf(c).noun }

// Verb is the verb of the change r is about: its confirmation's, its
// watch's or its approval request's.
func (r Result) Verb() Verb {
	switch {
	case r.Confirm != nil && r.Confirm.Verb != "":
		return r.Confirm.Verb
	case r.Watch != nil:
		return verbOf(*r.Watch)
	case r.Approval != nil && r.Approval.Verb != "":
		return r.Approval.Verb
	}
	return VerbDeploy
}

// optionWords names a redeploy parameter as the person typed it.
var optionWords = map[string]string{"services": "`services`", "git_ref": "a git ref", "deploy_strategy": "`strategy="}

// validateFor checks p against the stack's type before anything is sent,
// as Cloud 66's CLI does (cloud66.Stack.CheckRedeploy), and says it in the
// words of the command: "`strategy=rolling` is only for Rails and Rack
// stacks, and shop:production is a Docker stack".
func (p Params) validateFor(stack cloud66.Stack) error {
	err := stack.CheckRedeploy(cloud66.RedeployRequest{GitRef: p.Ref, Services: p.Services, DeployStrategy: p.Strategy})
	oe, ok := errors.AsType[*cloud66.DeployOptionError](err)
	if !ok {
		return err
	}
	what := optionWords[oe.Option]
	if oe.Value != "" {
		what += oe.Value + "`"
	}
	return &OptionError{Problem: fmt.Sprintf("%s is only for %s, and %s is %s", what, oe.AppliesTo, stackRef(stack.Name, stack.Environment, stack.UID), oe.Kind)}
}

// VerbError says which change an error stopped, for the replies that name
// it when the command pressed does not (a Confirm button starts whatever
// change was parked). It only wraps: errors.Is and errors.As see through
// it.
type VerbError struct {
	Verb Verb
	Err  error
}

func (e *VerbError) Error() string { return e.Err.Error() }
func (e *VerbError) Unwrap() error { return e.Err }

// withVerb wraps a non-nil err as a *VerbError of v.
func withVerb(v Verb, err error) error {
	if err == nil {
		return nil
	}
	return &VerbError{Verb: v, Err: err}
}
