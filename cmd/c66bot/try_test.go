package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTryStacks(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"try", "stacks"}, envFrom(nil), nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	got := stdout.String()
	want := "ana in #general> /c66 stacks\n[only you]\n  Stacks (36)\n"
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "🟢 shop · production — ✅ Deployed successfully · Healthy") {
		t.Errorf("got:\n%s", got)
	}
}

func TestTryPressFollowsTheDeployment(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	// Flags after the text work too.
	code := run(t.Context(), []string{"try", "--deploy-time", "300ms", "/c66 deploy shop:production@v2.1", "--press", "1"}, envFrom(nil), nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{
		"ana in #general> /c66 deploy shop:production@v2.1\n",
		"[1] Deploy production  [2] Cancel",
		"(@ana pressed “Deploy production”)",
		"[#general] msg 1\n  ⏳ Starting — shop · production",
		"[#general] msg 1 (edited)\n  ✅ Deployed — shop · production",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestTryUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"try"}, {"try", "--press", "-1", "stacks"}, {"try", "--nope", "stacks"}} {
		var stderr bytes.Buffer
		if code := run(t.Context(), args, envFrom(nil), nil, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr:\n%s", args, code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"try", "--user", "nobody", "stacks"}, envFrom(nil), nil, &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "nobody") {
		t.Errorf("unknown user: exit %d, stderr:\n%s", code, stderr.String())
	}
}
