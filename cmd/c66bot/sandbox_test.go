package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSandboxCommand(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	in := strings.NewReader("/c66 help\n:user U0BEN\n/c66 login\n:quit\n")
	code := run(t.Context(), []string{"sandbox", "--deploy-time", "300ms"}, envFrom(nil), in, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{
		"c66bot sandbox", ":quit",
		"ana in #general> /c66 help\n", "Cloud 66 from Slack",
		"ben in #general> /c66 login\n", "(browser) signed in to Cloud 66 as ben@example.com", "Linked to Cloud 66 account Acme (5 stacks visible)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b[") {
		t.Error("ANSI codes in output that is not a terminal")
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestSandboxCommandRefusesArguments(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"sandbox", "stacks"}, envFrom(nil), strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unexpected argument "stacks"`) {
		t.Errorf("stderr: %s", stderr.String())
	}
}
