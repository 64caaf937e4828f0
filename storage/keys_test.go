package storage

import (
	"bytes"
	"encoding/base64"
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
		{"empty middle", good + ",," + good, "key 2 of 3: empty"},
		{"trailing comma", good + ",", "key 2 of 2: empty"},
		{"leading comma", "," + good, "key 1 of 2: empty"},
		{"only padding", "====", "key 1 of 1: empty"},
		{"bad base64", good + "," + garbage, "key 2 of 2: not valid base64"},
		{"mixed alphabets", mixed, "key 1 of 1: not valid base64"},
		{"too short", short, "key 1 of 1: decodes to 16 bytes, want 32"},
		{"too long", good + "," + long, "key 2 of 2: decodes to 50 bytes, want 32"},
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
			for _, part := range strings.Split(tc.spec, ",") {
				if part = strings.TrimSpace(strings.TrimRight(part, "=")); len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error %q echoes key text", err)
				}
			}
		})
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c66bot.key")

	key, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if !created || len(key) != 32 {
		t.Fatalf("first call: created=%v len=%d, want true, 32", created, len(key))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", perm)
	}

	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if created || !bytes.Equal(again, key) {
		t.Errorf("second call: created=%v, same key=%v; want false, true", created, bytes.Equal(again, key))
	}

	// The file is usable as a ParseKeys spec too (one key, trailing newline).
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := ParseKeys(string(data)); err != nil || !bytes.Equal(keys[0], key) {
		t.Errorf("ParseKeys(key file) = %v, %v", keys, err)
	}
}

func TestLoadOrCreateKeyFileExisting(t *testing.T) {
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
			key, created, err := LoadOrCreateKeyFile(path)
			if created {
				t.Error("created = true for an existing file")
			}
			if tc.want == "" {
				if err != nil || !bytes.Equal(key, testKey("A")) {
					t.Fatalf("LoadOrCreateKeyFile = %v, want the stored key", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadOrCreateKeyFile = %v, want error containing %q", err, tc.want)
			}
			if trimmed := strings.TrimSpace(tc.content); trimmed != "" && strings.Contains(err.Error(), trimmed) {
				t.Errorf("error %q echoes the key file's contents", err)
			}
		})
	}
}

func TestLoadOrCreateKeyFileBadPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"directory", dir},
		{"missing parent", filepath.Join(dir, "no", "such", "key")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := LoadOrCreateKeyFile(tc.path); err == nil {
				t.Error("LoadOrCreateKeyFile succeeded")
			}
		})
	}
}
