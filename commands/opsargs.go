package commands

import (
	"fmt"
	"slices"
	"strings"

	"github.com/c66bot/c66bot/deploy"
)

// OpsArgs is a parsed rollback, restart, maintenance or reboot: the stack,
// the positional words after it, and its key=value options.
type OpsArgs struct {
	// Stack is the <stack> argument, environment folded in when given as
	// env=… (so resolution sees `name:environment`).
	Stack string
	// Words are the positional words after the stack (maintenance's on or
	// off, reboot's server).
	Words []string
	// Options are the key=value options, keys lower-cased.
	Options map[string]string
}

// opsGrammar is what one verb accepts after <stack>.
type opsGrammar struct {
	keys     []string // its option keys, besides env
	minWords int
	maxWords int
}

var opsGrammars = map[deploy.Verb]opsGrammar{
	deploy.VerbRollback:    {keys: []string{"to", "lock"}},
	deploy.VerbRestart:     {keys: []string{"service"}},
	deploy.VerbMaintenance: {minWords: 1, maxWords: 1},
	deploy.VerbReboot:      {keys: []string{"group", "strategy"}, maxWords: 1},
}

// ParseOpsArgs reads the words after the verb. Everything is checked
// before anything is sent: an unknown key, a value given twice, an empty
// value, a word where an option belongs come back as a *UsageError naming
// the problem; so do the rules of each verb (maintenance wants on or off;
// reboot wants a server or group=, not both; lock is yes or no).
func ParseOpsArgs(verb deploy.Verb, args []string) (OpsArgs, error) {
	g, ok := opsGrammars[verb]
	if !ok {
		return OpsArgs{}, fmt.Errorf("commands: no grammar for %q", verb)
	}
	if len(args) == 0 || args[0] == "" || strings.Contains(args[0], "=") {
		return OpsArgs{}, &UsageError{Problem: "Which stack?"}
	}
	out := OpsArgs{Stack: args[0], Options: map[string]string{}}
	keys := append(slices.Clone(g.keys), "env")
	for _, a := range args[1:] {
		key, val, isOpt := strings.Cut(a, "=")
		if !isOpt {
			if len(out.Options) > 0 || len(out.Words) >= g.maxWords {
				return OpsArgs{}, &UsageError{Problem: fmt.Sprintf("I don't understand %s.", quoteArg(a))}
			}
			out.Words = append(out.Words, a)
			continue
		}
		key = strings.ToLower(key)
		switch {
		case !slices.Contains(keys, key):
			return OpsArgs{}, &UsageError{Problem: fmt.Sprintf("Unknown option %s; the keys are %s.", quoteArg(key), codeWords(keys))}
		case out.Options[key] != "":
			return OpsArgs{}, &UsageError{Problem: fmt.Sprintf("%s is given twice.", quoteArg(key))}
		case val == "":
			return OpsArgs{}, &UsageError{Problem: fmt.Sprintf("%s is empty.", quoteArg(key))}
		}
		out.Options[key] = val
	}
	if len(out.Words) < g.minWords {
		return OpsArgs{}, &UsageError{Problem: "Something is missing."}
	}
	if env := out.Options["env"]; env != "" {
		switch {
		case strings.Contains(out.Stack, ":"):
			return OpsArgs{}, &UsageError{Problem: "The environment is given twice (`name:env` and `env=`)."}
		case !validEnvironment(env):
			return OpsArgs{}, &UsageError{Problem: badEnvironment(env)}
		}
		out.Stack += ":" + env
		delete(out.Options, "env")
	}
	switch verb {
	case deploy.VerbMaintenance:
		if w := strings.ToLower(out.Words[0]); w != "on" && w != "off" {
			return OpsArgs{}, &UsageError{Problem: fmt.Sprintf("Maintenance mode is `on` or `off`, not %s.", quoteArg(out.Words[0]))}
		}
	case deploy.VerbReboot:
		switch {
		case len(out.Words) == 1 && out.Options["group"] != "":
			return OpsArgs{}, &UsageError{Problem: "Name one server, or a `group=`, not both."}
		case len(out.Words) == 0 && out.Options["group"] == "":
			return OpsArgs{}, &UsageError{Problem: "Which server? Name one, or a group with `group=web` (or db, all…)."}
		case len(out.Words) == 1 && out.Options["strategy"] != "":
			return OpsArgs{}, &UsageError{Problem: "`strategy` is for a group of servers; one server simply reboots."}
		}
	case deploy.VerbRollback:
		if l := strings.ToLower(out.Options["lock"]); l != "" && l != "yes" && l != "no" {
			return OpsArgs{}, &UsageError{Problem: fmt.Sprintf("`lock` is `yes` or `no`, not %s.", quoteArg(out.Options["lock"]))}
		}
	}
	return out, nil
}

// validEnvironment: an env= folded into the stack must not read as
// another name there (`shop:a:b` is the stack `shop:a` in `b`).
func validEnvironment(env string) bool { return !strings.ContainsAny(env, ":=") }

func badEnvironment(env string) string {
	return fmt.Sprintf("The environment %s isn't an environment's name.", quoteArg(env))
}

// codeWords is words as inline code, comma separated.
func codeWords(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = "`" + w + "`"
	}
	return strings.Join(out, ", ")
}
