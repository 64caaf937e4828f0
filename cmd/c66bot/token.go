package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/storage"
)

// token manages the bearer tokens of the bot's HTTP API:
//
//	c66bot token create --name NAME --scopes notify,audit:read   prints the token alone on one line
//	c66bot token list
//	c66bot token revoke NAME
//
// Like audit, it works on the database file when the bot is stopped and
// through the running bot's admin socket otherwise.
func token(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: c66bot token create --name NAME --scopes "+strings.Join(admin.Scopes(), ",")+" | list | revoke NAME")
		return 2
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("token "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "bbolt database file [C66BOT_DB] (default c66bot.db)")
	var name, scopes *string
	if verb == "create" {
		name = fs.String("name", "", "a name for the token (what uses it), e.g. ci")
		scopes = fs.String("scopes", "", "comma separated: "+strings.Join(admin.Scopes(), ", "))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	path := dbPath(*db, getenv)
	// Only create may make a new database (a token made before the bot's
	// first start); list and revoke read or change one that exists, so a
	// mistyped --db is told so instead of getting an empty new file.
	if verb != "create" && !fileExists(path) {
		fmt.Fprintf(stderr, "c66bot token %s: there is no database at %s; point --db or C66BOT_DB at the bot's database\n", verb, path)
		return 1
	}
	do := func(open func(string, func(*storage.DB) error) error, local func(s *storage.DB) error, remote func(c *adminClient) error) error {
		err := open(path, local)
		if errors.Is(err, storage.ErrLocked) {
			return remote(newAdminClient(path + ".sock"))
		}
		return err
	}
	var err error
	switch verb {
	case "create":
		if fs.NArg() > 0 || *name == "" || *scopes == "" {
			fmt.Fprintln(stderr, "usage: c66bot token create --name NAME --scopes "+strings.Join(admin.Scopes(), ","))
			return 2
		}
		list := strings.Split(*scopes, ",")
		var tok string
		err = do(withStore, func(s *storage.DB) error {
			tok, err = admin.CreateToken(ctx, s.APITokens(), *name, list)
			return err
		}, func(c *adminClient) error {
			var out struct{ Token string }
			body, _ := json.Marshal(map[string]any{"name": *name, "scopes": list})
			if err := c.call(ctx, http.MethodPost, "/tokens", body, &out); err != nil {
				return err
			}
			tok = out.Token
			return nil
		})
		if err == nil {
			// Alone on stdout, so scripts can capture it; shown once.
			fmt.Fprintln(stdout, tok)
			fmt.Fprintln(stderr, "c66bot: keep this token safe: it is shown once and stored only as a hash.")
		}
	case "list":
		err = do(withReadOnlyStore, func(s *storage.DB) error { return admin.WriteTokens(ctx, s.APITokens(), stdout) },
			func(c *adminClient) error { return c.copy(ctx, "/tokens", stdout) })
	case "revoke":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: c66bot token revoke NAME")
			return 2
		}
		n := fs.Arg(0)
		err = do(withStore, func(s *storage.DB) error { _, err := admin.RevokeToken(ctx, s.APITokens(), n); return err },
			func(c *adminClient) error {
				return c.call(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(n), nil, nil)
			})
		var ae *adminError
		if errors.Is(err, storage.ErrNotFound) || (errors.As(err, &ae) && ae.status == http.StatusNotFound) {
			err = fmt.Errorf("there is no token named %q; c66bot token list names them", n)
		}
		if err == nil {
			fmt.Fprintf(stderr, "c66bot: token %q revoked\n", n)
		}
	default:
		fmt.Fprintf(stderr, "c66bot token: unknown verb %q (create, list, revoke)\n", verb)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot token %s: %s\n", verb, explainOperatorError(err, path))
		return 1
	}
	return 0
}

func dbPath(flagVal string, getenv func(string) string) string {
	if flagVal != "" {
		return flagVal
	}
	if p := getenv("C66BOT_DB"); p != "" {
		return p
	}
	return "c66bot.db"
}

// withStore opens the database for an operator command. Tokens and the
// audit log are not sealed, so a throwaway key opens the file for them;
// the real key is not needed on an operator's shell.
func withStore(path string, fn func(s *storage.DB) error) error {
	s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{throwawayKey()}, Timeout: 300 * time.Millisecond, SkipKeyCheck: true})
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// adminError is the running bot's refusal of an admin request.
type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string {
	return fmt.Sprintf("the running bot answered %d: %s", e.status, e.msg)
}

// explainOperatorError is an operator command's error about the database at
// path as one line with the fix: doctor's style, as serve's.
func explainOperatorError(err error, path string) string {
	switch {
	case errors.Is(err, fs.ErrNotExist) && !fileExists(path):
		return fmt.Sprintf("there is no database at %s; point --db or C66BOT_DB at the bot's database", path)
	case errors.Is(err, storage.ErrNotDatabase):
		return fmt.Sprintf("%s is not a c66bot database, or it is damaged; point --db or C66BOT_DB at the bot's database", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("cannot open the database %s: permission denied; run this as the bot's user", path)
	}
	return cleanError(err)
}

// adminClient talks to the running bot's admin socket.
type adminClient struct {
	sock string
	http *http.Client
}

func (c *adminClient) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://c66bot"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the database is in use and the running bot's admin socket %s did not answer: %w", c.sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&e)
		return &adminError{status: resp.StatusCode, msg: e.Error}
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (c *adminClient) copy(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://c66bot"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the database is in use and the running bot's admin socket %s did not answer: %w", c.sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("the running bot answered %d: %s", resp.StatusCode, b)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
