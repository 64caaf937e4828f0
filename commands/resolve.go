package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	bk "github.com/c66bot/c66bot/internal/blockkit"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// stackFinder is the server-filtered stack lookup; *cloud66.Client has it.
// It is optional so that a Cloud66 without it (a test fake, a wrapper)
// still resolves names, by listing every stack. FindStacks must return only
// the exact, case-insensitive matches of name (and environment, when not "").
type stackFinder interface {
	FindStacks(ctx context.Context, name, environment string) ([]cloud66.Stack, error)
}

var _ stackFinder = (*cloud66.Client)(nil)

// resolver finds the stack a person means: with their own Cloud 66 client
// (Deps.Cloud66For) and the names they resolved lately (stackCache, nil
// caching nothing). Commands that take a <stack> are built with it.
type resolver struct {
	clientFor clientFor
	cache     *stackCache
	now       func() time.Time
}

// client is the person's own Cloud 66 client, or accounts.ErrNotLinked.
func (r *resolver) client(ctx context.Context, id storage.Identity) (Cloud66, error) {
	return r.clientFor(ctx, id)
}

// resolveStack turns a `<stack>` argument into one stack the person can
// see: a uid, a name (case-insensitive) or `name:environment`. Several
// matches are an *AmbiguousError listing them, none a *NotFoundError with
// suggestions; nothing is ever guessed. What it costs in Cloud 66 requests:
//
//   - a uid (32 hex digits): GetStack, 1 request. A 404 goes on as a name
//     (nothing stops a stack being named like a uid), ending in not found.
//   - a name this person resolved less than stackCacheTTL ago: none. The
//     stack's status, health and other changing fields may then be that
//     old; commands that show them use resolveFreshStack.
//   - any other name: FindStacks, 1 request when Cloud 66 applies its
//     filters (all pages of the list when it does not). Exactly one match
//     is cached for the person.
//   - a name that matches nothing: FindStacks, then ListStacks (every page)
//     to build the suggestions. This also finds a stack the server's
//     filter missed, or a uid in an unusual form. Errors may cost more.
//
// Commands that then call Cloud 66 about the stack pass the errors through
// stackGone, so a 404 drops the cached name.
func (r *resolver) resolveStack(ctx context.Context, api Cloud66, id storage.Identity, arg string) (cloud66.Stack, error) {
	st, _, err := r.resolve(ctx, api, id, arg)
	return st, err
}

// stackArg is what most commands start with: the caller's own Cloud 66
// client and the stack their argument names.
func (r *resolver) stackArg(ctx context.Context, id storage.Identity, arg string) (Cloud66, cloud66.Stack, error) {
	api, err := r.client(ctx, id)
	if err != nil {
		return nil, cloud66.Stack{}, err
	}
	st, err := r.resolveStack(ctx, api, id, arg)
	return api, st, err
}

// resolveFreshStack is resolveStack for commands that show the stack's
// current state: the stack comes from GetStack, one request, either the one
// that resolved a uid or one more after the name was resolved.
func (r *resolver) resolveFreshStack(ctx context.Context, api Cloud66, id storage.Identity, arg string) (cloud66.Stack, error) {
	st, fresh, err := r.resolve(ctx, api, id, arg)
	if err != nil || fresh {
		return st, err
	}
	got, err := api.GetStack(ctx, st.UID)
	if err != nil {
		return cloud66.Stack{}, r.stackGone(id, st, err)
	}
	return *got, nil
}

// resolve is resolveStack, also saying whether the stack came from GetStack
// just now.
func (r *resolver) resolve(ctx context.Context, api Cloud66, id storage.Identity, arg string) (st cloud66.Stack, fresh bool, err error) {
	if looksLikeUID(arg) {
		got, err := api.GetStack(ctx, arg)
		if err == nil {
			return *got, true, nil
		}
		if !errors.Is(err, cloud66.ErrNotFound) {
			return cloud66.Stack{}, false, err
		}
	}
	ref := ParseStackRef(arg)
	key := newStackKey(id, ref)
	if st, ok := r.cache.get(key, r.now()); ok {
		return st, false, nil
	}
	matches, all, err := findStacks(ctx, api, ref)
	if err != nil {
		return cloud66.Stack{}, false, err
	}
	switch len(matches) {
	case 1:
		r.cache.put(key, matches[0], r.now())
		return matches[0], false, nil
	case 0:
		if all == nil {
			if all, err = api.ListStacks(ctx); err != nil {
				return cloud66.Stack{}, false, err
			}
		}
		st, err := pickStack(all, arg)
		if err == nil && st.UID != arg {
			r.cache.put(key, st, r.now())
		}
		return st, false, err
	}
	return cloud66.Stack{}, false, &AmbiguousError{Arg: arg, Candidates: matches}
}

// findStacks returns the stacks ref names. all is every stack the person
// can see when that is how they were found (api has no FindStacks), so a
// caller needing them does not list them twice; nil otherwise.
func findStacks(ctx context.Context, api Cloud66, ref StackRef) (matches, all []cloud66.Stack, err error) {
	if f, ok := api.(stackFinder); ok && strings.TrimSpace(ref.Name) != "" {
		matches, err = f.FindStacks(ctx, ref.Name, ref.Environment)
		return matches, nil, err
	}
	if all, err = api.ListStacks(ctx); err != nil {
		return nil, nil, err
	}
	return matchStacks(all, ref), all, nil
}

// stackGone passes err through. When it is Cloud 66's 404 about st (the
// stack was deleted, or the person can no longer see it), every name the
// person has cached for st is dropped, so the next command looks it up
// afresh.
func (r *resolver) stackGone(id storage.Identity, st cloud66.Stack, err error) error {
	if errors.Is(err, cloud66.ErrNotFound) {
		r.cache.forget(id, st.UID)
	}
	return err
}

// looksLikeUID reports whether arg has the form of a Cloud 66 stack uid:
// 32 lower-case hex digits.
func looksLikeUID(arg string) bool {
	if len(arg) != 32 {
		return false
	}
	for _, r := range arg {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// matchStacks keeps the stacks ref names: same name and, when ref has one,
// same environment, ignoring case.
func matchStacks(stacks []cloud66.Stack, ref StackRef) []cloud66.Stack {
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
	return matches
}

// pickStack resolves arg against every stack the person can see: its uid,
// else its name.
func pickStack(stacks []cloud66.Stack, arg string) (cloud66.Stack, error) {
	for _, s := range stacks {
		if s.UID == arg {
			return s, nil
		}
	}
	matches := matchStacks(stacks, ParseStackRef(arg))
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

func ambiguousReply(_ context.Context, r *errorReplies, f failure) chat.Message {
	e, _ := errors.AsType[*AmbiguousError](f.err)
	name := ""
	if f.cmd != nil {
		name = f.cmd.Name
	}
	var lines []string
	for _, s := range e.Candidates {
		// Rebuild the person's command with the exact reference in place.
		args := slices.Clone(f.args)
		for i, a := range args {
			if a == e.Arg {
				args[i] = stackRefText(s)
				break
			}
		}
		lines = append(lines, fmt.Sprintf("• %s — `%s %s %s`", bk.StackLabel(s), r.slash, name, bk.Esc(strings.Join(args, " "))))
	}
	msg := fmt.Sprintf(":twisted_rightwards_arrows: %s matches %d stacks; say which one:\n%s", bk.Code(e.Arg), len(e.Candidates), strings.Join(lines, "\n"))
	return ephemeral(msg)
}

func notFoundReply(_ context.Context, r *errorReplies, f failure) chat.Message {
	e, _ := errors.AsType[*NotFoundError](f.err)
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
		msg += " `" + r.slash + " stacks` lists them all."
	}
	return ephemeral(msg)
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
