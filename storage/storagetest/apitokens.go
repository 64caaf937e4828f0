package storagetest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestAPITokens runs the contract of the APITokenStore: tokens shown once,
// names unique for ever, revocation kept, last use written at most once a
// minute.
func TestAPITokens(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"CreateAndCheck", testAPITokenCreateAndCheck},
		{"Names", testAPITokenNames},
		{"NameTaken", testAPITokenNameTaken},
		{"Check", testAPITokenCheck},
		{"LastUsedThrottled", testAPITokenLastUsedThrottled},
		{"Revoke", testRevokeAPIToken},
	})
}

var apiTokenFormat = regexp.MustCompile(`^c66bot_[A-Za-z0-9_-]{43,}$`)

func mustCreateAPIToken(t *testing.T, s Stores, name string, scopes ...string) (string, storage.APIToken) {
	t.Helper()
	token, rec, err := s.APITokens.Create(t.Context(), name, scopes)
	if err != nil {
		t.Fatalf("APITokens.Create(%q): %v", name, err)
	}
	return token, rec
}

func testAPITokenCreateAndCheck(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()

	scopes := []string{"notify", "audit:read"}
	token, rec := mustCreateAPIToken(t, s, "ci.deploy-bot_1", scopes...)
	if !apiTokenFormat.MatchString(token) {
		t.Errorf("token %q is not c66bot_ and >=43 chars of base64url", token)
	}
	if rec.Name != "ci.deploy-bot_1" || !slices.Equal(rec.Scopes, scopes) || !rec.CreatedAt.Equal(clock.Now()) ||
		!rec.LastUsedAt.IsZero() || rec.Revoked || !rec.RevokedAt.IsZero() {
		t.Errorf("APITokens.Create record = %+v", rec)
	}
	scopes[0] = "mutated"
	other, _ := mustCreateAPIToken(t, s, "alerts")
	if other == token {
		t.Fatal("two tokens are equal")
	}

	clock.Advance(time.Second)
	got, err := s.APITokens.Check(ctx, token)
	if err != nil || got.Name != "ci.deploy-bot_1" || !slices.Equal(got.Scopes, []string{"notify", "audit:read"}) || !got.LastUsedAt.Equal(clock.Now()) {
		t.Errorf("APITokens.Check = %+v, %v; want the record, used now", got, err)
	}
	if got, err := s.APITokens.Check(ctx, other); err != nil || got.Name != "alerts" || len(got.Scopes) != 0 {
		t.Errorf("APITokens.Check(other) = %+v, %v", got, err)
	}

	list, err := s.APITokens.List(ctx)
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

func testAPITokenNames(t *testing.T, open Opener) {
	s, _ := begin(t, open)
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
			token, _, err := s.APITokens.Create(t.Context(), tc.name, []string{"notify"})
			if tc.ok && err != nil {
				t.Errorf("APITokens.Create(%q) = %v, want ok", tc.name, err)
			}
			if !tc.ok && (err == nil || token != "") {
				t.Errorf("APITokens.Create(%q) = %q, %v; want refused", tc.name, token, err)
			}
		})
	}
}

func testAPITokenNameTaken(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	first, _ := mustCreateAPIToken(t, s, "ci", "notify")

	if token, _, err := s.APITokens.Create(ctx, "ci", []string{"audit:read"}); !errors.Is(err, storage.ErrExists) || token != "" {
		t.Errorf("second APITokens.Create(ci) = %q, %v; want storage.ErrExists", token, err)
	}
	if _, err := s.APITokens.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	// A revoked token's name stays taken, so audit entries naming it are
	// not ambiguous.
	if _, _, err := s.APITokens.Create(ctx, "ci", nil); !errors.Is(err, storage.ErrExists) {
		t.Errorf("APITokens.Create(ci) after revoke = %v, want storage.ErrExists", err)
	}
	if _, err := s.APITokens.Check(ctx, first); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("APITokens.Check(first) = %v, want storage.ErrRevoked (not replaced)", err)
	}
}

func testAPITokenCheck(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	live, _ := mustCreateAPIToken(t, s, "live", "notify")
	revoked, _ := mustCreateAPIToken(t, s, "revoked", "notify")
	if _, err := s.APITokens.Revoke(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 32)
	rand.Read(random)
	unknown := "c66bot_" + base64.RawURLEncoding.EncodeToString(random)
	body := strings.TrimPrefix(live, "c66bot_")

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"live", live, nil},
		{"revoked", revoked, storage.ErrRevoked},
		{"unknown", unknown, storage.ErrNotFound},
		{"empty", "", storage.ErrNotFound},
		{"no prefix", body, storage.ErrNotFound},
		{"other prefix", "c66bo_" + body, storage.ErrNotFound},
		{"upper-case prefix", "C66BOT_" + body, storage.ErrNotFound},
		{"too long", live + "A", storage.ErrNotFound},
		{"too short", live[:len(live)-1], storage.ErrNotFound},
		{"std base64", "c66bot_" + "+" + body[1:], storage.ErrNotFound},
		{"padded", live + "=", storage.ErrNotFound},
		{"bearer scheme left on", "Bearer " + live, storage.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.APITokens.Check(ctx, tc.token)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("APITokens.Check = %+v, %v; want %v", got, err, tc.want)
			}
			switch tc.want {
			case nil:
				if got.Name != "live" {
					t.Errorf("Name = %q, want live", got.Name)
				}
			case storage.ErrRevoked:
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

func testAPITokenLastUsedThrottled(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	token, _ := mustCreateAPIToken(t, s, "busy", "notify")
	t0 := clock.Now()

	steps := []struct {
		advance time.Duration
		want    time.Time // LastUsedAt after the check
	}{
		{0, t0},                                 // first use is always recorded
		{time.Second, t0},                       // within the minute: not again
		{58 * time.Second, t0},                  // 59s
		{time.Second, t0.Add(time.Minute)},      // 60s: recorded
		{30 * time.Second, t0.Add(time.Minute)}, // 90s
		{time.Hour, t0.Add(time.Hour + 90*time.Second)},
	}
	// Sequential: each step builds on the clock and record before it.
	for i, st := range steps {
		clock.Advance(st.advance)
		got, err := s.APITokens.Check(ctx, token)
		if err != nil {
			t.Fatalf("step %d: APITokens.Check: %v", i, err)
		}
		if !got.LastUsedAt.Equal(st.want) {
			t.Errorf("step %d: LastUsedAt = %v, want %v", i, got.LastUsedAt, st.want)
		}
		if list, err := s.APITokens.List(ctx); err != nil || len(list) != 1 || !list[0].LastUsedAt.Equal(st.want) {
			t.Errorf("step %d: listed = %+v, %v; want LastUsedAt %v stored", i, list, err, st.want)
		}
	}
}

func testRevokeAPIToken(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	mustCreateAPIToken(t, s, "ci", "notify")

	if _, err := s.APITokens.Revoke(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("APITokens.Revoke(nope) = %v, want storage.ErrNotFound", err)
	}
	clock.Advance(time.Minute)
	revokedAt := clock.Now()
	got, err := s.APITokens.Revoke(ctx, "ci")
	if err != nil || !got.Revoked || !got.RevokedAt.Equal(revokedAt) || got.Name != "ci" {
		t.Fatalf("APITokens.Revoke = %+v, %v", got, err)
	}
	clock.Advance(time.Minute)
	again, err := s.APITokens.Revoke(ctx, "ci")
	if err != nil || !again.Revoked || !again.RevokedAt.Equal(revokedAt) {
		t.Errorf("second APITokens.Revoke = %+v, %v; want no error and the first RevokedAt", again, err)
	}
	list, err := s.APITokens.List(ctx)
	if err != nil || len(list) != 1 || !list[0].Revoked || !list[0].RevokedAt.Equal(revokedAt) {
		t.Errorf("APITokens after revoke = %+v, %v; want the revoked token listed, revoked once", list, err)
	}
}
