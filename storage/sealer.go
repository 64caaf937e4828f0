package storage

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
)

const (
	// keySize is the AES-256 key length; shorter AES keys are refused so an
	// operator cannot weaken the seal by pasting the wrong secret.
	keySize = 32

	// sealVersion is the first byte of every sealed value, so the format can
	// change later without guessing.
	sealVersion = 1

	// keyIDSize bytes of SHA-256(key) name the key in each sealed value.
	// Four bytes tell a handful of configured keys apart; they are not meant
	// to resist an attacker, the GCM tag does that.
	keyIDSize = 4

	sealHeaderSize = 1 + keyIDSize
)

type keyID [keyIDSize]byte

type sealKey struct {
	id   keyID
	aead cipher.AEAD
}

// Sealer encrypts and authenticates values with AES-256-GCM. The first key
// seals; every key is tried (by key id) to open, so keys can be rotated by
// putting a new one in front and keeping the old one until nothing uses it.
//
// A Sealer is immutable and safe for concurrent use. It keeps only the
// expanded AES keys, not the raw key bytes.
type Sealer struct {
	keys []sealKey // keys[0] is the primary (sealing) key
}

// NewSealer returns a Sealer for keys, each of which must be 32 bytes. keys[0]
// seals. The same key listed twice is refused, since it usually means a
// copy-paste mistake during rotation.
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("storage: no sealing keys configured")
	}
	s := &Sealer{keys: make([]sealKey, 0, len(keys))}
	for i, k := range keys {
		if len(k) != keySize {
			return nil, fmt.Errorf("storage: key %d of %d is %d bytes, want %d", i+1, len(keys), len(k), keySize)
		}
		id := keyIDOf(k)
		for j, prev := range s.keys {
			if prev.id == id {
				return nil, fmt.Errorf("storage: keys %d and %d have the same key id (the same key listed twice?)", j+1, i+1)
			}
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("storage: key %d of %d: %w", i+1, len(keys), err)
		}
		// The random-nonce GCM draws a fresh 96-bit nonce for every Seal
		// itself, so no code here can ever reuse one. Random nonces are safe
		// up to 2^32 seals per key, far beyond a chat bot's token writes.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("storage: key %d of %d: %w", i+1, len(keys), err)
		}
		s.keys = append(s.keys, sealKey{id: id, aead: aead})
	}
	return s, nil
}

func keyIDOf(key []byte) keyID {
	sum := sha256.Sum256(key)
	return keyID(sum[:keyIDSize])
}

// Seal encrypts plaintext with the primary key and binds it to
// associatedData, which must be given again, byte for byte, to Open. The
// result is: version (1 byte), key id (4), nonce (12), ciphertext and tag.
func (s *Sealer) Seal(plaintext, associatedData []byte) ([]byte, error) {
	k := s.keys[0]
	out := make([]byte, sealHeaderSize, sealHeaderSize+len(plaintext)+k.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], k.id[:])
	return k.aead.Seal(out, nil, plaintext, sealAD(out[:sealHeaderSize], associatedData)), nil
}

// Open reverses Seal. It returns an error wrapping ErrSealed when the value
// was altered, the associated data differs, or the key that sealed it is not
// configured. Errors never include the value or the keys.
func (s *Sealer) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < sealHeaderSize || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: not a sealed value", ErrSealed)
	}
	id := keyID(sealed[1:sealHeaderSize])
	for _, k := range s.keys {
		if k.id != id {
			continue
		}
		plain, err := k.aead.Open(nil, nil, sealed[sealHeaderSize:], sealAD(sealed[:sealHeaderSize], associatedData))
		if err != nil {
			return nil, fmt.Errorf("%w: authentication failed (tampered, or stored under another key)", ErrSealed)
		}
		return plain, nil
	}
	// The key id is a hash prefix, not key material, and naming it tells an
	// operator which retired key is still needed.
	return nil, fmt.Errorf("%w: sealed with key id %x, which is not configured", ErrSealed, id[:])
}

// SealedWithPrimary reports whether sealed was produced by the primary key
// (Keys[0]). A rekey pass uses it to find values still under an old key.
func (s *Sealer) SealedWithPrimary(sealed []byte) bool {
	return len(sealed) >= sealHeaderSize && sealed[0] == sealVersion &&
		bytes.Equal(sealed[1:sealHeaderSize], s.keys[0].id[:])
}

// sealAD puts the header in front of the caller's associated data so the GCM
// tag also covers the version byte and key id: flipping either is then
// detected instead of being read as a different format or key.
func sealAD(header, associatedData []byte) []byte {
	ad := make([]byte, 0, len(header)+len(associatedData))
	ad = append(ad, header...)
	return append(ad, associatedData...)
}
