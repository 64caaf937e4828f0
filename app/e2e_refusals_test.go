package app_test

// Unauthenticated amplification: a flood of bad requests is answered 429
// once an address has used its failures up, costs a few log lines, and
// leaves other addresses alone.

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/web"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (Linux routes all of 127.0.0.0/8 to lo).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func send(t *testing.T, c *http.Client, method, u, token string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	return resp
}

func TestE2EFloodOfBadRequestsIsLimitedAndLoggedInBulk(t *testing.T) {
	t.Parallel()
	const burst = 5
	h := startHarness(t, harnessOptions{tweak: func(h *harness, c *app.Config) {
		// One failure back a minute: the flood below cannot earn any.
		c.Tuning.Refusals = web.RefusalLimits{Burst: burst, PerMinute: 1, LogEvery: time.Hour}
	}})
	h.login("U0ANA")
	hook := h.subscribe("U0ANA", "C0GENERAL", "shop:production")
	token := h.apiToken("ci", "notify")
	attacker := clientFrom("127.0.0.1")
	public := h.public

	// Every unauthenticated way to fail, from one address, many times,
	// with X-Forwarded-For claiming to be someone new every time.
	targets := []struct{ method, url, token string }{
		{http.MethodPost, public + "/hooks/cloud66/not-a-secret", ""},
		{http.MethodPost, public + "/api/v1/notify", "c66_not-a-token"},
		{http.MethodPost, public + "/api/v1/notify", ""},
		{http.MethodGet, public + "/oauth/start?state=forged", ""},
		{http.MethodGet, public + "/oauth/callback?state=forged&code=x", ""},
		{http.MethodGet, public + "/oauth/slack/callback?state=forged&code=x", ""},
	}
	const flood = 300
	var refused, limited int
	for i := range flood {
		tg := targets[i%len(targets)]
		resp := send(t, attacker, tg.method, tg.url, tg.token, map[string]string{"X-Forwarded-For": "10.0.0." + strconv.Itoa(i%250)})
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			limited++
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
				t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		case http.StatusUnauthorized, http.StatusBadRequest:
			refused++
		default:
			t.Errorf("%s %s answered %d", tg.method, tg.url, resp.StatusCode)
		}
	}
	if refused != burst || limited != flood-burst {
		t.Errorf("%d refused and %d answered 429; want the burst (%d) refused and the rest 429", refused, limited, burst)
	}

	// Another address is not held back: a good webhook, a good API call,
	// and its own bad token still gets a plain 401.
	other := clientFrom("127.0.0.2")
	now := h.clock.Now()
	req, _ := http.NewRequest(http.MethodPost, hook, strings.NewReader(string(h.stackPayload("stack.redeploy.ok", "shop", "production", now.Add(-time.Minute), now))))
	resp, err := other.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if readBody(t, resp); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a good webhook from another address: %d", resp.StatusCode)
	}
	if resp := send(t, other, http.MethodPost, h.public+"/api/v1/notify", "c66_wrong", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a bad token from another address: %d", resp.StatusCode)
	}
	body := `{"stack":"shop:production","event":"deploy.succeeded","text":"ci"}`
	req, _ = http.NewRequest(http.MethodPost, h.public+"/api/v1/notify", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := other.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Errorf("a good API call from another address: %v %v", resp, err)
	} else {
		readBody(t, resp)
	}
	h.waitPosts("C0GENERAL", 2)
	// The flooding address is still held back, good token or not: it gets
	// no more chances to guess.
	req, _ = http.NewRequest(http.MethodPost, h.public+"/api/v1/notify", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := attacker.Do(req); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the flooding address with a good token: %v %v", resp, err)
	} else {
		readBody(t, resp)
	}

	// The log: a line when a kind is first seen, and one sum per kind when
	// the period ends (here: at shutdown), not a line per request.
	h.stop()
	logs := h.logs.String()
	var refusalLines int
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "refused") || strings.Contains(l, "answered 429") {
			refusalLines++
		}
	}
	if refusalLines > 2*8 {
		t.Errorf("%d log lines about %d refused requests:\n%s", refusalLines, flood, logs)
	}
	mustContain(t, logs, `"kind":"over_limit","count":`)
	if strings.Contains(logs, "not-a-secret") || strings.Contains(logs, "c66_not-a-token") {
		t.Error("a refused secret reached the log")
	}
}

// The table of addresses is bounded: many addresses, each failing once,
// do not grow it, and an address that was forgotten starts afresh.
func TestE2ERefusalTableIsBounded(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{outOfBand: true, tweak: func(h *harness, c *app.Config) {
		c.Tuning.Refusals = web.RefusalLimits{Burst: 1, PerMinute: 1, Addresses: 4, LogEvery: time.Hour}
	}})
	public := "http://" + h.bot.Addr().String()
	first := clientFrom("127.0.0.10")
	if resp := send(t, first, http.MethodPost, public+"/hooks/cloud66/x", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("first failure: %d", resp.StatusCode)
	}
	if resp := send(t, first, http.MethodPost, public+"/hooks/cloud66/x", "", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d", resp.StatusCode)
	}
	// Four more addresses push the first out of the table of four.
	for i := 11; i < 15; i++ {
		if resp := send(t, clientFrom("127.0.0."+strconv.Itoa(i)), http.MethodPost, public+"/hooks/cloud66/x", "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("address %d: %d", i, resp.StatusCode)
		}
	}
	if resp := send(t, first, http.MethodPost, public+"/hooks/cloud66/x", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forgotten address: %d, want a fresh start (401)", resp.StatusCode)
	}
}
