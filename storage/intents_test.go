package storage

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var intentIDFormat = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// errNotYours is what the deploy package's check returns for a click by
// someone other than the requester.
var errNotYours = errors.New("not your button")

func testIntent(requester Identity, tag string) Intent {
	return Intent{
		Kind:        "deploy",
		Requester:   requester,
		Channel:     "C-" + tag,
		ResponseURL: "https://hooks.slack.com/actions/T1/" + tag,
		StackUID:    "stack-" + tag,
		StackName:   "Shop " + tag,
		Environment: "production",
		Params:      map[string]string{"ref": "main", "services": "web"},
	}
}

func mustCreateIntent(t *testing.T, s *Store, in Intent) Intent {
	t.Helper()
	got, err := s.CreateIntent(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateIntent: %v", err)
	}
	return got
}

// onlyBy is a ConsumeIntent check that lets only id confirm.
func onlyBy(id Identity) func(Intent) error {
	return func(in Intent) error {
		if in.Requester != id {
			return errNotYours
		}
		return nil
	}
}

func sameIntent(a, b Intent) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Requester == b.Requester &&
		a.Channel == b.Channel && a.ResponseURL == b.ResponseURL &&
		a.StackUID == b.StackUID && a.StackName == b.StackName && a.Environment == b.Environment &&
		maps.Equal(a.Params, b.Params) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestIntentSingleUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"T1", "UALICE"}

	in := mustCreateIntent(t, s, testIntent(alice, "one"))
	if !intentIDFormat.MatchString(in.ID) {
		t.Errorf("intent id %q is not 22 chars of base64url (128 bits)", in.ID)
	}
	if !in.CreatedAt.Equal(clock.Now()) || !in.ExpiresAt.Equal(clock.Now().Add(IntentTTL)) {
		t.Errorf("times = %v .. %v, want now .. now+%s", in.CreatedAt, in.ExpiresAt, IntentTTL)
	}
	if other := mustCreateIntent(t, s, testIntent(alice, "two")); other.ID == in.ID {
		t.Error("two intents share an id")
	}

	got, err := s.GetIntent(ctx, in.ID)
	if err != nil || !sameIntent(got, in) {
		t.Fatalf("GetIntent = %+v, %v\nwant %+v", got, err, in)
	}
	// Getting does not spend it.
	got, err = s.ConsumeIntent(ctx, in.ID, onlyBy(alice))
	if err != nil || !sameIntent(got, in) {
		t.Fatalf("ConsumeIntent = %+v, %v\nwant %+v", got, err, in)
	}

	// The double click.
	if _, err := s.ConsumeIntent(ctx, in.ID, onlyBy(alice)); !errors.Is(err, ErrNotFound) {
		t.Errorf("second ConsumeIntent = %v, want ErrNotFound", err)
	}
	if _, err := s.GetIntent(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIntent after consume = %v, want ErrNotFound", err)
	}
}

func TestIntentCheckRefusalKeepsIt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	alice, bob := Identity{"T1", "UALICE"}, Identity{"T1", "UBOB"}
	in := mustCreateIntent(t, s, testIntent(alice, "mine"))

	// Bob clicks Alice's button, twice.
	for range 2 {
		got, err := s.ConsumeIntent(ctx, in.ID, onlyBy(bob))
		// == rather than errors.Is: the contract is "returned unwrapped".
		if err != errNotYours {
			t.Fatalf("ConsumeIntent by another user = %v, want errNotYours unwrapped", err)
		}
		if got.Requester != alice {
			t.Errorf("refused ConsumeIntent returned requester %v, want %v for the reply", got.Requester, alice)
		}
	}
	// Alice's button still works.
	if got, err := s.ConsumeIntent(ctx, in.ID, onlyBy(alice)); err != nil || got.ID != in.ID {
		t.Fatalf("ConsumeIntent by the requester = %+v, %v", got, err)
	}
	if _, err := s.ConsumeIntent(ctx, in.ID, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConsumeIntent after use = %v, want ErrNotFound", err)
	}
}

func TestIntentExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"T1", "UALICE"}
	in := mustCreateIntent(t, s, testIntent(alice, "late"))

	clock.Advance(6 * time.Minute)
	got, err := s.GetIntent(ctx, in.ID)
	if !errors.Is(err, ErrIntentExpired) || got.Channel != in.Channel {
		t.Errorf("GetIntent after 6m = %+v, %v; want the intent and ErrIntentExpired", got, err)
	}
	checked := false
	got, err = s.ConsumeIntent(ctx, in.ID, func(Intent) error { checked = true; return nil })
	if !errors.Is(err, ErrIntentExpired) || got.Channel != in.Channel {
		t.Errorf("ConsumeIntent after 6m = %+v, %v; want the intent and ErrIntentExpired", got, err)
	}
	if checked {
		t.Error("check ran for an expired intent")
	}
	// Deleted even though it was refused.
	if _, err := s.GetIntent(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIntent after expired consume = %v, want ErrNotFound", err)
	}
	if _, err := s.ConsumeIntent(ctx, in.ID, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConsumeIntent after expired consume = %v, want ErrNotFound", err)
	}
}

func TestIntentExpiryIsBounded(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	now := clock.Now()
	tests := []struct {
		name  string
		given time.Time
		want  time.Time
	}{
		{"zero means the TTL", time.Time{}, now.Add(IntentTTL)},
		{"earlier is kept", now.Add(time.Minute), now.Add(time.Minute)},
		{"longer for approvals is kept", now.Add(30 * time.Minute), now.Add(30 * time.Minute)},
		{"past the maximum is clamped", now.Add(24 * time.Hour), now.Add(MaxIntentTTL)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testIntent(Identity{"T1", "U1"}, "ttl")
			in.ExpiresAt = tc.given
			got := mustCreateIntent(t, s, in)
			if !got.ExpiresAt.Equal(tc.want) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, tc.want)
			}
			stored, err := s.GetIntent(t.Context(), got.ID)
			if err != nil || !stored.ExpiresAt.Equal(tc.want) {
				t.Errorf("stored ExpiresAt = %v, %v; want %v", stored.ExpiresAt, err, tc.want)
			}
		})
	}
}

func TestIntentConcurrentConsume(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	alice := Identity{"T1", "UALICE"}
	in := mustCreateIntent(t, s, testIntent(alice, "race"))

	const n = 16
	var (
		wg       sync.WaitGroup
		wins     atomic.Int32
		notFound atomic.Int32
	)
	for range n {
		wg.Go(func() {
			_, err := s.ConsumeIntent(t.Context(), in.ID, onlyBy(alice))
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrNotFound):
				notFound.Add(1)
			default:
				t.Errorf("ConsumeIntent: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || notFound.Load() != n-1 {
		t.Errorf("%d consumers won and %d got ErrNotFound, want 1 and %d", wins.Load(), notFound.Load(), n-1)
	}
}

func TestIntentInvalid(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	genuine := mustCreateIntent(t, s, testIntent(Identity{"T1", "U1"}, "genuine"))

	t.Run("create", func(t *testing.T) {
		tests := []struct {
			name string
			in   Intent
		}{
			{"no kind", Intent{Requester: Identity{"T1", "U1"}}},
			{"no requester", Intent{Kind: "deploy"}},
			{"requester without user", Intent{Kind: "deploy", Requester: Identity{Team: "T1"}}},
			{"colon in team", Intent{Kind: "deploy", Requester: Identity{"T:1", "U1"}}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if _, err := s.CreateIntent(ctx, tc.in); err == nil {
					t.Error("CreateIntent succeeded")
				}
			})
		}
	})
	t.Run("ids", func(t *testing.T) {
		for _, id := range []string{"", "abc", genuine.ID + "A", genuine.ID[:21], "!" + genuine.ID[1:], "+" + genuine.ID[1:]} {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				if _, err := s.GetIntent(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("GetIntent(%q) = %v, want ErrNotFound", id, err)
				}
				if _, err := s.ConsumeIntent(ctx, id, nil); !errors.Is(err, ErrNotFound) {
					t.Errorf("ConsumeIntent(%q) = %v, want ErrNotFound", id, err)
				}
			})
		}
	})
	// None of that used up the genuine one.
	if _, err := s.ConsumeIntent(ctx, genuine.ID, nil); err != nil {
		t.Errorf("genuine intent after the forgeries: %v", err)
	}
}

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

	if _, err := s.GetIntent(ctx, attacker.ID); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrSealed) {
		t.Errorf("GetIntent of a moved value = %v, want ErrNotFound wrapping ErrSealed", err)
	}
	if _, err := s.ConsumeIntent(ctx, attacker.ID, nil); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrSealed) {
		t.Errorf("ConsumeIntent of a moved value = %v, want ErrNotFound wrapping ErrSealed", err)
	}
	if got, err := s.ConsumeIntent(ctx, victim.ID, nil); err != nil || got.Requester != victim.Requester {
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
	if _, err := s.ConsumeIntent(ctx, consumed.ID, nil); err != nil {
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
	clock := newTestClock()
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
		if _, err := s.GetIntent(ctx, in.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("swept intent %s = %v, want ErrNotFound", in.Channel, err)
		}
	}
	if _, err := s.GetIntent(ctx, fresh.ID); err != nil {
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
	if _, err := s.GetIntent(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetIntent under a retired key = %v, want ErrNotFound", err)
	}
	if n, err := s.SweepExpired(ctx); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1", n, err)
	}
}

// approve is an UpdateIntent fn that adds user to Params["approved_by"], as
// the deploy package's two-person rule does.
func approve(user string) func(*Intent) error {
	return func(in *Intent) error {
		if in.Params == nil {
			in.Params = map[string]string{}
		}
		if prev := in.Params["approved_by"]; prev != "" {
			user = prev + "," + user
		}
		in.Params["approved_by"] = user
		return nil
	}
}

func TestUpdateIntent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"T1", "UALICE"}
	in := mustCreateIntent(t, s, testIntent(alice, "approve"))

	got, err := s.UpdateIntent(ctx, in.ID, approve("UBOB"))
	if err != nil || got.Params["approved_by"] != "UBOB" {
		t.Fatalf("first UpdateIntent = %+v, %v", got, err)
	}
	got, err = s.UpdateIntent(ctx, in.ID, approve("UCAROL"))
	if err != nil || got.Params["approved_by"] != "UBOB,UCAROL" {
		t.Fatalf("second UpdateIntent = %+v, %v", got, err)
	}
	stored, err := s.GetIntent(ctx, in.ID)
	if err != nil || stored.Params["approved_by"] != "UBOB,UCAROL" || stored.Params["ref"] != "main" || !sameIntent(stored, got) {
		t.Errorf("stored after two updates = %+v, %v", stored, err)
	}

	// fn refusing: its error comes back unwrapped, with the intent as
	// stored, and its partial edits are not saved.
	got, err = s.UpdateIntent(ctx, in.ID, func(in *Intent) error {
		in.Params["approved_by"] = "UMALLORY"
		in.StackName = "changed"
		return errNotYours
	})
	if err != errNotYours {
		t.Errorf("refused UpdateIntent = %v, want errNotYours unwrapped", err)
	}
	if got.Params["approved_by"] != "UBOB,UCAROL" || got.StackName != in.StackName {
		t.Errorf("refused UpdateIntent returned %+v, want the intent as stored", got)
	}
	if stored, _ := s.GetIntent(ctx, in.ID); !sameIntent(stored, got) {
		t.Errorf("refused UpdateIntent saved %+v", stored)
	}

	// Updating does not spend it.
	if _, err := s.ConsumeIntent(ctx, in.ID, onlyBy(alice)); err != nil {
		t.Errorf("ConsumeIntent after updates: %v", err)
	}
	if _, err := s.UpdateIntent(ctx, in.ID, approve("UDAVE")); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateIntent after consume = %v, want ErrNotFound", err)
	}
}

func TestUpdateIntentRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	alice := Identity{"T1", "UALICE"}

	tests := []struct {
		name string
		fn   func(*Intent) error
	}{
		{"requester", func(in *Intent) error { in.Requester = Identity{"T1", "UMALLORY"}; return nil }},
		{"kind", func(in *Intent) error { in.Kind = "unlock"; return nil }},
		{"id", func(in *Intent) error { in.ID = "other"; return nil }},
		{"created", func(in *Intent) error { in.CreatedAt = in.CreatedAt.Add(-time.Hour); return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := mustCreateIntent(t, s, testIntent(alice, tc.name))
			if _, err := s.UpdateIntent(ctx, in.ID, tc.fn); err == nil {
				t.Error("UpdateIntent changing the " + tc.name + " succeeded")
			}
			if stored, err := s.GetIntent(ctx, in.ID); err != nil || !sameIntent(stored, in) {
				t.Errorf("stored = %+v, %v; want unchanged", stored, err)
			}
		})
	}

	t.Run("expiry only shrinks", func(t *testing.T) {
		t.Parallel()
		in := mustCreateIntent(t, s, testIntent(alice, "expiry"))
		got, err := s.UpdateIntent(ctx, in.ID, func(in *Intent) error { in.ExpiresAt = in.ExpiresAt.Add(time.Hour); return nil })
		if err != nil || !got.ExpiresAt.Equal(in.ExpiresAt) {
			t.Errorf("lengthened ExpiresAt = %v, %v; want %v kept", got.ExpiresAt, err, in.ExpiresAt)
		}
		sooner := in.ExpiresAt.Add(-time.Minute)
		got, err = s.UpdateIntent(ctx, in.ID, func(in *Intent) error { in.ExpiresAt = sooner; return nil })
		if err != nil || !got.ExpiresAt.Equal(sooner) {
			t.Errorf("shortened ExpiresAt = %v, %v; want %v", got.ExpiresAt, err, sooner)
		}
	})

	t.Run("ids", func(t *testing.T) {
		t.Parallel()
		unknown := mustCreateIntent(t, s, testIntent(alice, "unknown"))
		if _, err := s.ConsumeIntent(ctx, unknown.ID, nil); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"", "abc", unknown.ID, unknown.ID + "A"} {
			ran := false
			if _, err := s.UpdateIntent(ctx, id, func(*Intent) error { ran = true; return nil }); !errors.Is(err, ErrNotFound) || ran {
				t.Errorf("UpdateIntent(%q) = %v (fn ran: %v), want ErrNotFound", id, err, ran)
			}
		}
	})
}

func TestUpdateIntentExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := newTestClock()
	s := mustOpenWith(t, Options{Now: clock.Now})
	in := mustCreateIntent(t, s, testIntent(Identity{"T1", "UALICE"}, "late"))

	clock.Advance(IntentTTL)
	ran := false
	got, err := s.UpdateIntent(ctx, in.ID, func(*Intent) error { ran = true; return nil })
	if !errors.Is(err, ErrIntentExpired) || got.ID != in.ID || got.Channel != in.Channel {
		t.Errorf("UpdateIntent after expiry = %+v, %v; want the intent and ErrIntentExpired", got, err)
	}
	if ran {
		t.Error("fn ran for an expired intent")
	}
	// Like GetIntent, it leaves the expired intent for ConsumeIntent to
	// report and the sweep to delete.
	if _, err := s.ConsumeIntent(ctx, in.ID, nil); !errors.Is(err, ErrIntentExpired) {
		t.Errorf("ConsumeIntent after expired update = %v, want ErrIntentExpired", err)
	}
}

func TestUpdateIntentConcurrent(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	in := mustCreateIntent(t, s, testIntent(Identity{"T1", "UALICE"}, "many"))

	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("approval_%d", i)
			if _, err := s.UpdateIntent(t.Context(), in.ID, func(in *Intent) error {
				in.Params[key] = "yes"
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetIntent(t.Context(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got.Params[fmt.Sprintf("approval_%d", i)] != "yes" {
			t.Errorf("approval %d lost; params = %v", i, got.Params)
		}
	}
}
