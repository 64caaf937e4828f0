package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/storage"
)

// audit prints the audit log as JSON lines: from PostgreSQL when
// C66BOT_DATABASE_URL is set; else from the bbolt file when the bot is
// stopped, or from the running bot over its admin socket (bbolt lets only
// one process open the file).
func audit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var (
		since time.Duration
		stack string
	)
	v, err := parseSettingsWith("audit", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.DurationVar(&since, "since", 0, "only entries from this long ago (e.g. 24h); 0 = all")
		fs.StringVar(&stack, "stack", "", "only entries of this stack (name or uid)")
	})
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot audit: %v\n", err)
		return 2
	}
	db := databaseOf(v)
	var from time.Time
	if since > 0 {
		from = time.Now().Add(-since)
	}
	err = db.with(ctx, "audit", access{readOnly: true}, func(s opsDB) error { return admin.WriteAudit(ctx, s.audit, stdout, from, stack) })
	if errors.Is(err, storage.ErrLocked) {
		q := url.Values{}
		if !from.IsZero() {
			q.Set("since", from.UTC().Format(time.RFC3339Nano))
		}
		if stack != "" {
			q.Set("stack", stack)
		}
		err = newAdminClient(db.path+".sock").copy(ctx, "/audit?"+q.Encode(), stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot audit: %s\n", db.explain(err))
		return 1
	}
	return 0
}

func newAdminClient(sock string) *adminClient {
	return &adminClient{sock: sock, http: &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}
