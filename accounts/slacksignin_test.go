package accounts_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/storage"
)

const slackCallback = "https://bot.example.com/oauth/slack/callback"

func signIn(slack *bottest.Server) *accounts.SlackSignIn {
	return accounts.NewSlackSignIn(accounts.SlackSignInConfig{
		WebURL: accounts.SlackWebURL(slack.APIURL()), APIURL: slack.APIURL(),
		ClientID: slack.ClientID, ClientSecret: slack.ClientSecret, RedirectURL: slackCallback,
	})
}

// slackCode opens the authorize URL in a browser signed in to Slack as
// jar's person and returns the code Slack sent back.
func slackCode(t *testing.T, authorizeURL string, jar http.CookieJar) string {
	t.Helper()
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), slackCallback+"?") {
		t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func TestSlackWebURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://slack.com/api/":           "https://slack.com/",
		"https://slack.com/api":            "https://slack.com/",
		"http://127.0.0.1:9/api/":          "http://127.0.0.1:9/",
		"https://proxy.example/slack/api/": "https://proxy.example/slack/",
		"https://proxy.example/":           "https://proxy.example/",
	} {
		if got := accounts.SlackWebURL(in); got != want {
			t.Errorf("SlackWebURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSlackSignInIdentifiesThePersonOfTheBrowser(t *testing.T) {
	t.Parallel()
	slack := bottest.Start(t)
	slack.RegisterRedirectURL(slackCallback)
	s := signIn(slack)

	u, _ := url.Parse(s.AuthorizeURL("the-state", "the-nonce"))
	q := u.Query()
	if u.Path != "/openid/connect/authorize" || q.Get("scope") != "openid" || q.Get("response_type") != "code" ||
		q.Get("client_id") != slack.ClientID || q.Get("redirect_uri") != slackCallback || q.Get("state") != "the-state" || q.Get("nonce") != "the-nonce" {
		t.Fatalf("authorize URL %s", u)
	}
	ctx := context.Background()
	code := slackCode(t, s.AuthorizeURL("st", "n1"), slack.SignedInJar("U0ANA"))
	id, err := s.Identify(ctx, code, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if id != (storage.Identity{Team: bottest.DefaultTeamID, User: "U0ANA"}) {
		t.Errorf("identity %v", id)
	}
	// The code works once.
	if _, err := s.Identify(ctx, code, "n1"); !errors.Is(err, accounts.ErrSlackCodeRejected) {
		t.Errorf("a spent code: %v", err)
	}
	// A nonce other than the one sent: the token was not made for this
	// browser's sign-in.
	code = slackCode(t, s.AuthorizeURL("st", "n2"), slack.SignedInJar("U0ANA"))
	if _, err := s.Identify(ctx, code, "another"); !errors.Is(err, accounts.ErrIDTokenInvalid) {
		t.Errorf("wrong nonce: %v", err)
	}

	// An Enterprise Grid person is the enterprise's, as in slash commands.
	jar := slack.SignedInJar("nobody")
	slack.SignInSession(jar, bottest.Session{UserID: "W0GRID", EnterpriseID: "E0GRID"})
	code = slackCode(t, s.AuthorizeURL("st", "n3"), jar)
	if id, err := s.Identify(ctx, code, "n3"); err != nil || id != (storage.Identity{Team: "E0GRID", User: "W0GRID"}) {
		t.Errorf("grid person: %v %v", id, err)
	}

	// A wrong client secret is the app's problem, and said so.
	bad := accounts.NewSlackSignIn(accounts.SlackSignInConfig{WebURL: slack.WebURL(), APIURL: slack.APIURL(),
		ClientID: slack.ClientID, ClientSecret: "wrong", RedirectURL: slackCallback})
	code = slackCode(t, s.AuthorizeURL("st", "n4"), slack.SignedInJar("U0ANA"))
	if _, err := bad.Identify(ctx, code, "n4"); !errors.Is(err, accounts.ErrSlackAppRejected) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: %v", err)
	}
}

// forgedSlack answers openid.connect.token with whatever id_token the test
// made, and serves a key set, so every way an id_token can be wrong can be
// tried.
type forgedSlack struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	idToken atomic.Value // string
	keyGets atomic.Int32
}

func newForgedSlack(t *testing.T) *forgedSlack {
	t.Helper()
	f := &forgedSlack{}
	var err error
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/openid.connect.token":
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "access_token": "xoxp-1", "token_type": "Bearer", "id_token": f.idToken.Load()})
		case "/openid/connect/keys":
			f.keyGets.Add(1)
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSlackSignInRefusesABadIDToken(t *testing.T) {
	t.Parallel()
	f := newForgedSlack(t)
	now := time.Now()
	s := accounts.NewSlackSignIn(accounts.SlackSignInConfig{WebURL: f.srv.URL + "/", APIURL: f.srv.URL + "/api/",
		ClientID: "app-1", ClientSecret: "secret", RedirectURL: slackCallback, Now: func() time.Time { return now }})
	good := func() map[string]any {
		return map[string]any{
			"iss": "https://slack.com", "aud": "app-1", "sub": "U0ANA", "nonce": "n",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"https://slack.com/team_id": "T0TEST", "https://slack.com/user_id": "U0ANA",
		}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"signed with another key", sign(t, other, jose.RS256, "k1", good())},
		{"a key id Slack does not publish", sign(t, f.key, jose.RS256, "k2", good())},
		{"no key id", sign(t, f.key, jose.RS256, "", good())},
		{"HMAC instead of RSA", sign(t, []byte("k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1"), jose.HS256, "k1", good())},
		{"another issuer", sign(t, f.key, jose.RS256, "k1", with("iss", "https://evil.example"))},
		{"another app", sign(t, f.key, jose.RS256, "k1", with("aud", "app-2"))},
		{"expired", sign(t, f.key, jose.RS256, "k1", with("exp", now.Add(-2*time.Minute).Unix()))},
		{"no expiry", sign(t, f.key, jose.RS256, "k1", with("exp", nil))},
		{"issued in the future", sign(t, f.key, jose.RS256, "k1", with("iat", now.Add(time.Hour).Unix()))},
		{"no nonce", sign(t, f.key, jose.RS256, "k1", with("nonce", nil))},
		{"no user", sign(t, f.key, jose.RS256, "k1", with("https://slack.com/user_id", nil))},
		{"a user id with a colon", sign(t, f.key, jose.RS256, "k1", with("https://slack.com/user_id", "U0:X"))},
		{"at_hash of another access token", sign(t, f.key, jose.RS256, "k1", with("at_hash", "AAAAAAAAAAAAAAAAAAAAAA"))},
		{"not a JWT", "not.a.jwt"},
		{"unsigned", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL3NsYWNrLmNvbSJ9."},
	} {
		f.idToken.Store(tc.token)
		if id, err := s.Identify(context.Background(), "code", "n"); !errors.Is(err, accounts.ErrIDTokenInvalid) {
			t.Errorf("%s: identity %v, error %v; want ErrIDTokenInvalid", tc.name, id, err)
		}
	}
	// The right token passes, and the key set was not fetched for every try.
	f.idToken.Store(sign(t, f.key, jose.RS256, "k1", good()))
	if id, err := s.Identify(context.Background(), "code", "n"); err != nil || id.User != "U0ANA" {
		t.Errorf("a good token: %v %v", id, err)
	}
	if n := f.keyGets.Load(); n > 2 {
		t.Errorf("the key set was fetched %d times", n)
	}
}
