package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/c66bot/c66bot/admin"
	"github.com/c66bot/c66bot/storage"
)

// token manages the bearer tokens of the bot's HTTP API:
//
//	c66bot token create --name NAME --scopes notify,audit:read   prints the token alone on one line
//	c66bot token list
//	c66bot token revoke NAME
//
// Like audit, it works on PostgreSQL when C66BOT_DATABASE_URL is set, and
// otherwise on the database file when the bot is stopped and through the
// running bot's admin socket while it runs. Create and revoke are audited
// in the transaction that makes the change.
func token(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: c66bot token create --name NAME --scopes "+strings.Join(admin.Scopes(), ",")+" | list | revoke NAME")
		return 2
	}
	verb, args := args[0], args[1:]
	if verb != "create" && verb != "list" && verb != "revoke" {
		fmt.Fprintf(stderr, "c66bot token: unknown verb %q (create, list, revoke)\n", verb)
		return 2
	}
	var name, scopes string
	v, rest, err := parseSettingsArgs("token "+verb, args, getenv, stderr, func(fs *flag.FlagSet) {
		if verb == "create" {
			fs.StringVar(&name, "name", "", "a name for the token (what uses it), e.g. ci")
			fs.StringVar(&scopes, "scopes", "", "comma separated: "+strings.Join(admin.Scopes(), ", "))
		}
	})
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot token %s: %v\n", verb, err)
		return 2
	}
	db := databaseOf(v)
	// Only create may make a new database (a token made before the bot's
	// first start); list and revoke read or change one that exists, so a
	// mistyped --db is told so instead of getting an empty new file.
	do := func(a access, local func(s opsDB) error, remote func(c *adminClient) error) error {
		err := db.with(ctx, "token "+verb, a, local)
		if errors.Is(err, storage.ErrLocked) {
			return remote(newAdminClient(db.path + ".sock"))
		}
		return err
	}
	switch verb {
	case "create":
		if len(rest) > 0 || name == "" || scopes == "" {
			fmt.Fprintln(stderr, "usage: c66bot token create --name NAME --scopes "+strings.Join(admin.Scopes(), ","))
			return 2
		}
		list := strings.Split(scopes, ",")
		var tok string
		err = do(access{create: true}, func(s opsDB) error {
			tok, err = admin.CreateToken(ctx, s.tokens, name, list)
			return err
		}, func(c *adminClient) error {
			var out struct{ Token string }
			body, _ := json.Marshal(map[string]any{"name": name, "scopes": list})
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
		if len(rest) > 0 {
			fmt.Fprintln(stderr, "usage: c66bot token list")
			return 2
		}
		err = do(access{readOnly: true}, func(s opsDB) error { return admin.WriteTokens(ctx, s.tokens, stdout) },
			func(c *adminClient) error { return c.copy(ctx, "/tokens", stdout) })
	case "revoke":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "usage: c66bot token revoke NAME")
			return 2
		}
		n := rest[0]
		err = do(access{}, func(s opsDB) error { _, err := admin.RevokeToken(ctx, s.tokens, n); return err },
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
	}
	if err != nil {
		fmt.Fprintf(stderr, "c66bot token %s: %s\n", verb, db.explain(err))
		return 1
	}
	return 0
}

func throwawayKey() []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return key
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
