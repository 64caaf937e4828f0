package commands

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{"", nil, nil},
		{"   ", nil, nil},
		{"stacks", []string{"stacks"}, nil},
		{"  servers   shop:production ", []string{"servers", "shop:production"}, nil},
		{`lock shop "release freeze"`, []string{"lock", "shop", "release freeze"}, nil},
		{"lock shop \u201crelease freeze\u201d", []string{"lock", "shop", "release freeze"}, nil},
		{"lock shop \u2018it\u2019s late\u2019", nil, ErrUnterminatedQuote},
		{`lock shop "it's late"`, []string{"lock", "shop", "it's late"}, nil},
		{`say "a \"quoted\" word"`, []string{"say", `a "quoted" word`}, nil},
		{`empty ""`, []string{"empty", ""}, nil},
		{`lock shop "unterminated`, nil, ErrUnterminatedQuote},
		{"tab\tand\nnewline", []string{"tab", "and", "newline"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Split(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Split(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStackRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want StackRef
	}{
		{"shop", StackRef{Name: "shop"}},
		{"shop:production", StackRef{Name: "shop", Environment: "production"}},
		{"shop:", StackRef{Name: "shop"}},
		{":production", StackRef{Name: ":production"}},
	}
	for _, tt := range tests {
		if got := ParseStackRef(tt.in); got != tt.want {
			t.Errorf("ParseStackRef(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// FuzzSplit: the parser never panics, never returns words with invalid
// UTF-8 from valid input, and words never contain unquoted separators.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"stacks", `lock shop "release freeze"`, "deploy shop:production@v2.1 services=web:1.2", "\u201cx\u201d", `"\`, "a\\b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		for _, w := range words {
			if utf8.ValidString(s) && !utf8.ValidString(w) {
				t.Fatalf("invalid UTF-8 word %q from %q", w, s)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsAny(s, `"'`+"\u201c\u201d\u2018\u2019\u201a\u201b\u201e\u201f\u00ab\u00bb") {
			if !slices.Equal(words, strings.Fields(s)) && len(s) <= maxCommandText {
				t.Fatalf("Split(%q) = %q, want strings.Fields %q", s, words, strings.Fields(s))
			}
		}
	})
}
