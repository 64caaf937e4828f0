package storage

import (
	"errors"
	"testing"
)

// A key lost for good: Open refuses the new key, and forgetting what the
// lost key sealed (with SkipKeyCheck) lets the store open again, keeping
// every link the new key does open.
func TestForgetUnopenableLinks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	lost, kept := Identity{"T1", "ULOST"}, Identity{"T1", "UKEPT"}
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	path := s.Path()
	if err := s.Links().Save(ctx, Link{Identity: lost, AccessToken: "tok-lost"}); err != nil {
		t.Fatal(err)
	}
	mustStartWatch(t, s, testWatch(lost, "s1"))
	s.Close()

	var wk *WrongKeyError
	if _, err := Open(Options{Path: path, Keys: [][]byte{testKey("B")}}); !errors.As(err, &wk) {
		t.Fatalf("Open with a new key over the lost key's links = %v, want a WrongKeyError", err)
	}
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("B")}, SkipKeyCheck: true})
	if n, err := s.ForgetUnopenableLinks(ctx); err != nil || n != 1 {
		t.Fatalf("ForgetUnopenableLinks = %d, %v; want 1", n, err)
	}
	if _, err := s.SweepExpired(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Links().Get(ctx, lost); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrSealed) {
		t.Errorf("the forgotten link = %v, want plain ErrNotFound", err)
	}
	s.Close()

	// Nothing the lost key sealed is left: the new key opens the store.
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("B")}})
	if err := s.Links().Save(ctx, Link{Identity: kept, AccessToken: "tok-kept"}); err != nil {
		t.Fatal(err)
	}
	// Links that open are never forgotten.
	if n, err := s.ForgetUnopenableLinks(ctx); err != nil || n != 0 {
		t.Errorf("ForgetUnopenableLinks with every link opening = %d, %v; want 0", n, err)
	}
	if l, err := s.Links().Get(ctx, kept); err != nil || l.AccessToken != "tok-kept" {
		t.Errorf("the link the key opens = %+v, %v", l, err)
	}
}
