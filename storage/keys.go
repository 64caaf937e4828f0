package storage

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// maxKeyFileSize bounds how much of a key file is read, so pointing the bot
// at a large file by mistake fails fast instead of reading it all.
const maxKeyFileSize = 1 << 10

// MakeKeyCommand is the shell command that makes a key, named in every
// error about a malformed one.
const MakeKeyCommand = "openssl rand -base64 32"

// ParseKeys parses a comma-separated list of base64 AES-256 keys, as given in
// an environment variable, primary key first. Standard and URL-safe base64
// are both accepted, padded or not, and spaces around each key are ignored.
// Errors name the position of the bad key and the command that makes a good
// one, but never repeat any of the key's text. They are written for the
// operator who set the variable, so they carry no package prefix.
func ParseKeys(spec string) ([][]byte, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("no keys given: want base64 of 32 random bytes, several comma separated; make one with: " + MakeKeyCommand)
	}
	parts := strings.Split(spec, ",")
	keys := make([][]byte, 0, len(parts))
	for i, p := range parts {
		k, err := decodeKey(p)
		if err != nil {
			which := "the key"
			if len(parts) > 1 {
				which = fmt.Sprintf("key %d of %d", i+1, len(parts))
			}
			return nil, fmt.Errorf("%s %w; make one with: %s", which, err, MakeKeyCommand)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// decodeKey decodes one base64 key of exactly keySize bytes. Its errors are
// written here and never wrap the decoder's, so no part of the input can
// reach a log; they read as the end of a sentence about the key ("… is
// empty").
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if s == "" {
		return nil, errors.New("is empty")
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
		return nil, errors.New("is not valid base64")
	}
	if len(k) != keySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(k), keySize)
	}
	return k, nil
}

// KeyFilePath is where the key file of the database at dbPath lives: beside
// the real file, named after it with ".key" appended. Symlinks are resolved
// first (the file's, or its directory's while the file does not exist yet),
// so every path that reaches the same database finds the same key, and a
// database reached through a link does not get a second, new key.
func KeyFilePath(dbPath string) string {
	if real, err := filepath.EvalSymlinks(dbPath); err == nil {
		return real + ".key"
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(dbPath)); err == nil {
		return filepath.Join(dir, filepath.Base(dbPath)) + ".key"
	}
	return dbPath + ".key"
}

// DatabaseKey returns the sealing key of the database at dbPath, read from
// its key file (see KeyFilePath), and that file's path.
//
// When there is no key file it makes a new random key, but writes it only
// once the database has been opened (created if missing) with it, so a bad
// dbPath leaves no stray key file behind, and a database that already holds
// sealed values never gets a new key: that fails with an error wrapping
// ErrKeyFileMissing and the *WrongKeyError, since a new key would open
// none of them. created reports a new key file; the caller should say so,
// since losing it loses every stored token.
//
// An existing key file readable or writable by group or others is refused
// rather than used, because the key protects every token in the database.
func DatabaseKey(dbPath string) (key []byte, keyPath string, created bool, err error) {
	keyPath = KeyFilePath(dbPath)
	key, err = ReadKeyFile(keyPath)
	if err == nil {
		return key, keyPath, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, keyPath, false, err
	}

	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, keyPath, false, fmt.Errorf("generate a key: %w", err)
	}
	s, err := Open(Options{Path: dbPath, Keys: [][]byte{key}})
	if err != nil {
		var wk *WrongKeyError
		if errors.As(err, &wk) {
			return nil, keyPath, false, fmt.Errorf("%w: %s: %w", ErrKeyFileMissing, keyPath, err)
		}
		return nil, keyPath, false, err
	}
	if err := s.Close(); err != nil {
		return nil, keyPath, false, err
	}
	if err := writeKeyFile(keyPath, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created the file between our read and our
			// create; use its key so both agree.
			key, err = ReadKeyFile(keyPath)
			return key, keyPath, false, err
		}
		return nil, keyPath, false, err
	}
	return key, keyPath, true, nil
}

// ReadKeyFile reads the base64 key stored at path. A missing file gives an
// error wrapping fs.ErrNotExist. A file that group or others may read or
// write is refused (with the chmod that fixes it), since the key protects
// every token in the database.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file %s: %w", path, unwrapPath(err, path))
	}
	defer f.Close()

	// Stat the open file rather than the path so the mode we check belongs to
	// the bytes we read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file %s: %w", path, unwrapPath(err, path))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the key file %s is not a regular file", path)
	}
	// Windows reports synthetic permission bits, so the check would refuse
	// every file there; ACLs are the operator's job on that platform.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("the key file %s has mode %#o, which lets group or others read it; run: chmod 600 %s", path, fi.Mode().Perm(), path)
	}

	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the key file %s: %w", path, unwrapPath(err, path))
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("the key file %s is larger than %d bytes; want one base64 key", path, maxKeyFileSize)
	}
	key, err := decodeKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("the key file %s %w; make a key with: %s", path, err, MakeKeyCommand)
	}
	return key, nil
}

// writeKeyFile creates path exclusively (O_EXCL), so an existing key is
// never overwritten, and removes it again if writing fails, so a truncated key
// is not picked up as the real one on the next start.
func writeKeyFile(path string, key []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create the key file %s: %w", path, unwrapPath(err, path))
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write the key file %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if _, err := io.WriteString(f, base64.StdEncoding.EncodeToString(key)+"\n"); err != nil {
		return fmt.Errorf("write the key file %s: %w", path, err)
	}
	// The database becomes unreadable without this key, so make sure it is on
	// disk before anything is sealed with it.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync the key file %s: %w", path, err)
	}
	return nil
}
