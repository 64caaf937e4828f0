package bot

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// serveAdmin answers local operator commands (`c66bot audit` while the bot
// runs) on a Unix socket beside the database. bbolt lets one process hold
// the file, so the running bot answers for it. The socket is mode 0600:
// only the user who runs the bot, who can read the database anyway, may ask.
func (b *Bot) serveAdmin(ctx context.Context) error {
	path := b.cfg.AdminSocket
	// We hold the database lock, so no other c66bot serves this socket: a
	// file left there is from a process that died.
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.log.Warn("admin socket unavailable; `c66bot audit` works only while the bot is stopped", "path", path, "error", err.Error())
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		b.log.Warn("admin socket: chmod failed; closing it", "error", err.Error())
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
		if err := WriteAudit(r.Context(), b.store, w, since, q.Get("stack")); err != nil {
			b.log.Warn("admin audit failed", "error", err.Error())
		}
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

// AuditSource is what WriteAudit reads.
type AuditSource interface {
	ScanAudit(ctx context.Context, since time.Time, fn func(storage.AuditEntry) error) error
}

// WriteAudit writes audit entries as JSON lines, oldest first, keeping those
// at or after since and, when stack is set, those of that stack (by name,
// case-insensitive, or uid).
func WriteAudit(ctx context.Context, src AuditSource, w interface{ Write([]byte) (int, error) }, since time.Time, stack string) error {
	enc := json.NewEncoder(w)
	return src.ScanAudit(ctx, since, func(e storage.AuditEntry) error {
		if stack != "" && !strings.EqualFold(e.StackName, stack) && e.StackUID != stack {
			return nil
		}
		return enc.Encode(e)
	})
}
