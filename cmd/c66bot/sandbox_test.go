package main

import (
	"bytes"
	"os"
	"path/filepath"
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

func TestSandboxCommandPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("default: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("default: allow\nrules:\n  - name: x\n    approvals: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		banner string
	}{
		{"default is the demo policy", nil, "Policy: the built-in demo policy (--policy FILE for yours, --policy none for none):"},
		{"none", []string{"--policy", "none"}, "Policy: none (as without C66BOT_POLICY)"},
		{"a file", []string{"--policy", good}, "Policy: " + good + "."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"sandbox", "--deploy-time", "300ms"}, tc.args...)
			if code := run(t.Context(), args, envFrom(nil), strings.NewReader(":quit\n"), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.banner) {
				t.Errorf("output lacks %q:\n%s", tc.banner, stdout.String())
			}
		})
	}
	t.Run("a bad file stops it at start", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"sandbox", "--policy", bad}, envFrom(nil), strings.NewReader(":quit\n"), &stdout, &stderr)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		want := "c66bot sandbox: policy: " + bad + ":4: rule 1 (x): approvals must be 0 or more"
		if !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("stderr = %q, want it to start with %q", stderr.String(), want)
		}
		if stdout.Len() > 0 {
			t.Errorf("the sandbox started anyway:\n%s", stdout.String())
		}
	})
}
