// Package admin is what an operator does with c66bot's database: the
// operations behind `c66bot token`, `audit`, `rekey` and `backup`, and the
// Unix socket through which those commands reach a running bot (bbolt lets
// one process hold the file, so the running bot answers for it). It knows
// nothing of Slack.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// Config is what the admin socket serves.
type Config struct {
	// Path is the Unix socket, <db>.sock beside the database.
	Path     string
	Audit    AuditLog
	Tokens   TokenStore
	Database Database
	Links    LinkCounter
	// Ready is the bot's readiness (what /readyz says), for status.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
}

// AuditLog is the audit log as the operator reads and extends it;
// *storage.AuditStore satisfies it.
type AuditLog interface {
	AuditSource
	AuditAppender
}

// Serve answers local operator commands (`c66bot audit`, `token`,
// `backup`, `rekey` and `doctor` while the bot runs) on a Unix socket beside
// the database until ctx is done. The socket is mode 0600 from the moment
// it appears (see listenUnixPrivate): only the user who runs the bot, who
// can read the database anyway, may ask. A socket that cannot be made is
// logged, not fatal: the bot serves Slack without it.
func Serve(ctx context.Context, cfg Config) error {
	path := cfg.Path
	log := cfg.Logger
	// We hold the database lock, so no other c66bot serves this socket: a
	// file left there is from a process that died, and the rename in
	// listenUnixPrivate replaces it.
	ln, err := listenUnixPrivate(path, net.Listen)
	if err != nil {
		log.Warn("admin socket unavailable; `c66bot audit` works only while the bot is stopped", "path", path, "error", err.Error())
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /audit", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var since time.Time
		if s := q.Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				http.Error(w, "since must be RFC 3339", http.StatusBadRequest)
				return
			}
			since = t
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		if err := WriteAudit(r.Context(), cfg.Audit, w, since, q.Get("stack")); err != nil {
			log.Warn("admin audit failed", "error", err.Error())
		}
	})
	mux.HandleFunc("GET /tokens", func(w http.ResponseWriter, r *http.Request) {
		if err := WriteTokens(r.Context(), cfg.Tokens, w); err != nil {
			writeJSONError(w, http.StatusInternalServerError, err.Error())
		}
	})
	mux.HandleFunc("POST /tokens", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			writeJSONError(w, http.StatusBadRequest, "body must be {\"name\", \"scopes\"}")
			return
		}
		token, err := CreateToken(r.Context(), cfg.Tokens, req.Name, req.Scopes)
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
	})
	mux.HandleFunc("DELETE /tokens/{name}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := RevokeToken(r.Context(), cfg.Tokens, r.PathValue("name")); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, storage.ErrNotFound) {
				status = http.StatusNotFound
			}
			writeJSONError(w, status, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) { backup(w, r, cfg.Database, log) })
	mux.HandleFunc("POST /rekey", func(w http.ResponseWriter, r *http.Request) {
		rep, err := Rekey(r.Context(), cfg.Database, cfg.Audit)
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := Status(r.Context(), cfg.Database, cfg.Links)
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, err.Error())
			return
		}
		st.Ready = true
		if err := cfg.Ready(r.Context()); err != nil {
			st.Ready, st.NotReady = false, err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	_ = os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// listenUnixPrivate listens on a Unix socket at path that no other user can
// connect to at any moment, whatever the umask. net.Listen creates the
// socket with the umask's mode, so a chmod after it would leave a window in
// which a lax umask (000, 002) lets others connect. Instead the socket is
// bound inside a new directory only this user may enter (0700), made 0600
// there, and then renamed into place, so it appears at path already
// private. The rename also replaces a stale socket left at path. listen is
// net.Listen (tests watch the moment of binding through it).
func listenUnixPrivate(path string, listen func(network, address string) (net.Listener, error)) (net.Listener, error) {
	// A short name: Unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp(filepath.Dir(path), ".s")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// MkdirTemp asks for 0700, which a umask can only narrow; say it
	// outright all the same, since everything rests on it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "s")
	ln, err := listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The socket moves; Serve removes it at path itself.
		ul.SetUnlinkOnClose(false)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// AuditSource is what WriteAudit reads; *storage.AuditStore satisfies it.
type AuditSource interface {
	Scan(ctx context.Context, since time.Time, fn func(storage.AuditEntry) error) error
}

// WriteAudit writes audit entries as JSON lines, oldest first, keeping those
// at or after since and, when stack is set, those of that stack (by name,
// case-insensitive, or uid).
func WriteAudit(ctx context.Context, src AuditSource, w interface{ Write([]byte) (int, error) }, since time.Time, stack string) error {
	enc := json.NewEncoder(w)
	return src.Scan(ctx, since, func(e storage.AuditEntry) error {
		if stack != "" && !strings.EqualFold(e.StackName, stack) && e.StackUID != stack {
			return nil
		}
		return enc.Encode(e)
	})
}

// TokenStore is what the token operations need; *storage.APITokenStore
// satisfies it.
type TokenStore interface {
	Create(ctx context.Context, name string, scopes []string, audit ...storage.AuditEntry) (string, storage.APIToken, error)
	List(ctx context.Context) ([]storage.APIToken, error)
	Revoke(ctx context.Context, name string, audit ...storage.AuditEntry) (storage.APIToken, error)
}

// CreateToken issues an API token after checking its scopes; the token is
// returned once and only its hash is kept. Audited.
func CreateToken(ctx context.Context, s TokenStore, name string, scopes []string) (string, error) {
	if len(scopes) == 0 {
		return "", fmt.Errorf("give at least one scope: %s", strings.Join(Scopes(), ", "))
	}
	for _, sc := range scopes {
		if !slices.Contains(Scopes(), sc) {
			return "", fmt.Errorf("unknown scope %q; the scopes are %s", sc, strings.Join(Scopes(), ", "))
		}
	}
	// The entry commits with the token: a token the audit log does not
	// know of is never issued.
	e := storage.AuditEntry{Action: "token.create", User: "operator", Args: map[string]string{"name": name, "scopes": strings.Join(scopes, ",")}, Result: "ok"}
	token, _, err := s.Create(ctx, name, scopes, e)
	if errors.Is(err, storage.ErrExists) {
		return "", fmt.Errorf("a token named %q exists already (names are never reused)", name)
	}
	if err != nil {
		return "", err
	}
	return token, nil
}

// RevokeToken revokes an API token by name. Audited.
func RevokeToken(ctx context.Context, s TokenStore, name string) (storage.APIToken, error) {
	e := storage.AuditEntry{Action: "token.revoke", User: "operator", Args: map[string]string{"name": name}, Result: "ok"}
	return s.Revoke(ctx, name, e)
}

// WriteTokens lists API tokens (never their values) as JSON lines.
func WriteTokens(ctx context.Context, s TokenStore, w interface{ Write([]byte) (int, error) }) error {
	ts, err := s.List(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	for _, t := range ts {
		row := map[string]any{"name": t.Name, "scopes": t.Scopes, "created_at": t.CreatedAt, "revoked": t.Revoked}
		if !t.LastUsedAt.IsZero() {
			row["last_used_at"] = t.LastUsedAt
		}
		if t.Revoked {
			row["revoked_at"] = t.RevokedAt
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

// Trailers of GET /backup. The status line goes out before the copy, so a
// failure midway can only be told in a trailer; the client checks that the
// size trailer matches the bytes it received, which also catches a stream
// cut short.
const (
	BackupSizeTrailer  = "C66bot-Backup-Size"
	BackupErrorTrailer = "C66bot-Backup-Error"
)

// backup streams a consistent copy of the database (one read transaction,
// so the bot keeps serving) for `c66bot backup` while the bot holds the
// file.
func backup(w http.ResponseWriter, r *http.Request, db Database, log *slog.Logger) {
	w.Header().Set("Trailer", BackupSizeTrailer+", "+BackupErrorTrailer)
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{w: w}
	n, err := db.Backup(r.Context(), cw)
	if err != nil {
		log.Warn("admin backup failed", "error", err.Error())
		if cw.n == 0 {
			// Nothing sent yet, so a plain error status still fits.
			w.Header().Del("Trailer")
			writeJSONError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set(BackupErrorTrailer, err.Error())
		return
	}
	w.Header().Set(BackupSizeTrailer, strconv.FormatInt(n, 10))
	log.Info("admin backup written", "bytes", n)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// KeyStore is what Rekey and Status need of the whole database;
// *storage.DB satisfies it.
type KeyStore interface {
	Rekey(ctx context.Context) (storage.RekeyReport, error)
	CheckKeys(ctx context.Context) (storage.KeyReport, error)
	SchemaVersion(ctx context.Context) (uint64, error)
}

// AuditAppender takes Rekey's audit entries; *storage.AuditStore satisfies
// it.
type AuditAppender interface {
	Append(ctx context.Context, e storage.AuditEntry) (storage.AuditEntry, error)
}

// LinkCounter counts the links for Status; *storage.LinkStore satisfies it.
type LinkCounter interface {
	Count(ctx context.Context) (int, error)
}

// Database is what the admin socket does with the whole database;
// *storage.DB satisfies it.
type Database interface {
	KeyStore
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Rekey reseals every stored token under the first configured key (see
// storage.DB.Rekey). Audited in audit, since it rewrites every token.
func Rekey(ctx context.Context, s KeyStore, audit AuditAppender) (storage.RekeyReport, error) {
	// Recorded before anything is rewritten, so a rekey that dies half-way
	// is in the log; the outcome follows as its own entry.
	if _, err := audit.Append(ctx, storage.AuditEntry{Action: "rekey", User: "operator", Result: "requested"}); err != nil {
		return storage.RekeyReport{}, fmt.Errorf("the audit log cannot be written, so nothing was resealed: %w", err)
	}
	rep, err := s.Rekey(ctx)
	result, detail := "ok", ""
	if err != nil {
		result = "error: " + err.Error()
	}
	if rep.Failed > 0 {
		detail = fmt.Sprintf("%d values open with no configured key (key ids %s)", rep.Failed, strings.Join(rep.UnknownKeyIDs, ", "))
	}
	_, _ = audit.Append(ctx, storage.AuditEntry{Action: "rekey.finished", User: "operator", Result: result, Detail: detail, Args: map[string]string{
		"resealed":        strconv.Itoa(rep.Resealed),
		"already_primary": strconv.Itoa(rep.AlreadyPrimary),
		"failed":          strconv.Itoa(rep.Failed),
	}})
	return rep, err
}

// AdminStatus is what GET /status on the admin socket answers, for
// `c66bot doctor` while the bot holds the database.
type AdminStatus struct {
	SchemaVersion uint64            `json:"schema_version"`
	Links         int               `json:"links"`
	Keys          storage.KeyReport `json:"keys"`
	// Ready is what /readyz says; NotReady says why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
}

// Status reads the database's side of AdminStatus: schema version, number
// of links, and whether the configured keys open every sealed value.
func Status(ctx context.Context, s KeyStore, links LinkCounter) (AdminStatus, error) {
	var st AdminStatus
	var err error
	if st.SchemaVersion, err = s.SchemaVersion(ctx); err != nil {
		return st, err
	}
	if st.Links, err = links.Count(ctx); err != nil {
		return st, err
	}
	if st.Keys, err = s.CheckKeys(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// API scopes a bearer token may carry.
const (
	ScopeNotify    = "notify"
	ScopeAuditRead = "audit:read"
)

// Scopes lists every API scope, for `c66bot token create`.
func Scopes() []string { return []string{ScopeNotify, ScopeAuditRead} }

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
