package pgtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// needsPostgres is a PostgreSQL test, run only in the child process of
// TestSkippedTestsAreReportedLoudly.
func TestNeedsPostgres(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "1" {
		return
	}
	pgtest.ServerURL(t)
}

// Without a server, a package's PostgreSQL tests skip, and Main says so on
// stderr (and the terminal) with how to run them; with
// C66BOT_REQUIRE_POSTGRES=1 they fail instead.
func TestSkippedTestsAreReportedLoudly(t *testing.T) {
	for _, c := range []struct {
		name, require string
		fails         bool
		want          string
	}{
		{name: "skipped", want: "1 PostgreSQL test(s) SKIPPED"},
		{name: "required", require: "1", fails: true, want: "C66BOT_REQUIRE_POSTGRES=1 but"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNeedsPostgres$", "-test.v")
			cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", "C66BOT_TEST_DATABASE_URL=", "C66BOT_REQUIRE_POSTGRES="+c.require)
			out, err := cmd.CombinedOutput()
			if (err != nil) != c.fails {
				t.Fatalf("child exited with %v, want failure %v:\n%s", err, c.fails, out)
			}
			if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "export C66BOT_TEST_DATABASE_URL=$(bash .ci/postgres.sh)") {
				t.Errorf("child said:\n%s\nwant %q and how to run them", out, c.want)
			}
		})
	}
}
