package postgres_test

import (
	"testing"

	"github.com/c66bot/c66bot/storage/postgres/pgtest"
)

// TestMain says loudly when the PostgreSQL tests were skipped.
func TestMain(m *testing.M) { pgtest.Main(m) }
