package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks the essentials of ../../Dockerfile, which CI cannot
// build (no Docker engine), so it cannot drift away from the code
// unnoticed: a multi-stage build of a static binary with the Go version of
// go.mod, run as a non-root user with the database on a volume.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	// Instructions only: comments may say anything.
	var lines []string
	for l := range strings.SplitSeq(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	df := strings.Join(lines, "\n")
	has := func(re string) []string { return regexp.MustCompile(`(?m)`+re).FindAllString(df, -1) }

	froms := has(`^FROM\s+\S+`)
	if len(froms) < 2 {
		t.Errorf("%d FROM lines, want a multi-stage build (build, then a minimal runtime)", len(froms))
	}
	goVersion := regexp.MustCompile(`(?m)^go\s+(\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	if len(has(`^FROM\s+golang:`+regexp.QuoteMeta(goVersion[1])+`(\.\d+)?(-\S+)?\s+AS\s+build`)) != 1 {
		t.Errorf("the build stage is not FROM golang:%s AS build (go.mod says go %s)", goVersion[1], goVersion[1])
	}
	if len(froms) > 0 {
		final := froms[len(froms)-1]
		if !strings.Contains(final, "distroless/static") && !strings.HasSuffix(final, "scratch") {
			t.Errorf("final stage %q: want distroless/static or scratch for a static binary", final)
		}
	}
	for _, want := range []struct{ re, why string }{
		{`CGO_ENABLED=0`, "a static binary (CGO off)"},
		{`go build .*-trimpath`, "-trimpath"},
		{`-ldflags "-s -w -X main\.version=`, "the version stamped in"},
		{`\./cmd/c66bot`, "the c66bot command built"},
		{`^VOLUME\s+\[?"?/data`, "a volume for the database"},
		{`^ENV\s+C66BOT_DB=/data/`, "the database on the volume"},
		{`^EXPOSE\s+8080`, "the HTTP port"},
		{`^ENTRYPOINT\s+\["/c66bot"\]`, "the binary as entrypoint"},
		{`^CMD\s+\["serve"\]`, "serve by default"},
	} {
		if len(has(want.re)) == 0 {
			t.Errorf("Dockerfile lacks %s (/%s/)", want.why, want.re)
		}
	}
	users := has(`^USER\s+\S+`)
	if len(users) == 0 {
		t.Fatal("no USER: the bot would run as root")
	}
	last := strings.Fields(users[len(users)-1])[1]
	if u := strings.Split(last, ":")[0]; u == "root" || u == "0" {
		t.Errorf("final USER %s is root", last)
	}
}
