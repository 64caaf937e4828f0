// Package gitweb turns a stack's git repository, as Cloud 66 reports it
// (the stack's "git" field: an SSH or HTTPS clone URL), into links to its
// web pages on GitHub, GitLab or Bitbucket: a commit, and the comparison
// between what is live and what will ship. No provider token is needed:
// the links are for people, whose browser is signed in (or not) to the
// provider; a private repository shows them a login page, never its data
// to the bot.
//
// Only the three public hosts are recognised; a self-hosted GitLab or
// GitHub Enterprise cannot be told from any other git server by its URL,
// so such stacks get no links rather than wrong ones.
package gitweb

import (
	"net/url"
	"regexp"
	"strings"
)

// Host is a git provider whose web pages are linked.
type Host string

// The hosts recognised.
const (
	GitHub    Host = "github.com"
	GitLab    Host = "gitlab.com"
	Bitbucket Host = "bitbucket.org"
)

// Repo is a repository on one of the hosts: Path is "owner/name" (on
// GitLab "group/subgroup/name").
type Repo struct {
	Host Host
	Path string
}

// segment is one path segment of an owner, group or repository name as
// the hosts allow them: letters, digits, '.', '-' and '_', not starting
// with '.' (so never "." or "..").
var segment = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)

// Parse recognises a clone URL on one of the hosts:
//
//	git@github.com:acme/shop.git
//	ssh://git@github.com/acme/shop.git
//	https://github.com/acme/shop(.git)
//	https://user@bitbucket.org/acme/shop.git
//
// It reports false for anything else, including URLs whose path holds
// characters a repository name cannot have.
func Parse(raw string) (Repo, bool) {
	raw = strings.TrimSpace(raw)
	var host, path string
	switch {
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh" && u.Scheme != "git") ||
			u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
			return Repo{}, false
		}
		host, path = u.Hostname(), u.Path
	default:
		// scp-like: [user@]host:path
		at := strings.LastIndex(raw, "@")
		rest := raw[at+1:]
		h, p, ok := strings.Cut(rest, ":")
		if !ok {
			return Repo{}, false
		}
		host, path = h, p
	}
	h := Host(strings.ToLower(host))
	switch h {
	case GitHub, GitLab, Bitbucket:
	default:
		return Repo{}, false
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	parts := strings.Split(path, "/")
	if len(parts) < 2 || (h != GitLab && len(parts) != 2) || len(parts) > 20 {
		return Repo{}, false
	}
	for _, p := range parts {
		if !segment.MatchString(p) {
			return Repo{}, false
		}
	}
	return Repo{Host: h, Path: path}, true
}

// hash is a git commit hash, abbreviated or whole.
var hash = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// IsHash reports whether s looks like a commit hash (7 to 40 lowercase
// hex digits).
func IsHash(s string) bool { return hash.MatchString(s) }

// base is the repository's web address.
func (r Repo) base() string { return "https://" + string(r.Host) + "/" + r.Path }

// Web is the repository's web address, which Parse reads back as r.
func (r Repo) Web() string {
	if r.Path == "" {
		return ""
	}
	return r.base()
}

// CommitURL links to commit h; "" when h is not a hash.
func (r Repo) CommitURL(h string) string {
	if r.Path == "" || !IsHash(h) {
		return ""
	}
	switch r.Host {
	case GitLab:
		return r.base() + "/-/commit/" + h
	case Bitbucket:
		return r.base() + "/commits/" + h
	}
	return r.base() + "/commit/" + h
}

// CompareURL links to the changes from from (what is live, a hash) to to
// (what will ship: a hash, or a branch or tag name); "" when from is not
// a hash, to is empty, or both are the same.
func (r Repo) CompareURL(from, to string) string {
	if r.Path == "" || !IsHash(from) || to == "" || to == from || len(to) > 255 {
		return ""
	}
	// A ref name may hold '/', which the hosts take as it is; anything
	// else is escaped.
	t := strings.ReplaceAll(url.PathEscape(to), "%2F", "/")
	switch r.Host {
	case GitLab:
		return r.base() + "/-/compare/" + from + "..." + t
	case Bitbucket:
		// Bitbucket's compare page takes the newer side first.
		return r.base() + "/branches/compare/" + t + "%0D" + from
	}
	return r.base() + "/compare/" + from + "..." + t
}
