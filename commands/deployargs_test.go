package commands

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/deploy"
)

func TestParseDeployArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    DeployArgs
		problem string
	}{
		{in: "shop", want: DeployArgs{Stack: "shop"}},
		{in: "shop:production@v2.1", want: DeployArgs{Stack: "shop:production", Params: deploy.Params{Ref: "v2.1"}}},
		{in: "shop ref=main", want: DeployArgs{Stack: "shop", Params: deploy.Params{Ref: "main"}}},
		{in: "shop@main ref=main", want: DeployArgs{Stack: "shop", Params: deploy.Params{Ref: "main"}}},
		{in: "shop env=staging", want: DeployArgs{Stack: "shop:staging"}},
		{in: "shop:staging env=STAGING", want: DeployArgs{Stack: "shop:STAGING"}},
		{in: "api services=web:1.4.2,worker,web:1.4.2 strategy=Rolling profile=fast-lane", want: DeployArgs{Stack: "api",
			Params: deploy.Params{Services: []string{"web:1.4.2", "worker"}, Strategy: "rolling", Profile: "fast-lane"}}},
		{in: "shop REF=feature/x", want: DeployArgs{Stack: "shop", Params: deploy.Params{Ref: "feature/x"}}},
		{in: "shop colour=blue", problem: "Unknown option `colour`"},
		{in: "shop strategy=yolo", problem: "isn't one of serial, parallel, rolling, fast"},
		{in: "shop@", problem: "The ref after `@` is empty"},
		{in: "@v1", problem: "Which stack?"},
		{in: "shop ref=", problem: "`ref` is empty"},
		{in: "shop ref=a ref=b", problem: "given twice"},
		{in: "shop@a ref=b", problem: "different values"},
		{in: "shop ref=a..b", problem: "isn't a valid git ref"},
		{in: "shop ref=-rf", problem: "can't start with `-`"},
		{in: "shop ref=a~1", problem: "can't contain"},
		{in: "shop services=web:,x", problem: "should be `name` or `name:tag`"},
		{in: "shop services=<!channel>", problem: "`&lt;!channel&gt;`"},
		{in: "shop profile=a/b", problem: "profile"},
		{in: "shop:production env=staging", problem: "environment is given twice"},
		{in: "shop env=a:b", problem: "The environment `a:b` isn't an environment's name."},
		{in: "shop env=a=b", problem: "The environment `a=b` isn't an environment's name."},
		{in: "shop justaword", problem: "I don't understand `justaword`"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			words, _ := Split(tt.in)
			got, err := ParseDeployArgs(words)
			if tt.problem != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(ue.Problem, tt.problem) {
					t.Fatalf("ParseDeployArgs(%q) error = %v, want a usage error containing %q", tt.in, err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDeployArgs(%q): %v", tt.in, err)
			}
			if got.Stack != tt.want.Stack || got.Params.Ref != tt.want.Params.Ref || got.Params.Profile != tt.want.Params.Profile ||
				got.Params.Strategy != tt.want.Params.Strategy || !slices.Equal(got.Params.Services, tt.want.Params.Services) {
				t.Fatalf("ParseDeployArgs(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseDeployArgs: never panics; whatever it accepts is safe to send:
// a known strategy, refs git would accept, no raw mrkdwn in problems.
func FuzzParseDeployArgs(f *testing.F) {
	for _, s := range []string{"shop", "shop:production@v2.1 services=web:1.2,api strategy=rolling", "shop ref=a..b", "x@y@z env=q", "s services=,,", "s profile=" + strings.Repeat("a", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		got, err := ParseDeployArgs(words)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("non-usage error %v", err)
			}
			if strings.Contains(ue.Problem, "<!") || strings.Contains(ue.Problem, "<@") {
				t.Fatalf("unescaped mrkdwn in %q", ue.Problem)
			}
			return
		}
		if got.Stack == "" {
			t.Fatal("accepted an empty stack")
		}
		if got.Params.Strategy != "" && !slices.Contains(strategies, got.Params.Strategy) {
			t.Fatalf("accepted strategy %q", got.Params.Strategy)
		}
		if got.Params.Ref != "" && refProblem(got.Params.Ref) != "" {
			t.Fatalf("accepted ref %q", got.Params.Ref)
		}
		for _, svc := range got.Params.Services {
			if strings.ContainsAny(svc, " ,<>&") {
				t.Fatalf("accepted service %q", svc)
			}
		}
	})
}

// A word shown back is inline code that cannot close early, break its line
// or ping anyone, and a long one is cut.
func TestQuoteArgIsInlineCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"colour":                "`colour`",
		"<!channel>":            "`&lt;!channel&gt;`",
		"a`b&c":                 "`a'b&amp;c`",
		"line\nbreak":           "`line break`",
		strings.Repeat("x", 61): "`" + strings.Repeat("x", 61) + "`",
		strings.Repeat("x", 62): "`" + strings.Repeat("x", 60) + "…`",
		strings.Repeat("é", 70): "`" + strings.Repeat("é", 60) + "…`",
	} {
		if got := quoteArg(in); got != want {
			t.Errorf("quoteArg(%q) = %q, want %q", in, got, want)
		}
	}
}
