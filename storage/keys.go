package storage

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// maxKeyFileSize bounds how much of a key file is read, so pointing the bot
// at a large file by mistake fails fast instead of reading it all.
const maxKeyFileSize = 1 << 10

// ParseKeys parses a comma-separated list of base64 AES-256 keys, as given in
// an environment variable, primary key first. Standard and URL-safe base64
// are both accepted, padded or not, and spaces around each key are ignored.
// Errors name the position of the bad key but never repeat any of its text.
func ParseKeys(spec string) ([][]byte, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("storage: no keys given: want comma-separated base64 of 32 random bytes each (e.g. `openssl rand -base64 32`)")
	}
	parts := strings.Split(spec, ",")
	keys := make([][]byte, 0, len(parts))
	for i, p := range parts {
		k, err := decodeKey(p)
		if err != nil {
			return nil, fmt.Errorf("storage: key %d of %d: %w", i+1, len(parts), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// decodeKey decodes one base64 key of exactly keySize bytes. Its errors are
// written here and never wrap the decoder's, so no part of the input can
// reach a log.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if s == "" {
		return nil, errors.New("empty")
	}
	// The two alphabets differ only in '+/' versus '-_', so the characters
	// present pick the decoder; padding was stripped above so one raw decoder
	// per alphabet covers padded and unpadded input.
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	k, err := enc.DecodeString(s)
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	if len(k) != keySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(k), keySize)
	}
	return k, nil
}

// LoadOrCreateKeyFile returns the base64 key stored at path. If the file does
// not exist it generates a random 32-byte key, writes it with mode 0600 and
// reports created=true, so a first start needs no manual key step; the
// caller should log that a new key was made, since losing it loses every
// stored token. An existing file readable or writable by group or others is
// refused rather than used, because the key protects every token in the
// database.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}

	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("storage: generate key: %w", err)
	}
	if err := writeKeyFile(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created the file between our read and our
			// create; use its key so both agree.
			key, err = readKeyFile(path)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("storage: key file: %w", err)
	}
	defer f.Close()

	// Stat the open file rather than the path so the mode we check belongs to
	// the bytes we read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("storage: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("storage: key file %s is not a regular file", path)
	}
	// Windows reports synthetic permission bits, so the check would refuse
	// every file there; ACLs are the operator's job on that platform.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("storage: key file %s has mode %#o, which lets group or others read it; run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("storage: key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("storage: key file %s is larger than %d bytes; want one base64 key", path, maxKeyFileSize)
	}
	key, err := decodeKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("storage: key file %s: %w", path, err)
	}
	return key, nil
}

// writeKeyFile creates path exclusively (O_EXCL), so an existing key is
// never overwritten, and removes it again if writing fails, so a truncated key
// is not picked up as the real one on the next start.
func writeKeyFile(path string, key []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("storage: create key file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("storage: create key file: %w", cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if _, err := io.WriteString(f, base64.StdEncoding.EncodeToString(key)+"\n"); err != nil {
		return fmt.Errorf("storage: write key file: %w", err)
	}
	// The database becomes unreadable without this key, so make sure it is on
	// disk before anything is sealed with it.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: sync key file: %w", err)
	}
	return nil
}
