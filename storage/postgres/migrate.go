package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles are the schema's migrations, NNN_name.sql, applied in
// number order. Never edit or renumber a released one: databases in the
// field have run it. Add the next number, and update doc.go's schema.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the first half of the advisory lock that migrations
// run under; the second is the hash of the schema, so c66bot databases in
// different schemas of one PostgreSQL database migrate independently.
const migrationLockKey = 0x6336 // "c6"

// migration is one numbered file.
type migration struct {
	version int
	name    string
	sql     string
}

// readMigrations returns the migrations in fsys's migrations directory,
// numbered 1, 2, … without gaps.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, rest, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s is not named NNN_name.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(rest, ".sql"), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations are not numbered 1, 2, …: %d is number %d", m.version, i+1)
		}
	}
	return ms, nil
}

// migrate brings the schema up to date in one transaction, under a
// transaction-level advisory lock, so of several replicas starting at once
// one applies each migration and the others wait for it and find nothing
// to do. A database at a version higher than ms knows was migrated by a
// newer c66bot and is refused: this one could misread what it wrote.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) (version int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, migrationLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
			return err
		}
		if version > len(ms) {
			return &SchemaError{Database: version, Build: len(ms)}
		}
		for _, m := range ms[version:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration to schema v%d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
			version = m.version
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return version, nil
}

// SchemaError is Open's refusal of a schema this build cannot use as it
// stands: a newer one, always (this build could misread what a newer one
// wrote), and with Options.NoMigrate an older one, or none.
type SchemaError struct {
	// Database is the database's schema version, 0 when it holds no
	// c66bot schema; Build is this c66bot's.
	Database, Build int
}

func (e *SchemaError) Error() string {
	switch {
	case e.Database > e.Build:
		return fmt.Sprintf("database schema v%d is newer than this c66bot (v%d); upgrade c66bot", e.Database, e.Build)
	case e.Database == 0:
		return fmt.Sprintf("the database holds no c66bot schema yet (this c66bot's is v%d); c66bot serve creates it on its first start", e.Build)
	}
	return fmt.Sprintf("database schema v%d is older than this c66bot's (v%d); c66bot serve migrates it on start", e.Database, e.Build)
}

// checkSchema is migrate's check without its changes, for
// Options.NoMigrate: it refuses with a *SchemaError any schema but build.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, build int) error {
	// A query naming a table that does not exist fails as a whole, so
	// whether there is one is asked first.
	var version int
	var exists bool
	err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists)
	if err == nil && exists {
		err = pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version)
	}
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if version != build {
		return &SchemaError{Database: version, Build: build}
	}
	return nil
}

// SchemaVersion returns the number of migrations applied to the database.
func (d *DB) SchemaVersion(ctx context.Context) (uint64, error) {
	var v int64
	err := d.view(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return uint64(v), nil
}
