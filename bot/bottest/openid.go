package bottest

// Sign in with Slack (OpenID Connect), as Slack serves it
// (https://slack.com/.well-known/openid-configuration): the browser's
// authorize page at /openid/connect/authorize, the signing keys at
// /openid/connect/keys, and the Web API methods openid.connect.token and
// openid.connect.userInfo.
//
// Who a browser is signed in to Slack as is what a test chooses, the way
// Slack knows it: a session cookie in that browser's jar (SignIn). A
// browser without one gets Slack's sign-in page and no redirect.

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Sign in with Slack constants of the fake app.
const (
	// DefaultClientID and DefaultClientSecret are the fake app's own OAuth
	// credentials (Basic Information → App Credentials).
	DefaultClientID     = "1111111111.2222222222"
	DefaultClientSecret = "fake-slack-client-secret"
	// OpenIDIssuer is the iss of every id_token: Slack's, whatever URL the
	// fake listens on.
	OpenIDIssuer = "https://slack.com"
	// sessionCookie is the name of Slack's session cookie.
	sessionCookie = "d"
	oidcCodeTTL   = 10 * time.Minute
	// idTokenTTL is Slack's: exp is iat plus five minutes.
	idTokenTTL = 5 * time.Minute
)

// Session is who a browser is signed in to Slack as. TeamID defaults to
// the fake workspace; EnterpriseID is set for an Enterprise Grid person.
type Session struct {
	UserID, TeamID, EnterpriseID string
}

type oidcToken struct {
	who    Session
	scopes []string
}

type oidcCode struct {
	redirectURI string
	nonce       string
	scopes      []string
	who         Session
	expires     time.Time
}

// openIDProvider is the Sign in with Slack state, guarded by Server.mu.
type openIDProvider struct {
	key          *rsa.PrivateKey
	keyID        string
	redirectURLs map[string]bool
	sessions     map[string]Session // session cookie value → who
	codes        map[string]*oidcCode
	tokens       map[string]oidcToken // xoxp- access token → who
	authorizes   int
}

func newOpenIDProvider() openIDProvider {
	return openIDProvider{
		keyID:        "fake-" + randHex(8),
		redirectURLs: make(map[string]bool),
		sessions:     make(map[string]Session),
		codes:        make(map[string]*oidcCode),
		tokens:       make(map[string]oidcToken),
	}
}

// signingKeyLocked makes the RSA key on first use: most fakes never sign
// anyone in, and a 2048-bit key (Slack's size) takes a while under -race.
func (p *openIDProvider) signingKeyLocked() *rsa.PrivateKey {
	if p.key == nil {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("bottest: RSA key: " + err.Error()) // crypto/rand does not fail
		}
		p.key = key
	}
	return p.key
}

// WebURL is Slack's web base for the fake (SLACK_API_URL without api/),
// with the trailing slash: Sign in with Slack starts at
// WebURL()+"openid/connect/authorize".
func (s *Server) WebURL() string { return s.URL + "/" }

// RegisterRedirectURL adds a redirect URL to the app, as
// oauth_config.redirect_urls in the manifest does. The authorize page
// refuses any other.
func (s *Server) RegisterRedirectURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oidc.redirectURLs[u] = true
}

// SignIn signs the browser whose cookie jar is jar in to the fake workspace
// as userID, by putting Slack's session cookie in it.
func (s *Server) SignIn(jar http.CookieJar, userID string) {
	s.SignInSession(jar, Session{UserID: userID})
}

// SignInSession is SignIn for any workspace or Enterprise Grid person.
func (s *Server) SignInSession(jar http.CookieJar, who Session) {
	if who.TeamID == "" {
		who.TeamID = s.TeamID
	}
	value := randHex(32)
	s.mu.Lock()
	s.oidc.sessions[value] = who
	s.mu.Unlock()
	u, _ := url.Parse(s.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: value, Path: "/", HttpOnly: true}})
}

// SignedInJar is a new cookie jar signed in as userID, for a browser made
// from scratch.
func (s *Server) SignedInJar(userID string) http.CookieJar {
	jar, _ := cookiejar.New(nil) // never fails without options
	s.SignIn(jar, userID)
	return jar
}

// AuthorizeCount is how many times a browser opened the authorize page.
func (s *Server) AuthorizeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oidc.authorizes
}

// OpenIDSigningKey is the private key id_tokens are signed with, for tests
// that forge a token with the right key but wrong claims.
func (s *Server) OpenIDSigningKey() (key *rsa.PrivateKey, keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oidc.signingKeyLocked(), s.oidc.keyID
}

var slackPage = template.Must(template.New("p").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>{{.Title}} | Slack</title></head>
<body><h1>{{.Title}}</h1><p>{{.Body}}</p></body></html>
`))

func writeSlackPage(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = slackPage.Execute(w, struct{ Title, Body string }{title, body})
}

// handleOpenIDAuthorize is /openid/connect/authorize. Problems with the
// client or the redirect URL are shown on a page (an authorization server
// never redirects to a URL it has not verified); the others go back to the
// redirect URL with error=, as OAuth says.
func (s *Server) handleOpenIDAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeSlackPage(w, http.StatusMethodNotAllowed, "Method not allowed", "Use GET.")
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oidc.authorizes++
	s.notifyLocked()
	if q.Get("client_id") != s.ClientID {
		writeSlackPage(w, http.StatusBadRequest, "Something went wrong", "invalid_client_id: the app's client_id is not valid.")
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !s.oidc.redirectURLs[redirectURI] {
		writeSlackPage(w, http.StatusBadRequest, "Something went wrong", "bad_redirect_uri: redirect_uri did not match any configured URIs.")
		return
	}
	state := q.Get("state")
	back := func(v url.Values) {
		if state != "" {
			v.Set("state", state)
		}
		sep := "?"
		if strings.Contains(redirectURI, "?") {
			sep = "&"
		}
		http.Redirect(w, r, redirectURI+sep+v.Encode(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if !slices.Contains(scopes, "openid") || slices.ContainsFunc(scopes, func(sc string) bool {
		return sc != "openid" && sc != "email" && sc != "profile"
	}) {
		back(url.Values{"error": {"invalid_scope"}})
		return
	}
	c, err := r.Cookie(sessionCookie)
	who, signedIn := Session{}, false
	if err == nil {
		who, signedIn = s.oidc.sessions[c.Value]
	}
	if !signedIn {
		// Slack asks the browser to sign in first; the test chose nobody.
		writeSlackPage(w, http.StatusOK, "Sign in to "+TeamDomain, "Enter your email address to sign in to "+TeamDomain+".slack.com.")
		return
	}
	code := randHex(40)
	s.oidc.codes[code] = &oidcCode{
		redirectURI: redirectURI,
		nonce:       q.Get("nonce"),
		scopes:      scopes,
		who:         who,
		expires:     s.cfg.now().Add(oidcCodeTTL),
	}
	back(url.Values{"code": {code}})
}

// handleOpenIDKeys is /openid/connect/keys: the public half of the signing
// key as a JWK Set.
func (s *Server) handleOpenIDKeys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: s.oidc.signingKeyLocked().Public(), KeyID: s.oidc.keyID, Algorithm: string(jose.RS256), Use: "sig",
	}}}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// handleOpenIDConfiguration is /.well-known/openid-configuration.
func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                OpenIDIssuer,
		"authorization_endpoint":                s.WebURL() + "openid/connect/authorize",
		"token_endpoint":                        s.APIURL() + "openid.connect.token",
		"userinfo_endpoint":                     s.APIURL() + "openid.connect.userInfo",
		"jwks_uri":                              s.WebURL() + "openid/connect/keys",
		"scopes_supported":                      []string{"openid", "profile", "email"},
		"response_types_supported":              []string{"code"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
	})
}

// apiOpenIDToken is openid.connect.token: the app authenticates with its
// client id and secret (form fields or HTTP Basic), the code works once,
// for the redirect URL it was issued to.
func (s *Server) apiOpenIDToken(req *apiRequest) apiResult {
	id, secret := req.form.Get("client_id"), req.form.Get("client_secret")
	if req.basicUser != "" {
		id, secret = req.basicUser, req.basicPass
	}
	switch {
	case id != s.ClientID:
		return errResult("invalid_client_id")
	case secret != s.ClientSecret:
		return errResult("bad_client_secret")
	}
	if gt := req.form.Get("grant_type"); gt != "" && gt != "authorization_code" {
		return errResult("invalid_grant_type")
	}
	code := s.oidc.codes[req.form.Get("code")]
	delete(s.oidc.codes, req.form.Get("code"))
	if code == nil || !s.cfg.now().Before(code.expires) {
		return errResult("invalid_code")
	}
	if ru := req.form.Get("redirect_uri"); ru != code.redirectURI {
		return errResult("bad_redirect_uri")
	}
	access := "xoxp-" + randHex(40)
	s.oidc.tokens[access] = oidcToken{who: code.who, scopes: code.scopes}
	idToken, err := s.idTokenLocked(code, access)
	if err != nil {
		return apiResult{status: http.StatusInternalServerError}
	}
	return okResult(map[string]any{"access_token": access, "token_type": "Bearer", "id_token": idToken})
}

// identityClaims are the claims both the id_token and userInfo carry.
func (s *Server) identityClaims(who Session, scopes []string) map[string]any {
	c := map[string]any{
		"sub":                       who.UserID,
		"https://slack.com/user_id": who.UserID,
		"https://slack.com/team_id": who.TeamID,
	}
	if who.EnterpriseID != "" {
		c["https://slack.com/enterprise_id"] = who.EnterpriseID
	}
	u, _ := s.userLocked(who.UserID)
	if slices.Contains(scopes, "email") {
		c["email"], c["email_verified"] = u.Email, u.Email != ""
	}
	if slices.Contains(scopes, "profile") {
		c["name"], c["https://slack.com/team_domain"] = u.RealName, TeamDomain
	}
	return c
}

func (s *Server) idTokenLocked(code *oidcCode, access string) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: s.oidc.signingKeyLocked()},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), s.oidc.keyID))
	if err != nil {
		return "", err
	}
	now := s.cfg.now()
	claims := s.identityClaims(code.who, code.scopes)
	claims["iss"] = OpenIDIssuer
	claims["aud"] = s.ClientID
	claims["iat"] = now.Unix()
	claims["auth_time"] = now.Unix()
	claims["exp"] = now.Add(idTokenTTL).Unix()
	claims["at_hash"] = atHash(access)
	if code.nonce != "" {
		claims["nonce"] = code.nonce
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// atHash is OpenID Connect's at_hash for RS256: the left half of the
// SHA-256 of the access token, base64url.
func atHash(access string) string {
	sum := crypto.SHA256.New()
	sum.Write([]byte(access))
	b := sum.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(b[:sha256.Size/2])
}

// apiOpenIDUserInfo is openid.connect.userInfo, which takes the access
// token openid.connect.token issued.
func (s *Server) apiOpenIDUserInfo(req *apiRequest) apiResult {
	if req.token == s.BotToken || req.token == s.AppToken {
		return errResult("not_allowed_token_type")
	}
	tok, ok := s.oidc.tokens[req.token]
	if !ok {
		return errResult("invalid_auth")
	}
	return okResult(s.identityClaims(tok.who, tok.scopes))
}
