package accounts

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/storage"
)

// SlackIssuer is the iss of Slack's id_tokens.
const SlackIssuer = "https://slack.com"

// Errors of Sign in with Slack that callers map to pages.
var (
	// ErrSlackCodeRejected: Slack refused the sign-in code (used, expired,
	// or never issued).
	ErrSlackCodeRejected = errors.New("accounts: Slack refused the sign-in code")
	// ErrSlackAppRejected: Slack refused the app itself: SLACK_CLIENT_ID,
	// SLACK_CLIENT_SECRET or the redirect URL is wrong. An operator's
	// problem, not the person's.
	ErrSlackAppRejected = errors.New("accounts: Slack refused the app's credentials or redirect URL (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, C66BOT_PUBLIC_URL)")
	// ErrIDTokenInvalid: the id_token Slack answered with does not verify
	// (signature, issuer, audience, nonce or times).
	ErrIDTokenInvalid = errors.New("accounts: Slack's id_token did not verify")
)

const (
	// keysMaxAge is how long Slack's signing keys are reused without
	// asking again; a token signed with a key not in the set asks at once,
	// but not more often than keysMinRefetch.
	keysMaxAge     = time.Hour
	keysMinRefetch = 30 * time.Second
	maxKeysBody    = 64 << 10
	// idTokenLeeway allows for clock skew between Slack and this host.
	idTokenLeeway = time.Minute
)

// SlackSignInConfig wires a SlackSignIn.
type SlackSignInConfig struct {
	// WebURL is Slack's web base with its trailing slash
	// (https://slack.com/): the authorize page and the signing keys live
	// under it. SlackWebURL derives it from the Web API base.
	WebURL string
	// APIURL is the Web API base (https://slack.com/api/), for
	// openid.connect.token.
	APIURL                 string
	ClientID, ClientSecret string
	// RedirectURL is where Slack sends the browser back:
	// <C66BOT_PUBLIC_URL>/oauth/slack/callback.
	RedirectURL string
	HTTPClient  *http.Client
	// Now checks the id_token's times. They are Slack's wall clock, so it
	// is time.Now unless a test's fake Slack keeps another.
	Now func() time.Time
}

// SlackSignIn proves which Slack person a browser is, with Sign in with
// Slack (OpenID Connect): the identity comes from the id_token, checked
// against Slack's published keys, never from a name the person can edit.
type SlackSignIn struct {
	cfg SlackSignInConfig

	mu      sync.Mutex
	keys    *jose.JSONWebKeySet
	fetched time.Time
}

// NewSlackSignIn returns a SlackSignIn.
func NewSlackSignIn(cfg SlackSignInConfig) *SlackSignIn {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !strings.HasSuffix(cfg.WebURL, "/") {
		cfg.WebURL += "/"
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	return &SlackSignIn{cfg: cfg}
}

// SlackWebURL is Slack's web base for a Web API base: the API base without
// its trailing "api/" (https://slack.com/api/ → https://slack.com/).
func SlackWebURL(apiURL string) string {
	u := strings.TrimRight(apiURL, "/") + "/"
	return strings.TrimSuffix(u, "api/")
}

// AuthorizeURL is Slack's sign-in page for this app, asking only for
// openid (who the person is, nothing else). state comes back on the
// redirect; nonce comes back inside the id_token.
func (s *SlackSignIn) AuthorizeURL(state, nonce string) string {
	q := url.Values{
		"response_type": {"code"},
		"scope":         {"openid"},
		"client_id":     {s.cfg.ClientID},
		"redirect_uri":  {s.cfg.RedirectURL},
		"state":         {state},
		"nonce":         {nonce},
	}
	return s.cfg.WebURL + "openid/connect/authorize?" + q.Encode()
}

// slackIDClaims are the id_token claims that say who signed in.
type slackIDClaims struct {
	jwt.Claims
	Nonce        string `json:"nonce"`
	AtHash       string `json:"at_hash"`
	TeamID       string `json:"https://slack.com/team_id"`
	UserID       string `json:"https://slack.com/user_id"`
	EnterpriseID string `json:"https://slack.com/enterprise_id"`
}

// Identify exchanges the code Slack sent the browser back with for an
// id_token, verifies it (signature against Slack's keys, issuer, audience
// this app, the nonce this browser was given, expiry) and returns who
// signed in: (enterprise or team, user), the same identity a slash command
// from that person carries.
func (s *SlackSignIn) Identify(ctx context.Context, code, nonce string) (storage.Identity, error) {
	resp, err := slack.GetOpenIDConnectTokenContext(ctx, s.cfg.HTTPClient, s.cfg.ClientID, s.cfg.ClientSecret,
		code, s.cfg.RedirectURL, slack.OAuthOptionAPIURL(s.cfg.APIURL))
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			switch se.Err {
			case "invalid_code", "invalid_grant", "code_already_used", "code_expired":
				return storage.Identity{}, ErrSlackCodeRejected
			case "invalid_client_id", "bad_client_secret", "bad_redirect_uri", "invalid_client":
				return storage.Identity{}, fmt.Errorf("%w: openid.connect.token answered %s", ErrSlackAppRejected, se.Err)
			}
			return storage.Identity{}, fmt.Errorf("accounts: openid.connect.token answered %s", se.Err)
		}
		// The form (client secret, code) is in the body, never in the
		// error; the URL is the API's.
		return storage.Identity{}, fmt.Errorf("accounts: openid.connect.token: %w", err)
	}
	c, err := s.verify(ctx, resp.IdToken)
	if err != nil {
		return storage.Identity{}, err
	}
	if subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(nonce)) != 1 || nonce == "" {
		return storage.Identity{}, fmt.Errorf("%w: the nonce is not the one this browser was given", ErrIDTokenInvalid)
	}
	if c.AtHash != "" && c.AtHash != atHash(resp.AccessToken) {
		return storage.Identity{}, fmt.Errorf("%w: at_hash does not match the access token", ErrIDTokenInvalid)
	}
	id := storage.Identity{Team: c.TeamID, User: c.UserID}
	if c.EnterpriseID != "" {
		// As commands.Request.Identity: on Enterprise Grid a person is
		// the enterprise's, and user ids are global.
		id.Team = c.EnterpriseID
	}
	if !id.Valid() {
		return storage.Identity{}, fmt.Errorf("%w: no Slack team and user in it", ErrIDTokenInvalid)
	}
	return id, nil
}

// verify checks the id_token's signature and registered claims.
func (s *SlackSignIn) verify(ctx context.Context, raw string) (slackIDClaims, error) {
	var c slackIDClaims
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrIDTokenInvalid, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return c, fmt.Errorf("%w: no key id", ErrIDTokenInvalid)
	}
	keys, err := s.keysFor(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return c, err
	}
	if err := tok.Claims(keys, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrIDTokenInvalid, err)
	}
	if c.Expiry == nil || c.IssuedAt == nil {
		return c, fmt.Errorf("%w: no exp or iat", ErrIDTokenInvalid)
	}
	err = c.Claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      SlackIssuer,
		AnyAudience: jwt.Audience{s.cfg.ClientID},
		Time:        s.cfg.Now(),
	}, idTokenLeeway)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrIDTokenInvalid, err)
	}
	return c, nil
}

// keysFor returns Slack's key set, fetched again when it is old or lacks
// kid (Slack rotates keys).
func (s *SlackSignIn) keysFor(ctx context.Context, kid string) (*jose.JSONWebKeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	fresh := s.keys != nil && now.Sub(s.fetched) < keysMaxAge
	if fresh && len(s.keys.Key(kid)) > 0 {
		return s.keys, nil
	}
	if s.keys == nil || now.Sub(s.fetched) >= keysMinRefetch {
		set, err := s.fetchKeys(ctx)
		if err != nil {
			return nil, err
		}
		s.keys, s.fetched = set, now
	}
	if len(s.keys.Key(kid)) == 0 {
		return nil, fmt.Errorf("%w: signed with a key Slack does not publish", ErrIDTokenInvalid)
	}
	return s.keys, nil
}

func (s *SlackSignIn) fetchKeys(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u := s.cfg.WebURL + "openid/connect/keys"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("accounts: Slack's signing keys: %w", err)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("accounts: Slack's signing keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("accounts: Slack's signing keys: %s answered %d", u, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeysBody)).Decode(&set); err != nil {
		return nil, fmt.Errorf("accounts: Slack's signing keys: %w", err)
	}
	// Only public signing keys: a private or an encryption key in the set
	// is a mistake, never something to verify with.
	keep := set.Keys[:0]
	for _, k := range set.Keys {
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			keep = append(keep, k)
		}
	}
	set.Keys = keep
	return &set, nil
}

// atHash is OpenID Connect's at_hash for RS256.
func atHash(access string) string {
	sum := sha256.Sum256([]byte(access))
	return base64.RawURLEncoding.EncodeToString(sum[:sha256.Size/2])
}

// AbandonLogin spends a pending login that must not go on (its link was
// opened by someone else) and returns it, so its owner can be told.
func (s *Service) AbandonLogin(ctx context.Context, state string) (storage.PendingLogin, error) {
	p, err := s.cfg.Logins.Consume(ctx, state)
	if err != nil {
		return storage.PendingLogin{}, fmt.Errorf("accounts: abandon login: %w", err)
	}
	return p, nil
}
