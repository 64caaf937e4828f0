package main

import (
	"context"
	"crypto/rand"
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

// audit prints the audit log as JSON lines: from the database when the bot
// is stopped, or from the running bot over its admin socket (bbolt lets only
// one process open the file).
func audit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	since := fs.Duration("since", 0, "only entries from this long ago (e.g. 24h); 0 = all")
	stack := fs.String("stack", "", "only entries of this stack (name or uid)")
	db := fs.String("db", "", "bbolt database file [C66BOT_DB] (default c66bot.db)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "c66bot audit: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	path := dbPath(*db, getenv)
	var from time.Time
	if *since > 0 {
		from = time.Now().Add(-*since)
	}
	err := withReadOnlyStore(path, func(s *storage.DB) error { return admin.WriteAudit(ctx, s.Audit(), stdout, from, *stack) })
	if errors.Is(err, storage.ErrLocked) {
		q := url.Values{}
		if !from.IsZero() {
			q.Set("since", from.UTC().Format(time.RFC3339Nano))
		}
		if *stack != "" {
			q.Set("stack", *stack)
		}
		err = newAdminClient(path+".sock").copy(ctx, "/audit?"+q.Encode(), stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot audit: %s\n", explainOperatorError(err, path))
		return 1
	}
	return 0
}

func withReadOnlyStore(path string, fn func(s *storage.DB) error) error {
	s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{throwawayKey()}, ReadOnly: true, Timeout: 300 * time.Millisecond})
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func throwawayKey() []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return key
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
