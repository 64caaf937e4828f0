package app_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/app"
)

// A link sealed with a key since removed from C66BOT_SECRET_KEY is no link:
// its owner is asked to log in, not told something broke, while links
// under the remaining key work.
func TestE2ELinkUnderARemovedKeyAsksToLogIn(t *testing.T) {
	t.Parallel()
	keyA, keyB := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(keyA)
	_, _ = rand.Read(keyB)
	h := startHarness(t, harnessOptions{key: keyA})
	h.login("U0ANA")

	// Rotation: B in front, A kept; Ben links under B.
	h.opts.tweak = func(h *harness, c *app.Config) { c.Keys = [][]byte{keyB, keyA} }
	h.restart()
	h.login("U0BEN")

	// A dropped before a rekey.
	h.opts.tweak = func(h *harness, c *app.Config) { c.Keys = [][]byte{keyB} }
	h.restart()
	_, reply := h.run("U0ANA", "C0GENERAL", "stacks")
	mustContain(t, text(reply), "haven't linked")
	mustContain(t, buttonURL(t, reply), "/oauth/start")
	if strings.Contains(strings.ToLower(text(reply)), "went wrong") {
		t.Errorf("an internal error instead of a login prompt: %s", text(reply))
	}
	_, reply = h.run("U0BEN", "C0GENERAL", "stacks")
	mustContain(t, text(reply), "shop")
}
