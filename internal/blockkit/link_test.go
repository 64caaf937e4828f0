package blockkit

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
)

func TestLink(t *testing.T) {
	t.Parallel()
	const stack = "https://app.cloud66.com/stacks/5999b763474b0eafa5fafb64bff0ba80"
	tests := []struct {
		name, url, label, want string
	}{
		{"a stack", stack, "Open in Cloud 66", "<" + stack + "|Open in Cloud 66>"},
		{"no label", stack, "", "<" + stack + ">"},
		{"ampersand in the url", "https://slack.com/x?a=1&b=2", "see", "<https://slack.com/x?a=1&amp;b=2|see>"},
		{"upper-case scheme", "HTTPS://app.cloud66.com/", "x", "<HTTPS://app.cloud66.com/|x>"},
		{"plain http", "http://127.0.0.1:8080/stacks/a", "x", "<http://127.0.0.1:8080/stacks/a|x>"},

		// The label is escaped, on one line.
		{"mention in the label", stack, "<!channel>", "<" + stack + "|&lt;!channel&gt;>"},
		{"link in the label", stack, "<https://evil.example|Open in Cloud 66>", "<" + stack + "|&lt;https://evil.example|Open in Cloud 66&gt;>"},
		{"new line in the label", stack, "shop\n*Approved* by boss", "<" + stack + "|shop *Approved* by boss>"},

		// A refused url leaves the label, escaped, without a link.
		{"broadcast as url", "<!channel>", "Open in Cloud 66", "Open in Cloud 66"},
		{"hostile uid closes the link", "https://app.cloud66.com/stacks/x|<!channel>", "Open in Cloud 66", "Open in Cloud 66"},
		{"hostile uid adds a link", "https://app.cloud66.com/stacks/x><https://evil.example|Open in Cloud 66", "Open in Cloud 66", "Open in Cloud 66"},
		{"whole link as url", "<https://evil.example|Open in Cloud 66>", "check", "check"},
		{"pipe", "https://app.cloud66.com/a|b", "x", "x"},
		{"greater than", "https://app.cloud66.com/a>b", "x", "x"},
		{"new line", "https://app.cloud66.com/a\nb", "x", "x"},
		{"carriage return", "https://app.cloud66.com/a\rb", "x", "x"},
		{"nul", "https://app.cloud66.com/a\x00", "x", "x"},
		{"space", "https://app.cloud66.com/a b", "x", "x"},
		{"no-break space", "https://app.cloud66.com/a\u00a0b", "x", "x"},
		{"line separator", "https://app.cloud66.com/a\u2028b", "x", "x"},
		{"bidi override", "https://app.cloud66.com/\u202eb", "x", "x"},
		{"empty", "", "Open in Cloud 66", "Open in Cloud 66"},
		{"relative", "/stacks/abc", "x", "x"},
		{"no host", "https:abc", "x", "x"},
		{"javascript", "javascript:alert(1)", "x", "x"},
		{"mailto", "mailto:a@example.com", "x", "x"},
		{"user before the host", "https://app.cloud66.com@evil.example/", "Open in Cloud 66", "Open in Cloud 66"},
		{"refused, hostile label", "<!here>", "<!channel>\nline", "&lt;!channel&gt; line"},
	}
	for _, tt := range tests {
		if got := Link(tt.url, tt.label); got != tt.want {
			t.Errorf("%s: Link(%q, %q) = %q, want %q", tt.name, tt.url, tt.label, got, tt.want)
		}
	}
}

func TestEscapingKeepsToOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, esc, text string }{
		{"shop", "shop", "shop"},
		{"<!channel>", "&lt;!channel&gt;", "&lt;!channel&gt;"},
		{"a|b", "a|b", "a|b"},
		{"shop\n:white_check_mark: *Deployed*", "shop :white_check_mark: *Deployed*", "shop\n:white_check_mark: *Deployed*"},
		{"a\r\nb", "a  b", "a\nb"},
		{"a\rb", "a b", "a\nb"},
		{"a\tb", "a b", "a\tb"},
		{"a\x00b\x7fc\u0085d", "a b c d", "a b c d"},
		{"a\u2028b\u2029c", "a b c", "a\nb\nc"},
		{"shop\u202enoitcudorp", "shop noitcudorp", "shop noitcudorp"},
		{"tests broke\n<!here>", "tests broke &lt;!here&gt;", "tests broke\n&lt;!here&gt;"},
	}
	for _, tt := range tests {
		if got := Esc(tt.in); got != tt.esc {
			t.Errorf("Esc(%q) = %q, want %q", tt.in, got, tt.esc)
		}
		if got := EscText(tt.in); got != tt.text {
			t.Errorf("EscText(%q) = %q, want %q", tt.in, got, tt.text)
		}
	}
	if got := Plain("shop\nproduction", 50).Text; got != "shop production" {
		t.Errorf("Plain kept a new line: %q", got)
	}
	if got := Code("a\nb"); got != "`a b`" {
		t.Errorf("Code = %q", got)
	}
}

func TestStackURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, uid, want string }{
		{"https://app.cloud66.com", "5999b763474b0eafa5fafb64bff0ba80", "https://app.cloud66.com/stacks/5999b763474b0eafa5fafb64bff0ba80"},
		{"https://app.cloud66.com/", "550e8400-e29b-41d4-a716-446655440001", "https://app.cloud66.com/stacks/550e8400-e29b-41d4-a716-446655440001"},
		{"https://app.cloud66.com", "abc|<!channel>", ""},
		{"https://app.cloud66.com", "..", ""},
		{"https://app.cloud66.com", "a/b", ""},
		{"https://app.cloud66.com", "", ""},
		{"", "abc", ""},
	}
	for _, tt := range tests {
		if got := StackURL(tt.base, tt.uid); got != tt.want {
			t.Errorf("StackURL(%q, %q) = %q, want %q", tt.base, tt.uid, got, tt.want)
		}
	}
	// The card's link to a stack with a hostile uid is its label alone.
	if got := Link(StackURL("https://app.cloud66.com", "x|<!channel>"), "Open in Cloud 66"); got != "Open in Cloud 66" {
		t.Errorf("link to a hostile uid = %q", got)
	}
}

// slackTokens splits mrkdwn the way Slack finds its special syntax: each
// <…> is a token, from a '<' to the next '>'.
func slackTokens(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+j])
		s = s[i+j+1:]
	}
}

var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// FuzzLink checks, from Slack's side, what any url and label become: Esc
// leaves no syntax and no line break, and Link makes at most one token,
// which is a link to exactly the url given, an absolute http(s) URL, with
// the escaped label.
func FuzzLink(f *testing.F) {
	f.Add("https://app.cloud66.com/stacks/abc", "Open in Cloud 66")
	f.Add("https://app.cloud66.com/stacks/x|<!channel>", "Open in Cloud 66")
	f.Add("<https://evil.example|Open in Cloud 66>", "<!channel>")
	f.Add("https://a.example/?q=1&r=<2>", "a\nb|c")
	f.Add("https://app.cloud66.com@evil.example/", "")
	f.Fuzz(func(t *testing.T, rawURL, label string) {
		esc := Esc(label)
		if strings.ContainsAny(esc, "<>") || strings.ContainsFunc(esc, breaksLine) {
			t.Fatalf("Esc(%q) = %q keeps syntax or a line break", label, esc)
		}
		if got := unescaper.Replace(esc); got != OneLine(label) {
			t.Fatalf("Esc(%q) does not read back as the label: %q", label, got)
		}
		if text := EscText(label); strings.ContainsAny(text, "<>\r") || strings.ContainsFunc(text, func(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }) {
			t.Fatalf("EscText(%q) = %q", label, text)
		}

		out := Link(rawURL, label)
		tokens := slackTokens(out)
		switch {
		case len(tokens) == 0:
			if out != esc {
				t.Fatalf("refused Link(%q, %q) = %q, want the escaped label %q", rawURL, label, out, esc)
			}
			return
		case len(tokens) > 1:
			t.Fatalf("Link(%q, %q) = %q makes %d tokens", rawURL, label, out, len(tokens))
		}
		target, shown, hasLabel := strings.Cut(tokens[0], "|")
		if !strings.HasPrefix(out, "<") || !strings.HasSuffix(out, ">") {
			t.Fatalf("Link(%q, %q) = %q has text outside the link", rawURL, label, out)
		}
		if got := unescaper.Replace(target); got != rawURL {
			t.Fatalf("Link(%q, %q) links to %q", rawURL, label, got)
		}
		if hasLabel != (label != "") || hasLabel && shown != esc {
			t.Fatalf("Link(%q, %q) shows %q, want %q", rawURL, label, shown, esc)
		}
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" || u.User != nil || !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http") {
			t.Fatalf("Link linked to %q, which is no absolute http(s) URL", rawURL)
		}
		if strings.ContainsFunc(rawURL, func(r rune) bool { return unicode.IsSpace(r) || breaksLine(r) }) {
			t.Fatalf("Link linked to %q, which holds white space", rawURL)
		}
	})
}
