package storage

import (
	"errors"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
)

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

	_, err := s.Logins().Consume(ctx, attacker)
	if !errors.Is(err, ErrStateInvalid) || !errors.Is(err, ErrSealed) {
		t.Errorf("moved state = %v, want ErrStateInvalid wrapping ErrSealed", err)
	}
	if p, err := s.Logins().Consume(ctx, victim); err != nil || p.Identity != victimID {
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

	if p, err := s.Logins().ConsumeFor(ctx, attacker); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("ConsumePendingLoginFor(attacker) = %+v, %v; want ErrStateInvalid", p, err)
	}
}

func TestSweepExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
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
	if _, err := s.Logins().Consume(ctx, stateA); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("swept state = %v, want ErrStateInvalid", err)
	}
	if _, err := s.Logins().ConsumeFor(ctx, b); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("swept login by identity = %v, want ErrStateInvalid", err)
	}
	if got := rawGet(t, s, bucketLoginByIdentity, b.Key()); got != nil {
		t.Error("identity index entry survived the sweep")
	}
	// The unexpired ones survive.
	if _, err := s.Logins().Consume(ctx, stateC); err != nil {
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
