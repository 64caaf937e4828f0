package storage

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	t.Parallel()
	a, b := testKey("A"), testKey("B")
	std := base64.StdEncoding.EncodeToString
	rawStd := base64.RawStdEncoding.EncodeToString
	url := base64.URLEncoding.EncodeToString
	rawURL := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name string
		spec string
		want [][]byte
	}{
		{"std padded", std(a), [][]byte{a}},
		{"std unpadded", rawStd(a), [][]byte{a}},
		{"url padded", url(a), [][]byte{a}},
		{"url unpadded", rawURL(a), [][]byte{a}},
		{"two keys", std(b) + "," + std(a), [][]byte{b, a}},
		{"spaces and newline", " " + rawURL(b) + " ,\t" + std(a) + "\n", [][]byte{b, a}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKeys(tc.spec)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("key %d differs", i+1)
				}
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	t.Parallel()
	good := base64.StdEncoding.EncodeToString(testKey("A"))
	short := base64.StdEncoding.EncodeToString([]byte("c66-secret-16-by"))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("c66-secret"), 5))
	garbage := "c66*secret*not*base64*at*all!!"
	// Right length, but '+' (standard) and '_' (URL-safe) in one key.
	mixed := base64.RawStdEncoding.EncodeToString(testKey("A"))[:41] + "+_"

	tests := []struct {
		name string
		spec string
		want string
	}{
		{"empty", "", "no keys given"},
		{"blank", "  \n", "no keys given"},
		{"empty middle", good + ",," + good, "key 2 of 3 is empty"},
		{"trailing comma", good + ",", "key 2 of 2 is empty"},
		{"leading comma", "," + good, "key 1 of 2 is empty"},
		{"only padding", "====", "the key is empty"},
		{"bad base64", good + "," + garbage, "key 2 of 2 is not valid base64"},
		{"mixed alphabets", mixed, "the key is not valid base64"},
		{"too short", short, "the key decodes to 16 bytes, want 32"},
		{"too long", good + "," + long, "key 2 of 2 decodes to 50 bytes, want 32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParseKeys(tc.spec)
			if err == nil {
				t.Fatalf("ParseKeys = %d keys, want error", len(keys))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			// The operator is told how to make a good key, and no package
			// prefix is shown to them.
			if !strings.Contains(err.Error(), MakeKeyCommand) || strings.Contains(err.Error(), "storage:") {
				t.Errorf("error %q does not name %q, or carries a package prefix", err, MakeKeyCommand)
			}
			for _, part := range strings.Split(tc.spec, ",") {
				if part = strings.TrimSpace(strings.TrimRight(part, "=")); len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error %q echoes key text", err)
				}
			}
		})
	}
}

func TestDatabaseKeyCreatesOnceAndReads(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "c66bot.db")

	key, keyPath, created, err := DatabaseKey(db)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if !created || len(key) != 32 || keyPath != db+".key" {
		t.Fatalf("first call: created=%v len=%d path=%s, want true, 32, %s.key", created, len(key), keyPath, db)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}
	// The database was created with the key, ready for serve.
	if _, err := os.Stat(db); err != nil {
		t.Errorf("no database beside the new key: %v", err)
	}

	again, _, created, err := DatabaseKey(db)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if created || !bytes.Equal(again, key) {
		t.Errorf("second call: created=%v, same key=%v; want false, true", created, bytes.Equal(again, key))
	}

	// The file is usable as a ParseKeys spec too (one key, trailing newline).
	data, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := ParseKeys(string(data)); err != nil || !bytes.Equal(keys[0], key) {
		t.Errorf("ParseKeys(key file) = %v, %v", keys, err)
	}
}

// A database path that cannot be used fails before any key file is
// written, so fixing the path later does not leave a stray key behind.
func TestDatabaseKeyBadDatabaseLeavesNoKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a bbolt file\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	asDir := filepath.Join(dir, "dir.db")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, db := range map[string]string{
		"not a database":    garbage,
		"a directory":       asDir,
		"missing directory": filepath.Join(dir, "no", "such", "c66bot.db"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, keyPath, created, err := DatabaseKey(db)
			if err == nil || created {
				t.Fatalf("DatabaseKey(%s) = created %v, %v; want an error", db, created, err)
			}
			if _, serr := os.Lstat(keyPath); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("a key file %s was left behind (%v)", keyPath, serr)
			}
		})
	}
}

// A database holding sealed links whose key file is gone (not restored with
// a backup) gets no new key: it would open none of them.
func TestDatabaseKeyRefusesNewKeyForSealedData(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	if err := s.Links().Save(t.Context(), Link{Identity: Identity{"T1", "U1"}, AccessToken: "c66-secret-tok"}); err != nil {
		t.Fatal(err)
	}
	db := s.Path()
	s.Close()

	_, keyPath, created, err := DatabaseKey(db)
	var wk *WrongKeyError
	if !errors.Is(err, ErrKeyFileMissing) || !errors.As(err, &wk) || created {
		t.Fatalf("DatabaseKey = created %v, %v; want ErrKeyFileMissing with a WrongKeyError", created, err)
	}
	if wk.Sealed != 1 || len(wk.SealedWith) != 1 || wk.SealedWith[0] != KeyID(testKey("A")) {
		t.Errorf("WrongKeyError = %+v, want 1 value sealed with key id %s", wk, KeyID(testKey("A")))
	}
	if _, serr := os.Lstat(keyPath); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("a new key file was written over sealed data (%v)", serr)
	}
}

// The key file is found beside the real database file, however the
// database is reached: through a symlink to the file or to its directory.
func TestKeyFilePathResolvesSymlinks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	realDir := filepath.Join(root, "real")
	if err := os.Mkdir(realDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(realDir, "c66bot.db")
	key, keyPath, _, err := DatabaseKey(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(db, filepath.Join(root, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(realDir, filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	realKeyPath, err := filepath.EvalSymlinks(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{filepath.Join(root, "link.db"), filepath.Join(root, "current", "c66bot.db")} {
		got, gotPath, created, err := DatabaseKey(via)
		if err != nil || created || !bytes.Equal(got, key) {
			t.Errorf("DatabaseKey(%s) = created %v, same key %v, %v; want the existing key", via, created, bytes.Equal(got, key), err)
		}
		if gotPath != realKeyPath {
			t.Errorf("KeyFilePath via %s = %s, want %s", via, gotPath, realKeyPath)
		}
	}
	// Not yet created, in a symlinked directory: the same file the resolved
	// path names once the database exists.
	if got, want := KeyFilePath(filepath.Join(root, "current", "new.db")), filepath.Join(realKeyPath[:len(realKeyPath)-len("c66bot.db.key")], "new.db.key"); got != want {
		t.Errorf("KeyFilePath of a new database in a linked directory = %s, want %s", got, want)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 3 {
		t.Errorf("%d entries beside the links, want 3 (no key file for the link itself): %v", len(entries), entries)
	}
}

func TestReadKeyFile(t *testing.T) {
	t.Parallel()
	encoded := base64.StdEncoding.EncodeToString(testKey("A"))
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // error substring; "" means success
	}{
		{"owner read-write", encoded + "\n", 0o600, ""},
		{"owner read-only", encoded, 0o400, ""},
		{"world readable", encoded + "\n", 0o644, "chmod 600"},
		{"group readable", encoded + "\n", 0o640, "chmod 600"},
		{"garbage", "c66-secret-garbage-garbage!!", 0o600, "not valid base64"},
		{"wrong length", base64.StdEncoding.EncodeToString([]byte("c66-secret-short")), 0o600, "decodes to 16 bytes"},
		{"empty", "", 0o600, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			// Chmod after writing so the umask cannot hide the bits under test.
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			key, err := ReadKeyFile(path)
			if tc.want == "" {
				if err != nil || !bytes.Equal(key, testKey("A")) {
					t.Fatalf("ReadKeyFile = %v, want the stored key", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadKeyFile = %v, want error containing %q", err, tc.want)
			}
			if trimmed := strings.TrimSpace(tc.content); trimmed != "" && strings.Contains(err.Error(), trimmed) {
				t.Errorf("error %q echoes the key file's contents", err)
			}
		})
	}
}
