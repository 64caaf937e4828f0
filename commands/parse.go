package commands

import (
	"errors"
	"strings"
	"unicode"
)

// quoteReplacer straightens the quotes Slack clients "smarten" as people
// type, so `lock shop “release freeze”` parses like the ASCII version.
var quoteReplacer = strings.NewReplacer(
	"\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u201f", `"`, "\u00ab", `"`, "\u00bb", `"`,
	"\u2018", "'", "\u2019", "'", "\u201a", "'", "\u201b", "'",
)

// maxCommandText bounds what we parse; Slack itself caps slash command text
// far below this, so anything longer is not a person typing.
const maxCommandText = 4000

// ErrUnterminatedQuote is returned for `lock shop "release` (no closing quote).
var ErrUnterminatedQuote = errors.New("unterminated quote")

// Split turns the text after the slash command into words. Double or single
// quotes group words; a backslash escapes the next character inside double
// quotes. Curly quotes are straightened first.
func Split(text string) ([]string, error) {
	if len(text) > maxCommandText {
		text = text[:maxCommandText]
	}
	text = quoteReplacer.Replace(text)
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range text {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '"' && r == '\\':
			escaped = true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
			inWord = true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, ErrUnterminatedQuote
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// StackRef is a parsed `<stack>` argument: a name, `name:environment`, or a
// uid (anything that matches a uid is tried as one first).
type StackRef struct {
	Name        string
	Environment string
}

// ParseStackRef splits `name:environment`. Stack names in Cloud 66 do not
// contain ':', so the last ':' separates the environment.
func ParseStackRef(arg string) StackRef {
	if i := strings.LastIndexByte(arg, ':'); i > 0 && i < len(arg)-1 {
		return StackRef{Name: arg[:i], Environment: arg[i+1:]}
	}
	return StackRef{Name: strings.TrimSuffix(arg, ":")}
}

// String renders the reference the way a person typed it.
func (r StackRef) String() string {
	if r.Environment != "" {
		return r.Name + ":" + r.Environment
	}
	return r.Name
}
