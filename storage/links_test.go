package storage

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSecretsNeverReachTheFile is the reason this package exists: after
// saving a link and starting a login, the raw database file must not contain
// the access token, refresh token, PKCE verifier, response_url or the raw
// OAuth state.
func TestSecretsNeverReachTheFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id := Identity{Team: "T0SECRET", User: "U0SECRET"}

	link := Link{
		Identity:     id,
		AccessToken:  "c66-secret-token-access-7f3a9d2e",
		RefreshToken: "c66-secret-token-refresh-51bc08aa",
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(time.Hour),
		Scopes:       []string{"public", "redeploy"},
		Account:      "Acme",
	}
	if err := s.Links().Save(ctx, link); err != nil {
		t.Fatal(err)
	}
	// A second save (a refreshed token) must not leave the first behind in
	// plaintext either.
	link.AccessToken = "c66-secret-token-access-rotated-0c4d"
	if err := s.Links().Save(ctx, link); err != nil {
		t.Fatal(err)
	}
	pending := PendingLogin{
		Identity:    id,
		Channel:     "C0CHAN",
		ResponseURL: "https://hooks.slack.com/commands/T0SECRET/c66-secret-response-url",
		Verifier:    "c66-secret-pkce-verifier-0123456789abcdefghijklmnopq",
		RedirectURL: "https://bot.example.com/oauth/callback",
	}
	state, err := s.Logins().Create(ctx, pending)
	if err != nil {
		t.Fatal(err)
	}
	// And one more flow that is consumed, so freed pages are covered too.
	consumed, err := s.Logins().Create(ctx, PendingLogin{Identity: Identity{Team: "T2", User: "U2"}, Verifier: "c66-secret-pkce-verifier-consumed-zzzzzzzzzzzzzzzz"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Logins().Consume(ctx, consumed); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"access token":            "c66-secret-token-access-7f3a9d2e",
		"rotated access token":    link.AccessToken,
		"refresh token":           link.RefreshToken,
		"PKCE verifier":           pending.Verifier,
		"consumed verifier":       "c66-secret-pkce-verifier-consumed-zzzzzzzzzzzzzzzz",
		"response_url":            pending.ResponseURL,
		"raw state":               state,
		"consumed raw state":      consumed,
		"any marked secret":       "c66-secret",
		"token type in the clear": `"token_type"`,
	}
	for name, secret := range secrets {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("database file contains the %s", name)
		}
	}
	// Sanity: the identity key is stored in the clear, so the scan above
	// really looked at the data pages.
	if !bytes.Contains(raw, id.Key()) {
		t.Error("database file does not contain the identity key; is the scan looking at the right file?")
	}
}

// TestLinkMovedToAnotherIdentity plays an attacker with write access to the
// file who copies their victim's sealed link under their own identity.
func TestLinkMovedToAnotherIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	victim, attacker := Identity{"T1", "UVICTIM"}, Identity{"T1", "UATTACKER"}
	if err := s.Links().Save(ctx, Link{Identity: victim, AccessToken: "c66-secret-token-victim"}); err != nil {
		t.Fatal(err)
	}

	rawPut(t, s, bucketLinks, attacker.Key(), rawGet(t, s, bucketLinks, victim.Key()))

	l, err := s.Links().Get(ctx, attacker)
	if !errors.Is(err, ErrSealed) {
		t.Fatalf("GetLink(attacker) = %+v, %v; want ErrSealed", l, err)
	}
	if l.AccessToken != "" {
		t.Error("a token was returned alongside ErrSealed")
	}
	if _, err := s.Links().Get(ctx, victim); err != nil {
		t.Errorf("victim's own link no longer opens: %v", err)
	}
}

func TestLinkTampered(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	id := Identity{"T1", "U1"}
	tests := []struct {
		name string
		pos  func(n int) int
	}{
		{"version byte", func(int) int { return 0 }},
		{"key id", func(int) int { return 1 }},
		{"nonce", func(int) int { return sealHeaderSize }},
		{"ciphertext", func(int) int { return sealHeaderSize + 12 + 1 }},
		{"tag", func(n int) int { return n - 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustOpen(t)
			if err := s.Links().Save(ctx, Link{Identity: id, AccessToken: "c66-secret-token-tamper"}); err != nil {
				t.Fatal(err)
			}
			v := rawGet(t, s, bucketLinks, id.Key())
			v[tc.pos(len(v))] ^= 0x80
			rawPut(t, s, bucketLinks, id.Key(), v)
			if _, err := s.Links().Get(ctx, id); !errors.Is(err, ErrSealed) {
				t.Errorf("GetLink after flipping the %s = %v, want ErrSealed", tc.name, err)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keyA, keyB := testKey("A"), testKey("B")
	old, fresh := Identity{"T1", "UOLD"}, Identity{"T1", "UNEW"}

	s := mustOpenWith(t, Options{Keys: [][]byte{keyA}})
	path := s.Path()
	if err := s.Links().Save(ctx, Link{Identity: old, AccessToken: "tok-old"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Rotate: B in front, A kept for reading.
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB, keyA}})
	if l, err := s.Links().Get(ctx, old); err != nil || l.AccessToken != "tok-old" {
		t.Fatalf("GetLink after rotation = %+v, %v", l, err)
	}
	if s.sealer.SealedWithPrimary(rawGet(t, s, bucketLinks, old.Key())) {
		t.Error("old link reported as sealed with the new primary key")
	}
	if err := s.Links().Save(ctx, Link{Identity: fresh, AccessToken: "tok-new"}); err != nil {
		t.Fatal(err)
	}
	sealedNew := rawGet(t, s, bucketLinks, fresh.Key())
	if !s.sealer.SealedWithPrimary(sealedNew) {
		t.Error("new link not sealed with the new primary key")
	}
	if id := keyIDOf(keyB); !bytes.Equal(sealedNew[1:sealHeaderSize], id[:]) {
		t.Errorf("new link key id = %x, want B's %x", sealedNew[1:sealHeaderSize], id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Drop A: the new link still opens, the old one does not.
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB}})
	if _, err := s.Links().Get(ctx, fresh); err != nil {
		t.Errorf("new link with B only: %v", err)
	}
	if _, err := s.Links().Get(ctx, old); !errors.Is(err, ErrSealed) {
		t.Errorf("old link with B only = %v, want ErrSealed", err)
	}
}

// Keys that open none of the stored links are the wrong keys (a lost key
// file replaced by a new one, another bot's key): a read-write Open refuses
// them, naming the key ids, instead of running a bot that fails every
// linked person. Read-only opens (doctor) and SkipKeyCheck (operator
// commands that touch no sealed value) still open the file.
func TestOpenRefusesKeysThatOpenNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	for _, u := range []string{"U1", "U2"} {
		if err := s.Links().Save(ctx, Link{Identity: Identity{"T1", u}, AccessToken: "tok"}); err != nil {
			t.Fatal(err)
		}
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	_, err := Open(Options{Path: path, Keys: [][]byte{testKey("B"), testKey("C")}})
	var wk *WrongKeyError
	if !errors.As(err, &wk) || !errors.Is(err, ErrSealed) {
		t.Fatalf("Open with the wrong keys = %v, want a WrongKeyError", err)
	}
	want := WrongKeyError{Path: path, Sealed: 2, SealedWith: []string{KeyID(testKey("A"))}, Configured: []string{KeyID(testKey("B")), KeyID(testKey("C"))}}
	if wk.Path != want.Path || wk.Sealed != want.Sealed || !slices.Equal(wk.SealedWith, want.SealedWith) || !slices.Equal(wk.Configured, want.Configured) {
		t.Errorf("WrongKeyError = %+v, want %+v", *wk, want)
	}
	if !strings.Contains(err.Error(), KeyID(testKey("A"))) {
		t.Errorf("error %q does not name the key id that sealed the values", err)
	}

	for name, opts := range map[string]Options{
		"read-only":      {Path: path, Keys: [][]byte{testKey("B")}, ReadOnly: true},
		"skip key check": {Path: path, Keys: [][]byte{testKey("B")}, SkipKeyCheck: true},
		"right key":      {Path: path, Keys: [][]byte{testKey("A")}},
		"rotation":       {Path: path, Keys: [][]byte{testKey("B"), testKey("A")}},
	} {
		s, err := Open(opts)
		if err != nil {
			t.Errorf("%s: Open = %v", name, err)
			continue
		}
		s.Close()
	}
}

// A link that does not open while others do (sealed with a key since
// dropped from the list) counts as no link, so the person is asked to log in
// again rather than told something broke; logging in replaces it.
func TestUnopenableLinkCountsAsNotLinked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	old, fresh := Identity{"T1", "UOLD"}, Identity{"T1", "UNEW"}
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	path := s.Path()
	if err := s.Links().Save(ctx, Link{Identity: old, AccessToken: "tok-old"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("B"), testKey("A")}})
	if err := s.Links().Save(ctx, Link{Identity: fresh, AccessToken: "tok-new"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("B")}})
	_, err := s.Links().Get(ctx, old)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrSealed) {
		t.Fatalf("GetLink of a link under a dropped key = %v, want ErrNotFound and ErrSealed", err)
	}
	if err := s.Links().Save(ctx, Link{Identity: old, AccessToken: "tok-again"}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Links().Get(ctx, old); err != nil || l.AccessToken != "tok-again" {
		t.Errorf("after logging in again: %+v, %v", l, err)
	}
}
