package storagetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/c66bot/c66bot/storage"
)

// TestLinks runs the contract of the LinkStore: links saved, read, replaced,
// counted and deleted, per person.
func TestLinks(t *testing.T, open Opener) {
	run(t, open, []subtest{
		{"RoundTrip", testLinkRoundTrip},
		{"Lifecycle", testLinkLifecycle},
		{"InvalidInput", testLinkInvalidInput},
		{"SetEmail", testLinkSetEmail},
	})
}

// testLinkSetEmail: the e-mail is set on the stored link, survives a
// reopen, leaves the token alone, and never makes a link for a person who
// has none (a logout that came first stays a logout).
func testLinkSetEmail(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	ana, ben := storage.Identity{Team: "T1", User: "UA"}, storage.Identity{Team: "T1", User: "UB"}
	if err := s.Links.Save(ctx, storage.Link{Identity: ana, AccessToken: "at-ana", Account: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Links.SetEmail(ctx, ana, "ana@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.Links.SetEmail(ctx, ana, "ana@example.com"); err != nil {
		t.Fatalf("setting the same e-mail again: %v", err)
	}
	if err := s.Links.SetEmail(ctx, ben, "ben@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("SetEmail without a link = %v, want ErrNotFound", err)
	}
	if _, err := s.Links.Get(ctx, ben); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ben has a link after SetEmail: %v", err)
	}
	s = s.Reopen()
	got, err := s.Links.Get(ctx, ana)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "ana@example.com" || got.AccessToken != "at-ana" || got.Account != "Acme" {
		t.Errorf("after SetEmail and a reopen: %+v", got)
	}
	if err := s.Links.SetEmail(ctx, storage.Identity{Team: "T1"}, "x@example.com"); err == nil {
		t.Error("SetEmail with an invalid identity: no error")
	}
}

func testLinkRoundTrip(t *testing.T, open Opener) {
	s, clock := begin(t, open)
	ctx := t.Context()
	expiry := clock.Now().Add(2 * time.Hour)

	tests := []struct {
		name string
		in   storage.Link
		want storage.Link
	}{
		{
			name: "all fields",
			in: storage.Link{
				Identity: storage.Identity{Team: "T1", User: "U1"}, AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer",
				Expiry: expiry, Scopes: []string{"public", "admin"}, Account: "Acme", Email: "ana@example.com", LinkedAt: clock.Now().Add(-time.Hour),
			},
			want: storage.Link{
				Identity: storage.Identity{Team: "T1", User: "U1"}, AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer",
				Expiry: expiry, Scopes: []string{"public", "admin"}, Account: "Acme", Email: "ana@example.com", LinkedAt: clock.Now().Add(-time.Hour),
			},
		},
		{
			name: "LinkedAt defaults to the clock",
			in:   storage.Link{Identity: storage.Identity{Team: "E1", User: "W1"}, AccessToken: "at2"},
			want: storage.Link{Identity: storage.Identity{Team: "E1", User: "W1"}, AccessToken: "at2", LinkedAt: clock.Now()},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := s.Links.Save(ctx, tc.in); err != nil {
				t.Fatal(err)
			}
			got, err := s.Links.Get(ctx, tc.in.Identity)
			if err != nil {
				t.Fatal(err)
			}
			if !linksEqual(got, tc.want) {
				t.Errorf("Links.Get = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func linksEqual(a, b storage.Link) bool {
	return a.Identity == b.Identity && a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.TokenType == b.TokenType && a.Expiry.Equal(b.Expiry) && slices.Equal(a.Scopes, b.Scopes) &&
		a.Account == b.Account && a.Email == b.Email && a.LinkedAt.Equal(b.LinkedAt)
}

func testLinkLifecycle(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	a, b := storage.Identity{Team: "T1", User: "UA"}, storage.Identity{Team: "T1", User: "UB"}

	if _, err := s.Links.Get(ctx, a); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Links.Get before save = %v, want storage.ErrNotFound", err)
	}
	if n, _ := s.Links.Count(ctx); n != 0 {
		t.Errorf("Links.Count = %d, want 0", n)
	}
	for _, id := range []storage.Identity{a, b} {
		if err := s.Links.Save(ctx, storage.Link{Identity: id, AccessToken: "tok-" + id.User}); err != nil {
			t.Fatal(err)
		}
	}
	// Saving again replaces rather than adds.
	if err := s.Links.Save(ctx, storage.Link{Identity: a, AccessToken: "tok-A2"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Links.Count(ctx); n != 2 {
		t.Errorf("Links.Count = %d, want 2", n)
	}
	if l, _ := s.Links.Get(ctx, a); l.AccessToken != "tok-A2" {
		t.Errorf("after re-save AccessToken = %q, want tok-A2", l.AccessToken)
	}

	existed, err := s.Links.Delete(ctx, a)
	if err != nil || !existed {
		t.Errorf("Links.Delete = %v, %v; want true, nil", existed, err)
	}
	existed, err = s.Links.Delete(ctx, a)
	if err != nil || existed {
		t.Errorf("second Links.Delete = %v, %v; want false, nil", existed, err)
	}
	if _, err := s.Links.Get(ctx, a); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Links.Get after delete = %v, want storage.ErrNotFound", err)
	}
	if l, err := s.Links.Get(ctx, b); err != nil || l.AccessToken != "tok-UB" {
		t.Errorf("other link = %+v, %v", l, err)
	}
}

func testLinkInvalidInput(t *testing.T, open Opener) {
	s, _ := begin(t, open)
	ctx := t.Context()
	bad := storage.Identity{Team: "T:1", User: "U1"}
	if err := s.Links.Save(ctx, storage.Link{Identity: bad, AccessToken: "x"}); err == nil {
		t.Error("Links.Save with an invalid identity succeeded")
	}
	if err := s.Links.Save(ctx, storage.Link{Identity: storage.Identity{Team: "T1", User: "U1"}}); err == nil {
		t.Error("Links.Save without an access token succeeded")
	}
	if _, err := s.Links.Get(ctx, storage.Identity{}); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Links.Get(zero identity) = %v, want a validation error", err)
	}
	if _, err := s.Links.Delete(ctx, bad); err == nil {
		t.Error("Links.Delete with an invalid identity succeeded")
	}
}
