package blockkit

import (
	"net/url"
	"strings"
	"unicode"
)

// This file holds the only code allowed to write mrkdwn link syntax; a test
// (TestNoHandMadeLinks) fails on a link built anywhere else.

// Link is the one way to write a mrkdwn link, <url|label>: every link the
// bot posts goes through it. The label is escaped on one line (Esc). The
// url is refused when it could end the link early or start a mention ('<',
// '>', '|'), holds white space or a control character, is not an absolute
// http or https URL, or names a user before its host (which would show a
// trusted host on a foreign link). A refused link is its label as plain
// escaped text: a hostile url costs the link, nothing more.
func Link(rawURL, label string) string {
	if !linkable(rawURL) {
		return Esc(label)
	}
	u := escaper.Replace(rawURL) // only '&' can be left to escape
	if label == "" {
		return "<" + u + ">"
	}
	return "<" + u + "|" + Esc(label) + ">"
}

// linkable reports whether Link may link to raw.
func linkable(raw string) bool {
	if raw == "" || strings.ContainsFunc(raw, func(r rune) bool {
		return r == '<' || r == '>' || r == '|' || breaksLine(r) || unicode.IsSpace(r) || r == '\ufeff'
	}) {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, "https") || strings.EqualFold(u.Scheme, "http")
}
