package cloud66test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuthorizeTokenFlowWithPKCE(t *testing.T) {
	srv, _ := newServer(t)
	verifier, challenge := pkcePair(t)

	resp, body := get(t, authorizeURL(srv, authorizeQuery(srv, callback, challenge)))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize status %d: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("redirected to %s, want %s", got, callback)
	}
	if s := loc.Query().Get("state"); s != "st-123" {
		t.Fatalf("state = %q", s)
	}
	code := loc.Query().Get("code")

	tr := exchange(t, srv, codeForm(code, callback, verifier), false, srv.ClientSecret)
	if tr.Status != http.StatusOK {
		t.Fatalf("token status %d: %s", tr.Status, tr.Raw)
	}
	if tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.Scope != "public redeploy" || tr.CreatedAt != t0.Unix() {
		t.Fatalf("token reply %s", tr.Raw)
	}
	for _, absent := range []string{"refresh_token", "expires_in"} {
		if strings.Contains(string(tr.Raw), absent) {
			t.Errorf("token reply has %s: %s", absent, tr.Raw)
		}
	}
	mustStatus(t, call(t, srv, "GET", "/ping/auth.json", tr.AccessToken, nil), 200)

	var tokenReq *Request
	for _, r := range srv.Requests() {
		if r.Path == "/oauth/token" {
			tokenReq = &r
		}
	}
	if tokenReq == nil || tokenReq.ClientAuth != "form" || tokenReq.Status != 200 || tokenReq.Form.Get("code") != code {
		t.Fatalf("token request not recorded as expected: %+v", tokenReq)
	}
}

func TestOOBPageShowsExchangeableCode(t *testing.T) {
	srv, _ := newServer(t)
	verifier, challenge := pkcePair(t)
	resp, body := get(t, authorizeURL(srv, authorizeQuery(srv, OOBRedirectURI, challenge)))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("oob authorize: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	m := oobCodeRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no code on page: %s", body)
	}
	tr := exchange(t, srv, codeForm(string(m[1]), OOBRedirectURI, verifier), true, srv.ClientSecret)
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("exchange: %d %s", tr.Status, tr.Raw)
	}
	reqs := srv.Requests()
	if last := reqs[len(reqs)-1]; last.ClientAuth != "basic" {
		t.Fatalf("ClientAuth = %q, want basic", last.ClientAuth)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	srv, _ := newServer(t)
	_, challenge := pkcePair(t)
	tests := []struct {
		name     string
		mutate   func(url.Values)
		status   int    // 400 = error page, 302 = redirect with error
		wantErr  string // error code (page text or redirect param)
		redirect bool
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nope") }, 400, "invalid_client", false},
		{"missing client", func(q url.Values) { q.Del("client_id") }, 400, "invalid_client", false},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, 400, "invalid_redirect_uri", false},
		{"redirect with extra path", func(q url.Values) { q.Set("redirect_uri", callback+"/x") }, 400, "invalid_redirect_uri", false},
		{"redirect with extra query", func(q url.Values) { q.Set("redirect_uri", callback+"?a=b") }, 400, "invalid_redirect_uri", false},
		{"missing redirect", func(q url.Values) { q.Del("redirect_uri") }, 400, "invalid_request", false},
		{"invalid scope", func(q url.Values) { q.Set("scope", "public root") }, 302, "invalid_scope", true},
		{"comma scopes", func(q url.Values) { q.Set("scope", "public,redeploy") }, 302, "invalid_scope", true},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, 302, "unsupported_response_type", true},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, 302, "invalid_request", true},
		{"PKCE without method", func(q url.Values) { q.Del("code_challenge_method") }, 302, "invalid_request", true},
		{"malformed challenge", func(q url.Values) { q.Set("code_challenge", "short") }, 302, "invalid_request", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeQuery(srv, callback, challenge)
			tc.mutate(q)
			resp, body := get(t, authorizeURL(srv, q))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			loc := resp.Header.Get("Location")
			if !tc.redirect {
				if loc != "" {
					t.Fatalf("must not redirect, got Location %q", loc)
				}
				if !strings.Contains(string(body), tc.wantErr) {
					t.Fatalf("page lacks %q: %s", tc.wantErr, body)
				}
				return
			}
			u, err := url.Parse(loc)
			if err != nil || !strings.HasPrefix(loc, callback+"?") {
				t.Fatalf("bad Location %q", loc)
			}
			if u.Query().Get("error") != tc.wantErr || u.Query().Get("state") != "st-123" || u.Query().Get("code") != "" {
				t.Fatalf("Location %q: want error=%s with state and no code", loc, tc.wantErr)
			}
		})
	}
}

func TestAuthorizeDenied(t *testing.T) {
	srv, _ := newServer(t)
	srv.SetAuthorizingUser("")
	resp, _ := get(t, authorizeURL(srv, authorizeQuery(srv, callback, "")))
	u, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "st-123" {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name       string
		run        func(t *testing.T, srv *Server, clk *Clock, code, verifier string) tokenReply
		wantStatus int
		wantErr    string
	}{
		{"code reuse", func(t *testing.T, srv *Server, _ *Clock, code, v string) tokenReply {
			if tr := exchange(t, srv, codeForm(code, callback, v), false, srv.ClientSecret); tr.Status != 200 {
				t.Fatalf("first exchange: %s", tr.Raw)
			}
			return exchange(t, srv, codeForm(code, callback, v), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"expired code", func(t *testing.T, srv *Server, clk *Clock, code, v string) tokenReply {
			clk.Advance(11 * time.Minute)
			return exchange(t, srv, codeForm(code, callback, v), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"wrong verifier", func(t *testing.T, srv *Server, _ *Clock, code, _ string) tokenReply {
			other, _ := pkcePair(t)
			return exchange(t, srv, codeForm(code, callback, other), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"code burned by failed exchange", func(t *testing.T, srv *Server, _ *Clock, code, v string) tokenReply {
			other, _ := pkcePair(t)
			exchange(t, srv, codeForm(code, callback, other), false, srv.ClientSecret)
			return exchange(t, srv, codeForm(code, callback, v), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"missing verifier", func(t *testing.T, srv *Server, _ *Clock, code, _ string) tokenReply {
			return exchange(t, srv, codeForm(code, callback, ""), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"redirect mismatch", func(t *testing.T, srv *Server, _ *Clock, code, v string) tokenReply {
			return exchange(t, srv, codeForm(code, OOBRedirectURI, v), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"unknown code", func(t *testing.T, srv *Server, _ *Clock, _, v string) tokenReply {
			return exchange(t, srv, codeForm("made-up", callback, v), false, srv.ClientSecret)
		}, 400, "invalid_grant"},
		{"bad secret (form)", func(t *testing.T, srv *Server, _ *Clock, code, v string) tokenReply {
			return exchange(t, srv, codeForm(code, callback, v), false, "wrong")
		}, 401, "invalid_client"},
		{"bad secret (basic)", func(t *testing.T, srv *Server, _ *Clock, code, v string) tokenReply {
			return exchange(t, srv, codeForm(code, callback, v), true, "wrong")
		}, 401, "invalid_client"},
		{"no client auth", func(t *testing.T, srv *Server, _ *Clock, code, v string) tokenReply {
			return exchange(t, srv, codeForm(code, callback, v), false, "")
		}, 401, "invalid_client"},
		{"refresh grant unsupported", func(t *testing.T, srv *Server, _ *Clock, _, _ string) tokenReply {
			return exchange(t, srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, true, srv.ClientSecret)
		}, 400, "unsupported_grant_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, clk := newServer(t)
			verifier, challenge := pkcePair(t)
			code := authorize(t, srv, challenge)
			tr := tc.run(t, srv, clk, code, verifier)
			if tr.Status != tc.wantStatus || tr.Error != tc.wantErr {
				t.Fatalf("got %d %s, want %d %s", tr.Status, tr.Raw, tc.wantStatus, tc.wantErr)
			}
		})
	}
}

func TestCodeValidJustBeforeExpiry(t *testing.T) {
	srv, clk := newServer(t)
	verifier, challenge := pkcePair(t)
	code := authorize(t, srv, challenge)
	clk.Advance(10*time.Minute - time.Second)
	if tr := exchange(t, srv, codeForm(code, callback, verifier), true, srv.ClientSecret); tr.Status != 200 {
		t.Fatalf("exchange at 9m59s: %s", tr.Raw)
	}
}

func TestAuthorizingUserAndScopesReachToken(t *testing.T) {
	srv, _ := newServer(t)
	srv.SetAuthorizingUser("ben@example.com")
	q := authorizeQuery(srv, callback, "")
	q.Set("scope", "public")
	resp, _ := get(t, authorizeURL(srv, q))
	u, _ := url.Parse(resp.Header.Get("Location"))
	tr := exchange(t, srv, codeForm(u.Query().Get("code"), callback, ""), false, srv.ClientSecret)
	if tr.Status != 200 || tr.Scope != "public" {
		t.Fatalf("exchange: %s", tr.Raw)
	}
	r := call(t, srv, "GET", "/stacks.json", tr.AccessToken, nil)
	mustStatus(t, r, 200)
	if *r.Count != 5 {
		t.Fatalf("ben sees %d stacks, want 5", *r.Count)
	}
	uid := srv.StackUID("shop", "staging")
	mustStatus(t, call(t, srv, "POST", "/stacks/"+uid+"/deployments.json", tr.AccessToken, nil), 403)
}

func TestCustomClientAndLateRedirectRegistration(t *testing.T) {
	srv, _ := newServer(t, WithClient("my-id", "my s3cret&"))
	const late = "http://127.0.0.1:34543"
	q := authorizeQuery(srv, late, "")
	if resp, _ := get(t, authorizeURL(srv, q)); resp.StatusCode != 400 {
		t.Fatalf("unregistered URI: status %d", resp.StatusCode)
	}
	srv.RegisterRedirectURI(late)
	resp, _ := get(t, authorizeURL(srv, q))
	u, _ := url.Parse(resp.Header.Get("Location"))
	// Basic credentials are form-encoded (RFC 6749 §2.3.1), as x/oauth2 does.
	tr := exchange(t, srv, codeForm(u.Query().Get("code"), late, ""), true, "my s3cret&")
	if tr.Status != 200 {
		t.Fatalf("exchange: %s", tr.Raw)
	}
}
