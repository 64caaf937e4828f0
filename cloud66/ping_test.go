package cloud66

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestPing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pattern, endpoint, wantAuth string
		call                              func(*Client, context.Context) error
	}{
		{"Ping", "GET /ping.json", "/ping", "", (*Client).Ping},
		{"PingAuth", "GET /ping/auth.json", "/ping/auth", "Bearer " + testToken, (*Client).PingAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hook hookRecorder
			c, api := setup(t, WithRequestHook(hook.record))
			api.HandleFunc(tt.pattern, func(w http.ResponseWriter, r *http.Request) {
				testHeader(t, r, "Authorization", tt.wantAuth)
				testHeader(t, r, "Accept", "application/json")
				testHeader(t, r, "User-Agent", "c66bot")
				writeJSON(w, 200, `{"response":{"ok":true,"message":"pong"}}`)
			})
			if err := tt.call(c, context.Background()); err != nil {
				t.Fatal(err)
			}
			if infos := hook.all(); len(infos) != 1 || infos[0].Endpoint != tt.endpoint || infos[0].StatusCode != 200 {
				t.Errorf("hook = %+v", infos)
			}
		})
	}
}

func TestPingAuthUnauthorized(t *testing.T) {
	t.Parallel()
	c, api := setup(t)
	api.HandleFunc("GET /ping/auth.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, `{"error":"invalid_token","error_description":"The access token is invalid"}`)
	})
	err := c.PingAuth(context.Background())
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if got, want := err.Error(), "cloud66: GET /ping/auth: 401 invalid_token: The access token is invalid"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
