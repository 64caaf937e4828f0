package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/storage"
)

// Dedup makes the login pages' one-time values work once;
// *storage.DedupStore satisfies it.
type Dedup interface {
	FirstTime(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

const (
	startPath = "/oauth/start"
	// SlackCallbackPath is where Sign in with Slack returns (the Slack
	// app's redirect URL, under the public URL).
	SlackCallbackPath = "/oauth/slack/callback"
	// CallbackPath is Cloud 66's OAuth callback, under the public URL.
	CallbackPath = "/oauth/callback"
	// startCookie holds the start page's one-time nonce, which the form
	// must echo.
	startCookie = "c66bot_start"
	// slackCookie binds a Slack sign-in to the browser that asked for it.
	slackCookie = "c66bot_slack"
	// loginCookie says this browser signed in with Slack as the login's
	// person; the Cloud 66 callback refuses a browser without it.
	loginCookie = "c66bot_login"
	// maxBody bounds the login form.
	maxBody = 64 << 10
)

// secureCookies: cookies cross the network only encrypted when the public
// URL is https (a plain-http URL is for a laptop).
func (b *Server) secureCookies() bool { return strings.HasPrefix(b.cfg.PublicURL, "https://") }

func (b *Server) setCookie(w http.ResponseWriter, name, value, path string, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path,
		MaxAge:   int(storage.StateTTL / time.Second),
		HttpOnly: true, Secure: b.secureCookies(), SameSite: sameSite,
	})
}

func (b *Server) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Path: path, MaxAge: -1, HttpOnly: true, Secure: b.secureCookies()})
}

// handleStart is the first page of the redirect flow. It gives this browser
// a one-time nonce, in a SameSite=Strict cookie and in the form, so only a
// form this page showed in this browser can continue: a form on another
// site cannot know the nonce, and its browser does not send the cookie.
func (b *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	p, _, err := b.cfg.Accounts.Pending(r.Context(), state)
	if err != nil {
		b.loginFailedPage(w, r, err)
		return
	}
	nonce := randomToken()
	b.setCookie(w, startCookie, nonce, startPath, http.SameSiteStrictMode)
	b.page(w, http.StatusOK, pageData{
		Title: "Link Cloud 66 to Slack",
		Body: "This link was made for the Slack user " + p.Identity.User + " in workspace " + p.Identity.Team +
			". Next you sign in with Slack, to prove that is you; then Cloud 66 asks you to let c66bot act there as you. " +
			"If someone sent you this link, close this page: it works only for the person who made it.",
		Form: &formData{Action: startPath, State: state, Nonce: nonce, Button: "Continue with Slack"},
	})
}

// fromAnotherSite reports a form submission that did not come from our own
// start page, judged by what browsers send: Sec-Fetch-Site (cross-site, or
// same-site, which is another origin), and Origin against
// C66BOT_PUBLIC_URL's origin (what the browser saw, whatever proxy is in
// between; "null" from a sandboxed frame never matches). Without either
// header the one-time nonce decides alone.
func (b *Server) fromAnotherSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	o := r.Header.Get("Origin")
	return o != "" && !strings.EqualFold(o, b.publicOrigin())
}

func (b *Server) publicOrigin() string {
	u, err := url.Parse(b.cfg.PublicURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// handleStartConfirm takes the start form: from this site, with this
// browser's unused nonce, for a pending login. It binds the Slack sign-in
// to this browser (cookie) and sends the browser to Slack.
func (b *Server) handleStartConfirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		b.page(w, http.StatusBadRequest, pageData{Title: "Bad request", Body: "That form could not be read."})
		return
	}
	if b.fromAnotherSite(r) {
		b.refuse(r, refusedCrossSite)
		b.page(w, http.StatusForbidden, pageData{Title: "Not linked", Body: "This form was sent from another web site, not from c66bot's own page, so nothing was done. " +
			"To link your account, run the login command in Slack and open its link."})
		return
	}
	nonce := r.PostForm.Get("nonce")
	c, err := r.Cookie(startCookie)
	if err != nil || nonce == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(nonce)) != 1 {
		b.refuse(r, refusedStartNonce)
		b.page(w, http.StatusForbidden, pageData{Title: "Not linked", Body: "This form was not opened in this browser, or it was already sent. " +
			"Open the login link from Slack again, in the browser you want to use."})
		return
	}
	state := r.PostForm.Get("state")
	if _, _, err := b.cfg.Accounts.Pending(r.Context(), state); err != nil {
		b.loginFailedPage(w, r, err)
		return
	}
	first, err := b.cfg.Dedup.FirstTime(r.Context(), "login-start-nonce:"+digest(nonce), storage.StateTTL)
	if err != nil {
		b.log.Error("login start: record the nonce", "error", err.Error())
		b.page(w, http.StatusServiceUnavailable, pageData{Title: "Not linked", Body: "Something went wrong on my side. Try again in a minute."})
		return
	}
	if !first {
		b.refuse(r, refusedStartNonce)
		b.page(w, http.StatusForbidden, pageData{Title: "Not linked", Body: "This form was already sent. Open the login link from Slack again."})
		return
	}
	b.clearCookie(w, startCookie, startPath)
	slackState, oidcNonce := randomToken(), randomToken()
	b.setCookie(w, slackCookie, b.sealSlackCookie(state, slackState, oidcNonce), SlackCallbackPath, http.SameSiteLaxMode)
	b.securityHeaders(w)
	http.Redirect(w, r, b.cfg.SignIn.AuthorizeURL(slackState, oidcNonce), http.StatusSeeOther)
}

// sealSlackCookie binds a Slack sign-in to the browser that asked for it:
// which login it is for, the state Slack must send back and the nonce the
// id_token must carry, under an HMAC so the browser cannot change them.
// The three are base64url, so "." separates them.
func (b *Server) sealSlackCookie(login, slackState, oidcNonce string) string {
	v := login + "." + slackState + "." + oidcNonce
	return v + "." + b.mac("slack sign-in", v)
}

func (b *Server) openSlackCookie(r *http.Request) (login, slackState, oidcNonce string, ok bool) {
	c, err := r.Cookie(slackCookie)
	if err != nil {
		return "", "", "", false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return "", "", "", false
	}
	v := parts[0] + "." + parts[1] + "." + parts[2]
	if !hmac.Equal([]byte(parts[3]), []byte(b.mac("slack sign-in", v))) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// handleSlackCallback is where Slack sends the browser back. The Slack
// state must be the one this browser's cookie holds, and unused; the
// person Slack vouches for must be the one the login was started for.
// Only then does the browser get the binding the Cloud 66 callback checks,
// and go on to Cloud 66.
func (b *Server) handleSlackCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	login, slackState, oidcNonce, ok := b.openSlackCookie(r)
	if !ok || subtle.ConstantTimeCompare([]byte(slackState), []byte(q.Get("state"))) != 1 {
		b.refuse(r, refusedUnbound)
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "This sign-in did not start in this browser. Start again from Slack with the login command, and open the link in the same browser."})
		return
	}
	if e := q.Get("error"); e != "" {
		b.clearCookie(w, slackCookie, SlackCallbackPath)
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "Slack sign-in did not complete (" + truncateLog(e) + "). Run the login command in Slack again if you want to link."})
		return
	}
	first, err := b.cfg.Dedup.FirstTime(r.Context(), "slack-sign-in-state:"+digest(slackState), storage.StateTTL)
	if err != nil {
		b.log.Error("slack sign-in: record the state", "error", err.Error())
		b.page(w, http.StatusServiceUnavailable, pageData{Title: "Not linked", Body: "Something went wrong on my side. Try again in a minute."})
		return
	}
	if !first {
		b.refuse(r, refusedSlackReplay)
		b.page(w, http.StatusBadRequest, pageData{Title: "Link not valid", Body: "This Slack sign-in was already used. Run the login command in Slack again."})
		return
	}
	b.clearCookie(w, slackCookie, SlackCallbackPath)
	p, authorizeURL, err := b.cfg.Accounts.Pending(r.Context(), login)
	if err != nil {
		b.loginFailedPage(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	who, err := b.cfg.SignIn.Identify(ctx, q.Get("code"), oidcNonce)
	if err != nil {
		b.slackSignInFailedPage(w, r, err)
		return
	}
	if who != p.Identity {
		b.wrongPerson(w, r, login, p.Identity, who)
		return
	}
	b.setCookie(w, loginCookie, b.browserBinding(login), "/oauth/", http.SameSiteLaxMode)
	b.securityHeaders(w)
	http.Redirect(w, r, authorizeURL, http.StatusSeeOther)
}

// wrongPerson ends a login whose link was opened by someone signed in to
// Slack as another person: the login is spent, its owner is told in Slack
// (their link went somewhere), and the browser is told why.
func (b *Server) wrongPerson(w http.ResponseWriter, r *http.Request, login string, owner, who storage.Identity) {
	b.refusals.refuse(refusedWrongPerson, clientKey(r), time.Now())
	b.log.Warn("login refused: the browser signed in to Slack as someone else", "started_by", owner.String(), "signed_in_as", who.String())
	p, err := b.cfg.Accounts.AbandonLogin(r.Context(), login)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		err = b.cfg.Replies.Respond(ctx, p.ResponseURL, chat.Message{Text: ":no_entry: Your login link was opened in a browser signed in to Slack as <@" +
			who.User + ">, not as you, so nothing was linked and the link no longer works. Run `" + b.cfg.Command + " login` again if you want to link."}, true)
		if err != nil {
			b.log.Warn("could not tell the login's owner in Slack", "user", owner.User, "error", err.Error())
		}
	}
	b.page(w, http.StatusForbidden, pageData{Title: "Not linked", Body: "You signed in to Slack as " + who.User + " (" + who.Team + "), but this login was started by " +
		owner.User + " (" + owner.Team + "). Nothing was linked, and this link no longer works. " +
		"To link your own Cloud 66 account, run the login command in Slack yourself."})
}

// slackSignInFailedPage answers a Slack sign-in that proved nobody. A code
// Slack refused or an id_token that does not verify (a code carried from
// another sign-in) is something a browser can repeat at will, so it
// counts against the address and is logged in sums.
func (b *Server) slackSignInFailedPage(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, accounts.ErrSlackCodeRejected):
		b.refuse(r, refusedSlackCode)
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "Slack did not accept the sign-in. Run the login command in Slack again."})
	case errors.Is(err, accounts.ErrIDTokenInvalid):
		b.refuse(r, refusedSlackToken)
		b.log.Debug("slack sign-in refused: the id_token did not verify", "error", err.Error())
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "Slack's answer could not be verified, so nothing was linked. Run the login command in Slack again."})
	case errors.Is(err, accounts.ErrSlackAppRejected):
		b.log.Error("slack sign-in failed: check SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and the app's redirect URL "+b.cfg.PublicURL+SlackCallbackPath, "error", err.Error())
		b.page(w, http.StatusBadGateway, pageData{Title: "Not linked", Body: "This bot's Slack app is not set up right for signing in. Tell whoever runs c66bot (they can run c66bot doctor)."})
	default:
		b.log.Error("slack sign-in failed", "error", err.Error())
		b.page(w, http.StatusBadGateway, pageData{Title: "Not linked", Body: "Something went wrong while talking to Slack. Try the login command in Slack again in a minute."})
	}
}

// browserBinding is the cookie that says this browser signed in with Slack
// as the person the login is for; the Cloud 66 callback requires it.
func (b *Server) browserBinding(state string) string {
	return b.mac("signed in with slack as the login's person", state)
}

func (b *Server) mac(purpose, v string) string {
	m := hmac.New(sha256.New, b.cfg.CookieKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// digest names a secret in the dedup table without storing it.
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// handleCallback finishes the redirect flow. The order matters: the browser
// binding is checked and the state consumed before the code goes anywhere.
func (b *Server) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	if e := q.Get("error"); e != "" {
		b.log.Info("cloud 66 login refused by the provider", "error", truncateLog(e))
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "Cloud 66 did not grant access (" + truncateLog(e) + "). Run the login command in Slack again if you want to link."})
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !hmac.Equal([]byte(c.Value), []byte(b.browserBinding(state))) {
		b.refuse(r, refusedUnbound)
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "This sign-in did not start in this browser. Start again from Slack with the login command, and open the link in the same browser."})
		return
	}
	linked, err := b.cfg.Accounts.CompleteCallback(r.Context(), state, code)
	if err != nil {
		b.loginFailedPage(w, r, err)
		return
	}
	b.log.Info("cloud 66 account linked", "team", linked.Identity.Team, "user", linked.Identity.User, "stacks", linked.Stacks)
	// Tell the person in Slack, replacing the login prompt.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	err = b.cfg.Replies.Respond(ctx, linked.ResponseURL, commands.LinkedReply(linked), true)
	if err != nil {
		b.log.Warn("could not confirm the link in Slack", "user", linked.Identity.User, "error", err.Error())
	}
	body := "Your Cloud 66 account is linked to Slack"
	if linked.Account != "" {
		body = "Your Cloud 66 account " + linked.Account + " is linked to Slack"
	}
	b.page(w, http.StatusOK, pageData{Title: "Linked", Body: body + ". You can close this tab and go back to Slack."})
}

func (b *Server) loginFailedPage(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, storage.ErrStateExpired):
		b.page(w, http.StatusBadRequest, pageData{Title: "Link expired", Body: "This login link has expired (they last 10 minutes). Run the login command in Slack again."})
	case errors.Is(err, storage.ErrStateInvalid), errors.Is(err, storage.ErrNotFound):
		b.refuse(r, refusedLoginState)
		b.page(w, http.StatusBadRequest, pageData{Title: "Link not valid", Body: "This login link is not valid or was already used. Run the login command in Slack again."})
	case errors.Is(err, accounts.ErrCodeRejected):
		b.refuse(r, refusedCloud66Code)
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "Cloud 66 did not accept the sign-in. Run the login command in Slack again."})
	default:
		b.log.Error("login failed", "error", err.Error())
		b.page(w, http.StatusBadGateway, pageData{Title: "Not linked", Body: "Something went wrong while talking to Cloud 66. Try the login command in Slack again in a minute."})
	}
}

func truncateLog(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

type pageData struct {
	Title string
	Body  string
	Form  *formData
}

type formData struct {
	Action, State, Nonce, Button string
}

// pageTemplate loads nothing from anywhere else: no scripts, fonts or
// images, so the callback URL can't leak to a third party.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · c66bot</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}h1{font-size:1.4rem}button{font:inherit;padding:.5rem 1rem;border:0;border-radius:4px;background:#007a5a;color:#fff;cursor:pointer}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Body}}</p>
{{with .Form}}<form method="post" action="{{.Action}}"><input type="hidden" name="state" value="{{.State}}"><input type="hidden" name="nonce" value="{{.Nonce}}"><button type="submit">{{.Button}}</button></form>{{end}}
</body></html>
`))

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (b *Server) page(w http.ResponseWriter, status int, d pageData) {
	b.securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// securityHeaders: no referrer (the callback URL carries a code), nothing
// loaded from elsewhere, and the start form may only lead here, to Slack's
// sign-in and to Cloud 66 (browsers apply form-action to the redirects
// that follow a form, too).
func (b *Server) securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+
		originOf(accounts.SlackWebURL(b.cfg.SlackAPIURL))+" "+b.cfg.Cloud66URL+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}
