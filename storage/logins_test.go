package storage

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"
)

var stateFormat = regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)

func testPending(id Identity, tag string) PendingLogin {
	return PendingLogin{
		Identity:    id,
		Channel:     "C-" + tag,
		ResponseURL: "https://hooks.slack.com/commands/" + tag,
		Verifier:    "verifier-" + tag + "-0123456789012345678901234567890123",
		RedirectURL: "https://bot.example.com/oauth/callback",
	}
}

func mustCreateState(t *testing.T, s *Store, p PendingLogin) string {
	t.Helper()
	state, err := s.CreateLoginState(t.Context(), p)
	if err != nil {
		t.Fatalf("CreateLoginState: %v", err)
	}
	return state
}

func TestLoginStateSingleUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	id := Identity{"T1", "U1"}
	want := testPending(id, "one")

	state := mustCreateState(t, s, want)
	if !stateFormat.MatchString(state) {
		t.Errorf("state %q is not >=43 chars of base64url", state)
	}
	if other := mustCreateState(t, s, testPending(Identity{"T1", "U2"}, "two")); other == state {
		t.Error("two states are equal")
	}

	got, err := s.ConsumeLoginState(ctx, state)
	if err != nil {
		t.Fatalf("ConsumeLoginState: %v", err)
	}
	if got.Identity != id || got.Channel != want.Channel || got.ResponseURL != want.ResponseURL ||
		got.Verifier != want.Verifier || got.RedirectURL != want.RedirectURL {
		t.Errorf("ConsumeLoginState = %+v\nwant %+v", got, want)
	}
	if !got.CreatedAt.Equal(clock.Now()) || !got.ExpiresAt.Equal(clock.Now().Add(StateTTL)) {
		t.Errorf("times = %v .. %v, want now .. now+%s", got.CreatedAt, got.ExpiresAt, StateTTL)
	}

	if _, err := s.ConsumeLoginState(ctx, state); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("replayed state = %v, want ErrStateInvalid", err)
	}
	// The identity index went with it.
	if _, err := s.ConsumePendingLoginFor(ctx, id); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("ConsumePendingLoginFor after the state was used = %v, want ErrStateInvalid", err)
	}
}

func TestLoginStateConcurrentConsume(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	state := mustCreateState(t, s, testPending(Identity{"T1", "U1"}, "race"))

	const n = 16
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		successes int
	)
	for range n {
		wg.Go(func() {
			if _, err := s.ConsumeLoginState(t.Context(), state); err == nil {
				mu.Lock()
				successes++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if successes != 1 {
		t.Errorf("%d concurrent consumers succeeded, want exactly 1", successes)
	}
}

func TestLoginStateExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	tests := []struct {
		name    string
		consume func(s *Store, state string, id Identity) (PendingLogin, error)
	}{
		{"by state", func(s *Store, state string, _ Identity) (PendingLogin, error) {
			return s.ConsumeLoginState(ctx, state)
		}},
		{"by identity", func(s *Store, _ string, id Identity) (PendingLogin, error) {
			return s.ConsumePendingLoginFor(ctx, id)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newTestClock()
			s := mustOpenWith(t, Options{Now: clock.Now})
			id := Identity{"T1", "U1"}
			state := mustCreateState(t, s, testPending(id, "late"))

			clock.Advance(11 * time.Minute)
			p, err := tc.consume(s, state, id)
			if !errors.Is(err, ErrStateExpired) {
				t.Fatalf("consume after 11m = %v, want ErrStateExpired", err)
			}
			if p.Identity != id || p.Channel != "C-late" {
				t.Errorf("expired login = %+v, want identity and channel for the reply", p)
			}
			if p.Verifier != "" {
				t.Error("expired login still carries its verifier")
			}
			// Deleted even though it was refused.
			if _, err := s.ConsumeLoginState(ctx, state); !errors.Is(err, ErrStateInvalid) {
				t.Errorf("expired state consumed again = %v, want ErrStateInvalid", err)
			}
			if _, err := s.ConsumePendingLoginFor(ctx, id); !errors.Is(err, ErrStateInvalid) {
				t.Errorf("expired login by identity again = %v, want ErrStateInvalid", err)
			}
		})
	}
}

func TestLoginStateExpiryCanOnlyShrink(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})

	p := testPending(Identity{"T1", "U1"}, "long")
	p.ExpiresAt = clock.Now().Add(24 * time.Hour)
	long := mustCreateState(t, s, p)

	p = testPending(Identity{"T1", "U2"}, "short")
	p.ExpiresAt = clock.Now().Add(time.Minute)
	short := mustCreateState(t, s, p)

	clock.Advance(2 * time.Minute)
	if _, err := s.ConsumeLoginState(ctx, short); !errors.Is(err, ErrStateExpired) {
		t.Errorf("1-minute state after 2 minutes = %v, want ErrStateExpired", err)
	}
	got, err := s.ConsumeLoginState(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(-2 * time.Minute).Add(StateTTL); !got.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want clamped to %v", got.ExpiresAt, want)
	}
}

func TestLoginStateRejectsForgeries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	genuine := mustCreateState(t, s, testPending(Identity{"T1", "U1"}, "genuine"))

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
				if _, err := s.ConsumeLoginState(ctx, tc.state); !errors.Is(err, ErrStateInvalid) {
					t.Errorf("ConsumeLoginState(%q) = %v, want ErrStateInvalid", tc.state, err)
				}
			})
		}
	})
	// None of the forgeries used up the genuine one.
	if _, err := s.ConsumeLoginState(ctx, genuine); err != nil {
		t.Errorf("genuine state after forgeries: %v", err)
	}
}

// TestLoginStateMovedUnderAnotherHash plays an attacker with write access to
// the file who copies a victim's pending login under their own state's hash.
func TestLoginStateMovedUnderAnotherHash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	victimID := Identity{"T1", "UVICTIM"}
	victim := mustCreateState(t, s, testPending(victimID, "victim"))
	attacker := mustCreateState(t, s, testPending(Identity{"T1", "UATTACKER"}, "attacker"))

	vKey, _ := stateKey(victim)
	aKey, _ := stateKey(attacker)
	rawPut(t, s, bucketLoginStates, aKey, rawGet(t, s, bucketLoginStates, vKey))

	_, err := s.ConsumeLoginState(ctx, attacker)
	if !errors.Is(err, ErrStateInvalid) || !errors.Is(err, ErrSealed) {
		t.Errorf("moved state = %v, want ErrStateInvalid wrapping ErrSealed", err)
	}
	if p, err := s.ConsumeLoginState(ctx, victim); err != nil || p.Identity != victimID {
		t.Errorf("victim's own state = %+v, %v", p, err)
	}
}

// TestPendingLoginIndexPointsElsewhere covers a login_by_identity entry
// rewritten to point at another person's flow: the sealed record names its
// owner, so it must not be handed out.
func TestPendingLoginIndexPointsElsewhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	victim := Identity{"T1", "UVICTIM"}
	attacker := Identity{"T1", "UATTACKER"}
	state := mustCreateState(t, s, testPending(victim, "victim"))
	key, _ := stateKey(state)
	rawPut(t, s, bucketLoginByIdentity, attacker.Key(), key)

	if p, err := s.ConsumePendingLoginFor(ctx, attacker); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("ConsumePendingLoginFor(attacker) = %+v, %v; want ErrStateInvalid", p, err)
	}
}

func TestPendingLoginOutOfBand(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	id := Identity{"E1", "W1"}

	first := mustCreateState(t, s, testPending(id, "first"))
	second := mustCreateState(t, s, testPending(id, "second"))
	other := mustCreateState(t, s, testPending(Identity{"E1", "W2"}, "other"))

	// The second login replaced the first.
	if _, err := s.ConsumeLoginState(ctx, first); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("replaced state = %v, want ErrStateInvalid", err)
	}
	p, err := s.ConsumePendingLoginFor(ctx, id)
	if err != nil {
		t.Fatalf("ConsumePendingLoginFor: %v", err)
	}
	if p.Channel != "C-second" || p.Verifier != testPending(id, "second").Verifier {
		t.Errorf("ConsumePendingLoginFor = %+v, want the second login", p)
	}
	// Consumed by identity means the state is spent too.
	if _, err := s.ConsumeLoginState(ctx, second); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("state after consuming by identity = %v, want ErrStateInvalid", err)
	}
	if _, err := s.ConsumePendingLoginFor(ctx, id); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("second ConsumePendingLoginFor = %v, want ErrStateInvalid", err)
	}
	// Other people's logins are untouched.
	if p, err := s.ConsumeLoginState(ctx, other); err != nil || p.Channel != "C-other" {
		t.Errorf("other person's state = %+v, %v", p, err)
	}
	if _, err := s.ConsumePendingLoginFor(ctx, Identity{"E1", "W3"}); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("ConsumePendingLoginFor(no login) = %v, want ErrStateInvalid", err)
	}
	if _, err := s.ConsumePendingLoginFor(ctx, Identity{}); err == nil || errors.Is(err, ErrStateInvalid) {
		t.Errorf("ConsumePendingLoginFor(zero identity) = %v, want a validation error", err)
	}
	if _, err := s.CreateLoginState(ctx, PendingLogin{}); err == nil {
		t.Error("CreateLoginState without an identity succeeded")
	}
}

func TestSweepExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	a, b, c := Identity{"T1", "UA"}, Identity{"T1", "UB"}, Identity{"T1", "UC"}

	stateA := mustCreateState(t, s, testPending(a, "a"))
	mustCreateState(t, s, testPending(b, "b"))
	mustFirstTime(t, s, "evt-short", time.Minute, true)
	mustFirstTime(t, s, "evt-long", time.Hour, true)

	if n, err := s.SweepExpired(ctx); err != nil || n != 0 {
		t.Fatalf("SweepExpired with nothing expired = %d, %v; want 0", n, err)
	}

	clock.Advance(11 * time.Minute)
	stateC := mustCreateState(t, s, testPending(c, "c"))

	n, err := s.SweepExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 { // states a and b, dedup key evt-short
		t.Errorf("SweepExpired = %d, want 3", n)
	}
	if n, err := s.SweepExpired(ctx); err != nil || n != 0 {
		t.Errorf("second SweepExpired = %d, %v; want 0", n, err)
	}

	// Swept states are gone (invalid, no longer merely expired), index included.
	if _, err := s.ConsumeLoginState(ctx, stateA); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("swept state = %v, want ErrStateInvalid", err)
	}
	if _, err := s.ConsumePendingLoginFor(ctx, b); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("swept login by identity = %v, want ErrStateInvalid", err)
	}
	if got := rawGet(t, s, bucketLoginByIdentity, b.Key()); got != nil {
		t.Error("identity index entry survived the sweep")
	}
	// The unexpired ones survive.
	if _, err := s.ConsumeLoginState(ctx, stateC); err != nil {
		t.Errorf("fresh state after sweep: %v", err)
	}
	mustFirstTime(t, s, "evt-long", time.Hour, false)
	mustFirstTime(t, s, "evt-short", time.Minute, true)
}

func TestSweepDropsStatesItCannotOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	mustCreateState(t, s, testPending(Identity{"T1", "U1"}, "retired"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The key that sealed it is retired, so the state can never be used.
	s = mustOpenWith(t, Options{Path: s.Path(), Keys: [][]byte{testKey("B")}})
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1", n, err)
	}
}

func TestPeekLoginStateDoesNotConsume(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	want := testPending(Identity{"T1", "U1"}, "peek")
	state := mustCreateState(t, s, want)

	for range 2 {
		got, err := s.PeekLoginState(ctx, state)
		if err != nil {
			t.Fatalf("PeekLoginState: %v", err)
		}
		if got.Identity != want.Identity || got.Verifier != want.Verifier {
			t.Fatalf("PeekLoginState = %+v", got)
		}
	}
	if _, err := s.ConsumeLoginState(ctx, state); err != nil {
		t.Fatalf("consume after peek: %v", err)
	}
	if _, err := s.PeekLoginState(ctx, state); !errors.Is(err, ErrStateInvalid) {
		t.Fatalf("peek after consume = %v, want ErrStateInvalid", err)
	}
	if _, err := s.PeekLoginState(ctx, "forged"); !errors.Is(err, ErrStateInvalid) {
		t.Fatalf("peek forged = %v", err)
	}
	late := mustCreateState(t, s, testPending(Identity{"T1", "U2"}, "late"))
	clock.Advance(StateTTL + time.Second)
	if p, err := s.PeekLoginState(ctx, late); !errors.Is(err, ErrStateExpired) || p.Verifier != "" {
		t.Fatalf("peek expired = %v (verifier blanked: %v)", err, p.Verifier == "")
	}
}
