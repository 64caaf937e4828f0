package accounts_test

import (
	"errors"
	"testing"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/storage"
)

// login links id through the redirect flow against the fake.
func login(t *testing.T, svc *accounts.Service, id storage.Identity) {
	t.Helper()
	start, err := svc.BeginLogin(t.Context(), accounts.LoginRequest{Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	code, state := authorize(t, start.AuthorizeURL)
	if _, err := svc.CompleteCallback(t.Context(), state, code); err != nil {
		t.Fatal(err)
	}
}

func TestPersonByEmail(t *testing.T) {
	t.Parallel()
	svc, _, store := setup(t, callback)
	ctx := t.Context()
	otherAna := storage.Identity{Team: "T2", User: "U9"}
	login(t, svc, ana)
	login(t, svc, otherAna)

	if _, ok := svc.PersonByEmail(ctx, "T1", "ana@example.com"); ok {
		t.Fatal("an e-mail nobody was seen with matched")
	}
	if err := svc.NoteEmail(ctx, ana, " Ana@Example.com "); err != nil {
		t.Fatal(err)
	}
	if l, err := store.Links().Get(ctx, ana); err != nil || l.Email != "Ana@Example.com" {
		t.Fatalf("stored link = %+v, %v; want the e-mail on it", l, err)
	}

	tests := []struct {
		name, team, email string
		want              storage.Identity
		ok                bool
	}{
		{"same workspace", "T1", "ana@example.com", ana, true},
		{"case and spaces ignored", "T1", "  ANA@example.COM\t", ana, true},
		{"another workspace's person never", "T2", "ana@example.com", storage.Identity{}, false},
		{"unknown e-mail", "T1", "ben@example.com", storage.Identity{}, false},
		{"empty", "T1", "", storage.Identity{}, false},
	}
	for _, tc := range tests {
		got, ok := svc.PersonByEmail(ctx, tc.team, tc.email)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: PersonByEmail(%q, %q) = %v, %v; want %v, %v", tc.name, tc.team, tc.email, got, ok, tc.want, tc.ok)
		}
	}

	// A relink keeps the e-mail already known.
	login(t, svc, ana)
	if l, _ := store.Links().Get(ctx, ana); l.Email != "Ana@Example.com" {
		t.Errorf("after a relink the link's e-mail is %q", l.Email)
	}
	if _, ok := svc.PersonByEmail(ctx, "T1", "ana@example.com"); !ok {
		t.Error("after a relink ana is no longer found")
	}

	// Logging out forgets the person.
	if _, err := svc.Unlink(ctx, ana); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.PersonByEmail(ctx, "T1", "ana@example.com"); ok {
		t.Error("a logged-out person still matched")
	}
	if err := svc.NoteEmail(ctx, ana, "ana@example.com"); !errors.Is(err, accounts.ErrNotLinked) {
		t.Errorf("NoteEmail after logout = %v, want ErrNotLinked", err)
	}
	if _, err := store.Links().Get(ctx, ana); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("NoteEmail brought a link back: %v", err)
	}
}

// Two people of one workspace seen with one e-mail match neither; once one
// of them leaves, the other does.
func TestPersonByEmailAmbiguous(t *testing.T) {
	t.Parallel()
	svc, _, _ := setup(t, callback)
	ctx := t.Context()
	ben := storage.Identity{Team: "T1", User: "U2"}
	login(t, svc, ana)
	login(t, svc, ben)
	for _, id := range []storage.Identity{ana, ben} {
		if err := svc.NoteEmail(ctx, id, "ops@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := svc.PersonByEmail(ctx, "T1", "ops@example.com"); ok {
		t.Fatalf("a shared e-mail matched %v", got)
	}
	if _, err := svc.DropLink(ctx, ben, "test"); err != nil {
		t.Fatal(err)
	}
	if got, ok := svc.PersonByEmail(ctx, "T1", "ops@example.com"); !ok || got != ana {
		t.Errorf("after ben's link was dropped: %v, %v; want ana", got, ok)
	}
}

// After a restart the index is empty; reading a person's link (as every
// command does) brings their e-mail back.
func TestPersonByEmailAfterRestart(t *testing.T) {
	t.Parallel()
	svc, c66, store := setup(t, callback)
	ctx := t.Context()
	login(t, svc, ana)
	if err := svc.NoteEmail(ctx, ana, "ana@example.com"); err != nil {
		t.Fatal(err)
	}
	restarted := accounts.New(accounts.Config{Stores: accounts.Stores{Links: store.Links(), Logins: store.Logins()}, Cloud66URL: c66.URL})
	if _, ok := restarted.PersonByEmail(ctx, "T1", "ana@example.com"); ok {
		t.Fatal("matched before anything was read (test assumption)")
	}
	if _, err := restarted.Link(ctx, ana); err != nil {
		t.Fatal(err)
	}
	if got, ok := restarted.PersonByEmail(ctx, "T1", "ana@example.com"); !ok || got != ana {
		t.Errorf("after reading ana's link: %v, %v", got, ok)
	}
}
