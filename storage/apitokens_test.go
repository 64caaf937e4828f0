package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

var apiTokenFormat = regexp.MustCompile(`^c66bot_[A-Za-z0-9_-]{43,}$`)

func mustCreateAPIToken(t *testing.T, s *Store, name string, scopes ...string) (string, APIToken) {
	t.Helper()
	token, rec, err := s.CreateAPIToken(t.Context(), name, scopes)
	if err != nil {
		t.Fatalf("CreateAPIToken(%q): %v", name, err)
	}
	return token, rec
}

// txID is the id of the last committed write transaction, which moves only
// when something was written.
func txID(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bbolt.Tx) error {
		id = tx.ID()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAPITokenCreateAndCheck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})

	scopes := []string{"notify", "audit:read"}
	token, rec := mustCreateAPIToken(t, s, "ci.deploy-bot_1", scopes...)
	if !apiTokenFormat.MatchString(token) {
		t.Errorf("token %q is not c66bot_ and >=43 chars of base64url", token)
	}
	if rec.Name != "ci.deploy-bot_1" || !slices.Equal(rec.Scopes, scopes) || !rec.CreatedAt.Equal(clock.Now()) ||
		!rec.LastUsedAt.IsZero() || rec.Revoked || !rec.RevokedAt.IsZero() {
		t.Errorf("CreateAPIToken record = %+v", rec)
	}
	scopes[0] = "mutated"
	other, _ := mustCreateAPIToken(t, s, "alerts")
	if other == token {
		t.Fatal("two tokens are equal")
	}

	clock.Advance(time.Second)
	got, err := s.CheckAPIToken(ctx, token)
	if err != nil || got.Name != "ci.deploy-bot_1" || !slices.Equal(got.Scopes, []string{"notify", "audit:read"}) || !got.LastUsedAt.Equal(clock.Now()) {
		t.Errorf("CheckAPIToken = %+v, %v; want the record, used now", got, err)
	}
	if got, err := s.CheckAPIToken(ctx, other); err != nil || got.Name != "alerts" || len(got.Scopes) != 0 {
		t.Errorf("CheckAPIToken(other) = %+v, %v", got, err)
	}

	list, err := s.APITokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, rec := range list {
		names = append(names, rec.Name)
	}
	if !slices.Equal(names, []string{"alerts", "ci.deploy-bot_1"}) {
		t.Errorf("APITokens names = %v, want sorted", names)
	}
	if !list[1].LastUsedAt.Equal(clock.Now()) {
		t.Errorf("listed LastUsedAt = %v, want %v", list[1].LastUsedAt, clock.Now())
	}
}

func TestAPITokenNames(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"ci.deploy-bot_1", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"CI", false},
		{"a b", false},
		{"a/b", false},
		{"a:b", false},
		{"é", false},
		{"tab\t", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token, _, err := s.CreateAPIToken(t.Context(), tc.name, []string{"notify"})
			if tc.ok && err != nil {
				t.Errorf("CreateAPIToken(%q) = %v, want ok", tc.name, err)
			}
			if !tc.ok && (err == nil || token != "") {
				t.Errorf("CreateAPIToken(%q) = %q, %v; want refused", tc.name, token, err)
			}
		})
	}
}

func TestAPITokenNameTaken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	first, _ := mustCreateAPIToken(t, s, "ci", "notify")

	if token, _, err := s.CreateAPIToken(ctx, "ci", []string{"audit:read"}); !errors.Is(err, ErrExists) || token != "" {
		t.Errorf("second CreateAPIToken(ci) = %q, %v; want ErrExists", token, err)
	}
	if _, err := s.RevokeAPIToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	// A revoked token's name stays taken, so audit entries naming it are
	// not ambiguous.
	if _, _, err := s.CreateAPIToken(ctx, "ci", nil); !errors.Is(err, ErrExists) {
		t.Errorf("CreateAPIToken(ci) after revoke = %v, want ErrExists", err)
	}
	if _, err := s.CheckAPIToken(ctx, first); !errors.Is(err, ErrRevoked) {
		t.Errorf("CheckAPIToken(first) = %v, want ErrRevoked (not replaced)", err)
	}
}

func TestAPITokenCheck(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	live, _ := mustCreateAPIToken(t, s, "live", "notify")
	revoked, _ := mustCreateAPIToken(t, s, "revoked", "notify")
	if _, err := s.RevokeAPIToken(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	random := make([]byte, apiTokenSize)
	rand.Read(random)
	unknown := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(random)
	body := strings.TrimPrefix(live, apiTokenPrefix)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"live", live, nil},
		{"revoked", revoked, ErrRevoked},
		{"unknown", unknown, ErrNotFound},
		{"empty", "", ErrNotFound},
		{"no prefix", body, ErrNotFound},
		{"other prefix", "c66bo_" + body, ErrNotFound},
		{"upper-case prefix", "C66BOT_" + body, ErrNotFound},
		{"too long", live + "A", ErrNotFound},
		{"too short", live[:len(live)-1], ErrNotFound},
		{"std base64", apiTokenPrefix + "+" + body[1:], ErrNotFound},
		{"padded", live + "=", ErrNotFound},
		{"bearer scheme left on", "Bearer " + live, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.CheckAPIToken(ctx, tc.token)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("CheckAPIToken = %+v, %v; want %v", got, err, tc.want)
			}
			switch tc.want {
			case nil:
				if got.Name != "live" {
					t.Errorf("Name = %q, want live", got.Name)
				}
			case ErrRevoked:
				if got.Name != "revoked" || !got.Revoked {
					t.Errorf("revoked token returned %+v, want its record", got)
				}
			}
			if err != nil && strings.Contains(err.Error(), tc.token) && tc.token != "" {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
}

func TestAPITokenLastUsedThrottled(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	token, _ := mustCreateAPIToken(t, s, "busy", "notify")
	t0 := clock.Now()

	steps := []struct {
		advance time.Duration
		want    time.Time // LastUsedAt after the check
		write   bool
	}{
		{0, t0, true},                                  // first use is always written
		{time.Second, t0, false},                       // within the minute: read only
		{58 * time.Second, t0, false},                  // 59s
		{time.Second, t0.Add(time.Minute), true},       // 60s: written
		{30 * time.Second, t0.Add(time.Minute), false}, // 90s
		{time.Hour, t0.Add(time.Hour + 90*time.Second), true},
	}
	// Sequential: each step builds on the clock and record before it.
	for i, st := range steps {
		clock.Advance(st.advance)
		before := txID(t, s)
		got, err := s.CheckAPIToken(ctx, token)
		if err != nil {
			t.Fatalf("step %d: CheckAPIToken: %v", i, err)
		}
		if !got.LastUsedAt.Equal(st.want) {
			t.Errorf("step %d: LastUsedAt = %v, want %v", i, got.LastUsedAt, st.want)
		}
		if wrote := txID(t, s) != before; wrote != st.write {
			t.Errorf("step %d: wrote = %v, want %v", i, wrote, st.write)
		}
	}
}

func TestRevokeAPIToken(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	mustCreateAPIToken(t, s, "ci", "notify")

	if _, err := s.RevokeAPIToken(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAPIToken(nope) = %v, want ErrNotFound", err)
	}
	clock.Advance(time.Minute)
	revokedAt := clock.Now()
	got, err := s.RevokeAPIToken(ctx, "ci")
	if err != nil || !got.Revoked || !got.RevokedAt.Equal(revokedAt) || got.Name != "ci" {
		t.Fatalf("RevokeAPIToken = %+v, %v", got, err)
	}
	clock.Advance(time.Minute)
	before := txID(t, s)
	again, err := s.RevokeAPIToken(ctx, "ci")
	if err != nil || !again.Revoked || !again.RevokedAt.Equal(revokedAt) {
		t.Errorf("second RevokeAPIToken = %+v, %v; want no error and the first RevokedAt", again, err)
	}
	if txID(t, s) != before {
		t.Error("second RevokeAPIToken wrote to the file")
	}
	list, err := s.APITokens(ctx)
	if err != nil || len(list) != 1 || !list[0].Revoked {
		t.Errorf("APITokens after revoke = %+v, %v; want the revoked token listed", list, err)
	}
}

func TestAPITokenNeverReachesTheFile(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	token, _ := mustCreateAPIToken(t, s, "ci", "notify")
	if _, err := s.CheckAPIToken(t.Context(), token); err != nil {
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
