package cloud66test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

const callback = "https://bot.example.com/cloud66/callback"

func newServer(t *testing.T, opts ...Option) (*Server, *Clock) {
	t.Helper()
	clk := NewClock(t0)
	srv := Start(t, append([]Option{WithClock(clk), WithRedirectURI(callback)}, opts...)...)
	return srv, clk
}

// httpc never follows redirects, so tests can inspect Location.
var httpc = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

type pageInfo struct {
	Previous *int `json:"previous"`
	Next     *int `json:"next"`
	Current  int  `json:"current"`
	PerPage  int  `json:"per_page"`
	Count    int  `json:"count"`
	Pages    int  `json:"pages"`
}

// apiResp decodes both success envelopes and error bodies.
type apiResp struct {
	Status      int
	Header      http.Header
	Raw         []byte
	Response    json.RawMessage `json:"response"`
	Count       *int            `json:"count"`
	Pagination  *pageInfo       `json:"pagination"`
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
	Details     string          `json:"details"`
}

func (r apiResp) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Response, v); err != nil {
		t.Fatalf("decode response %s: %v", r.Raw, err)
	}
}

// call performs an API request. body may be nil, a url.Values (form) or
// anything else (JSON).
func call(t *testing.T, srv *Server, method, path, token string, body any) apiResp {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, srv.URL+"/api/3"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, raw := send(t, req)
	out := apiResp{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body is not JSON (%d): %s", method, path, resp.StatusCode, raw)
	}
	return out
}

func mustStatus(t *testing.T, r apiResp, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status = %d, want %d; body %s", r.Status, want, r.Raw)
	}
}

func pkcePair(t *testing.T) (verifier, challenge string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeURL(srv *Server, q url.Values) string {
	return srv.URL + "/oauth/authorize?" + q.Encode()
}

func authorizeQuery(srv *Server, redirect, challenge string) url.Values {
	q := url.Values{
		"client_id":     {srv.ClientID},
		"redirect_uri":  {redirect},
		"response_type": {"code"},
		"scope":         {"public redeploy"},
		"state":         {"st-123"},
	}
	if challenge != "" {
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
	}
	return q
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

// authorize runs the browser leg and returns the code from the redirect.
func authorize(t *testing.T, srv *Server, challenge string) string {
	t.Helper()
	resp, body := get(t, authorizeURL(srv, authorizeQuery(srv, callback, challenge)))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, body %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("authorize: no code in %s", loc)
	}
	return code
}

var oobCodeRE = regexp.MustCompile(`<code id="authorization-code">([^<]+)</code>`)

type tokenReply struct {
	Status      int
	Raw         []byte
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Scope       string `json:"scope"`
	CreatedAt   int64  `json:"created_at"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// exchange posts form to /oauth/token; basic selects HTTP Basic client auth,
// otherwise client_id/client_secret go in the form (unless already set).
func exchange(t *testing.T, srv *Server, form url.Values, basic bool, secret string) tokenReply {
	t.Helper()
	form = cloneValues(form)
	if !basic && secret != "" {
		form.Set("client_id", srv.ClientID)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(srv.ClientID), url.QueryEscape(secret))
	}
	resp, raw := send(t, req)
	out := tokenReply{Status: resp.StatusCode, Raw: raw}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("token reply is not JSON (%d): %s", resp.StatusCode, raw)
	}
	return out
}

func codeForm(code, redirect, verifier string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}
