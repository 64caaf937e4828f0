package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxApprovals bounds a rule's approvals: more is surely a typo, and every
// approval is a person who must be around to click.
const maxApprovals = 10

// Error is a problem with a policy file, pinned to a line when one is known.
type Error struct {
	// File is the file name given to Load or Parse.
	File string
	// Line is 1-based; 0 when the problem has no line (unreadable or empty
	// file, or a YAML error that names none).
	Line int
	// Problem says what is wrong, in words an operator can act on.
	Problem string
	// err is the underlying error, for errors.Is (say fs.ErrNotExist).
	err error
}

// Error reads "policy.yaml:7: rule 2 (shop-production): approvals must be
// 0 or more", like a compiler, so editors can jump to the line; without a
// line it reads "policy.yaml: problem".
func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "policy"
	}
	if e.Line > 0 {
		return file + ":" + strconv.Itoa(e.Line) + ": " + e.Problem
	}
	return file + ": " + e.Problem
}

// Unwrap returns the error behind a problem reading the file, if any.
func (e *Error) Unwrap() error { return e.err }

// Load reads and parses the policy file at path. Errors are *Error and name
// the file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The PathError already names the file; the *Error does it again.
		problem := err.Error()
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			problem = pe.Err.Error()
		}
		return nil, &Error{File: path, Problem: "cannot read the policy file: " + problem, err: err}
	}
	return Parse(path, data)
}

// topKeys, ruleKeys and freezeKeys are the keys each mapping may hold, in
// the order the DESIGN.md example writes them, which is also the order
// "known keys" lists them in. They are functions, not package variables, so
// no caller can change them for everyone.
func topKeys() []string {
	return []string{"admins", "protected_environments", "default", "rules", "freeze"}
}

func ruleKeys() []string {
	return []string{"name", "stacks", "environments", "deployers", "channels", "confirm", "approvals", "actions"}
}

func freezeKeys() []string {
	return []string{"name", "from", "to", "timezone", "environments", "stacks", "actions"}
}

// Parse parses and validates a policy file; name is used in errors and as
// Policy.Source. It returns the first problem found as an *Error.
func Parse(name string, data []byte) (*Policy, error) {
	p := &parser{file: name, data: data}
	root, err := p.document()
	if err != nil {
		return nil, err
	}
	top, err := p.mapping(root, "", topKeys())
	if err != nil {
		return nil, err
	}
	pol := &Policy{Source: name, DefaultAllow: true, Protected: []string{"production"}}

	if pol.Admins, err = p.list(top["admins"], "", "admins", "[U0123ABCD]", userOrGroupID("admin")); err != nil {
		return nil, err
	}
	// A null value counts as absent here, so a key left half-written keeps
	// production protected rather than protecting nothing.
	if n := top["protected_environments"]; n != nil && !isNull(n) {
		envs, err := p.list(n, "", "protected_environments", "[production]", nil)
		if err != nil {
			return nil, err
		}
		pol.Protected = envs // [] protects nothing, on purpose
	}
	if n := top["default"]; n != nil {
		v, err := p.scalar(n, "", "default")
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(v) {
		case "allow":
		case "deny":
			pol.DefaultAllow = false
		default:
			return nil, p.errAt(n, "default must be allow or deny, not %q", v)
		}
	}

	rules, err := p.sequence(top["rules"], "", "rules")
	if err != nil {
		return nil, err
	}
	for i, n := range rules {
		r, err := p.rule(i, n, pol.Admins)
		if err != nil {
			return nil, err
		}
		for j, prev := range pol.Rules {
			if strings.EqualFold(prev.Name, r.Name) {
				return nil, p.errAt(orNode(p.nameNode(n), n), "%sname %q is already used by rule %d (line %d)",
					ruleLabel(i, r.Name), r.Name, j+1, prev.Line)
			}
		}
		pol.Rules = append(pol.Rules, r)
	}

	freezes, err := p.sequence(top["freeze"], "", "freeze")
	if err != nil {
		return nil, err
	}
	for i, n := range freezes {
		f, err := p.freeze(i, n)
		if err != nil {
			return nil, err
		}
		for _, prev := range pol.Freezes {
			if strings.EqualFold(prev.Name, f.Name) {
				return nil, p.errAt(orNode(p.nameNode(n), n), "%sname %q is already used by the freeze on line %d",
					freezeLabel(i, f.Name), f.Name, prev.Line)
			}
		}
		pol.Freezes = append(pol.Freezes, f)
	}
	return pol, nil
}

// rule parses and validates the i-th (0-based) rule. admins are needed to
// tell whether its approvals could ever be given.
func (p *parser) rule(i int, n *yaml.Node, admins []string) (Rule, error) {
	n = resolve(n)
	r := Rule{Line: n.Line}
	// The name comes first so that every later problem, even an unknown key
	// written above the name, is reported against the rule's name.
	r.Name = p.peekName(n)
	ctx := ruleLabel(i, r.Name)
	f, err := p.mapping(n, ctx, ruleKeys())
	if err != nil {
		return r, err
	}
	if r.Name, err = p.scalar(f["name"], ctx, "name"); err != nil {
		return r, err
	}
	if r.Name == "" {
		return r, p.errAt(n, "%sname is missing; every rule needs one, since refusals name it", ctx)
	}
	if r.Stacks, err = p.glob(f["stacks"], ctx); err != nil {
		return r, err
	}
	if r.Environments, err = p.list(f["environments"], ctx, "environments", "[production]", nil); err != nil {
		return r, err
	}
	if r.Deployers, err = p.list(f["deployers"], ctx, "deployers", "[U0123ABCD, S0123ABCD]", userOrGroupID("deployer")); err != nil {
		return r, err
	}
	if r.Channels, err = p.list(f["channels"], ctx, "channels", "[C0123ABCD]", channelID); err != nil {
		return r, err
	}
	if r.Actions, err = p.actions(f["actions"], ctx); err != nil {
		return r, err
	}
	if c := f["confirm"]; c != nil && !isNull(c) {
		c = resolve(c)
		var b bool
		if c.Kind != yaml.ScalarNode || c.ShortTag() != "!!bool" || c.Decode(&b) != nil {
			return r, p.errAt(c, "%sconfirm must be true or false, not %s", ctx, describe(c))
		}
		r.Confirm = &b
	}
	if a := f["approvals"]; a != nil && !isNull(a) {
		a = resolve(a)
		if a.Kind != yaml.ScalarNode || a.ShortTag() != "!!int" || a.Decode(&r.Approvals) != nil {
			return r, p.errAt(a, "%sapprovals must be a whole number from 0 to %d, not %s", ctx, maxApprovals, describe(a))
		}
		switch {
		case r.Approvals < 0:
			return r, p.errAt(a, "%sapprovals must be 0 or more", ctx)
		case r.Approvals > maxApprovals:
			return r, p.errAt(a, "%sapprovals must be %d or fewer", ctx, maxApprovals)
		}
		// A rule whose approvals can never be collected blocks every deploy
		// it matches, and nobody finds out until one is needed. With groups
		// involved the number of people is unknown here, so only lists of
		// plain users are checked. The requester is one of the deployers and
		// cannot approve, hence the -1.
		if r.Approvals > 0 && len(r.Deployers) > 0 {
			people := slices.Concat(r.Deployers, admins)
			slices.Sort(people)
			people = slices.Compact(people)
			if !slices.ContainsFunc(people, isGroupID) && len(people)-1 < r.Approvals {
				return r, p.errAt(a, "%sapprovals is %d, but its deployers and the admins are only %d, and nobody approves their own deploy",
					ctx, r.Approvals, len(people))
			}
		}
	}
	return r, nil
}

// freeze parses and validates the i-th (0-based) freeze.
func (p *parser) freeze(i int, n *yaml.Node) (Freeze, error) {
	n = resolve(n)
	fr := Freeze{Line: n.Line}
	fr.Name = p.peekName(n)
	ctx := freezeLabel(i, fr.Name)
	f, err := p.mapping(n, ctx, freezeKeys())
	if err != nil {
		return fr, err
	}
	if fr.Name, err = p.scalar(f["name"], ctx, "name"); err != nil {
		return fr, err
	}
	if fr.Name == "" {
		return fr, p.errAt(n, "%sname is missing; every freeze needs one, since refusals name it", ctx)
	}
	for _, w := range []struct {
		key string
		dst *WeekTime
	}{{"from", &fr.From}, {"to", &fr.To}} {
		v, err := p.scalar(f[w.key], ctx, w.key)
		if err != nil {
			return fr, err
		}
		if v == "" {
			return fr, p.errAt(orNode(f[w.key], n), "%s%s is missing (a day and time like \"Fri 16:00\")", ctx, w.key)
		}
		wt, ok := parseWeekTime(v)
		if !ok {
			hint := ""
			if strings.Contains(v, "24:") {
				hint = "; midnight at the end of a day is 00:00 of the next"
			}
			return fr, p.errAt(f[w.key], "%s%s %q is not a day and time like \"Fri 16:00\" (three-letter English day, 24-hour HH:MM%s)",
				ctx, w.key, v, hint)
		}
		*w.dst = wt
	}
	if fr.From == fr.To {
		return fr, p.errAt(f["to"], "%sfrom and to are both %s, so the window is empty", ctx, fr.From)
	}
	tz, err := p.scalar(f["timezone"], ctx, "timezone")
	if err != nil {
		return fr, err
	}
	switch {
	case tz == "":
		return fr, p.errAt(orNode(f["timezone"], n), "%stimezone is missing (an IANA zone like Europe/London, or UTC)", ctx)
	case strings.EqualFold(tz, "Local"):
		// "Local" is whatever zone the host happens to have, so the same
		// file would freeze different hours on different machines.
		return fr, p.errAt(f["timezone"], "%stimezone %q depends on the host; name a zone like Europe/London", ctx, tz)
	}
	if fr.Location, err = time.LoadLocation(tz); err != nil {
		return fr, p.errAt(f["timezone"], "%stimezone %q is unknown", ctx, tz)
	}
	if fr.Environments, err = p.list(f["environments"], ctx, "environments", "[production]", nil); err != nil {
		return fr, err
	}
	if fr.Stacks, err = p.glob(f["stacks"], ctx); err != nil {
		return fr, err
	}
	if fr.Actions, err = p.actions(f["actions"], ctx); err != nil {
		return fr, err
	}
	return fr, nil
}

// parser walks the yaml.Node tree by hand instead of decoding into structs:
// that is what gives every problem a line, unknown keys a suggestion, and
// duplicate keys (which a decoder lets the last one win) an error.
type parser struct {
	file string
	data []byte
}

// errAt is an *Error at n's line (0 when n is nil).
func (p *parser) errAt(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: p.file, Line: line, Problem: fmt.Sprintf(format, args...)}
}

// document parses the YAML and returns its root node. An empty file is an
// error: pointing C66BOT_POLICY at a file that was truncated by accident
// would otherwise open every deploy to everyone. So is a second document,
// which would otherwise be ignored.
func (p *parser) document() (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(p.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.empty()
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, p.yamlError(err)
	case len(extra.Content) > 0 && !isNull(extra.Content[0]):
		return nil, p.errAt(&extra, "the file holds a second YAML document (after ---); put everything in one")
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, p.empty()
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, p.errAt(root, "the policy must be a mapping of keys (%s), not %s",
			strings.Join(topKeys(), ", "), describe(root))
	}
	return root, nil
}

func (p *parser) empty() error {
	return &Error{File: p.file, Problem: "the policy file is empty; unset C66BOT_POLICY for the built-in default"}
}

// yamlError turns the YAML library's "yaml: line 3: problem" into an *Error
// on that line, with a hint for the two mistakes people make most in this
// file: an unquoted glob starting with * (YAML reads it as an alias) and
// tabs.
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				line, msg = n, tail
			}
		}
	}
	text := p.lineText(line)
	switch {
	case strings.Contains(msg, "alphabetic or numeric") && strings.Contains(text, "*"):
		msg += ` (quote a glob that starts with *, like stacks: "*")`
	case strings.Contains(msg, "cannot start any token") && bytes.ContainsRune(p.data, '\t'):
		if line == 0 {
			line = bytes.Count(p.data[:bytes.IndexByte(p.data, '\t')], []byte("\n")) + 1
		}
		msg += " (YAML indents with spaces, not tabs)"
	}
	return &Error{File: p.file, Line: line, Problem: "bad YAML: " + msg}
}

// lineText is the 1-based line of the file, "" when out of range.
func (p *parser) lineText(line int) string {
	if line < 1 {
		return ""
	}
	lines := bytes.Split(p.data, []byte("\n"))
	if line > len(lines) {
		return ""
	}
	return string(lines[line-1])
}

// mapping checks that n is a mapping whose keys are all known and appear
// once, and returns its values by key. ctx prefixes problems ("rule 2
// (shop): ").
func (p *parser) mapping(n *yaml.Node, ctx string, known []string) (map[string]*yaml.Node, error) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return nil, p.errAt(n, "%smust be a mapping of keys (%s), not %s", ctx, strings.Join(known, ", "), describe(n))
	}
	values := make(map[string]*yaml.Node, len(n.Content)/2)
	keys := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			return nil, p.errAt(k, "%skeys must be plain words, not %s", ctx, describe(k))
		}
		switch {
		case k.Value == "<<":
			return nil, p.errAt(k, "%smerge keys (<<) are not supported; write the keys out", ctx)
		case !slices.Contains(known, k.Value):
			if s := suggest(k.Value, known); s != "" {
				return nil, p.errAt(k, "%sunknown key %q (did you mean %q?)", ctx, k.Value, s)
			}
			return nil, p.errAt(k, "%sunknown key %q (known keys: %s)", ctx, k.Value, strings.Join(known, ", "))
		}
		if prev, dup := keys[k.Value]; dup {
			return nil, p.errAt(k, "%skey %q appears twice (first on line %d)", ctx, k.Value, prev.Line)
		}
		keys[k.Value] = k
		values[k.Value] = n.Content[i+1]
	}
	return values, nil
}

// peekName is the value of n's name key, if n is a mapping with a plain
// one, so problems found before the name is validated can still name it.
func (p *parser) peekName(n *yaml.Node) string {
	if v := p.nameNode(n); v != nil && v.Kind == yaml.ScalarNode && !isNull(v) {
		return strings.TrimSpace(v.Value)
	}
	return ""
}

// nameNode is the value node of n's name key; nil when n is not a mapping
// or has no name.
func (p *parser) nameNode(n *yaml.Node) *yaml.Node {
	n = resolve(n)
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := resolve(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == "name" {
				return resolve(n.Content[i+1])
			}
		}
	}
	return nil
}

// scalar is the trimmed value of a single-valued key; "" when the key is
// absent or null.
func (p *parser) scalar(n *yaml.Node, ctx, key string) (string, error) {
	if n == nil || isNull(n) {
		return "", nil
	}
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", p.errAt(n, "%s%s must be a single value, not %s", ctx, key, describe(n))
	}
	return strings.TrimSpace(n.Value), nil
}

// sequence is the items of a list-valued key; none when absent or null.
func (p *parser) sequence(n *yaml.Node, ctx, key string) ([]*yaml.Node, error) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return nil, p.errAt(n, "%s%s must be a list (items starting with -), not %s", ctx, key, describe(n))
	}
	return n.Content, nil
}

// list is a list of single values, each checked by check (which returns a
// problem, or "" when the value is fine). A lone value is refused rather
// than taken as a one-item list: "production, staging" would become one
// environment nobody has, the rule would never match, and a later rule or
// the default would decide instead, quietly.
func (p *parser) list(n *yaml.Node, ctx, key, example string, check func(string) string) ([]string, error) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return nil, p.errAt(n, "%s%s must be a list, like %s, not %s", ctx, key, example, describe(n))
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			return nil, p.errAt(item, "%s%s must hold single values, not %s", ctx, key, describe(item))
		}
		v := strings.TrimSpace(item.Value)
		if v == "" || isNull(item) {
			return nil, p.errAt(item, "%s%s holds an empty item", ctx, key)
		}
		if check != nil {
			if problem := check(v); problem != "" {
				return nil, p.errAt(item, "%s%s", ctx, problem)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// glob reads a stacks glob and checks it compiles the way matchStack will
// use it (lower-cased).
func (p *parser) glob(n *yaml.Node, ctx string) (string, error) {
	g, err := p.scalar(n, ctx, "stacks")
	if err != nil || g == "" {
		return "", err
	}
	if _, err := path.Match(strings.ToLower(g), ""); err != nil {
		return "", p.errAt(n, "%sstacks %q is not a valid glob (path.Match syntax: *, ?, [a-z], \\ to escape)", ctx, g)
	}
	return g, nil
}

// actions reads an actions list: verbs from [Actions], any case (kept
// lower-case), each once. An unknown verb is an error naming the valid ones
// rather than a verb nobody governs, which would quietly hand it to a later
// rule or the default. A verb listed twice is refused too, since the second
// was probably meant to be another one.
func (p *parser) actions(n *yaml.Node, ctx string) ([]string, error) {
	var seen []string
	check := func(v string) string {
		a := strings.ToLower(v)
		switch {
		case !IsAction(a):
			hint := ""
			if s := suggest(a, Actions()); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			return fmt.Sprintf("action %q is not one of %s%s", v, strings.Join(Actions(), ", "), hint)
		case slices.Contains(seen, a):
			return fmt.Sprintf("action %q is listed twice", v)
		}
		seen = append(seen, a)
		return ""
	}
	list, err := p.list(n, ctx, "actions", "[deploy, rollback]", check)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i] = strings.ToLower(list[i])
	}
	return list, nil
}

// ruleLabel and freezeLabel prefix problems with what they are about; the
// position is 1-based because people count that way.
func ruleLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("rule %d: ", i+1)
	}
	return fmt.Sprintf("rule %d (%s): ", i+1, name)
}

func freezeLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("freeze %d: ", i+1)
	}
	return "freeze " + name + ": "
}

// userOrGroupID checks ids in admins and deployers; what names the item in
// the problem.
func userOrGroupID(what string) func(string) string {
	return func(v string) string {
		if isSlackID(v, "UWS") {
			return ""
		}
		return fmt.Sprintf("%s %q is not a Slack user or user-group id (U…, W… or S…)%s", what, v, idHint(v, "UWS"))
	}
}

// channelID checks ids in channels.
func channelID(v string) string {
	if isSlackID(v, "CGD") {
		return ""
	}
	return fmt.Sprintf("channel %q is not a Slack channel id (C…, G… or D…)%s", v, idHint(v, "CGD"))
}

// isSlackID reports whether v looks like a Slack id starting with one of
// kinds: an upper-case letter then upper-case letters and digits. Ids, not
// names, because names can be changed by their owners.
func isSlackID(v, kinds string) bool {
	if len(v) < 3 || !strings.ContainsRune(kinds, rune(v[0])) {
		return false
	}
	for _, c := range v[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// idHint says what probably went wrong with a bad id.
func idHint(v, kinds string) string {
	switch {
	case strings.HasPrefix(v, "@") || strings.HasPrefix(v, "#"):
		return "; use the id, not the name, since names can change"
	case isSlackID(strings.ToUpper(v), kinds):
		return "; Slack ids are upper case"
	}
	return ""
}

// suggest is the known key closest to an unknown one, if it is close enough
// to be a typo: at most two edits away, or one is the start of the other
// ("protected" for "protected_environments").
func suggest(key string, known []string) string {
	k := strings.ToLower(key)
	best, bestDist := "", 3
	for _, c := range known {
		d := editDistance(k, c)
		if len(k) >= 4 && (strings.HasPrefix(c, k) || strings.HasPrefix(k, c)) {
			d = min(d, 2)
		}
		if d < bestDist && d < len(k) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (keys are ASCII). Only two rows are kept since keys may be long in a
// broken file.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// resolve follows aliases (&x … *x) to the node they name. Aliases cannot
// form loops in a parsed document, but the bound costs nothing.
func resolve(n *yaml.Node) *yaml.Node {
	for range 16 {
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			return n
		}
		n = n.Alias
	}
	return n
}

// isNull reports whether n is YAML's null ("~", "null" or nothing).
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "must be X, not Y".
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "that"
}

// orNode is n, or fallback when n is nil, so a missing key is reported on
// the line of the mapping it is missing from.
func orNode(n, fallback *yaml.Node) *yaml.Node {
	if n == nil {
		return fallback
	}
	return n
}
