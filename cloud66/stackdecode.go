package cloud66

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file decodes stack envelopes by hand. encoding/json spent about
// 8 µs per stack of a list, most of it validating and unquoting the
// fifteen fields nobody reads (and reflecting over the rest); this decoder
// validates the input in the same single pass that picks out the fields
// Stack keeps, skips the others without unquoting them, and puts each
// stack's strings in one allocation.
//
// It answers exactly as encoding/json would for the same envelope with
// stackWire (FuzzStackDecoderMatchesEncodingJSON checks it): keys matched
// exactly, else case-insensitively as encoding/json folds them; null
// leaving a string, number or bool as it was; a repeated "response"
// merging into the stacks already decoded; the same nesting limit; any
// syntax or type error failing the whole answer.

// maxNesting is encoding/json's nesting limit.
const maxNesting = 10000

// Stack string fields, indexes into stackState.str.
const (
	fUID = iota
	fName
	fEnvironment
	fAccountName
	fGit
	fGitBranch
	fCloud
	fLanguage
	fFramework
	fBackend
	numStrFields
)

// Stack fields of other kinds, numbered after the strings.
const (
	fStatus = numStrFields + iota
	fHealth
	fMaintenance
	fLastActivity
	fLastActivityLegacy
	fNone = -1
)

// stackKeys are the JSON names of the fields Stack keeps, by field number;
// every other key is skipped. redeploy_hook must never be among them.
var stackKeys = [...]string{
	fUID: "uid", fName: "name", fEnvironment: "environment", fAccountName: "account_name",
	fGit: "git", fGitBranch: "git_branch", fCloud: "cloud", fLanguage: "language",
	fFramework: "framework", fBackend: "backend", fStatus: "status", fHealth: "health",
	fMaintenance: "maintenance_mode", fLastActivity: "last_activity_iso", fLastActivityLegacy: "last_activity",
}

// stackField is the field an exact key names, or fNone.
func stackField(key []byte) int {
	switch string(key) {
	case "uid":
		return fUID
	case "name":
		return fName
	case "environment":
		return fEnvironment
	case "account_name":
		return fAccountName
	case "git":
		return fGit
	case "git_branch":
		return fGitBranch
	case "cloud":
		return fCloud
	case "language":
		return fLanguage
	case "framework":
		return fFramework
	case "backend":
		return fBackend
	case "status":
		return fStatus
	case "health":
		return fHealth
	case "maintenance_mode":
		return fMaintenance
	case "last_activity_iso":
		return fLastActivity
	case "last_activity":
		return fLastActivityLegacy
	}
	return fNone
}

// span is a string value in the input: its bytes between the quotes, and
// whether they hold escapes (or invalid UTF-8) and so must be unquoted.
type span struct {
	start, end int32
	escaped    bool
	set        bool
}

// stackState is one stack while its envelope is decoded. Strings stay
// spans of the input until the end, so a stack's strings can share one
// allocation and a repeated key costs no garbage.
type stackState struct {
	st     Stack // all but the strings
	str    [numStrFields]span
	legacy span // last_activity, any JSON value
}

// stackDecoder reads one envelope. The input is never retained.
type stackDecoder struct {
	data  []byte
	pos   int
	depth int
}

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

func (d *stackDecoder) syntaxError(what string) error {
	if d.pos >= len(d.data) {
		return errUnexpectedEnd
	}
	return fmt.Errorf("invalid character %q %s at offset %d", d.data[d.pos], what, d.pos)
}

func typeError(what string, off int) error {
	return fmt.Errorf("cannot decode %s at offset %d", what, off)
}

// decodeStackList decodes a list page: {"response":[stack…],"pagination":{…}}.
func decodeStackList(data []byte) ([]Stack, Pagination, error) {
	d := stackDecoder{data: data}
	var (
		states []stackState
		have   bool
	)
	p, err := d.envelope(func() error {
		var err error
		states, have, err = d.stackArray(states)
		return err
	})
	if err != nil {
		return nil, Pagination{}, err
	}
	if !have {
		return nil, Pagination{}, errors.New(`envelope has no "response"`)
	}
	out := make([]Stack, len(states))
	for i := range states {
		if out[i], err = d.finish(&states[i]); err != nil {
			return nil, Pagination{}, err
		}
	}
	return out, p, nil
}

// decodeStackOne decodes a one-stack answer: {"response":{stack}}.
func decodeStackOne(data []byte) (Stack, error) {
	d := stackDecoder{data: data}
	var (
		state stackState
		have  bool
	)
	_, err := d.envelope(func() error {
		if d.null() {
			have, state = false, stackState{}
			return nil
		}
		if !have {
			state = stackState{}
		}
		have = true
		return d.stackObject(&state)
	})
	if err != nil {
		return Stack{}, err
	}
	if !have {
		return Stack{}, errors.New(`envelope has no "response"`)
	}
	return d.finish(&state)
}

// envelope walks the top-level object, calling response at each
// "response" value and decoding "pagination" itself.
func (d *stackDecoder) envelope(response func() error) (Pagination, error) {
	var p Pagination
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] != '{' {
		// Valid JSON that is no object is a type error; invalid input a
		// syntax error. Either way nothing is decoded.
		if err := d.skip(); err != nil {
			return Pagination{}, err
		}
		return Pagination{}, typeError("envelope", 0)
	}
	err := d.object(func(key []byte) error {
		switch {
		case keyIs(key, "response"):
			return response()
		case keyIs(key, "pagination"):
			start := d.pos
			if d.null() {
				p = Pagination{}
				return nil
			}
			if err := d.skip(); err != nil {
				return err
			}
			// Rare and small: Pagination's own decoder keeps its
			// previous/prev handling in one place.
			var np Pagination
			if err := json.Unmarshal(d.data[start:d.pos], &np); err != nil {
				return err
			}
			p = np
			return nil
		}
		return d.skip()
	})
	if err != nil {
		return Pagination{}, err
	}
	d.ws()
	if d.pos != len(d.data) {
		return Pagination{}, d.syntaxError("after top-level value")
	}
	return p, nil
}

// stackArray decodes a "response" list into states, merging into the
// elements already there as encoding/json does; have is false for null.
func (d *stackDecoder) stackArray(states []stackState) (_ []stackState, have bool, _ error) {
	if d.null() {
		return nil, false, nil
	}
	if d.pos >= len(d.data) {
		return nil, false, errUnexpectedEnd
	}
	if d.data[d.pos] != '[' {
		start := d.pos
		if err := d.skip(); err != nil {
			return nil, false, err
		}
		return nil, false, typeError("stack list", start)
	}
	if states == nil {
		states = make([]stackState, 0, PageSize)
	}
	states = states[:0]
	err := d.array(func() error {
		if len(states) < cap(states) {
			states = states[:len(states)+1] // keeps the old element, to merge into
		} else {
			states = append(states, stackState{})
		}
		d.ws()
		if d.null() {
			return nil
		}
		return d.stackObject(&states[len(states)-1])
	})
	switch {
	case err != nil:
		return nil, false, err
	case len(states) == 0:
		return []stackState{}, true, nil // an empty list drops what came before
	}
	return states, true, nil
}

// stackObject decodes one stack's fields into s.
func (d *stackDecoder) stackObject(s *stackState) error {
	d.ws()
	if d.pos >= len(d.data) {
		return errUnexpectedEnd
	}
	if d.data[d.pos] != '{' {
		start := d.pos
		if err := d.skip(); err != nil {
			return err
		}
		return typeError("stack", start)
	}
	return d.object(func(key []byte) error {
		f := stackField(key)
		if f == fNone && needsFold(key) {
			f = foldedStackField(key)
		}
		return d.field(s, f)
	})
}

// field decodes the value of field f (fNone: skipped) into s.
func (d *stackDecoder) field(s *stackState, f int) error {
	start := d.pos
	switch {
	case f == fNone:
		return d.skip()
	case f == fLastActivityLegacy:
		// Any value: it is parsed only if last_activity_iso is missing,
		// and dropped if unparsable.
		if err := d.skip(); err != nil {
			return err
		}
		s.legacy = span{start: int32(start), end: int32(d.pos), set: true}
		return nil
	case d.null():
		if f == fLastActivity {
			s.st.LastActivity = Time{}
		}
		return nil
	}
	if d.pos >= len(d.data) {
		return errUnexpectedEnd
	}
	c := d.data[d.pos]
	switch {
	case f < numStrFields && c == '"':
		sp, err := d.str()
		if err != nil {
			return err
		}
		s.str[f] = sp
		return nil
	case (f == fStatus || f == fHealth) && (c == '-' || '0' <= c && c <= '9'):
		if err := d.number(); err != nil {
			return err
		}
		n, err := strconv.ParseInt(string(d.data[start:d.pos]), 10, 64)
		if err != nil {
			return typeError(stackKeys[f], start)
		}
		if f == fStatus {
			s.st.Status = StackStatus(n)
		} else {
			s.st.Health = Health(n)
		}
		return nil
	case f == fMaintenance && (c == 't' || c == 'f'):
		v := c == 't'
		if err := d.skip(); err != nil {
			return err
		}
		s.st.MaintenanceMode = v
		return nil
	case f == fLastActivity:
		if err := d.skip(); err != nil {
			return err
		}
		return s.st.LastActivity.UnmarshalJSON(d.data[start:d.pos])
	}
	if err := d.skip(); err != nil {
		return err
	}
	return typeError(stackKeys[f], start)
}

// finish turns a decoded stack into a Stack, its strings in one allocation.
func (d *stackDecoder) finish(s *stackState) (Stack, error) {
	st := s.st
	n := 0
	for _, sp := range s.str {
		if sp.set && !sp.escaped {
			n += int(sp.end - sp.start)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, sp := range s.str {
		if sp.set && !sp.escaped {
			b.Write(d.data[sp.start:sp.end])
		}
	}
	all := b.String()
	off := 0
	for i, sp := range s.str {
		if !sp.set {
			continue
		}
		var v string
		if sp.escaped {
			var err error
			// The quotes are around the span.
			if v, err = unquote(d.data[sp.start-1 : sp.end+1]); err != nil {
				return Stack{}, err
			}
		} else {
			v = all[off : off+int(sp.end-sp.start)]
			off += len(v)
		}
		switch i {
		case fUID:
			st.UID = v
		case fName:
			st.Name = v
		case fEnvironment:
			st.Environment = v
		case fAccountName:
			st.AccountName = v
		case fGit:
			st.Git = v
		case fGitBranch:
			st.GitBranch = v
		case fCloud:
			st.Cloud = v
		case fLanguage:
			st.Language = v
		case fFramework:
			st.Framework = v
		case fBackend:
			st.Backend = v
		}
	}
	if st.LastActivity.IsZero() && s.legacy.set {
		var t Time
		if t.UnmarshalJSON(d.data[s.legacy.start:s.legacy.end]) == nil {
			st.LastActivity = t
		}
	}
	return st, nil
}

// object walks an object, calling fn with each key (its bytes, unquoted)
// with the decoder at the value, which fn must consume.
func (d *stackDecoder) object(fn func(key []byte) error) error {
	if err := d.enter(); err != nil {
		return err
	}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.ws()
		if d.pos >= len(d.data) {
			return errUnexpectedEnd
		}
		if d.data[d.pos] != '"' {
			return d.syntaxError("looking for beginning of object key string")
		}
		sp, err := d.str()
		if err != nil {
			return err
		}
		key := d.data[sp.start:sp.end]
		if sp.escaped {
			k, err := unquote(d.data[sp.start-1 : sp.end+1])
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		d.ws()
		if d.pos >= len(d.data) {
			return errUnexpectedEnd
		}
		if d.data[d.pos] != ':' {
			return d.syntaxError("after object key")
		}
		d.pos++
		d.ws()
		if err := fn(key); err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) {
			return errUnexpectedEnd
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntaxError("after object key:value pair")
		}
	}
}

// array decodes an array, calling fn for each element (fn consumes it).
func (d *stackDecoder) array(fn func() error) error {
	if err := d.enter(); err != nil {
		return err
	}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) {
			return errUnexpectedEnd
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntaxError("after array element")
		}
	}
}

// enter consumes '{' or '[' and counts the nesting.
func (d *stackDecoder) enter() error {
	d.pos++
	d.depth++
	if d.depth > maxNesting {
		return errors.New("exceeded max depth")
	}
	return nil
}

// skip validates and passes over one value.
func (d *stackDecoder) skip() error {
	d.ws()
	if d.pos >= len(d.data) {
		return errUnexpectedEnd
	}
	switch c := d.data[d.pos]; c {
	case '"':
		_, err := d.str()
		return err
	case '{':
		return d.object(func([]byte) error { return d.skip() })
	case '[':
		return d.array(d.skip)
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return d.number()
		}
		return d.syntaxError("looking for beginning of value")
	}
}

// null consumes a null literal if one is next.
func (d *stackDecoder) null() bool {
	if len(d.data)-d.pos >= 4 && string(d.data[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

func (d *stackDecoder) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if d.pos >= len(d.data) {
			return errUnexpectedEnd
		}
		if d.data[d.pos] != lit[i] {
			return d.syntaxError("in literal " + lit)
		}
		d.pos++
	}
	return nil
}

// number passes over a number, checking JSON's grammar.
func (d *stackDecoder) number() error {
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	if d.pos >= len(d.data) {
		return errUnexpectedEnd
	}
	switch c := d.data[d.pos]; {
	case c == '0':
		d.pos++
	case '1' <= c && c <= '9':
		digits()
	default:
		return d.syntaxError("in numeric literal")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.syntaxError("after decimal point in numeric literal")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.syntaxError("in exponent of numeric literal")
		}
	}
	return nil
}

// str passes over a string (the decoder at its opening quote), checking
// its escapes, and returns where its contents are.
func (d *stackDecoder) str() (span, error) {
	d.pos++
	start := d.pos
	escaped, ascii := false, true
	// Eight bytes at a time while none is special: most strings are
	// plain ASCII and this is where the decoder spends its time.
	for d.pos+8 <= len(d.data) && !special8(binary.LittleEndian.Uint64(d.data[d.pos:])) {
		d.pos += 8
	}
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			sp := span{start: int32(start), end: int32(d.pos), set: true}
			d.pos++
			sp.escaped = escaped || !ascii && !utf8.Valid(d.data[start:sp.end])
			return sp, nil
		case c == '\\':
			escaped = true
			d.pos++
			if d.pos >= len(d.data) {
				return span{}, errUnexpectedEnd
			}
			switch d.data[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				d.pos++
				for range 4 {
					if d.pos >= len(d.data) {
						return span{}, errUnexpectedEnd
					}
					if !isHex(d.data[d.pos]) {
						return span{}, d.syntaxError("in \\u hexadecimal character escape")
					}
					d.pos++
				}
			default:
				return span{}, d.syntaxError("in string escape code")
			}
		case c < 0x20:
			return span{}, d.syntaxError("in string literal")
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			d.pos++
		}
	}
	return span{}, errUnexpectedEnd
}

// special8 reports whether any of the eight bytes in x is a quote, a
// backslash, a control character or not ASCII (the classic "has a zero
// byte" tests, exact as a yes or no).
func special8(x uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (x&highs)|((x-0x20*ones) & ^x & highs)|hasZero(x^('"'*ones))|hasZero(x^('\\'*ones)) != 0
}

// ws skips JSON whitespace.
func (d *stackDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// keyIs reports whether key names the lower-case ASCII name as
// encoding/json matches keys: exactly, else case-insensitively.
func keyIs(key []byte, name string) bool {
	return string(key) == name || needsFold(key) && string(foldName(key)) == string(foldName([]byte(name)))
}

// needsFold reports whether key could fold-match a field name without
// being it: only a key with upper-case or non-ASCII letters can, since
// every name here is lower-case ASCII.
func needsFold(key []byte) bool {
	for _, c := range key {
		if 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// foldedStackField is stackField for a key in another case.
func foldedStackField(key []byte) int {
	k := string(foldName(key))
	for f, name := range stackKeys {
		if k == string(foldName([]byte(name))) {
			return f
		}
	}
	return fNone
}

// foldName folds a key the way encoding/json's does (fold.go), so a key
// matches here exactly when it would match there.
func foldName(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune is the smallest rune of r's fold set.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
