package gitweb

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Repo
		ok   bool
	}{
		{"git@github.com:acme/shop.git", Repo{GitHub, "acme/shop"}, true},
		{"git@github.com:acme/shop", Repo{GitHub, "acme/shop"}, true},
		{"ssh://git@github.com/acme/shop.git", Repo{GitHub, "acme/shop"}, true},
		{"https://github.com/acme/shop.git", Repo{GitHub, "acme/shop"}, true},
		{"https://github.com/acme/shop/", Repo{GitHub, "acme/shop"}, true},
		{" https://GitHub.com/Acme/my_shop.v2 ", Repo{GitHub, "Acme/my_shop.v2"}, true},
		{"https://user@bitbucket.org/acme/shop.git", Repo{Bitbucket, "acme/shop"}, true},
		{"git@gitlab.com:group/sub/shop.git", Repo{GitLab, "group/sub/shop"}, true},
		{"https://gitlab.com/group/shop", Repo{GitLab, "group/shop"}, true},

		{"", Repo{}, false},
		{"git@git.example.com:acme/shop.git", Repo{}, false},     // not a known host
		{"https://github.com.evil.com/acme/shop", Repo{}, false}, // look-alike host
		{"https://github.com/acme", Repo{}, false},               // no repository
		{"https://github.com/acme/shop/extra", Repo{}, false},    // GitHub paths are owner/name
		{"https://github.com/acme/../shop", Repo{}, false},
		{"https://github.com/acme/.hidden", Repo{}, false},
		{"https://github.com/acme/sh|op", Repo{}, false},
		{"https://github.com/acme/sh%3Eop", Repo{}, false},
		{"https://github.com/acme/shop?x=1", Repo{}, false},
		{"https://github.com:8443/acme/shop", Repo{}, false},
		{"file:///github.com/acme/shop", Repo{}, false},
		{"javascript://github.com/acme/shop", Repo{}, false},
		{"github.com/acme/shop", Repo{}, false}, // no scheme, no scp colon
	}
	for _, tt := range tests {
		got, ok := Parse(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLinks(t *testing.T) {
	const live, next = "abc1234def5678abc1234def5678abc1234def56", "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		repo            Repo
		commit, compare string
		to              string
	}{
		{Repo{GitHub, "acme/shop"}, "https://github.com/acme/shop/commit/" + next, "https://github.com/acme/shop/compare/" + live + "..." + next, next},
		{Repo{GitHub, "acme/shop"}, "https://github.com/acme/shop/commit/" + next, "https://github.com/acme/shop/compare/" + live + "...release/1.4", "release/1.4"},
		{Repo{GitLab, "g/s/shop"}, "https://gitlab.com/g/s/shop/-/commit/" + next, "https://gitlab.com/g/s/shop/-/compare/" + live + "...main", "main"},
		{Repo{Bitbucket, "acme/shop"}, "https://bitbucket.org/acme/shop/commits/" + next, "https://bitbucket.org/acme/shop/branches/compare/main%0D" + live, "main"},
	}
	for _, tt := range tests {
		if got := tt.repo.CommitURL(next); got != tt.commit {
			t.Errorf("%+v.CommitURL = %q, want %q", tt.repo, got, tt.commit)
		}
		if got := tt.repo.CompareURL(live, tt.to); got != tt.compare {
			t.Errorf("%+v.CompareURL(live, %q) = %q, want %q", tt.repo, tt.to, got, tt.compare)
		}
	}
	r := Repo{GitHub, "acme/shop"}
	for _, bad := range []struct{ from, to string }{{"", "main"}, {"main", "main2"}, {live, ""}, {live, live}, {"ABC1234", "main"}} {
		if got := r.CompareURL(bad.from, bad.to); got != "" {
			t.Errorf("CompareURL(%q, %q) = %q, want none", bad.from, bad.to, got)
		}
	}
	for _, bad := range []string{"", "main", "abc12", "abc1234<!channel>", strings.Repeat("a", 41)} {
		if got := r.CommitURL(bad); got != "" {
			t.Errorf("CommitURL(%q) = %q, want none", bad, got)
		}
	}
	if got := r.CompareURL(live, "a b>|<x"); strings.ContainsAny(got, " <>|") {
		t.Errorf("CompareURL kept characters a link cannot hold: %q", got)
	}
	if got := (Repo{}).CommitURL(next); got != "" {
		t.Errorf("the zero Repo links to %q", got)
	}
}

// FuzzParse: whatever Cloud 66 says the repository is, a recognised one
// yields links made only of characters a Slack link may hold.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"git@github.com:acme/shop.git", "https://gitlab.com/a/b/c", "https://u@bitbucket.org/a/b", "git@github.com:a/<!channel>", "ssh://github.com/a/b"} {
		f.Add(s, "main")
	}
	f.Fuzz(func(t *testing.T, raw, ref string) {
		r, ok := Parse(raw)
		if !ok {
			return
		}
		for _, u := range []string{r.CommitURL("abc1234"), r.CompareURL("abc1234", ref)} {
			if u == "" {
				continue
			}
			if !strings.HasPrefix(u, "https://"+string(r.Host)+"/") || strings.ContainsAny(u, " <>|\n\r\t\"'`") {
				t.Fatalf("Parse(%q) gave the link %q", raw, u)
			}
		}
	})
}
