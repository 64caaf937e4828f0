package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestManifestFillsInTheSignInRedirectURL(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := manifest(nil, envFrom(map[string]string{"C66BOT_PUBLIC_URL": "https://bot.example.org"}), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "- https://bot.example.org/oauth/slack/callback\n") || strings.Contains(out.String(), "c66bot.example.com") {
		t.Errorf("manifest:\n%s", out.String())
	}
	out.Reset()
	if code := manifest([]string{"--public-url", "https://flag.example.org/"}, envFrom(nil), &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "- https://flag.example.org/oauth/slack/callback\n") {
		t.Errorf("exit %d, manifest:\n%s", code, out.String())
	}
}
