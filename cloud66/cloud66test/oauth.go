package cloud66test

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const codeTTL = 10 * time.Minute

// validScopes are the scopes Cloud 66 documents, in its own order.
var validScopes = []string{"public", "redeploy", "jobs", "users", "admin"}

type authCode struct {
	clientID    string
	redirectURI string
	scopes      []string
	email       string
	challenge   string // S256 code_challenge, "" if none was sent
	expires     time.Time
	used        bool
}

type token struct {
	value   string
	email   string
	scopes  []string
	created time.Time
	revoked bool
}

func (t *token) has(scope string) bool { return slices.Contains(t.scopes, scope) }

// IssueToken mints an access token for email directly, bypassing OAuth.
// Scopes default to "public redeploy". An email that is not seeded becomes a
// user who can see no stacks.
func (s *Server) IssueToken(email string, scopes ...string) string {
	if len(scopes) == 0 {
		scopes = []string{"public", "redeploy"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueTokenLocked(email, scopes).value
}

func (s *Server) issueTokenLocked(email string, scopes []string) *token {
	s.userLocked(email)
	t := &token{value: randomToken(), email: email, scopes: slices.Clone(scopes), created: s.Clock.Now()}
	s.tokens[t.value] = t
	return t
}

// Revoke revokes token (as a user would under Authorized Apps); API calls
// with it then get 401. Unknown tokens are ignored.
func (s *Server) Revoke(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[tok]; t != nil {
		t.revoked = true
	}
}

// ---------------------------------------------------------------------------
// GET /oauth/authorize

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>{{.Title}} | Cloud 66 (fake)</title></head>
<body>
<h1>{{.Title}}</h1>
{{- if .Code}}
<p>Copy this code, switch to your application and paste it there:</p>
<code id="authorization-code">{{.Code}}</code>
{{- else}}
<p id="error">{{.Error}}</p>
<p id="error-description">{{.Description}}</p>
{{- end}}
</body>
</html>
`))

type pageData struct{ Title, Code, Error, Description string }

func page(status int, d pageData) *reply {
	var b strings.Builder
	if err := pageTmpl.Execute(&b, d); err != nil {
		panic("cloud66test: page template: " + err.Error())
	}
	return htmlReply(status, b.String())
}

func errorPage(code, desc string) *reply {
	return page(http.StatusBadRequest, pageData{Title: "An error has occurred", Error: code, Description: desc})
}

func (s *Server) handleAuthorize(r *http.Request) *reply {
	if r.Method != http.MethodGet {
		return errReply(http.StatusNotFound, "not_found", "no route matches "+r.Method+" /oauth/authorize")
	}
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now()
	s.pruneCodesLocked(now)

	// Errors about the client or the redirect URI are shown on a page: an
	// authorization server must never redirect to an unverified URI.
	if q.Get("client_id") == "" || q.Get("client_id") != s.ClientID {
		return errorPage("invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		return errorPage("invalid_request", "The request is missing a required parameter: redirect_uri.")
	}
	if !s.redirectURIs[redirectURI] {
		return errorPage("invalid_redirect_uri", "The requested redirect uri is malformed or doesn't match client redirect URI.")
	}

	state := q.Get("state")
	fail := func(code, desc string) *reply {
		if redirectURI == OOBRedirectURI {
			return errorPage(code, desc)
		}
		v := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			v.Set("state", state)
		}
		return redirectTo(redirectURI, v)
	}

	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return fail("invalid_request", "The request is missing a required parameter: response_type.")
	default:
		return fail("unsupported_response_type", "The authorization server does not support this response type.")
	}

	scopes, ok := parseScopes(q.Get("scope"))
	if !ok {
		return fail("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
	}

	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return fail("invalid_request", "The request is missing a required parameter: code_challenge.")
	case challenge != "" && method != "S256":
		// Doorkeeper would default a missing method to "plain"; the fake
		// accepts S256 only, so clients cannot silently downgrade.
		return fail("invalid_request", "Transform algorithm not supported: code_challenge_method must be S256.")
	case challenge != "" && !validChallenge(challenge):
		return fail("invalid_request", "The code_challenge is malformed: expected 43 base64url characters (S256).")
	}

	email := s.authorizingUser
	if email == "" {
		return fail("access_denied", "The resource owner or authorization server denied the request.")
	}
	s.userLocked(email)
	code := randomToken()
	s.codes[code] = &authCode{
		clientID:    s.ClientID,
		redirectURI: redirectURI,
		scopes:      scopes,
		email:       email,
		challenge:   challenge,
		expires:     now.Add(codeTTL),
	}
	if redirectURI == OOBRedirectURI {
		return page(http.StatusOK, pageData{Title: "Authorization code", Code: code})
	}
	v := url.Values{"code": {code}}
	if state != "" {
		v.Set("state", state)
	}
	return redirectTo(redirectURI, v)
}

// pruneCodesLocked drops codes long past expiry so a long-running sandbox
// does not grow without bound. Recently expired or used codes are kept so a
// replay still gets a precise invalid_grant description.
func (s *Server) pruneCodesLocked(now time.Time) {
	for k, c := range s.codes {
		if now.Sub(c.expires) > time.Hour {
			delete(s.codes, k)
		}
	}
}

func redirectTo(uri string, params url.Values) *reply {
	u, err := url.Parse(uri)
	if err != nil { // registered URIs are the caller's responsibility
		return errorPage("invalid_redirect_uri", "The registered redirect uri is malformed.")
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	rep := &reply{status: http.StatusFound}
	rep.setHeader("Location", u.String())
	rep.setHeader("Cache-Control", "no-store")
	return rep
}

// parseScopes splits a space-separated scope list (the form Cloud 66 and
// Doorkeeper use; commas are not accepted). Empty means the default "public".
func parseScopes(raw string) ([]string, bool) {
	fields := strings.Fields(raw)
	if len(fields) == 0 {
		return []string{"public"}, true
	}
	var out []string
	for _, f := range fields {
		if !slices.Contains(validScopes, f) {
			return nil, false
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, true
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// validVerifier checks RFC 7636 §4.1: 43–128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// POST /oauth/token

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
	CreatedAt   int64  `json:"created_at"`
}

func oauthError(status int, code, desc string) *reply {
	rep := errReply(status, code, desc)
	rep.setHeader("Cache-Control", "no-store")
	rep.setHeader("Pragma", "no-cache")
	return rep
}

func (s *Server) handleToken(r *http.Request, rec *Request, body []byte) *reply {
	if r.Method != http.MethodPost {
		return errReply(http.StatusNotFound, "not_found", "no route matches "+r.Method+" /oauth/token")
	}
	var form url.Values
	if isFormContent(r) {
		form, _ = url.ParseQuery(string(body))
	}
	if form == nil {
		form = url.Values{}
	}

	// Client authentication: HTTP Basic or client_id+client_secret in the
	// body (Cloud 66 evidently accepts both). Like Doorkeeper, Basic wins
	// when both are present.
	var id, secret, how string
	if u, p, ok := r.BasicAuth(); ok {
		// RFC 6749 §2.3.1 form-encodes both parts (golang.org/x/oauth2 does).
		id, secret, how = unescapeOr(u), unescapeOr(p), "basic"
	} else if form.Get("client_id") != "" || form.Get("client_secret") != "" {
		id, secret, how = form.Get("client_id"), form.Get("client_secret"), "form"
	} else {
		how = "none"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rec.ClientAuth = how
	now := s.Clock.Now()

	if how == "none" || !constEq(id, s.ClientID) || !constEq(secret, s.ClientSecret) {
		rep := oauthError(http.StatusUnauthorized, "invalid_client",
			"Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		rep.setHeader("WWW-Authenticate", `Basic realm="Doorkeeper", error="invalid_client"`)
		return rep
	}

	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
	case "":
		return oauthError(http.StatusBadRequest, "invalid_request", "The request is missing a required parameter: grant_type.")
	default:
		// Cloud 66 issues no refresh tokens, so refresh_token is unsupported
		// too, as are client_credentials and password.
		return oauthError(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
	}

	codeStr := form.Get("code")
	if codeStr == "" {
		return oauthError(http.StatusBadRequest, "invalid_request", "The request is missing a required parameter: code.")
	}
	invalid := func(why string) *reply {
		return oauthError(http.StatusBadRequest, "invalid_grant",
			"The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client. ("+why+")")
	}
	c := s.codes[codeStr]
	if c == nil {
		return invalid("unknown code")
	}
	if c.used {
		return invalid("code already used")
	}
	// Burn the code on first presentation, even if this exchange fails
	// below. Doorkeeper itself (AuthorizationCodeRequest) only revokes the
	// grant once validation has passed, so a real client could retry after
	// e.g. a bad verifier; the fake is deliberately stricter — RFC 6749 says
	// a code is single-use, and a client must never depend on retrying an
	// exchange.
	c.used = true
	if !now.Before(c.expires) {
		return invalid("code expired")
	}
	if c.clientID != id {
		return invalid("code was issued to another client")
	}
	ru := form.Get("redirect_uri")
	if ru == "" {
		return oauthError(http.StatusBadRequest, "invalid_request", "The request is missing a required parameter: redirect_uri.")
	}
	if ru != c.redirectURI {
		return invalid("redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	switch {
	case c.challenge == "" && verifier != "":
		return invalid("code_verifier sent but no code_challenge was given at authorization")
	case c.challenge != "" && verifier == "":
		return invalid("code_verifier missing")
	case c.challenge != "" && !validVerifier(verifier):
		return invalid("code_verifier malformed")
	case c.challenge != "" && !constEq(s256(verifier), c.challenge):
		return invalid("code_verifier does not match code_challenge")
	}

	t := s.issueTokenLocked(c.email, c.scopes)
	rep := jsonReply(http.StatusOK, tokenResponse{
		AccessToken: t.value,
		TokenType:   "Bearer",
		Scope:       strings.Join(t.scopes, " "),
		CreatedAt:   t.created.Unix(),
	})
	rep.setHeader("Cache-Control", "no-store")
	rep.setHeader("Pragma", "no-cache")
	return rep
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func constEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func unescapeOr(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
