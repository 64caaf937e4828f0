// Package pgtest gives a test a PostgreSQL schema of its own, on the
// server C66BOT_TEST_DATABASE_URL names, so tests against PostgreSQL run
// in parallel without seeing each other's rows. It exists so every
// package that tests against PostgreSQL (storage/postgres, the commands,
// the end-to-end tests) skips, or fails, the same way when there is none.
// Only tests import it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Skipped is what a test says when it cannot run for want of PostgreSQL.
const Skipped = "PostgreSQL tests skipped: C66BOT_TEST_DATABASE_URL is unset; " +
	"run them with: export C66BOT_TEST_DATABASE_URL=$(bash .ci/postgres.sh)"

// ServerURL returns C66BOT_TEST_DATABASE_URL. When it is unset the test is
// skipped, or fails when C66BOT_REQUIRE_POSTGRES=1 (as CI sets), since a
// skipped PostgreSQL test there would hide that nothing was tested.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("C66BOT_TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("C66BOT_REQUIRE_POSTGRES") == "1" {
			t.Fatal("C66BOT_REQUIRE_POSTGRES=1 but " + Skipped)
		}
		skipped.Add(1)
		t.Skip(Skipped)
	}
	return u
}

// skipped counts this test binary's tests skipped for want of PostgreSQL,
// for Main. It is the one piece of package state: a count per process,
// which is what Main reports.
var skipped atomic.Int64

// Main runs a package's tests (call it from TestMain) and, when some were
// skipped for want of PostgreSQL, says so where a person running
// `go test ./...` sees it. go test shows a passing package's output only
// with -v, so the notice goes to the terminal itself (/dev/tty) when there
// is one, and to stderr in any case.
func Main(m *testing.M) {
	code := m.Run()
	if n := skipped.Load(); n > 0 {
		pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
		notice := fmt.Sprintf("\n*** %s: %d PostgreSQL test(s) SKIPPED: C66BOT_TEST_DATABASE_URL is unset.\n"+
			"*** Run them with: export C66BOT_TEST_DATABASE_URL=$(bash .ci/postgres.sh)  (.ci/run does, and fails if they would skip)\n\n", pkg, n)
		fmt.Fprint(os.Stderr, notice)
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			fmt.Fprint(tty, notice)
			tty.Close()
		}
	}
	os.Exit(code)
}

// URL creates a new, empty schema on the server of ServerURL and returns a
// URL whose connections use it (search_path). The schema is dropped when
// the test ends, after the cleanups registered later (closing the
// databases opened on it).
func URL(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	random := make([]byte, 8)
	_, _ = rand.Read(random)
	schema := "test_" + hex.EncodeToString(random)
	exec(t, server, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, server, "DROP SCHEMA "+schema+" CASCADE") })
	return withSearchPath(t, server, schema)
}

// withSearchPath returns u, a URL or a keyword/value connection string,
// with its connections' search_path set to schema.
func withSearchPath(t testing.TB, u, schema string) string {
	t.Helper()
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return u + " search_path=" + schema
	}
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("C66BOT_TEST_DATABASE_URL: %v", err)
	}
	q := p.Query()
	q.Set("search_path", schema)
	p.RawQuery = q.Encode()
	return p.String()
}

// Exec runs sql on the database at u, for a test that arranges what the
// stores cannot (a failing trigger, a row swapped).
func Exec(t testing.TB, u, sql string, args ...any) {
	t.Helper()
	exec(t, u, sql, args...)
}

// Conn connects to the database at u, for a test that looks at the rows
// themselves; it is closed when the test ends.
func Conn(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	conn := connect(t, u)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func connect(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	return conn
}

func exec(t testing.TB, u, sql string, args ...any) {
	t.Helper()
	conn := connect(t, u)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", firstLine(sql), err)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return fmt.Sprintf("%.60s", s)
}
