package app_test

// The redirect login attacked end to end: a login form carried to another
// site (login CSRF), the Slack sign-in step replayed, mixed up between
// browsers, refused or skipped.

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/storage"
)

// hostilePage is the attacker's web page: a form to the bot's start page
// carrying the attacker's login state and the nonce the attacker's own
// browser was given, which a script submits as soon as it loads.
func hostilePage(t *testing.T, action string, fields url.Values) *httptest.Server {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><html><body onload="document.forms[0].submit()"><h1>Cute cats</h1><form method="post" action="%s">`, html.EscapeString(action))
	for k := range fields {
		fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(fields.Get(k)))
	}
	b.WriteString(`</form></body></html>`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

var formTag = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// visitAndSubmit is the victim's browser opening pageURL and running its
// auto-submitting form, with the headers a browser adds to a form sent
// from that page: headers says which (a modern browser sends Origin and
// Sec-Fetch-Site; an old one neither). It follows redirects and returns
// the last answer.
func visitAndSubmit(t *testing.T, br *browser, pageURL string, headers map[string]string) (int, string) {
	t.Helper()
	status, page := getPage(t, br, pageURL)
	m := formTag.FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("the hostile page: %d\n%s", status, page)
	}
	form := url.Values{}
	for _, f := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	req, err := http.NewRequest(http.MethodPost, html.UnescapeString(m[1]), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := br.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// Mallory runs `/c66 login`, opens her own start page to get a nonce for
// her own browser, and puts her state and nonce in a form on her own site.
// Ana visits it: whatever her browser sends, the bot refuses the form
// before anything goes to Slack or Cloud 66, and nobody is linked.
func TestE2ELoginFormFromAnotherSiteIsRefused(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	h.c66.SetAuthorizingUser("ana@example.com") // Ana would consent at once

	_, prompt := h.run("U0MAL", "C0GENERAL", "login")
	mallory := newBrowser(t)
	h.slack.SignIn(mallory.Jar, "U0MAL")
	status, page := getPage(t, mallory, buttonURL(t, prompt))
	if status != http.StatusOK {
		t.Fatalf("Mallory's start page: %d\n%s", status, page)
	}
	evil := hostilePage(t, h.public+"/oauth/start", startForm(t, page))

	// Ana has opened a start page of her own before, so her browser holds
	// a nonce cookie of its own (a real browser would not even send it
	// cross-site: it is SameSite=Strict; Go's cookie jar does).
	_, own := h.run("U0ANA", "C0GENERAL", "login")
	withCookie := newBrowser(t)
	h.slack.SignIn(withCookie.Jar, "U0ANA")
	getPage(t, withCookie, buttonURL(t, own))

	for _, tc := range []struct {
		name    string
		br      *browser
		headers map[string]string
		want    string
	}{
		{"a modern browser", newBrowser(t), map[string]string{"Origin": evil.URL, "Sec-Fetch-Site": "cross-site"}, "sent from another web site"},
		{"Origin alone", newBrowser(t), map[string]string{"Origin": evil.URL}, "sent from another web site"},
		{"a sandboxed frame (Origin null)", newBrowser(t), map[string]string{"Origin": "null"}, "sent from another web site"},
		{"a sibling site", newBrowser(t), map[string]string{"Sec-Fetch-Site": "same-site"}, "sent from another web site"},
		{"an old browser", newBrowser(t), nil, "not opened in this browser"},
		{"an old browser with a nonce of its own", withCookie, nil, "not opened in this browser"},
	} {
		h.slack.SignIn(tc.br.Jar, "U0ANA")
		authorizes := h.slack.AuthorizeCount()
		status, page := visitAndSubmit(t, tc.br, evil.URL, tc.headers)
		if status != http.StatusForbidden || !strings.Contains(page, tc.want) {
			t.Errorf("%s: answered %d, want 403 saying %q:\n%s", tc.name, status, tc.want, page)
		}
		if h.slack.AuthorizeCount() != authorizes {
			t.Errorf("%s: the browser was sent to Slack's sign-in", tc.name)
		}
		for _, v := range tc.br.visited {
			if !strings.HasPrefix(v, evil.URL) {
				t.Errorf("%s: the browser went on to %s", tc.name, v)
			}
		}
	}
	// The same form from Mallory's own browser, on the bot's own page, does
	// go on to Slack: the refusals above are the checks, not a broken form
	// (and they spent nothing). This comes before whoami, whose answer to
	// an unlinked person starts a fresh login.
	stopAtSlack(mallory, h.slack.WebURL())
	req, _ := http.NewRequest(http.MethodPost, h.public+"/oauth/start", strings.NewReader(startForm(t, page).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.public)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := mallory.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), h.slack.WebURL()+"openid/connect/authorize?") {
		t.Errorf("Mallory's own form: %d → %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	if n := h.c66.RequestCount("", "/oauth/"); n != 0 {
		t.Errorf("Cloud 66's OAuth endpoints were asked %d times", n)
	}
	for _, u := range []string{"U0MAL", "U0ANA"} {
		_, msg := h.run(u, "C0GENERAL", "whoami")
		mustContain(t, text(msg), "haven't linked")
	}

	// No link is stored, for anyone.
	h.stop()
	st, err := storage.Open(storage.Options{Path: h.opts.dbPath, Keys: [][]byte{h.opts.key}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Links().Count(context.Background()); err != nil || n != 0 {
		t.Errorf("%d links stored (%v)", n, err)
	}
}

// stopAtSlack makes br stop before it would leave for Slack's web pages.
func stopAtSlack(br *browser, slackWeb string) {
	br.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		br.mu.Lock()
		br.visited = append(br.visited, req.URL.String())
		br.mu.Unlock()
		if strings.HasPrefix(req.URL.String(), slackWeb+"openid/") {
			return http.ErrUseLastResponse
		}
		return nil
	}
}

// cookieValue is the value of the cookie name that br would send to u.
func cookieValue(t *testing.T, br *browser, u, name string) string {
	t.Helper()
	pu, _ := url.Parse(u)
	for _, c := range br.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	t.Fatalf("the browser has no cookie %s for %s", name, u)
	return ""
}

// stopAtSlackCallback makes br follow redirects until the bot's Slack
// callback and stop there, so the test holds that URL (code and state).
func stopAtSlackCallback(br *browser, public string) {
	br.Client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		br.mu.Lock()
		br.visited = append(br.visited, req.URL.String())
		br.mu.Unlock()
		if strings.HasPrefix(req.URL.String(), public+"/oauth/slack/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
}

// slackCallbackFor runs `/c66 login` as user and takes br, signed in to
// Slack as signedInAs, through the start page and Slack's sign-in, stopping
// before the bot's Slack callback, which it returns.
func (h *harness) slackCallbackFor(user, signedInAs string, br *browser) string {
	h.t.Helper()
	_, prompt := h.run(user, "C0GENERAL", "login")
	h.slack.SignIn(br.Jar, signedInAs)
	stopAtSlackCallback(br, h.public)
	status, page := getPage(h.t, br, buttonURL(h.t, prompt))
	if status != http.StatusOK {
		h.t.Fatalf("start page %d:\n%s", status, page)
	}
	resp, err := br.PostForm(h.public+"/oauth/start", startForm(h.t, page))
	if err != nil {
		h.t.Fatal(err)
	}
	readBody(h.t, resp)
	cb := resp.Header.Get("Location")
	if !strings.HasPrefix(cb, h.public+"/oauth/slack/callback?") {
		h.t.Fatalf("Slack did not send the browser back (status %d, Location %q)", resp.StatusCode, cb)
	}
	return cb
}

// The Slack step holds against replay and mix-up: its state works once,
// only in the browser it was given to, and the start form's nonce works
// once; a Slack refusal or a browser signed in to nobody links nothing.
func TestE2ESlackSignInStepCannotBeReplayedOrMoved(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{})
	tokenCalls := func() int { return h.slack.CallCount("openid.connect.token") }
	expect := func(name string, status int, page string, wantStatus int, want string) {
		t.Helper()
		if status != wantStatus || !strings.Contains(page, want) {
			t.Errorf("%s: answered %d, want %d saying %q:\n%s", name, status, wantStatus, want, page)
		}
	}

	// Mallory's Slack callback (her code, her state) opened in Ana's
	// browser, which is in the middle of her own login, and in a fresh one.
	mallory := newBrowser(t)
	malCallback := h.slackCallbackFor("U0MAL", "U0MAL", mallory)
	ana := newBrowser(t)
	anaCallback := h.slackCallbackFor("U0ANA", "U0ANA", ana)
	anaCookie := cookieValue(t, ana, h.public+"/oauth/slack/callback", "c66bot_slack")
	before := tokenCalls()
	status, page := getPage(t, ana, malCallback)
	expect("Mallory's Slack callback in Ana's browser", status, page, http.StatusBadRequest, "did not start in this browser")
	status, page = getPage(t, newBrowser(t), malCallback)
	expect("Mallory's Slack callback in a fresh browser", status, page, http.StatusBadRequest, "did not start in this browser")
	if tokenCalls() != before {
		t.Errorf("refused Slack callbacks made %d openid.connect.token calls", tokenCalls()-before)
	}
	// Nothing above spent anything: both finish in their own browsers.
	for name, tc := range map[string]struct {
		br *browser
		cb string
	}{"Mallory": {mallory, malCallback}, "Ana": {ana, anaCallback}} {
		tc.br.Client.CheckRedirect = nil
		status, page = getPage(t, tc.br, tc.cb)
		expect(name+"'s own browser", status, page, http.StatusOK, "linked to Slack")
	}

	// Replayed: Ana's Slack callback again, in her browser, with the cookie
	// the bot cleared put back (as someone who copied it would).
	pub, _ := url.Parse(h.public + "/oauth/slack/callback")
	ana.Jar.SetCookies(pub, []*http.Cookie{{Name: "c66bot_slack", Value: anaCookie, Path: "/oauth/slack/callback"}})
	before = tokenCalls()
	status, page = getPage(t, ana, anaCallback)
	expect("Ana's Slack callback replayed", status, page, http.StatusBadRequest, "already used")
	if tokenCalls() != before {
		t.Error("a replayed Slack state reached openid.connect.token")
	}

	// Mix-up: Carol's state with Dave's code, in Carol's browser. The state
	// is hers, so Slack is asked; the id_token carries Dave's sign-in's
	// nonce, not hers: refused, nothing linked.
	carol, dave := newBrowser(t), newBrowser(t)
	carolCallback := h.slackCallbackFor("U0CAROL", "U0CAROL", carol)
	daveCallback := h.slackCallbackFor("U0DAVE", "U0DAVE", dave)
	cq, _ := url.Parse(carolCallback)
	dq, _ := url.Parse(daveCallback)
	mixed := h.public + "/oauth/slack/callback?" + url.Values{"code": {dq.Query().Get("code")}, "state": {cq.Query().Get("state")}}.Encode()
	status, page = getPage(t, carol, mixed)
	expect("Carol's state with Dave's code", status, page, http.StatusBadRequest, "could not be verified")
	// A browser can repeat that at will, so it counts against its address
	// and is logged in sums like any refusal.
	mustContain(t, h.logs.String(), `"kind":"login_slack_id_token"`)

	// The start form's nonce works once.
	_, prompt := h.run("U0FRED", "C0GENERAL", "login")
	fred := newBrowser(t)
	h.slack.SignIn(fred.Jar, "U0FRED")
	stopAtSlack(fred, h.slack.WebURL())
	_, page = getPage(t, fred, buttonURL(t, prompt))
	form := startForm(t, page)
	resp, err := fred.PostForm(h.public+"/oauth/start", form)
	if err != nil {
		t.Fatal(err)
	}
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Fred's first submit: %d", resp.StatusCode)
	}
	// The bot cleared the cookie; put it back, as a replaying attacker would.
	u, _ := url.Parse(h.public + "/oauth/start")
	fred.Jar.SetCookies(u, []*http.Cookie{{Name: "c66bot_start", Value: form.Get("nonce"), Path: "/oauth/start"}})
	resp, err = fred.PostForm(h.public+"/oauth/start", form)
	if err != nil {
		t.Fatal(err)
	}
	expect("the start form sent twice", resp.StatusCode, readBody(t, resp), http.StatusForbidden, "already sent")

	// Slack refused (the person pressed Cancel): nothing linked, said so.
	gina := newBrowser(t)
	ginaCallback := h.slackCallbackFor("U0GINA", "U0GINA", gina)
	gq, _ := url.Parse(ginaCallback)
	status, page = getPage(t, gina, h.public+"/oauth/slack/callback?"+url.Values{"error": {"access_denied"}, "state": {gq.Query().Get("state")}}.Encode())
	expect("Slack sign-in cancelled", status, page, http.StatusBadRequest, "Slack sign-in did not complete (access_denied)")

	// A browser signed in to Slack as nobody stays on Slack's sign-in page.
	_, prompt = h.run("U0ERIN", "C0GENERAL", "login")
	erin := newBrowser(t)
	_, page = getPage(t, erin, buttonURL(t, prompt))
	resp, err = erin.PostForm(h.public+"/oauth/start", startForm(t, page))
	if err != nil {
		t.Fatal(err)
	}
	expect("not signed in to Slack", resp.StatusCode, readBody(t, resp), http.StatusOK, "Sign in to")

	for _, u := range []string{"U0CAROL", "U0DAVE", "U0FRED", "U0GINA", "U0ERIN"} {
		_, msg := h.run(u, "C0GENERAL", "whoami")
		mustContain(t, text(msg), "haven't linked")
	}
}

// A wrong SLACK_CLIENT_SECRET is the operator's problem: the person is told
// so, the log names the settings, nothing is linked.
func TestE2ESlackSignInWithAWrongClientSecret(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{tweak: func(h *harness, c *app.Config) { c.Settings.SlackClientSecret = "not-the-secret" }})
	br := newBrowser(t)
	cb := h.slackCallbackFor("U0ANA", "U0ANA", br)
	status, page := getPage(t, br, cb)
	if status != http.StatusBadGateway || !strings.Contains(page, "Slack app is not set up right") {
		t.Errorf("answered %d:\n%s", status, page)
	}
	logs := h.logs.String()
	mustContain(t, logs, "check SLACK_CLIENT_ID, SLACK_CLIENT_SECRET", "bad_client_secret")
	if strings.Contains(logs, "not-the-secret") {
		t.Error("the log holds the client secret")
	}
	_, msg := h.run("U0ANA", "C0GENERAL", "whoami")
	mustContain(t, text(msg), "haven't linked")
}

// `login <code>` with a paste far longer than a code: a clear ephemeral
// error, nothing sent to Cloud 66, and the real code still works.
func TestE2EPastedCodeIsBoundedInLength(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessOptions{outOfBand: true})
	_, msg := h.run("U0BEN", "G0PRIVATE", "login")
	status, page := getPage(t, newBrowser(t), buttonURL(t, msg))
	m := regexp.MustCompile(`<code id="authorization-code">([^<]+)</code>`).FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("no code on Cloud 66's page (%d):\n%s", status, page)
	}
	_, msg = h.run("U0BEN", "G0PRIVATE", "login "+strings.Repeat("A", 5000))
	mustContain(t, text(msg), "too long to be a Cloud 66 code", "/c66 login <code>")
	if msg.ResponseType == "in_channel" {
		t.Error("the refusal was posted in the channel")
	}
	if n := h.c66.RequestCount(http.MethodPost, "/oauth/token"); n != 0 {
		t.Errorf("a too-long paste reached Cloud 66's token endpoint (%d)", n)
	}
	_, msg = h.run("U0BEN", "G0PRIVATE", "login "+m[1])
	mustContain(t, text(msg), "Linked to Cloud 66 account")
}
