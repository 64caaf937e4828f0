package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
)

// resolveStack turns a `<stack>` argument into one stack the person can see:
// a uid, a name (case-insensitive) or `name:environment`. Several matches
// are an *AmbiguousError listing them; nothing is ever guessed.
func resolveStack(ctx context.Context, api Cloud66, arg string) (cloud66.Stack, error) {
	stacks, err := api.ListStacks(ctx)
	if err != nil {
		return cloud66.Stack{}, err
	}
	return pickStack(stacks, arg)
}

func pickStack(stacks []cloud66.Stack, arg string) (cloud66.Stack, error) {
	for _, s := range stacks {
		if s.UID == arg {
			return s, nil
		}
	}
	ref := ParseStackRef(arg)
	var matches []cloud66.Stack
	for _, s := range stacks {
		if !strings.EqualFold(s.Name, ref.Name) {
			continue
		}
		if ref.Environment != "" && !strings.EqualFold(s.Environment, ref.Environment) {
			continue
		}
		matches = append(matches, s)
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		var names []string
		for _, s := range stacks {
			names = append(names, stackRefText(s))
			if !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
		return cloud66.Stack{}, &NotFoundError{Kind: "stack", Arg: arg, Suggestions: suggest(strings.ToLower(arg), names, 3)}
	}
	return cloud66.Stack{}, &AmbiguousError{Arg: arg, Candidates: matches}
}

func ambiguousReply(command string, c *Call, e *AmbiguousError) Reply {
	var lines []string
	for _, s := range e.Candidates {
		// Rebuild the person's command with the exact reference in place.
		args := slices.Clone(c.Args)
		for i, a := range args {
			if a == e.Arg {
				args[i] = stackRefText(s)
				break
			}
		}
		lines = append(lines, fmt.Sprintf("• %s — `%s %s %s`", bk.StackLabel(s), command, c.Command.Name, bk.Esc(strings.Join(args, " "))))
	}
	msg := fmt.Sprintf(":twisted_rightwards_arrows: %s matches %d stacks; say which one:\n%s", bk.Code(e.Arg), len(e.Candidates), strings.Join(lines, "\n"))
	return errorText(msg)
}

func notFoundReply(command string, e *NotFoundError) Reply {
	msg := fmt.Sprintf(":mag: I can't find a %s called %s", e.Kind, bk.Code(e.Arg))
	if e.Within != "" {
		msg += " in " + bk.Esc(e.Within)
	}
	msg += " among those your Cloud 66 account can see."
	if len(e.Suggestions) > 0 {
		var s []string
		for _, x := range e.Suggestions {
			s = append(s, bk.Code(x))
		}
		msg += " Did you mean " + strings.Join(s, " or ") + "?"
	}
	if e.Kind == "stack" {
		msg += " `" + command + " stacks` lists them all."
	}
	return errorText(msg)
}

// suggest returns up to n candidates close to word: same prefix, or within
// an edit distance that grows with the word's length.
func suggest(word string, candidates []string, n int) []string {
	type scored struct {
		s string
		d int
	}
	var out []scored
	maxD := 1 + len(word)/4
	seen := map[string]bool{}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if seen[lc] || lc == word {
			continue
		}
		seen[lc] = true
		d := distance(word, lc)
		if len(word) >= 3 && strings.HasPrefix(lc, word) {
			d = min(d, 1)
		}
		if d <= maxD {
			out = append(out, scored{c, d})
		}
	}
	slices.SortStableFunc(out, func(a, b scored) int { return a.d - b.d })
	var res []string
	for i := 0; i < len(out) && i < n; i++ {
		res = append(res, out[i].s)
	}
	return res
}

// distance is the Levenshtein distance between a and b, over runes and
// capped so a hostile long word costs little.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 64
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// stackRefText is how a person names this stack unambiguously.
func stackRefText(s cloud66.Stack) string { return bk.StackRef(s.Name, s.Environment) }
