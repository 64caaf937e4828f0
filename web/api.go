package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/notify"
	"github.com/c66bot/c66bot/storage"
)

// Limits on what outsiders may send.
const (
	maxWebhookBody = 1 << 20 // Cloud 66 sends the stack object: tens of KB
	maxAPIBody     = 16 << 10
)

// Subscriptions finds the subscription a webhook URL belongs to;
// *storage.SubscriptionStore satisfies it.
type Subscriptions interface {
	BySecret(ctx context.Context, secret string) (storage.Subscription, error)
	MarkWebhookSeen(ctx context.Context, id string, at time.Time) error
}

// APITokens checks the API's bearer tokens; *storage.APITokenStore
// satisfies it.
type APITokens interface {
	Check(ctx context.Context, token string) (storage.APIToken, error)
}

// Audit is the audit log as the API uses it; *storage.AuditStore
// satisfies it.
type Audit interface {
	Append(ctx context.Context, e storage.AuditEntry) (storage.AuditEntry, error)
	admin.AuditSource
}

// Notices takes notices for the subscribed channels; *notify.Service
// satisfies it.
type Notices interface {
	Accept(ctx context.Context, ev notify.Event) error
	ResolveStack(ctx context.Context, team, stack string) (uid, name, env string, err error)
}

// handleCloud66Webhook takes a Cloud 66 notification. Cloud 66 signs
// nothing, so the unguessable path segment is the credential: it belongs to
// one subscription. The event is written to the outbox before answering,
// because Cloud 66 never retries.
func (b *Server) handleCloud66Webhook(w http.ResponseWriter, r *http.Request) {
	sub, err := b.cfg.Subscriptions.BySecret(r.Context(), r.PathValue("secret"))
	if err != nil {
		b.refuse(r, refusedWebhookSecret)
		writeJSONError(w, http.StatusUnauthorized, "unknown webhook")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	ev, err := notify.DecodeWebhook(body)
	if errors.Is(err, notify.ErrNoStack) && sub.StackUID != "" {
		// Cloud 66's server events name only the server; the subscription
		// this URL belongs to says which stack.
		ev.StackUID, ev.StackName, ev.Environment, err = sub.StackUID, sub.StackName, sub.Environment, nil
	}
	if errors.Is(err, notify.ErrIgnored) {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if err != nil {
		b.log.Info("malformed webhook refused", "subscription", sub.ID, "error", err.Error())
		writeJSONError(w, http.StatusBadRequest, "malformed payload")
		return
	}
	if sub.StackUID != "" && ev.StackUID != sub.StackUID {
		// A subscription's secret speaks only for its own stack.
		b.log.Warn("webhook about another stack refused", "subscription", sub.ID)
		writeJSONError(w, http.StatusForbidden, "this webhook is for another stack")
		return
	}
	ev.Team = sub.Team
	if err := b.cfg.Subscriptions.MarkWebhookSeen(r.Context(), sub.ID, time.Now()); err != nil {
		b.log.Warn("mark webhook seen", "error", err.Error())
	}
	if err := b.cfg.Notices.Accept(r.Context(), ev); err != nil {
		b.log.Error("webhook not stored", "error", err.Error())
		writeJSONError(w, http.StatusServiceUnavailable, "try again")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// requireToken authenticates an API call the way an OAuth resource server
// does (RFC 6750): no or a bad token is 401 with WWW-Authenticate, a valid
// token without the scope is 403 naming it.
func (b *Server) requireToken(scope string, next func(w http.ResponseWriter, r *http.Request, t storage.APIToken)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		raw, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			// Also accept a lower-case scheme, as RFC 7235 makes it case-insensitive.
			raw, ok = strings.CutPrefix(auth, "bearer ")
		}
		if !ok || raw == "" {
			b.refuse(r, refusedAPIToken)
			w.Header().Set("WWW-Authenticate", `Bearer realm="c66bot"`)
			writeJSONError(w, http.StatusUnauthorized, "a bearer token is required")
			return
		}
		t, err := b.cfg.APITokens.Check(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			desc := "the token is unknown"
			if errors.Is(err, storage.ErrRevoked) {
				desc = "the token was revoked"
			} else if !errors.Is(err, storage.ErrNotFound) {
				b.log.Error("api token check failed", "error", err.Error())
				writeJSONError(w, http.StatusServiceUnavailable, "try again")
				return
			}
			b.refuse(r, refusedAPIToken)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="c66bot", error="invalid_token", error_description=%q`, desc))
			writeJSONError(w, http.StatusUnauthorized, desc)
			return
		}
		if !slices.Contains(t.Scopes, scope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="c66bot", error="insufficient_scope", scope=%q`, scope))
			writeJSONError(w, http.StatusForbidden, "this token lacks the scope "+scope)
			return
		}
		next(w, r, t)
	}
}

type notifyRequest struct {
	Stack string `json:"stack"`
	Event string `json:"event"`
	Text  string `json:"text"`
	// Team picks the workspace when the bot serves several; optional.
	Team string `json:"team"`
}

// handleAPINotify posts a deploy notice for a stack to the channels
// subscribed to it: POST /api/v1/notify {"stack","event","text"} → 202.
func (b *Server) handleAPINotify(w http.ResponseWriter, r *http.Request, t storage.APIToken) {
	var req notifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "body must be JSON {\"stack\", \"event\", \"text\"}")
		return
	}
	if req.Stack == "" || req.Event == "" {
		writeJSONError(w, http.StatusBadRequest, "stack and event are required")
		return
	}
	if len(req.Text) > 3000 {
		writeJSONError(w, http.StatusBadRequest, "text is longer than 3000 characters")
		return
	}
	kinds, err := notify.ParseEvents([]string{req.Event})
	if err != nil || len(kinds) != 1 {
		writeJSONError(w, http.StatusBadRequest, "event must be one of "+strings.Join(notify.AllEvents, ", "))
		return
	}
	uid, name, env, err := b.cfg.Notices.ResolveStack(r.Context(), req.Team, req.Stack)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, notify.ErrUnknownStack) {
			status = http.StatusNotFound
		}
		writeJSONError(w, status, err.Error())
		return
	}
	ev := notify.Event{Kind: kinds[0], StackUID: uid, StackName: name, Environment: env, Text: req.Text, At: time.Now(), Source: "api", Team: req.Team}
	if err := b.cfg.Notices.Accept(r.Context(), ev); err != nil {
		b.log.Error("api notify not stored", "error", err.Error())
		writeJSONError(w, http.StatusServiceUnavailable, "try again")
		return
	}
	b.audit(r.Context(), storage.AuditEntry{Action: "api.notify", User: "token:" + t.Name, StackUID: uid, StackName: name,
		Args: map[string]string{"event": kinds[0]}, Result: "accepted"})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "accepted", "stack": name, "environment": env, "event": kinds[0]})
}

// handleAPIAudit is GET /api/v1/audit[?since=RFC3339|duration][&stack=NAME] as JSON lines.
func (b *Server) handleAPIAudit(w http.ResponseWriter, r *http.Request, _ storage.APIToken) {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			since = t
		} else {
			writeJSONError(w, http.StatusBadRequest, "since is a duration (24h) or an RFC 3339 time")
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if err := admin.WriteAudit(r.Context(), b.cfg.Audit, w, since, q.Get("stack")); err != nil {
		b.log.Warn("api audit failed", "error", err.Error())
	}
}

func (b *Server) audit(ctx context.Context, e storage.AuditEntry) {
	if _, err := b.cfg.Audit.Append(ctx, e); err != nil {
		b.log.Warn("audit write failed", "action", e.Action, "error", err.Error())
	}
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
