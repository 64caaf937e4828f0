package storage

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func mustSealer(t *testing.T, labels ...string) *Sealer {
	t.Helper()
	keys := make([][]byte, len(labels))
	for i, l := range labels {
		keys[i] = testKey(l)
	}
	s, err := NewSealer(keys)
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func TestSealerFormat(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, "A")
	plain := []byte("c66-secret-token-format")
	ad := []byte("T1:U1")

	a, err := s.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}

	if want := 1 + 4 + 12 + len(plain) + 16; len(a) != want {
		t.Errorf("sealed length = %d, want %d", len(a), want)
	}
	if a[0] != 1 {
		t.Errorf("version byte = %d, want 1", a[0])
	}
	if id := keyIDOf(testKey("A")); !bytes.Equal(a[1:5], id[:]) {
		t.Errorf("key id = %x, want %x", a[1:5], id)
	}
	if bytes.Equal(a[5:17], b[5:17]) {
		t.Error("two seals used the same nonce")
	}
	if bytes.Contains(a, plain) {
		t.Error("sealed value contains the plaintext")
	}

	got, err := s.Open(a, ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("Open = %q, %v; want %q", got, err, plain)
	}
}

func TestSealerOpenFailures(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, "A")
	ad := []byte("T1:U1")
	sealed, err := s.Seal([]byte("c66-secret-token-tamper"), ad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}

	tests := []struct {
		name   string
		sealed []byte
		ad     []byte
	}{
		{"wrong associated data", sealed, []byte("T1:U2")},
		{"no associated data", sealed, nil},
		{"flipped version byte", flip(0), ad},
		{"flipped key id", flip(2), ad},
		{"flipped nonce", flip(8), ad},
		{"flipped ciphertext", flip(sealHeaderSize + 12 + 3), ad},
		{"flipped tag", flip(len(sealed) - 1), ad},
		{"truncated", sealed[:len(sealed)-1], ad},
		{"header only", sealed[:sealHeaderSize], ad},
		{"empty", nil, ad},
		{"unknown key", mustSeal(t, mustSealer(t, "B"), ad), ad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Open(tc.sealed, tc.ad)
			if !errors.Is(err, ErrSealed) {
				t.Fatalf("Open = %q, %v; want ErrSealed", got, err)
			}
			if strings.Contains(err.Error(), "c66-secret") {
				t.Errorf("error %q leaks the plaintext", err)
			}
		})
	}
}

func mustSeal(t *testing.T, s *Sealer, ad []byte) []byte {
	t.Helper()
	b, err := s.Seal([]byte("c66-secret-token-other"), ad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealerRotation(t *testing.T) {
	t.Parallel()
	ad := []byte("T1:U1")
	old := mustSealer(t, "A")
	rotated := mustSealer(t, "B", "A")

	sealedOld := mustSeal(t, old, ad)
	if _, err := rotated.Open(sealedOld, ad); err != nil {
		t.Errorf("rotated sealer cannot open a value sealed with the old key: %v", err)
	}
	if rotated.SealedWithPrimary(sealedOld) {
		t.Error("SealedWithPrimary(old value) = true, want false")
	}
	if !old.SealedWithPrimary(sealedOld) {
		t.Error("old.SealedWithPrimary(own value) = false, want true")
	}

	sealedNew := mustSeal(t, rotated, ad)
	if !rotated.SealedWithPrimary(sealedNew) {
		t.Error("SealedWithPrimary(new value) = false, want true")
	}
	if _, err := old.Open(sealedNew, ad); !errors.Is(err, ErrSealed) {
		t.Errorf("old sealer opened a value sealed with the new key: %v", err)
	}
	if rotated.SealedWithPrimary(nil) {
		t.Error("SealedWithPrimary(nil) = true")
	}
}

func TestNewSealerErrors(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{'k'}, 31)
	tests := []struct {
		name string
		keys [][]byte
		want string
	}{
		{"none", nil, "no sealing keys"},
		{"short", [][]byte{testKey("A"), secret}, "key 2 of 2 is 31 bytes"},
		{"long", [][]byte{make([]byte, 64)}, "key 1 of 1 is 64 bytes"},
		{"duplicate", [][]byte{testKey("A"), testKey("A")}, "keys 1 and 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewSealer(tc.keys)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSealer = %v, want error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(secret)) {
				t.Errorf("error %q echoes key material", err)
			}
		})
	}
}
