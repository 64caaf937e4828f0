package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// Replicas starting at once on an empty database: every one migrates, and
// each migration runs once (the second would fail, or insert a second
// row).
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ms, err := readMigrations(fstest.MapFS{
		"migrations/001_ran.sql":   {Data: []byte(`CREATE TABLE ran (n integer); INSERT INTO ran VALUES (1);`)},
		"migrations/002_again.sql": {Data: []byte(`INSERT INTO ran VALUES (2);`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	const replicas = 8
	var wg sync.WaitGroup
	versions := make([]int, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		pool := testPool(t, url)
		wg.Go(func() { versions[i], errs[i] = migrate(context.Background(), pool, ms) })
	}
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil || versions[i] != 2 {
			t.Errorf("replica %d: migrate = v%d, %v; want v2", i, versions[i], errs[i])
		}
	}
	pool := testPool(t, url)
	var runs, rows int
	if err := pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM ran), (SELECT count(*) FROM schema_migrations)`).Scan(&runs, &rows); err != nil {
		t.Fatal(err)
	}
	if runs != 2 || rows != 2 {
		t.Errorf("the migrations ran %d times and %d are recorded; want each once", runs, rows)
	}

	// A later build's migration is applied on top, once.
	ms = append(ms, migration{version: 3, name: "more", sql: `INSERT INTO ran VALUES (3)`})
	if v, err := migrate(t.Context(), pool, ms); err != nil || v != 3 {
		t.Fatalf("migrate with a third migration = v%d, %v", v, err)
	}
	// And this build refuses what the later one left.
	if _, err := migrate(t.Context(), pool, ms[:2]); err == nil || !strings.Contains(err.Error(), "newer than this c66bot") {
		t.Errorf("migrate of a newer schema = %v, want a refusal", err)
	}
}

func TestReadMigrations(t *testing.T) {
	t.Parallel()
	ms, err := readMigrations(migrationFiles)
	if err != nil || len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("the embedded migrations = %v, %v", ms, err)
	}
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
	}{
		{"gap", fstest.MapFS{"migrations/001_a.sql": {}, "migrations/003_c.sql": {}}},
		{"unnumbered", fstest.MapFS{"migrations/first.sql": {}}},
		{"zero", fstest.MapFS{"migrations/000_a.sql": {}}},
	} {
		if _, err := readMigrations(tc.files); err == nil {
			t.Errorf("%s: readMigrations succeeded", tc.name)
		}
	}
}

func testPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
