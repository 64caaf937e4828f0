package main

import (
	"strings"
	"testing"

	"github.com/c66bot/c66bot/storage"
)

func TestRekeyCommand(t *testing.T) {
	t.Parallel()
	keyA, keyB := opsKey("a"), opsKey("b")
	e := newOpsEnv(t, keyA)
	fillDB(t, e.db, [][]byte{keyA}, "U1", "U2", "U3")

	env := map[string]string{"C66BOT_DB": e.db, "C66BOT_SECRET_KEY": b64(keyB, keyA)}
	code, stdout, stderr := runCmd(t, env, "rekey")
	if code != 0 {
		t.Fatalf("rekey: exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "resealed         3") || !strings.Contains(stdout, "failed           0") {
		t.Errorf("report:\n%s", stdout)
	}
	if !strings.Contains(stderr, storage.KeyID(keyB)) || !strings.Contains(stderr, "can be dropped") {
		t.Errorf("stderr does not name the new key or say the old can go:\n%s", stderr)
	}
	// A retired: the tokens open with B alone.
	checkTokens(t, e.db, [][]byte{keyB}, "U1", "U2", "U3")

	// Again: nothing left to do.
	code, stdout, stderr = runCmd(t, env, "rekey")
	if code != 0 || !strings.Contains(stdout, "resealed         0") || !strings.Contains(stdout, "already primary  3") {
		t.Errorf("second rekey: exit %d:\n%s%s", code, stdout, stderr)
	}
}

func TestRekeyCommandMissingKey(t *testing.T) {
	t.Parallel()
	keyA, keyB, keyC := opsKey("a"), opsKey("b"), opsKey("c")
	e := newOpsEnv(t, keyA)
	fillDB(t, e.db, [][]byte{keyA}, "U1")
	fillDB(t, e.db, [][]byte{keyC}, "U9")

	code, stdout, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db, "C66BOT_SECRET_KEY": b64(keyB, keyA)}, "rekey")
	if code != 1 {
		t.Fatalf("rekey with a value under an unknown key: exit %d, want 1:\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "failed           1") {
		t.Errorf("report:\n%s", stdout)
	}
	for _, want := range []string{"id " + storage.KeyID(keyC), "missing from C66BOT_SECRET_KEY", "log in again", "kept, not deleted"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("explanation lacks %q:\n%s", want, stderr)
		}
	}
	checkTokens(t, e.db, [][]byte{keyB}, "U1")
	checkTokens(t, e.db, [][]byte{keyB, keyC}, "U9")
}

func TestRekeyCommandThroughTheRunningBot(t *testing.T) {
	t.Parallel()
	keyA, keyB := opsKey("a"), opsKey("b")
	e := newOpsEnv(t, keyA)
	fillDB(t, e.db, [][]byte{keyA}, "U1", "U2")
	e.env["C66BOT_SECRET_KEY"] = b64(keyB, keyA)
	stop := e.serve(t)

	// No keys in the operator's shell: the bot uses its own.
	code, stdout, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db}, "rekey")
	if code != 0 {
		t.Fatalf("rekey: exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "resealed         2") || !strings.Contains(stderr, "running bot") {
		t.Errorf("rekey through the bot:\n%s%s", stdout, stderr)
	}
	// The bot audited it.
	code, stdout, _ = runCmd(t, map[string]string{"C66BOT_DB": e.db}, "audit")
	if code != 0 || !strings.Contains(stdout, `"action":"rekey"`) {
		t.Errorf("no rekey audit entry:\n%s", stdout)
	}
	stop()
	checkTokens(t, e.db, [][]byte{keyB}, "U1", "U2")
}

func TestRekeyCommandNeedsTheKeys(t *testing.T) {
	t.Parallel()
	e := newOpsEnv(t, opsKey("a"))
	fillDB(t, e.db, [][]byte{opsKey("a")}, "U1")
	code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db}, "rekey")
	if code != 1 || !strings.Contains(stderr, "C66BOT_SECRET_KEY is unset and there is no key file") {
		t.Errorf("rekey without keys: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCmd(t, map[string]string{"C66BOT_DB": e.db + ".nope", "C66BOT_SECRET_KEY": b64(opsKey("a"))}, "rekey"); code != 1 || !strings.Contains(stderr, "no database") {
		t.Errorf("rekey of a missing database: exit %d: %s", code, stderr)
	}
}
