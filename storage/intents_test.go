package storage

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/c66bot/c66bot/internal/fakeclock"
)

// TestIntentMovedUnderAnotherKey plays an attacker with write access to the
// file who copies a victim's intent over their own, hoping their button then
// runs the victim's deploy.
func TestIntentMovedUnderAnotherKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	victim := mustCreateIntent(t, s, testIntent(Identity{"T1", "UVICTIM"}, "victim"))
	attacker := mustCreateIntent(t, s, testIntent(Identity{"T1", "UATTACKER"}, "attacker"))
	vKey, _ := intentKey(victim.ID)
	aKey, _ := intentKey(attacker.ID)
	rawPut(t, s, bucketIntents, aKey, rawGet(t, s, bucketIntents, vKey))

	if _, err := s.Intents().Get(ctx, attacker.ID); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrSealed) {
		t.Errorf("GetIntent of a moved value = %v, want ErrNotFound wrapping ErrSealed", err)
	}
	if _, err := s.Intents().Consume(ctx, attacker.ID, nil); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrSealed) {
		t.Errorf("ConsumeIntent of a moved value = %v, want ErrNotFound wrapping ErrSealed", err)
	}
	if got, err := s.Intents().Consume(ctx, victim.ID, nil); err != nil || got.Requester != victim.Requester {
		t.Errorf("victim's own intent = %+v, %v", got, err)
	}
}

func TestIntentSecretsNeverReachTheFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	in := testIntent(Identity{"T0SECRET", "U0SECRET"}, "x")
	in.ResponseURL = "https://hooks.slack.com/actions/T0SECRET/c66-secret-intent-response-url"
	pending := mustCreateIntent(t, s, in)
	in.ResponseURL = "https://hooks.slack.com/actions/T0SECRET/c66-secret-consumed-response-url"
	consumed := mustCreateIntent(t, s, in)
	if _, err := s.Intents().Consume(ctx, consumed.ID, nil); err != nil {
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
		"response_url":          pending.ResponseURL,
		"consumed response_url": consumed.ResponseURL,
		"any marked secret":     "c66-secret",
		"raw intent id":         pending.ID,
		"consumed intent id":    consumed.ID,
		"stack uid":             pending.StackUID,
	} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("database file contains the %s", name)
		}
	}
}

func TestSweepExpiredIntents(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := fakeclock.New()
	s := mustOpenWith(t, Options{Now: clock.Now})
	id := Identity{"T1", "U1"}

	old := mustCreateIntent(t, s, testIntent(id, "old"))
	short := testIntent(id, "short")
	short.ExpiresAt = clock.Now().Add(time.Minute)
	shortIn := mustCreateIntent(t, s, short)
	if n, err := s.SweepExpired(ctx); err != nil || n != 0 {
		t.Fatalf("SweepExpired with nothing expired = %d, %v; want 0", n, err)
	}

	clock.Advance(IntentTTL)
	fresh := mustCreateIntent(t, s, testIntent(id, "fresh"))
	if n, err := s.SweepExpired(ctx); err != nil || n != 2 {
		t.Errorf("SweepExpired = %d, %v; want 2", n, err)
	}
	for _, in := range []Intent{old, shortIn} {
		if _, err := s.Intents().Get(ctx, in.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("swept intent %s = %v, want ErrNotFound", in.Channel, err)
		}
	}
	if _, err := s.Intents().Get(ctx, fresh.ID); err != nil {
		t.Errorf("fresh intent after the sweep: %v", err)
	}
}

func TestSweepDropsIntentsItCannotOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	in := mustCreateIntent(t, s, testIntent(Identity{"T1", "U1"}, "retired"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The key that sealed it is retired: the intent is as good as gone.
	s = mustOpenWith(t, Options{Path: s.Path(), Keys: [][]byte{testKey("B")}})
	if _, err := s.Intents().Get(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIntent under a retired key = %v, want ErrNotFound", err)
	}
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1", n, err)
	}
}
