package bottest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/bot/bottest"
)

const testRedirect = "http://127.0.0.1:1/oauth/slack/callback"

// authorize opens the authorize page in a browser with jar (nil: none)
// without following the redirect, and returns the answer.
func authorize(t *testing.T, srv *bottest.Server, jar http.CookieJar, q url.Values) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.WebURL() + "openid/connect/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func authorizeQuery(srv *bottest.Server, state, nonce string) url.Values {
	return url.Values{
		"response_type": {"code"}, "scope": {"openid"}, "client_id": {srv.ClientID},
		"redirect_uri": {testRedirect}, "state": {state}, "nonce": {nonce},
	}
}

// codeFrom signs in as user and returns the code Slack redirected with.
func codeFrom(t *testing.T, srv *bottest.Server, user, state, nonce string) string {
	t.Helper()
	resp, page := authorize(t, srv, srv.SignedInJar(user), authorizeQuery(srv, state, nonce))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d:\n%s", resp.StatusCode, page)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
		t.Fatalf("redirected to %q", resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		t.Fatalf("redirect carries %v", loc.Query())
	}
	return loc.Query().Get("code")
}

func keySet(t *testing.T, srv *bottest.Server) *jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(srv.WebURL() + "openid/connect/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].IsPublic() != true || set.Keys[0].KeyID == "" {
		t.Fatalf("keys: %+v", set.Keys)
	}
	return &set
}

type slackClaims struct {
	jwt.Claims
	Nonce  string `json:"nonce"`
	AtHash string `json:"at_hash"`
	TeamID string `json:"https://slack.com/team_id"`
	UserID string `json:"https://slack.com/user_id"`
	Grid   string `json:"https://slack.com/enterprise_id"`
}

func TestSignInWithSlackIssuesAVerifiableIDToken(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	srv.RegisterRedirectURL(testRedirect)
	code := codeFrom(t, srv, "U0ANA", "st4te", "n0nce")
	if srv.AuthorizeCount() != 1 {
		t.Errorf("AuthorizeCount = %d", srv.AuthorizeCount())
	}

	ctx := ctxT(t)
	resp, err := slack.GetOpenIDConnectTokenContext(ctx, http.DefaultClient, srv.ClientID, srv.ClientSecret, code, testRedirect,
		slack.OAuthOptionAPIURL(srv.APIURL()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxp-") || resp.TokenType != "Bearer" || resp.IdToken == "" {
		t.Fatalf("token answer %+v", resp)
	}
	tok, err := jwt.ParseSigned(resp.IdToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c slackClaims
	if err := tok.Claims(keySet(t, srv), &c); err != nil {
		t.Fatalf("the id_token does not verify against /openid/connect/keys: %v", err)
	}
	if err := c.Validate(jwt.Expected{Issuer: "https://slack.com", AnyAudience: jwt.Audience{srv.ClientID}, Subject: "U0ANA"}); err != nil {
		t.Errorf("claims: %v", err)
	}
	if c.Nonce != "n0nce" || c.TeamID != bottest.DefaultTeamID || c.UserID != "U0ANA" || c.AtHash == "" || c.Grid != "" {
		t.Errorf("claims %+v", c)
	}
	if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != 5*time.Minute {
		t.Errorf("exp - iat = %v, Slack's is 5m", got)
	}

	// userInfo with the access token says the same person.
	info, err := slack.New(resp.AccessToken, slack.OptionAPIURL(srv.APIURL())).GetOpenIDConnectUserInfoContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.UserID != "U0ANA" || info.TeamID != bottest.DefaultTeamID || info.Sub != "U0ANA" {
		t.Errorf("userInfo %+v", info)
	}

	// The code works once.
	_, err = slack.GetOpenIDConnectTokenContext(ctx, http.DefaultClient, srv.ClientID, srv.ClientSecret, code, testRedirect,
		slack.OAuthOptionAPIURL(srv.APIURL()))
	if !isSlackError(err, "invalid_code") {
		t.Errorf("second exchange: %v, want invalid_code", err)
	}
}

func isSlackError(err error, code string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == code
}

func TestOpenIDTokenRefusals(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := bottest.Start(t, bottest.WithNow(clock))
	srv.RegisterRedirectURL(testRedirect)
	ctx := ctxT(t)
	exchange := func(id, secret, code, redirect string) error {
		_, err := slack.GetOpenIDConnectTokenContext(ctx, http.DefaultClient, id, secret, code, redirect, slack.OAuthOptionAPIURL(srv.APIURL()))
		return err
	}
	for _, tc := range []struct {
		name, id, secret, redirect, want string
	}{
		{"unknown client", "9.9", srv.ClientSecret, testRedirect, "invalid_client_id"},
		{"no client", "", "", testRedirect, "invalid_client_id"},
		{"wrong secret", srv.ClientID, "nope", testRedirect, "bad_client_secret"},
		{"other redirect", srv.ClientID, srv.ClientSecret, "http://127.0.0.1:1/elsewhere", "bad_redirect_uri"},
	} {
		code := codeFrom(t, srv, "U0ANA", "s", "n")
		if err := exchange(tc.id, tc.secret, code, tc.redirect); !isSlackError(err, tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if err := exchange(srv.ClientID, srv.ClientSecret, "made-up", testRedirect); !isSlackError(err, "invalid_code") {
		t.Errorf("made-up code: %v", err)
	}
	// A code is good for ten minutes.
	code := codeFrom(t, srv, "U0ANA", "s", "n")
	mu.Lock()
	now = now.Add(10*time.Minute + time.Second)
	mu.Unlock()
	if err := exchange(srv.ClientID, srv.ClientSecret, code, testRedirect); !isSlackError(err, "invalid_code") {
		t.Errorf("expired code: %v", err)
	}

	// The credentials may come as HTTP Basic too (client_secret_basic).
	code = codeFrom(t, srv, "U0ANA", "s", "n")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.APIURL()+"openid.connect.token",
		strings.NewReader(url.Values{"code": {code}, "redirect_uri": {testRedirect}, "grant_type": {"authorization_code"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(srv.ClientID, srv.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body["ok"] != true || body["id_token"] == "" {
		t.Errorf("basic auth exchange: %v", body)
	}

	// userInfo takes only a token openid.connect.token issued.
	for tok, want := range map[string]string{srv.BotToken: "not_allowed_token_type", "xoxp-made-up": "invalid_auth"} {
		_, err := slack.New(tok, slack.OptionAPIURL(srv.APIURL())).GetOpenIDConnectUserInfoContext(ctx)
		if !isSlackError(err, want) {
			t.Errorf("userInfo with %.5s…: %v, want %s", tok, err, want)
		}
	}
}

func TestOpenIDAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	srv.RegisterRedirectURL(testRedirect)
	signedIn := srv.SignedInJar("U0ANA")

	// Errors about the app or the redirect URL stay on Slack's page.
	for name, q := range map[string]url.Values{
		"unknown client": func() url.Values { q := authorizeQuery(srv, "s", "n"); q.Set("client_id", "9.9"); return q }(),
		"unregistered return": func() url.Values {
			q := authorizeQuery(srv, "s", "n")
			q.Set("redirect_uri", "https://evil.example/cb")
			return q
		}(),
	} {
		resp, page := authorize(t, srv, signedIn, q)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d, Location %q:\n%s", name, resp.StatusCode, resp.Header.Get("Location"), page)
		}
	}
	// Other errors go back with error= and the state.
	for want, q := range map[string]url.Values{
		"invalid_scope":             func() url.Values { q := authorizeQuery(srv, "s", "n"); q.Set("scope", "identity.basic"); return q }(),
		"unsupported_response_type": func() url.Values { q := authorizeQuery(srv, "s", "n"); q.Set("response_type", "token"); return q }(),
	} {
		resp, _ := authorize(t, srv, signedIn, q)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != want || loc.Query().Get("state") != "s" || loc.Query().Get("code") != "" {
			t.Errorf("%s: %d → %q", want, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// A browser signed in to nothing sees Slack's sign-in page.
	jar, _ := cookiejar.New(nil)
	resp, page := authorize(t, srv, jar, authorizeQuery(srv, "s", "n"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(page, "Sign in to") {
		t.Errorf("not signed in: %d %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
}

func TestOpenIDEnterpriseGridPerson(t *testing.T) {
	t.Parallel()
	srv := bottest.Start(t)
	srv.RegisterRedirectURL(testRedirect)
	jar, _ := cookiejar.New(nil)
	srv.SignInSession(jar, bottest.Session{UserID: "W0GRID", EnterpriseID: "E0GRID"})
	resp, _ := authorize(t, srv, jar, authorizeQuery(srv, "s", "n"))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tr, err := slack.GetOpenIDConnectTokenContext(context.Background(), http.DefaultClient, srv.ClientID, srv.ClientSecret,
		loc.Query().Get("code"), testRedirect, slack.OAuthOptionAPIURL(srv.APIURL()))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jwt.ParseSigned(tr.IdToken, []jose.SignatureAlgorithm{jose.RS256})
	var c slackClaims
	if err := tok.Claims(keySet(t, srv), &c); err != nil {
		t.Fatal(err)
	}
	if c.Grid != "E0GRID" || c.UserID != "W0GRID" || c.TeamID != bottest.DefaultTeamID {
		t.Errorf("claims %+v", c)
	}
}
