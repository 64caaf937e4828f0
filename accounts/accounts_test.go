package accounts_test

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

const callback = "https://bot.example.com/oauth/callback"

func setup(t *testing.T, redirect string) (*accounts.Service, *cloud66test.Server, *storage.DB) {
	t.Helper()
	c66 := cloud66test.Start(t, cloud66test.WithRedirectURI(callback))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	store, err := storage.Open(storage.Options{Path: filepath.Join(t.TempDir(), "db"), Keys: [][]byte{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc := accounts.New(accounts.Config{
		Stores: accounts.Stores{Links: store.Links(), Logins: store.Logins()},
		OAuth: cloud66.OAuthConfig(cloud66.OAuthSettings{BaseURL: c66.URL, ClientID: c66.ClientID, ClientSecret: c66.ClientSecret,
			RedirectURL: redirect, Scopes: []string{"public", "redeploy"}}),
		Cloud66URL: c66.URL,
	})
	return svc, c66, store
}

var ana = storage.Identity{Team: "T1", User: "U1"}

// authorize plays the browser at Cloud 66's consent page and returns the
// code it redirects (or shows) with.
func authorize(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusFound {
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc.Query().Get("code"), loc.Query().Get("state")
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	m := regexp.MustCompile(`<code id="authorization-code">([^<]+)</code>`).FindStringSubmatch(b.String())
	if m == nil {
		t.Fatalf("authorize answered %d without a code:\n%s", resp.StatusCode, b.String())
	}
	return m[1], ""
}

func TestRedirectFlowWithPKCE(t *testing.T) {
	t.Parallel()
	svc, c66, _ := setup(t, callback)
	start, err := svc.BeginLogin(t.Context(), accounts.LoginRequest{Identity: ana, Channel: "C1", ResponseURL: "https://hooks.slack.com/x"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(start.AuthorizeURL)
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") != start.State || q.Get("redirect_uri") != callback {
		t.Fatalf("authorize URL lacks PKCE, state or redirect: %s", start.AuthorizeURL)
	}
	if start.OutOfBand {
		t.Error("OutOfBand with a callback URL")
	}
	// The start page can look at the login without spending it.
	if p, again, err := svc.Pending(t.Context(), start.State); err != nil || p.Identity != ana || again == "" {
		t.Fatalf("Pending = %+v, %q, %v", p, again, err)
	}
	code, state := authorize(t, start.AuthorizeURL)
	if state != start.State {
		t.Fatalf("state came back as %q", state)
	}
	linked, err := svc.CompleteCallback(t.Context(), state, code)
	if err != nil {
		t.Fatalf("CompleteCallback: %v", err)
	}
	if linked.Identity != ana || linked.Account != "Acme" || linked.Stacks != len(c66.Stacks()) || linked.ResponseURL != "https://hooks.slack.com/x" {
		t.Errorf("Linked = %+v", linked)
	}
	if strings.Join(linked.Scopes, " ") != "public redeploy" {
		t.Errorf("scopes = %v", linked.Scopes)
	}
	client, err := svc.Client(t.Context(), ana)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetStack(t.Context(), c66.Stacks()[0].UID); err != nil {
		t.Errorf("the linked client cannot read a stack: %v", err)
	}

	// Replaying the callback never reaches the token endpoint.
	before := c66.RequestCount("POST", "/oauth/token")
	if _, err := svc.CompleteCallback(t.Context(), state, code); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("replay = %v, want ErrStateInvalid", err)
	}
	if c66.RequestCount("POST", "/oauth/token") != before {
		t.Error("a replayed state reached the token endpoint")
	}
}

func TestCodeRejected(t *testing.T) {
	t.Parallel()
	svc, _, _ := setup(t, callback)
	start, err := svc.BeginLogin(t.Context(), accounts.LoginRequest{Identity: ana})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CompleteCallback(t.Context(), start.State, "not-a-real-code")
	if !errors.Is(err, accounts.ErrCodeRejected) {
		t.Fatalf("err = %v, want ErrCodeRejected", err)
	}
	if strings.Contains(err.Error(), "not-a-real-code") {
		t.Error("the error echoes the code")
	}
	if _, err := svc.Link(t.Context(), ana); !errors.Is(err, accounts.ErrNotLinked) {
		t.Errorf("Link after a rejected code = %v", err)
	}
}

func TestOutOfBandFlow(t *testing.T) {
	t.Parallel()
	svc, _, _ := setup(t, "")
	if !svc.OutOfBand() {
		t.Fatal("no redirect URL should mean out-of-band")
	}
	start, err := svc.BeginLogin(t.Context(), accounts.LoginRequest{Identity: ana})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(start.AuthorizeURL, url.QueryEscape(cloud66.OOBRedirectURL)) {
		t.Fatalf("authorize URL does not use the oob redirect: %s", start.AuthorizeURL)
	}
	code, _ := authorize(t, start.AuthorizeURL)

	// Someone else pasting ana's code finds no login of theirs.
	if _, err := svc.CompleteOutOfBand(t.Context(), storage.Identity{Team: "T1", User: "U2"}, code); !errors.Is(err, accounts.ErrNoPendingLogin) {
		t.Fatalf("other person's paste = %v", err)
	}
	linked, err := svc.CompleteOutOfBand(t.Context(), ana, code)
	if err != nil {
		t.Fatalf("CompleteOutOfBand: %v", err)
	}
	if linked.Account != "Acme" {
		t.Errorf("Linked = %+v", linked)
	}
	if _, err := svc.CompleteOutOfBand(t.Context(), ana, code); !errors.Is(err, accounts.ErrNoPendingLogin) {
		t.Errorf("second paste = %v", err)
	}
}

func TestUnlinkAndNotLinked(t *testing.T) {
	t.Parallel()
	svc, _, store := setup(t, callback)
	if _, err := svc.Client(t.Context(), ana); !errors.Is(err, accounts.ErrNotLinked) {
		t.Fatalf("Client unlinked = %v", err)
	}
	if err := store.Links().Save(t.Context(), storage.Link{Identity: ana, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	existed, err := svc.Unlink(t.Context(), ana)
	if err != nil || !existed {
		t.Fatalf("Unlink = %v, %v", existed, err)
	}
	if existed, _ := svc.Unlink(t.Context(), ana); existed {
		t.Error("second Unlink says it existed")
	}
}
