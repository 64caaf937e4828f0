package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/c66bot/c66bot/storage/postgres"
)

func TestCleanError(t *testing.T) {
	t.Parallel()
	path := "/var/lib/c66bot/c66bot.db"
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("open database %s: storage: open %s: %w", path, path, &fs.PathError{Op: "open", Path: path, Err: syscall.EIO}),
			"open database " + path + ": input/output error"},
		{fmt.Errorf("storage: open %s: storage: database schema v9 is newer than this c66bot (v4); upgrade c66bot", path),
			"open " + path + ": database schema v9 is newer than this c66bot (v4); upgrade c66bot"},
		{errors.New("notify: deliver: slack: not_in_channel"), "deliver: slack: not_in_channel"},
		{errors.New("postgres: open db:5432/c66bot: ping"), "open db:5432/c66bot: ping"},
		{errors.New("two\nlines"), "two lines"},
		{errors.New("c66bot: is not a prefix"), "c66bot: is not a prefix"},
	}
	for _, tc := range tests {
		if got := cleanError(tc.err); got != tc.want {
			t.Errorf("cleanError(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// pgError is what the driver's server errors look like from here.
type pgError struct{ code, msg string }

func (e *pgError) Error() string    { return e.msg + " (SQLSTATE " + e.code + ")" }
func (e *pgError) SQLState() string { return e.code }

// Each PostgreSQL error reads as one line that says what to check, with
// no package prefix and never the password.
func TestExplainPostgres(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-pw"
	raw := "postgres://c66bot:" + pw + "@db.example.com/shop?sslmode=require"
	connect := func(err error) error {
		return fmt.Errorf("postgres: open db.example.com:5432/shop: failed to connect to `user=c66bot database=shop`: %w", err)
	}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"wrong password", connect(&pgError{"28P01", `FATAL: password authentication failed for user "c66bot"`}),
			[]string{"db.example.com:5432 refused the password of user c66bot", "check the password in C66BOT_DATABASE_URL"}},
		{"no entry", connect(&pgError{"28000", `FATAL: no pg_hba.conf entry`}),
			[]string{"refused user c66bot", "check the user name in C66BOT_DATABASE_URL", "pg_hba.conf"}},
		{"no database", connect(&pgError{"3D000", `FATAL: database "shop" does not exist`}),
			[]string{"db.example.com:5432 has no database shop", "check the database name in C66BOT_DATABASE_URL"}},
		{"refused", connect(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}),
			[]string{"nothing accepts connections at db.example.com:5432", "check the host and port in C66BOT_DATABASE_URL"}},
		{"no such host", connect(&net.DNSError{Err: "no such host", Name: "db.example.com", IsNotFound: true}),
			[]string{"(db.example.com:5432) does not resolve", "check the host name"}},
		{"no answer", connect(context.DeadlineExceeded), []string{"did not answer in time", "check the host and port"}},
		{"no TLS", connect(errors.New("tls error: server refused TLS connection")), []string{"does not offer TLS", "sslmode"}},
		{"no schema", fmt.Errorf("postgres: open x: %w", &postgres.SchemaError{Database: 0, Build: 2}), []string{"holds no c66bot tables yet", "c66bot serve creates them"}},
		{"an older schema", fmt.Errorf("postgres: open x: %w", &postgres.SchemaError{Database: 1, Build: 2}), []string{"schema v1, older than this c66bot's (v2)", "operator commands do not migrate it"}},
		{"a newer schema", fmt.Errorf("postgres: open x: %w", &postgres.SchemaError{Database: 3, Build: 2}), []string{"schema v3, newer than this c66bot (v2)", "this build is older than the database"}},
		{"anything else", errors.New("postgres: open db.example.com:5432/shop: the server said " + pw), []string{"open db.example.com:5432/shop: the server said xxxxx"}},
	}
	for _, tc := range tests {
		got := explainPostgres(tc.err, raw, "C66BOT_DATABASE_URL")
		if strings.Contains(got, pw) || strings.Contains(got, "postgres: ") || strings.Contains(got, "\n") {
			t.Errorf("%s: %q holds the password, a package prefix or a line break", tc.name, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
	}
}
