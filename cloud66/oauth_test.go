package cloud66

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

func TestOAuthConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                              string
		in                                OAuthSettings
		wantAuth, wantToken, wantRedirect string
	}{
		{
			name:      "defaults",
			in:        OAuthSettings{ClientID: "id", ClientSecret: "secret", Scopes: []string{"public", "redeploy"}},
			wantAuth:  "https://app.cloud66.com/oauth/authorize",
			wantToken: "https://app.cloud66.com/oauth/token", wantRedirect: OOBRedirectURL,
		},
		{
			name:      "custom",
			in:        OAuthSettings{BaseURL: "http://127.0.0.1:9000/", ClientID: "id", ClientSecret: "secret", RedirectURL: "https://bot.example/oauth/callback"},
			wantAuth:  "http://127.0.0.1:9000/oauth/authorize",
			wantToken: "http://127.0.0.1:9000/oauth/token", wantRedirect: "https://bot.example/oauth/callback",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := OAuthConfig(tt.in)
			if cfg.Endpoint.AuthURL != tt.wantAuth || cfg.Endpoint.TokenURL != tt.wantToken || cfg.RedirectURL != tt.wantRedirect {
				t.Errorf("config = %+v", cfg)
			}
			if cfg.Endpoint.AuthStyle != oauth2.AuthStyleInParams {
				t.Errorf("AuthStyle = %v, want AuthStyleInParams", cfg.Endpoint.AuthStyle)
			}
			if cfg.ClientID != "id" || cfg.ClientSecret != "secret" || !slices.Equal(cfg.Scopes, tt.in.Scopes) {
				t.Errorf("config = %+v", cfg)
			}
			if len(tt.in.Scopes) > 0 && &cfg.Scopes[0] == &tt.in.Scopes[0] {
				t.Error("Scopes aliases the caller's slice")
			}
		})
	}

	u, err := url.Parse(OAuthConfig(tests[0].in).AuthCodeURL("st4te"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("client_id") != "id" || q.Get("redirect_uri") != OOBRedirectURL || q.Get("response_type") != "code" ||
		q.Get("scope") != "public redeploy" || q.Get("state") != "st4te" {
		t.Errorf("auth URL query = %v", q)
	}
}

// TestOAuthTokenExchange runs a real exchange against a fake token endpoint.
// Cloud 66 answers form-encoded unless asked for JSON, so both are checked.
func TestOAuthTokenExchange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, contentType, body string
	}{
		{"json", "application/json", `{"access_token":"tok-123","token_type":"bearer","scope":"public redeploy","created_at":1700000000}`},
		{"form", "application/x-www-form-urlencoded", `access_token=tok-123&token_type=bearer&scope=public+redeploy`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if _, _, ok := r.BasicAuth(); ok {
					t.Error("client credentials sent with HTTP Basic auth")
				}
				if err := r.ParseForm(); err != nil {
					t.Error(err)
					return
				}
				want := map[string]string{
					"grant_type": "authorization_code", "code": "one-time-code", "redirect_uri": "https://bot.example/cb",
					"client_id": "the-id", "client_secret": "the-secret",
				}
				for k, v := range want {
					if got := r.PostForm.Get(k); got != v {
						t.Errorf("form %s = %q, want %q", k, got, v)
					}
				}
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, tt.body)
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()

			cfg := OAuthConfig(OAuthSettings{BaseURL: srv.URL, ClientID: "the-id", ClientSecret: "the-secret",
				RedirectURL: "https://bot.example/cb", Scopes: []string{"public", "redeploy", "admin"}})
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
			tok, err := cfg.Exchange(ctx, "one-time-code")
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "tok-123" || calls.Load() != 1 {
				t.Errorf("token = %+v after %d calls", tok, calls.Load())
			}
			if got := GrantedScopes(tok, cfg.Scopes); !slices.Equal(got, []string{"public", "redeploy"}) {
				t.Errorf("GrantedScopes = %v", got)
			}
		})
	}
}

// TestOAuthFailedExchangeNotResent checks the reason for AuthStyleInParams:
// a rejected code is sent exactly once.
func TestOAuthFailedExchangeNotResent(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 401, `{"error":"invalid_client"}`)
	}))
	defer srv.Close()
	cfg := OAuthConfig(OAuthSettings{BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	if _, err := cfg.Exchange(ctx, "code"); err == nil {
		t.Fatal("want an error")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1", n)
	}
}

func TestGrantedScopes(t *testing.T) {
	t.Parallel()
	requested := []string{"public", "redeploy"}
	withScope := func(v any) *oauth2.Token {
		return (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{"scope": v})
	}
	tests := []struct {
		name string
		tok  *oauth2.Token
		want []string
	}{
		{"nil token", nil, requested},
		{"no extra", &oauth2.Token{AccessToken: "x"}, requested},
		{"space separated", withScope("public redeploy admin"), []string{"public", "redeploy", "admin"}},
		{"comma separated", withScope("public,users"), []string{"public", "users"}},
		{"mixed", withScope(" public, jobs  "), []string{"public", "jobs"}},
		{"empty string", withScope(""), requested},
		{"not a string", withScope(42), requested},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := GrantedScopes(tt.tok, requested)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := GrantedScopes(nil, nil); len(got) != 0 {
		t.Errorf("nil requested: %v", got)
	}
}
