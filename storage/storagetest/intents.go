package storagetest

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestIntents runs the contract of the IntentStore: single-use, expiring
// confirmations, a check that refuses without spending, and updates that all
// land.
func TestIntents(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"SingleUse", testIntentSingleUse},
		{"CheckRefusalKeepsIt", testIntentCheckRefusalKeepsIt},
		{"Expired", testIntentExpired},
		{"ExpiryIsBounded", testIntentExpiryIsBounded},
		{"ConcurrentConsume", testIntentConcurrentConsume},
		{"Invalid", testIntentInvalid},
		{"Update", testUpdateIntent},
		{"UpdateRefusals", testUpdateIntentRefusals},
		{"UpdateExpired", testUpdateIntentExpired},
		{"UpdateConcurrent", testUpdateIntentConcurrent},
	})
}

var intentIDFormat = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// errNotYours is what the deploy package's check returns for a click by
// someone other than the requester.
var errNotYours = errors.New("not your button")

func testIntent(requester storage.Identity, tag string) storage.Intent {
	return storage.Intent{
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

func mustCreateIntent(t *testing.T, s Stores, in storage.Intent) storage.Intent {
	t.Helper()
	got, err := s.Intents.Create(t.Context(), in)
	if err != nil {
		t.Fatalf("Intents.Create: %v", err)
	}
	return got
}

// onlyBy is a Intents.Consume check that lets only id confirm.
func onlyBy(id storage.Identity) func(storage.Intent) error {
	return func(in storage.Intent) error {
		if in.Requester != id {
			return errNotYours
		}
		return nil
	}
}

func sameIntent(a, b storage.Intent) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Requester == b.Requester &&
		a.Channel == b.Channel && a.ResponseURL == b.ResponseURL &&
		a.StackUID == b.StackUID && a.StackName == b.StackName && a.Environment == b.Environment &&
		maps.Equal(a.Params, b.Params) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func testIntentSingleUse(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "T1", User: "UALICE"}

	in := mustCreateIntent(t, s, testIntent(alice, "one"))
	if !intentIDFormat.MatchString(in.ID) {
		t.Errorf("intent id %q is not 22 chars of base64url (128 bits)", in.ID)
	}
	if !in.CreatedAt.Equal(clock.Now()) || !in.ExpiresAt.Equal(clock.Now().Add(storage.IntentTTL)) {
		t.Errorf("times = %v .. %v, want now .. now+%s", in.CreatedAt, in.ExpiresAt, storage.IntentTTL)
	}
	if other := mustCreateIntent(t, s, testIntent(alice, "two")); other.ID == in.ID {
		t.Error("two intents share an id")
	}

	got, err := s.Intents.Get(ctx, in.ID)
	if err != nil || !sameIntent(got, in) {
		t.Fatalf("Intents.Get = %+v, %v\nwant %+v", got, err, in)
	}
	// Getting does not spend it.
	got, err = s.Intents.Consume(ctx, in.ID, onlyBy(alice))
	if err != nil || !sameIntent(got, in) {
		t.Fatalf("Intents.Consume = %+v, %v\nwant %+v", got, err, in)
	}

	// The double click.
	if _, err := s.Intents.Consume(ctx, in.ID, onlyBy(alice)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Intents.Consume = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Intents.Get(ctx, in.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Intents.Get after consume = %v, want storage.ErrNotFound", err)
	}
}

func testIntentCheckRefusalKeepsIt(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	alice, bob := storage.Identity{Team: "T1", User: "UALICE"}, storage.Identity{Team: "T1", User: "UBOB"}
	in := mustCreateIntent(t, s, testIntent(alice, "mine"))

	// Bob clicks Alice's button, twice.
	for range 2 {
		got, err := s.Intents.Consume(ctx, in.ID, onlyBy(bob))
		// == rather than errors.Is: the contract is "returned unwrapped".
		if err != errNotYours {
			t.Fatalf("Intents.Consume by another user = %v, want errNotYours unwrapped", err)
		}
		if got.Requester != alice {
			t.Errorf("refused Intents.Consume returned requester %v, want %v for the reply", got.Requester, alice)
		}
	}
	// Alice's button still works.
	if got, err := s.Intents.Consume(ctx, in.ID, onlyBy(alice)); err != nil || got.ID != in.ID {
		t.Fatalf("Intents.Consume by the requester = %+v, %v", got, err)
	}
	if _, err := s.Intents.Consume(ctx, in.ID, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Intents.Consume after use = %v, want storage.ErrNotFound", err)
	}
}

func testIntentExpired(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "T1", User: "UALICE"}
	in := mustCreateIntent(t, s, testIntent(alice, "late"))

	clock.Advance(6 * time.Minute)
	got, err := s.Intents.Get(ctx, in.ID)
	if !errors.Is(err, storage.ErrIntentExpired) || got.Channel != in.Channel {
		t.Errorf("Intents.Get after 6m = %+v, %v; want the intent and storage.ErrIntentExpired", got, err)
	}
	checked := false
	got, err = s.Intents.Consume(ctx, in.ID, func(storage.Intent) error { checked = true; return nil })
	if !errors.Is(err, storage.ErrIntentExpired) || got.Channel != in.Channel {
		t.Errorf("Intents.Consume after 6m = %+v, %v; want the intent and storage.ErrIntentExpired", got, err)
	}
	if checked {
		t.Error("check ran for an expired intent")
	}
	// Deleted even though it was refused.
	if _, err := s.Intents.Get(ctx, in.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Intents.Get after expired consume = %v, want storage.ErrNotFound", err)
	}
	if _, err := s.Intents.Consume(ctx, in.ID, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Intents.Consume after expired consume = %v, want storage.ErrNotFound", err)
	}
}

func testIntentExpiryIsBounded(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	now := clock.Now()
	tests := []struct {
		name  string
		given time.Time
		want  time.Time
	}{
		{"zero means the TTL", time.Time{}, now.Add(storage.IntentTTL)},
		{"earlier is kept", now.Add(time.Minute), now.Add(time.Minute)},
		{"longer for approvals is kept", now.Add(30 * time.Minute), now.Add(30 * time.Minute)},
		{"past the maximum is clamped", now.Add(24 * time.Hour), now.Add(storage.MaxIntentTTL)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testIntent(storage.Identity{Team: "T1", User: "U1"}, "ttl")
			in.ExpiresAt = tc.given
			got := mustCreateIntent(t, s, in)
			if !got.ExpiresAt.Equal(tc.want) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, tc.want)
			}
			stored, err := s.Intents.Get(t.Context(), got.ID)
			if err != nil || !stored.ExpiresAt.Equal(tc.want) {
				t.Errorf("stored ExpiresAt = %v, %v; want %v", stored.ExpiresAt, err, tc.want)
			}
		})
	}
}

func testIntentConcurrentConsume(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	alice := storage.Identity{Team: "T1", User: "UALICE"}
	in := mustCreateIntent(t, s, testIntent(alice, "race"))

	const n = 16
	var wins, notFound atomic.Int32
	atOnce(n, func(int) {
		_, err := s.Intents.Consume(t.Context(), in.ID, onlyBy(alice))
		switch {
		case err == nil:
			wins.Add(1)
		case errors.Is(err, storage.ErrNotFound):
			notFound.Add(1)
		default:
			t.Errorf("Intents.Consume: %v", err)
		}
	})
	if wins.Load() != 1 || notFound.Load() != n-1 {
		t.Errorf("%d consumers won and %d got storage.ErrNotFound, want 1 and %d", wins.Load(), notFound.Load(), n-1)
	}
}

func testIntentInvalid(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	genuine := mustCreateIntent(t, s, testIntent(storage.Identity{Team: "T1", User: "U1"}, "genuine"))

	t.Run("create", func(t *testing.T) {
		tests := []struct {
			name string
			in   storage.Intent
		}{
			{"no kind", storage.Intent{Requester: storage.Identity{Team: "T1", User: "U1"}}},
			{"no requester", storage.Intent{Kind: "deploy"}},
			{"requester without user", storage.Intent{Kind: "deploy", Requester: storage.Identity{Team: "T1"}}},
			{"colon in team", storage.Intent{Kind: "deploy", Requester: storage.Identity{Team: "T:1", User: "U1"}}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if _, err := s.Intents.Create(ctx, tc.in); err == nil {
					t.Error("Intents.Create succeeded")
				}
			})
		}
	})
	t.Run("ids", func(t *testing.T) {
		for _, id := range []string{"", "abc", genuine.ID + "A", genuine.ID[:21], "!" + genuine.ID[1:], "+" + genuine.ID[1:]} {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				if _, err := s.Intents.Get(ctx, id); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Intents.Get(%q) = %v, want storage.ErrNotFound", id, err)
				}
				if _, err := s.Intents.Consume(ctx, id, nil); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Intents.Consume(%q) = %v, want storage.ErrNotFound", id, err)
				}
			})
		}
	})
	// None of that used up the genuine one.
	if _, err := s.Intents.Consume(ctx, genuine.ID, nil); err != nil {
		t.Errorf("genuine intent after the forgeries: %v", err)
	}
}

// approve is an Intents.Update fn that adds user to Params["approved_by"], as
// the deploy package's two-person rule does.
func approve(user string) func(*storage.Intent) error {
	return func(in *storage.Intent) error {
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

func testUpdateIntent(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "T1", User: "UALICE"}
	in := mustCreateIntent(t, s, testIntent(alice, "approve"))

	got, err := s.Intents.Update(ctx, in.ID, approve("UBOB"))
	if err != nil || got.Params["approved_by"] != "UBOB" {
		t.Fatalf("first Intents.Update = %+v, %v", got, err)
	}
	got, err = s.Intents.Update(ctx, in.ID, approve("UCAROL"))
	if err != nil || got.Params["approved_by"] != "UBOB,UCAROL" {
		t.Fatalf("second Intents.Update = %+v, %v", got, err)
	}
	stored, err := s.Intents.Get(ctx, in.ID)
	if err != nil || stored.Params["approved_by"] != "UBOB,UCAROL" || stored.Params["ref"] != "main" || !sameIntent(stored, got) {
		t.Errorf("stored after two updates = %+v, %v", stored, err)
	}

	// fn refusing: its error comes back unwrapped, with the intent as
	// stored, and its partial edits are not saved.
	got, err = s.Intents.Update(ctx, in.ID, func(in *storage.Intent) error {
		in.Params["approved_by"] = "UMALLORY"
		in.StackName = "changed"
		return errNotYours
	})
	if err != errNotYours {
		t.Errorf("refused Intents.Update = %v, want errNotYours unwrapped", err)
	}
	if got.Params["approved_by"] != "UBOB,UCAROL" || got.StackName != in.StackName {
		t.Errorf("refused Intents.Update returned %+v, want the intent as stored", got)
	}
	if stored, _ := s.Intents.Get(ctx, in.ID); !sameIntent(stored, got) {
		t.Errorf("refused Intents.Update saved %+v", stored)
	}

	// Updating does not spend it.
	if _, err := s.Intents.Consume(ctx, in.ID, onlyBy(alice)); err != nil {
		t.Errorf("Intents.Consume after updates: %v", err)
	}
	if _, err := s.Intents.Update(ctx, in.ID, approve("UDAVE")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Intents.Update after consume = %v, want storage.ErrNotFound", err)
	}
}

func testUpdateIntentRefusals(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	alice := storage.Identity{Team: "T1", User: "UALICE"}

	tests := []struct {
		name string
		fn   func(*storage.Intent) error
	}{
		{"requester", func(in *storage.Intent) error {
			in.Requester = storage.Identity{Team: "T1", User: "UMALLORY"}
			return nil
		}},
		{"kind", func(in *storage.Intent) error { in.Kind = "unlock"; return nil }},
		{"id", func(in *storage.Intent) error { in.ID = "other"; return nil }},
		{"created", func(in *storage.Intent) error { in.CreatedAt = in.CreatedAt.Add(-time.Hour); return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := mustCreateIntent(t, s, testIntent(alice, tc.name))
			if _, err := s.Intents.Update(ctx, in.ID, tc.fn); err == nil {
				t.Error("Intents.Update changing the " + tc.name + " succeeded")
			}
			if stored, err := s.Intents.Get(ctx, in.ID); err != nil || !sameIntent(stored, in) {
				t.Errorf("stored = %+v, %v; want unchanged", stored, err)
			}
		})
	}

	t.Run("expiry only shrinks", func(t *testing.T) {
		t.Parallel()
		in := mustCreateIntent(t, s, testIntent(alice, "expiry"))
		got, err := s.Intents.Update(ctx, in.ID, func(in *storage.Intent) error { in.ExpiresAt = in.ExpiresAt.Add(time.Hour); return nil })
		if err != nil || !got.ExpiresAt.Equal(in.ExpiresAt) {
			t.Errorf("lengthened ExpiresAt = %v, %v; want %v kept", got.ExpiresAt, err, in.ExpiresAt)
		}
		sooner := in.ExpiresAt.Add(-time.Minute)
		got, err = s.Intents.Update(ctx, in.ID, func(in *storage.Intent) error { in.ExpiresAt = sooner; return nil })
		if err != nil || !got.ExpiresAt.Equal(sooner) {
			t.Errorf("shortened ExpiresAt = %v, %v; want %v", got.ExpiresAt, err, sooner)
		}
	})

	t.Run("ids", func(t *testing.T) {
		t.Parallel()
		unknown := mustCreateIntent(t, s, testIntent(alice, "unknown"))
		if _, err := s.Intents.Consume(ctx, unknown.ID, nil); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"", "abc", unknown.ID, unknown.ID + "A"} {
			ran := false
			if _, err := s.Intents.Update(ctx, id, func(*storage.Intent) error { ran = true; return nil }); !errors.Is(err, storage.ErrNotFound) || ran {
				t.Errorf("Intents.Update(%q) = %v (fn ran: %v), want storage.ErrNotFound", id, err, ran)
			}
		}
	})
}

func testUpdateIntentExpired(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	in := mustCreateIntent(t, s, testIntent(storage.Identity{Team: "T1", User: "UALICE"}, "late"))

	clock.Advance(storage.IntentTTL)
	ran := false
	got, err := s.Intents.Update(ctx, in.ID, func(*storage.Intent) error { ran = true; return nil })
	if !errors.Is(err, storage.ErrIntentExpired) || got.ID != in.ID || got.Channel != in.Channel {
		t.Errorf("Intents.Update after expiry = %+v, %v; want the intent and storage.ErrIntentExpired", got, err)
	}
	if ran {
		t.Error("fn ran for an expired intent")
	}
	// Like Intents.Get, it leaves the expired intent for Intents.Consume to
	// report and the sweep to delete.
	if _, err := s.Intents.Consume(ctx, in.ID, nil); !errors.Is(err, storage.ErrIntentExpired) {
		t.Errorf("Intents.Consume after expired update = %v, want storage.ErrIntentExpired", err)
	}
}

func testUpdateIntentConcurrent(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	in := mustCreateIntent(t, s, testIntent(storage.Identity{Team: "T1", User: "UALICE"}, "many"))

	const n = 8
	atOnce(n, func(i int) {
		key := fmt.Sprintf("approval_%d", i)
		if _, err := s.Intents.Update(t.Context(), in.ID, func(in *storage.Intent) error {
			in.Params[key] = "yes"
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	got, err := s.Intents.Get(t.Context(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got.Params[fmt.Sprintf("approval_%d", i)] != "yes" {
			t.Errorf("approval %d lost; params = %v", i, got.Params)
		}
	}
}
