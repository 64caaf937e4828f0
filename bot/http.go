package bot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/commands"
	"github.com/c66bot/c66bot/metrics"
	"github.com/c66bot/c66bot/storage"
)

const (
	startPath    = "/oauth/start"
	callbackPath = "/oauth/callback"
	// loginCookie binds a login to the browser that confirmed it on the
	// start page; the callback refuses a browser without it.
	loginCookie = "c66bot_login"
	// maxBody bounds the login form.
	maxBody = 64 << 10
)

func (b *Bot) newHTTPServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", b.handleReady)
	// Prometheus scrapes this bot's own registry; no label carries a
	// person, channel, stack or token.
	mux.Handle("GET /metrics", b.metrics.Handler())
	mux.HandleFunc("GET "+startPath, b.handleStart)
	mux.HandleFunc("POST "+startPath, b.handleStartConfirm)
	mux.HandleFunc("GET "+callbackPath, b.handleCallback)
	mux.HandleFunc("POST /hooks/cloud66/{secret}", b.handleCloud66Webhook)
	mux.HandleFunc("POST /api/v1/notify", b.requireToken(ScopeNotify, b.handleAPINotify))
	mux.HandleFunc("GET /api/v1/audit", b.requireToken(ScopeAuditRead, b.handleAPIAudit))
	return &http.Server{
		// The largest body anyone may send is a Cloud 66 webhook; handlers
		// bound their own bodies tighter.
		Handler:           http.MaxBytesHandler(mux, maxWebhookBody),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// net/http logs TLS and protocol noise; keep it, at debug level,
		// in the structured log.
		ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
}

func (b *Bot) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	checks := map[string]string{"slack_socket": "ok", "database": "ok"}
	status := http.StatusOK
	if !b.connected.Load() {
		checks["slack_socket"] = "not connected"
		status = http.StatusServiceUnavailable
	}
	switch {
	case b.store.Ping(ctx) != nil:
		checks["database"] = "unavailable"
		status = http.StatusServiceUnavailable
	case b.store.WriteError() != nil:
		// Reads still answer on a full disk; the last write that failed
		// (cleared by the next one that commits) is what tells.
		checks["database"] = "not writable"
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(checks)
}

// loginURL is where the login button sends the person: our start page,
// which shows who is being linked before anything goes to Cloud 66.
func (b *Bot) loginURL(start accounts.LoginStart) string {
	return b.cfg.PublicURL + startPath + "?state=" + url.QueryEscape(start.State)
}

// handleStart shows which Slack person the Cloud 66 account will be linked
// to. It is the defence against a forwarded login link: whoever opens it
// sees the name and is told to stop if it isn't theirs.
func (b *Bot) handleStart(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	p, _, err := b.accounts.Pending(r.Context(), state)
	if err != nil {
		b.loginFailedPage(w, err)
		return
	}
	who := p.Identity.User
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	u, err := b.api.GetUserInfoContext(ctx, p.Identity.User)
	if trackSlack(b.metrics, metrics.SlackUsersInfo, err) == nil {
		name := u.RealName
		if name == "" {
			name = u.Name
		}
		if name != "" {
			who = name + " (" + p.Identity.User + ")"
		}
	}
	b.page(w, http.StatusOK, pageData{
		Title: "Link Cloud 66 to Slack",
		Body: "You are about to let c66bot act in Cloud 66 as you, for the Slack person " + who +
			" in workspace " + p.Identity.Team + ". Only continue if that is you. If someone sent you this link, close this page.",
		Form: &formData{Action: startPath, State: state, Button: "Continue to Cloud 66"},
	})
}

// handleStartConfirm binds the login to this browser and goes to Cloud 66.
func (b *Bot) handleStartConfirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		b.page(w, http.StatusBadRequest, pageData{Title: "Bad request", Body: "That form could not be read."})
		return
	}
	state := r.PostForm.Get("state")
	_, authorizeURL, err := b.accounts.Pending(r.Context(), state)
	if err != nil {
		b.loginFailedPage(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     loginCookie,
		Value:    b.browserBinding(state),
		Path:     "/oauth/",
		MaxAge:   int(storage.StateTTL / time.Second),
		HttpOnly: true,
		Secure:   strings.HasPrefix(b.cfg.PublicURL, "https://"),
		SameSite: http.SameSiteLaxMode,
	})
	b.securityHeaders(w)
	http.Redirect(w, r, authorizeURL, http.StatusSeeOther)
}

func (b *Bot) browserBinding(state string) string {
	mac := hmac.New(sha256.New, b.cookieKey)
	mac.Write([]byte(state))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// handleCallback finishes the redirect flow. The order matters: the browser
// binding is checked and the state consumed before the code goes anywhere.
func (b *Bot) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, code := q.Get("state"), q.Get("code")
	if e := q.Get("error"); e != "" {
		b.log.Info("cloud 66 login refused by the provider", "error", truncateLog(e))
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "Cloud 66 did not grant access (" + truncateLog(e) + "). Run the login command in Slack again if you want to link."})
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !hmac.Equal([]byte(c.Value), []byte(b.browserBinding(state))) {
		b.log.Warn("login callback without this browser's binding refused")
		b.page(w, http.StatusBadRequest, pageData{Title: "Not linked", Body: "This sign-in did not start in this browser. Start again from Slack with the login command, and open the link in the same browser."})
		return
	}
	linked, err := b.accounts.CompleteCallback(r.Context(), state, code)
	if err != nil {
		b.loginFailedPage(w, err)
		return
	}
	b.log.Info("cloud 66 account linked", "team", linked.Identity.Team, "user", linked.Identity.User, "stacks", linked.Stacks)
	// Tell the person in Slack, replacing the login prompt.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	err = b.replies.post(ctx, linked.ResponseURL, commands.LinkedReply(linked), true)
	trackReply(b.metrics, err)
	if err != nil {
		b.log.Warn("could not confirm the link in Slack", "user", linked.Identity.User, "error", err.Error())
	}
	body := "Your Cloud 66 account is linked to Slack"
	if linked.Account != "" {
		body = "Your Cloud 66 account " + linked.Account + " is linked to Slack"
	}
	b.page(w, http.StatusOK, pageData{Title: "Linked", Body: body + ". You can close this tab and go back to Slack."})
}

func (b *Bot) loginFailedPage(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, storage.ErrStateExpired):
		b.page(w, http.StatusBadRequest, pageData{Title: "Link expired", Body: "This login link has expired (they last 10 minutes). Run the login command in Slack again."})
	case errors.Is(err, storage.ErrStateInvalid), errors.Is(err, storage.ErrNotFound):
		b.log.Info("login with an unknown or used state refused")
		b.page(w, http.StatusBadRequest, pageData{Title: "Link not valid", Body: "This login link is not valid or was already used. Run the login command in Slack again."})
	case errors.Is(err, accounts.ErrCodeRejected):
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
	Action, State, Button string
}

// pageTemplate loads nothing from anywhere else: no scripts, fonts or
// images, so the callback URL can't leak to a third party.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} · c66bot</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}h1{font-size:1.4rem}button{font:inherit;padding:.5rem 1rem;border:0;border-radius:4px;background:#007a5a;color:#fff;cursor:pointer}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Body}}</p>
{{with .Form}}<form method="post" action="{{.Action}}"><input type="hidden" name="state" value="{{.State}}"><button type="submit">{{.Button}}</button></form>{{end}}
</body></html>
`))

func (b *Bot) page(w http.ResponseWriter, status int, d pageData) {
	b.securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// securityHeaders: no referrer (the callback URL carries a code), nothing
// loaded from elsewhere, and the start form may only lead here or to Cloud 66.
func (b *Bot) securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+b.cfg.Cloud66URL+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}
