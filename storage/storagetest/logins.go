package storagetest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestLogins runs the contract of the LoginStore: single-use, expiring login
// states, one pending login per person, found by state or by identity.
func TestLogins(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"SingleUse", testLoginStateSingleUse},
		{"ConcurrentConsume", testLoginStateConcurrentConsume},
		{"Expired", testLoginStateExpired},
		{"ExpiryCanOnlyShrink", testLoginStateExpiryCanOnlyShrink},
		{"RejectsForgeries", testLoginStateRejectsForgeries},
		{"ConsumeForOutOfBand", testPendingLoginOutOfBand},
		{"PeekDoesNotConsume", testPeekLoginStateDoesNotConsume},
	})
}

var stateFormat = regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)

func testPending(id storage.Identity, tag string) storage.PendingLogin {
	return storage.PendingLogin{
		Identity:    id,
		Channel:     "C-" + tag,
		ResponseURL: "https://hooks.slack.com/commands/" + tag,
		Verifier:    "verifier-" + tag + "-0123456789012345678901234567890123",
		RedirectURL: "https://bot.example.com/oauth/callback",
	}
}

func mustCreateState(t *testing.T, s Stores, p storage.PendingLogin) string {
	t.Helper()
	state, err := s.Logins.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Logins.Create: %v", err)
	}
	return state
}

func testLoginStateSingleUse(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	id := storage.Identity{Team: "T1", User: "U1"}
	want := testPending(id, "one")

	state := mustCreateState(t, s, want)
	if !stateFormat.MatchString(state) {
		t.Errorf("state %q is not >=43 chars of base64url", state)
	}
	if other := mustCreateState(t, s, testPending(storage.Identity{Team: "T1", User: "U2"}, "two")); other == state {
		t.Error("two states are equal")
	}

	got, err := s.Logins.Consume(ctx, state)
	if err != nil {
		t.Fatalf("Logins.Consume: %v", err)
	}
	if got.Identity != id || got.Channel != want.Channel || got.ResponseURL != want.ResponseURL ||
		got.Verifier != want.Verifier || got.RedirectURL != want.RedirectURL {
		t.Errorf("Logins.Consume = %+v\nwant %+v", got, want)
	}
	if !got.CreatedAt.Equal(clock.Now()) || !got.ExpiresAt.Equal(clock.Now().Add(storage.StateTTL)) {
		t.Errorf("times = %v .. %v, want now .. now+%s", got.CreatedAt, got.ExpiresAt, storage.StateTTL)
	}

	if _, err := s.Logins.Consume(ctx, state); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("replayed state = %v, want storage.ErrStateInvalid", err)
	}
	// The identity index went with it.
	if _, err := s.Logins.ConsumeFor(ctx, id); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("Logins.ConsumeFor after the state was used = %v, want storage.ErrStateInvalid", err)
	}
}

func testLoginStateConcurrentConsume(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	state := mustCreateState(t, s, testPending(storage.Identity{Team: "T1", User: "U1"}, "race"))

	successes := winners(t, 16, func(int) (bool, error) {
		_, err := s.Logins.Consume(t.Context(), state)
		return err == nil, nil
	})
	if successes != 1 {
		t.Errorf("%d concurrent consumers succeeded, want exactly 1", successes)
	}
}

func testLoginStateExpired(t *testing.T, open Opener) {
	t.Parallel()
	ctx := t.Context()
	tests := []struct {
		name    string
		consume func(s Stores, state string, id storage.Identity) (storage.PendingLogin, error)
	}{
		{"by state", func(s Stores, state string, _ storage.Identity) (storage.PendingLogin, error) {
			return s.Logins.Consume(ctx, state)
		}},
		{"by identity", func(s Stores, _ string, id storage.Identity) (storage.PendingLogin, error) {
			return s.Logins.ConsumeFor(ctx, id)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := begin(t, open)
			id := storage.Identity{Team: "T1", User: "U1"}
			state := mustCreateState(t, s, testPending(id, "late"))

			clock.Advance(11 * time.Minute)
			p, err := tc.consume(s, state, id)
			if !errors.Is(err, storage.ErrStateExpired) {
				t.Fatalf("consume after 11m = %v, want storage.ErrStateExpired", err)
			}
			if p.Identity != id || p.Channel != "C-late" {
				t.Errorf("expired login = %+v, want identity and channel for the reply", p)
			}
			if p.Verifier != "" {
				t.Error("expired login still carries its verifier")
			}
			// Deleted even though it was refused.
			if _, err := s.Logins.Consume(ctx, state); !errors.Is(err, storage.ErrStateInvalid) {
				t.Errorf("expired state consumed again = %v, want storage.ErrStateInvalid", err)
			}
			if _, err := s.Logins.ConsumeFor(ctx, id); !errors.Is(err, storage.ErrStateInvalid) {
				t.Errorf("expired login by identity again = %v, want storage.ErrStateInvalid", err)
			}
		})
	}
}

func testLoginStateExpiryCanOnlyShrink(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()

	p := testPending(storage.Identity{Team: "T1", User: "U1"}, "long")
	p.ExpiresAt = clock.Now().Add(24 * time.Hour)
	long := mustCreateState(t, s, p)

	p = testPending(storage.Identity{Team: "T1", User: "U2"}, "short")
	p.ExpiresAt = clock.Now().Add(time.Minute)
	short := mustCreateState(t, s, p)

	clock.Advance(2 * time.Minute)
	if _, err := s.Logins.Consume(ctx, short); !errors.Is(err, storage.ErrStateExpired) {
		t.Errorf("1-minute state after 2 minutes = %v, want storage.ErrStateExpired", err)
	}
	got, err := s.Logins.Consume(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(-2 * time.Minute).Add(storage.StateTTL); !got.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want clamped to %v", got.ExpiresAt, want)
	}
}

func testLoginStateRejectsForgeries(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	genuine := mustCreateState(t, s, testPending(storage.Identity{Team: "T1", User: "U1"}, "genuine"))

	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		state string
	}{
		{"random well-formed", base64.RawURLEncoding.EncodeToString(random)},
		{"empty", ""},
		{"short", "abc"},
		{"padded", genuine + "="},
		{"one char longer", genuine + "A"},
		{"standard alphabet", "+" + genuine[1:]},
		{"not base64", "!" + genuine[1:]},
		{"prefix of genuine", genuine[:42]},
	}
	// The group returns only when its parallel subtests are done.
	t.Run("forgeries", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if _, err := s.Logins.Consume(ctx, tc.state); !errors.Is(err, storage.ErrStateInvalid) {
					t.Errorf("Logins.Consume(%q) = %v, want storage.ErrStateInvalid", tc.state, err)
				}
			})
		}
	})
	// None of the forgeries used up the genuine one.
	if _, err := s.Logins.Consume(ctx, genuine); err != nil {
		t.Errorf("genuine state after forgeries: %v", err)
	}
}

func testPendingLoginOutOfBand(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	id := storage.Identity{Team: "E1", User: "W1"}

	first := mustCreateState(t, s, testPending(id, "first"))
	second := mustCreateState(t, s, testPending(id, "second"))
	other := mustCreateState(t, s, testPending(storage.Identity{Team: "E1", User: "W2"}, "other"))

	// The second login replaced the first.
	if _, err := s.Logins.Consume(ctx, first); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("replaced state = %v, want storage.ErrStateInvalid", err)
	}
	p, err := s.Logins.ConsumeFor(ctx, id)
	if err != nil {
		t.Fatalf("Logins.ConsumeFor: %v", err)
	}
	if p.Channel != "C-second" || p.Verifier != testPending(id, "second").Verifier {
		t.Errorf("Logins.ConsumeFor = %+v, want the second login", p)
	}
	// Consumed by identity means the state is spent too.
	if _, err := s.Logins.Consume(ctx, second); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("state after consuming by identity = %v, want storage.ErrStateInvalid", err)
	}
	if _, err := s.Logins.ConsumeFor(ctx, id); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("second Logins.ConsumeFor = %v, want storage.ErrStateInvalid", err)
	}
	// Other people's logins are untouched.
	if p, err := s.Logins.Consume(ctx, other); err != nil || p.Channel != "C-other" {
		t.Errorf("other person's state = %+v, %v", p, err)
	}
	if _, err := s.Logins.ConsumeFor(ctx, storage.Identity{Team: "E1", User: "W3"}); !errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("Logins.ConsumeFor(no login) = %v, want storage.ErrStateInvalid", err)
	}
	if _, err := s.Logins.ConsumeFor(ctx, storage.Identity{}); err == nil || errors.Is(err, storage.ErrStateInvalid) {
		t.Errorf("Logins.ConsumeFor(zero identity) = %v, want a validation error", err)
	}
	if _, err := s.Logins.Create(ctx, storage.PendingLogin{}); err == nil {
		t.Error("Logins.Create without an identity succeeded")
	}
}

func testPeekLoginStateDoesNotConsume(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	want := testPending(storage.Identity{Team: "T1", User: "U1"}, "peek")
	state := mustCreateState(t, s, want)

	for range 2 {
		got, err := s.Logins.Peek(ctx, state)
		if err != nil {
			t.Fatalf("Logins.Peek: %v", err)
		}
		if got.Identity != want.Identity || got.Verifier != want.Verifier {
			t.Fatalf("Logins.Peek = %+v", got)
		}
	}
	if _, err := s.Logins.Consume(ctx, state); err != nil {
		t.Fatalf("consume after peek: %v", err)
	}
	if _, err := s.Logins.Peek(ctx, state); !errors.Is(err, storage.ErrStateInvalid) {
		t.Fatalf("peek after consume = %v, want storage.ErrStateInvalid", err)
	}
	if _, err := s.Logins.Peek(ctx, "forged"); !errors.Is(err, storage.ErrStateInvalid) {
		t.Fatalf("peek forged = %v", err)
	}
	late := mustCreateState(t, s, testPending(storage.Identity{Team: "T1", User: "U2"}, "late"))
	clock.Advance(storage.StateTTL + time.Second)
	if p, err := s.Logins.Peek(ctx, late); !errors.Is(err, storage.ErrStateExpired) || p.Verifier != "" {
		t.Fatalf("peek expired = %v (verifier blanked: %v)", err, p.Verifier == "")
	}
}
