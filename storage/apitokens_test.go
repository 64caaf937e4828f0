package storage

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/c66bot/c66bot/internal/fakeclock"
)

// txID is the id of the last committed write transaction, which moves only
// when something was written.
func txID(t *testing.T, s *DB) int {
	t.Helper()
	var id int
	if err := s.bolt.View(func(tx *bbolt.Tx) error {
		id = tx.ID()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// Checking a token writes its LastUsedAt at most once a minute, and
// revoking a revoked token writes nothing, so neither costs a commit and an
// fsync when nothing changes.
func TestAPITokenWritesOnlyWhatChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	s := mustOpenWith(t, Options{Now: clock.Now})
	token, _ := mustCreateAPIToken(t, s, "busy", "notify")
	for i, st := range []struct {
		advance time.Duration
		write   bool
	}{{0, true}, {time.Second, false}, {58 * time.Second, false}, {time.Second, true}, {30 * time.Second, false}} {
		clock.Advance(st.advance)
		before := txID(t, s)
		if _, err := s.APITokens().Check(ctx, token); err != nil {
			t.Fatal(err)
		}
		if wrote := txID(t, s) != before; wrote != st.write {
			t.Errorf("check %d: wrote = %v, want %v", i, wrote, st.write)
		}
	}
	if _, err := s.APITokens().Revoke(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	before := txID(t, s)
	if _, err := s.APITokens().Revoke(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	if txID(t, s) != before {
		t.Error("revoking a revoked token wrote to the file")
	}
}

func TestAPITokenNeverReachesTheFile(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	token, _ := mustCreateAPIToken(t, s, "ci", "notify")
	if _, err := s.APITokens().Check(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"token":               token,
		"token's random part": strings.TrimPrefix(token, apiTokenPrefix),
	} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("database file contains the %s", name)
		}
	}
}
