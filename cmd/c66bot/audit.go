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

	"github.com/c66bot/c66bot/bot"
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
	path := *db
	if path == "" {
		path = getenv("C66BOT_DB")
	}
	if path == "" {
		path = "c66bot.db"
	}
	var from time.Time
	if *since > 0 {
		from = time.Now().Add(-*since)
	}
	err := auditFromFile(ctx, path, from, *stack, stdout)
	if errors.Is(err, storage.ErrLocked) {
		err = auditFromSocket(ctx, path+".sock", from, *stack, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot audit: %v\n", err)
		return 1
	}
	return 0
}

func auditFromFile(ctx context.Context, path string, since time.Time, stack string, w io.Writer) error {
	// The audit log is not sealed, so any key opens the file for reading it;
	// a throwaway one avoids needing the real key on an operator's shell.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{key}, ReadOnly: true, Timeout: 300 * time.Millisecond})
	if err != nil {
		return err
	}
	defer s.Close()
	return bot.WriteAudit(ctx, s, w, since, stack)
}

func auditFromSocket(ctx context.Context, sock string, since time.Time, stack string, w io.Writer) error {
	client := &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if stack != "" {
		q.Set("stack", stack)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://c66bot/audit?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("the database is in use and the running bot's admin socket %s did not answer: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("the running bot answered %d: %s", resp.StatusCode, b)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
