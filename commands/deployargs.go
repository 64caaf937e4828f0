package commands

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/c66bot/c66bot/deploy"
	bk "github.com/c66bot/c66bot/internal/blockkit"
)

// DeployArgs is a parsed `deploy <stack>[@ref] [key=value…]`.
type DeployArgs struct {
	// Stack is the <stack> argument, environment folded in when given as
	// env=… (so resolution sees `name:environment`).
	Stack  string
	Params deploy.Params
}

// Strategies Cloud 66 accepts for deploy_strategy.
var strategies = []string{"serial", "parallel", "rolling", "fast"}

// deployKeys are the key=value options of deploy, in help order.
var deployKeys = []string{"ref", "services", "profile", "strategy", "env"}

// ParseDeployArgs validates everything before anything is sent: an unknown
// key, a bad strategy, an empty or malformed ref all come back as a
// *UsageError naming the problem.
func ParseDeployArgs(args []string) (DeployArgs, error) {
	if len(args) == 0 {
		return DeployArgs{}, &UsageError{Problem: "Which stack?"}
	}
	var out DeployArgs
	stack, ref, hasRef := strings.Cut(args[0], "@")
	if stack == "" {
		return DeployArgs{}, &UsageError{Problem: "Which stack?"}
	}
	if hasRef {
		if ref == "" {
			return DeployArgs{}, &UsageError{Problem: "The ref after `@` is empty."}
		}
		out.Params.Ref = ref
	}
	seen := map[string]bool{}
	env := ""
	for _, a := range args[1:] {
		key, val, ok := strings.Cut(a, "=")
		key = strings.ToLower(key)
		if !ok {
			return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("I don't understand %s: options are `key=value` with keys %s.", quoteArg(a), keyList())}
		}
		if !slices.Contains(deployKeys, key) {
			return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("Unknown option %s; the keys are %s.", quoteArg(key), keyList())}
		}
		if seen[key] {
			return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("%s is given twice.", quoteArg(key))}
		}
		seen[key] = true
		if val == "" {
			return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("%s is empty.", quoteArg(key))}
		}
		switch key {
		case "ref":
			if hasRef && val != out.Params.Ref {
				return DeployArgs{}, &UsageError{Problem: "The ref is given twice (`@` and `ref=`) with different values."}
			}
			out.Params.Ref = val
		case "services":
			svcs, err := parseServices(val)
			if err != nil {
				return DeployArgs{}, err
			}
			out.Params.Services = svcs
		case "profile":
			if !validName(val) {
				return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("The profile %s has characters Cloud 66 profile names don't.", quoteArg(val))}
			}
			out.Params.Profile = val
		case "strategy":
			s := strings.ToLower(val)
			if !slices.Contains(strategies, s) {
				return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("The strategy %s isn't one of %s.", quoteArg(val), strings.Join(strategies, ", "))}
			}
			out.Params.Strategy = s
		case "env":
			env = val
		}
	}
	if out.Params.Ref != "" {
		if problem := refProblem(out.Params.Ref); problem != "" {
			return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("The ref %s %s.", quoteArg(out.Params.Ref), problem)}
		}
	}
	out.Stack = stack
	if env != "" {
		if !validEnvironment(env) {
			return DeployArgs{}, &UsageError{Problem: badEnvironment(env)}
		}
		ref := ParseStackRef(stack)
		if ref.Environment != "" && !strings.EqualFold(ref.Environment, env) {
			return DeployArgs{}, &UsageError{Problem: fmt.Sprintf("The environment is given twice: %s and %s.", quoteArg(ref.Environment), quoteArg(env))}
		}
		out.Stack = ref.Name + ":" + env
	}
	return out, nil
}

func keyList() string {
	var ks []string
	for _, k := range deployKeys {
		ks = append(ks, "`"+k+"`")
	}
	return strings.Join(ks, ", ")
}

// quoteArg shows a person's word back safely: as inline code, cut to 60
// characters and a mark.
func quoteArg(s string) string { return bk.Code(bk.Truncate(s, 61)) }

// parseServices reads `web,worker:1.2.3`.
func parseServices(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		name, tag, hasTag := strings.Cut(s, ":")
		if !validName(name) || (hasTag && !validTag(tag)) {
			return nil, &UsageError{Problem: fmt.Sprintf("The service %s should be `name` or `name:tag`.", quoteArg(s))}
		}
		if slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// validName: service and profile names are identifiers.
func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validTag: an image tag or a git ref, in the characters they share in
// practice; anything else is more likely a typo than a tag.
func validTag(t string) bool {
	if t == "" || refProblem(t) != "" {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./+@", r)) {
			return false
		}
	}
	return true
}

// refProblem applies git's own rules for ref names (git check-ref-format),
// so a typo is caught here rather than as a failed build minutes later.
func refProblem(ref string) string {
	switch {
	case !utf8.ValidString(ref):
		return "isn't valid text"
	case len(ref) > 200:
		return "is too long"
	case strings.HasPrefix(ref, "-"):
		return "can't start with `-`"
	case strings.Contains(ref, ".."), strings.Contains(ref, "@{"), strings.HasSuffix(ref, "."), strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, ".lock"), strings.Contains(ref, "//"):
		return "isn't a valid git ref"
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return "has a character git refs can't contain"
		}
	}
	return ""
}
