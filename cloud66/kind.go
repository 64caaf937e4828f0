package cloud66

import "strings"

// StackKind is what sort of stack Cloud 66 runs, as far as the deploy
// options care.
type StackKind int

// Stack kinds.
const (
	// KindOther is any stack that is none of the kinds below (Node.js,
	// Skycap, an unknown framework…).
	KindOther StackKind = iota
	// KindDocker is a Docker stack (Cloud 66 "Maestro"): it deploys
	// services from images, not a git ref. Maestro v2 stacks also run on
	// Kubernetes (see Stack.OnKubernetes).
	KindDocker
	// KindKubernetes is a stack on Kubernetes that is not a Docker stack.
	KindKubernetes
	// KindRails is a Ruby on Rails stack.
	KindRails
	// KindRack is a Rack stack (Sinatra, Padrino…).
	KindRack
)

// String reads as it would in a reply: "a Docker stack".
func (k StackKind) String() string {
	switch k {
	case KindDocker:
		return "a Docker stack"
	case KindKubernetes:
		return "a Kubernetes stack"
	case KindRails:
		return "a Rails stack"
	case KindRack:
		return "a Rack stack"
	}
	return "a stack of another kind"
}

// Kind tells the stack's kind from its framework, then its backend, as the
// API gives them (reference §7.1; Cloud 66's CLI compares framework with
// "docker", "rails" and "rack" and backend with "kubernetes"). Cloud 66
// documents no list of values, so case is ignored and the other spellings
// seen in the wild count too. A Maestro v2 stack (framework "docker",
// backend "kubernetes") is KindDocker; it is also OnKubernetes.
func (s Stack) Kind() StackKind {
	switch fw := lowerTrim(s.Framework); {
	case fw == "docker", fw == "maestro":
		return KindDocker
	case s.OnKubernetes():
		return KindKubernetes
	case fw == "rails":
		return KindRails
	case fw == "rack", fw == "sinatra", fw == "padrino":
		return KindRack
	}
	return KindOther
}

// OnKubernetes reports whether the stack runs on Kubernetes: its backend
// (or framework) says so. Cloud 66's CLI allows the "fast" deploy strategy
// exactly when backend is "kubernetes".
func (s Stack) OnKubernetes() bool {
	return isKubernetes(s.Backend) || isKubernetes(s.Framework)
}

func isKubernetes(v string) bool {
	switch lowerTrim(v) {
	case "kubernetes", "kubes", "k8s":
		return true
	}
	return false
}

func lowerTrim(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Deploy strategies (RedeployRequest.DeployStrategy).
const (
	StrategySerial   = "serial"
	StrategyParallel = "parallel"
	// StrategyRolling is for Rails and Rack stacks only.
	StrategyRolling = "rolling"
	// StrategyFast is for stacks on Kubernetes only.
	StrategyFast = "fast"
)

// DeployOptionError says a redeploy option does not apply to the stack's
// kind; see Stack.CheckRedeploy.
type DeployOptionError struct {
	// Option is the redeploy parameter: "services", "git_ref" or
	// "deploy_strategy".
	Option string
	// Value is the strategy for deploy_strategy, else "".
	Value string
	// AppliesTo says which stacks take the option, e.g. "Docker stacks".
	AppliesTo string
	// Kind is the stack's kind.
	Kind StackKind
}

// Error reads "cloud66: deploy_strategy rolling applies only to Rails and
// Rack stacks, and this is a Docker stack".
func (e *DeployOptionError) Error() string {
	opt := e.Option
	if e.Value != "" {
		opt += " " + e.Value
	}
	return "cloud66: " + opt + " applies only to " + e.AppliesTo + ", and this is " + e.Kind.String()
}

// CheckRedeploy refuses, before anything is sent, the redeploy options that
// do not apply to this stack, as Cloud 66's CLI does (reference §5.1):
// services only on Docker stacks, a git ref not on Docker stacks (they
// deploy images), strategy rolling only on Rails and Rack stacks, fast only
// on stacks on Kubernetes. The error is a *DeployOptionError.
//
// The rules need the stack, not only its Kind: a Maestro v2 stack is a
// Docker stack on Kubernetes and takes both services and fast.
func (s Stack) CheckRedeploy(req RedeployRequest) error {
	kind := s.Kind()
	refuse := func(option, value, appliesTo string) error {
		return &DeployOptionError{Option: option, Value: value, AppliesTo: appliesTo, Kind: kind}
	}
	switch strategy := lowerTrim(req.DeployStrategy); {
	case len(req.Services) > 0 && kind != KindDocker:
		return refuse("services", "", "Docker stacks")
	case req.GitRef != "" && kind == KindDocker:
		return refuse("git_ref", "", "stacks that are not Docker stacks")
	case strategy == StrategyRolling && kind != KindRails && kind != KindRack:
		return refuse("deploy_strategy", StrategyRolling, "Rails and Rack stacks")
	case strategy == StrategyFast && !s.OnKubernetes():
		return refuse("deploy_strategy", StrategyFast, "stacks on Kubernetes")
	}
	return nil
}
