package commands

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// classifiedErrors are the exported errors of the bot's packages that can
// reach a command or a button, each with the values to classify: every one
// must be matched by a row of the error table other than the fallback.
var classifiedErrors = map[string][]error{
	"accounts.ErrNotLinked":        {accounts.ErrNotLinked},
	"cloud66.ErrUnauthorized":      {cloud66.ErrUnauthorized},
	"cloud66.ErrForbidden":         {cloud66.ErrForbidden},
	"cloud66.ErrInsufficientScope": {&cloud66.ErrorResponse{StatusCode: 403, Code: "insufficient_scope", Scope: "redeploy"}},
	"deploy.OptionError":           {&deploy.OptionError{Problem: "`service` is only for Docker stacks"}},
	"deploy.RollbackError":         {&deploy.RollbackError{Problem: "nothing to go back to"}},
	"cloud66.ErrNotFound":          {cloud66.ErrNotFound},
	"cloud66.ErrConflict":          {cloud66.ErrConflict},
	"cloud66.ErrThrottled":         {cloud66.ErrThrottled},
	"cloud66.ErrInvalidID":         {cloud66.ErrInvalidID},
	"cloud66.InvalidIDError":       {&cloud66.InvalidIDError{}},
	"cloud66.ArgError":             {&cloud66.ArgError{}},
	"deploy.ErrNotYours":           {deploy.ErrNotYours},
	"deploy.ErrIntentGone":         {deploy.ErrIntentGone},
	"deploy.ErrNothingRunning":     {deploy.ErrNothingRunning},
	"deploy.ErrNotLocked":          {deploy.ErrNotLocked},
	"deploy.NotLockedError":        {&deploy.NotLockedError{StackName: "shop", Environment: "production"}},
	"deploy.ErrIntentExpired":      {deploy.ErrIntentExpired},
	"deploy.ExpiredError":          {&deploy.ExpiredError{Words: "deploy shop:production"}},
	"deploy.ErrOwnApproval":        {deploy.ErrOwnApproval},
	"deploy.LockedError":           {&deploy.LockedError{}},
	"deploy.LockDurationError":     {&deploy.LockDurationError{For: time.Second}},
	"storage.ErrTooManyWaiters":    {storage.ErrTooManyWaiters},
	"deploy.BusyError":             {&deploy.BusyError{}},
	"deploy.PolicyError":           {&deploy.PolicyError{}},
	"deploy.FrozenError":           {&deploy.FrozenError{}},
	"deploy.FinishedError":         {&deploy.FinishedError{}},
	"storage.ErrNotAudited":        {storage.ErrNotAudited},
	"storage.ErrIntentExpired":     {storage.ErrIntentExpired},
	"storage.ErrClosed":            {storage.ErrClosed},
	"storage.ErrReadOnly":          {storage.ErrReadOnly},
	"storage.ErrSealed":            {storage.ErrSealed},
	"storage.ErrNotFound":          {storage.ErrNotFound},
	"storage.ErrStackBusy":         {storage.ErrStackBusy},
	"commands.UsageError":          {&UsageError{}},
	"commands.AmbiguousError":      {&AmbiguousError{}},
	"commands.NotFoundError":       {&NotFoundError{}},
	"cloud66.ErrorResponse": {
		&cloud66.ErrorResponse{StatusCode: 401}, &cloud66.ErrorResponse{StatusCode: 403}, &cloud66.ErrorResponse{StatusCode: 404},
		&cloud66.ErrorResponse{StatusCode: 409}, &cloud66.ErrorResponse{StatusCode: 429}, &cloud66.ErrorResponse{StatusCode: 503, Code: "throttled"},
		&cloud66.ErrorResponse{StatusCode: 500}, &cloud66.ErrorResponse{StatusCode: 502}, &cloud66.ErrorResponse{StatusCode: 408},
		// A 400 or 422 is a request of ours Cloud 66 could not take: a bug,
		// which the fallback answers; it is not listed here.
	},
}

// unreachableErrors cannot reach a command or a button, and why. An error
// listed here that starts reaching one needs a row instead.
var unreachableErrors = map[string]string{
	// Only wraps: the error inside is what is classified.
	"deploy.VerbError": "wraps another error",
	// deploy says it as an *OptionError, in the command's words.
	"cloud66.DeployOptionError": "deploy turns it into deploy.OptionError",
	// Answered by the login command itself, before the table.
	"accounts.ErrCodeRejected":   "login answers it",
	"accounts.ErrNoPendingLogin": "login answers it",
	"accounts.ErrCodeTooLong":    "login answers it",
	// Sign in with Slack and the login pages: HTTP, not Slack replies.
	"accounts.ErrSlackCodeRejected": "login pages only",
	"accounts.ErrSlackAppRejected":  "login pages only",
	"accounts.ErrIDTokenInvalid":    "login pages only",
	"storage.ErrStateInvalid":       "login pages only",
	"storage.ErrStateExpired":       "login pages only",
	// Opening the store, at start.
	"storage.ErrLocked":         "opening the store only",
	"storage.ErrNotDatabase":    "opening the store only",
	"storage.ErrKeyFileMissing": "opening the store only",
	"storage.WrongKeyError":     "opening the store only",
	// API tokens: the admin socket and the bearer API.
	"storage.ErrExists":  "API tokens only",
	"storage.ErrRevoked": "API tokens only",
	// A replica's leases: losing one stops that replica's own work (a
	// watcher, a delivery, a channel's posting); no method a command calls
	// returns it.
	"storage.ErrLeaseLost": "replicas' leases only",
	// Dispatch answers a line it cannot split before any command runs.
	"commands.ErrUnterminatedQuote": "Dispatch answers it before the table",
	// The policy file is parsed at start.
	"policy.Error": "parsing the policy file only",
	// Webhooks and the notify API.
	"notify.ErrUnknownStack": "notify API only",
	"notify.ErrIgnored":      "webhooks only",
	"notify.ErrNoStack":      "webhooks only",
	"notify.AmbiguousError":  "notify API only",
	// Posting: deploy and notify fall back to the response_url or a DM.
	"chat.ErrCannotPost": "deploy and notify answer it",
}

// classifiedPackages are the packages whose errors the commands can see,
// relative to the module root.
var classifiedPackages = []string{"accounts", "cloud66", "deploy", "storage", "commands", "policy", "notify", "internal/chat"}

// exportedErrors finds, in the non-test sources of dir, the exported
// variables named Err… and the exported types with an Error method, as
// "pkg.Name".
func exportedErrors(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		pkg := f.Name.Name
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				for _, spec := range d.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
							names = append(names, pkg+"."+n.Name)
						}
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || d.Name.Name != "Error" || d.Type.Params.NumFields() != 0 {
					continue
				}
				typ := d.Recv.List[0].Type
				if star, ok := typ.(*ast.StarExpr); ok {
					typ = star.X
				}
				if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
					names = append(names, pkg+"."+id.Name)
				}
			}
		}
	}
	return names
}

// Every exported error of the bot's packages is either classified by a row
// of its own or listed, with the reason, as one that cannot reach a
// command: a new error fails here until it is one or the other.
func TestEveryErrorReachingACommandIsClassified(t *testing.T) {
	t.Parallel()
	found := map[string]bool{}
	for _, dir := range classifiedPackages {
		for _, name := range exportedErrors(t, filepath.Join("..", dir)) {
			found[name] = true
		}
	}
	if len(found) < 40 {
		t.Fatalf("found only %d exported errors: %v", len(found), found)
	}
	for name := range found {
		values, classified := classifiedErrors[name]
		why, unreachable := unreachableErrors[name]
		switch {
		case classified && unreachable:
			t.Errorf("%s is both classified and listed as unreachable (%s)", name, why)
		case !classified && !unreachable:
			t.Errorf("%s has no row in the error table: add one, or list it in unreachableErrors with why it cannot reach a command", name)
		}
		for _, err := range values {
			for _, wrapped := range []error{err, fmt.Errorf("deploy: doing it: %w", err)} {
				if c := classify(wrapped); c.name == fallbackClass.name {
					t.Errorf("%s (%v) falls through to the fallback", name, wrapped)
				}
			}
		}
	}
	for name := range classifiedErrors {
		if !found[name] {
			t.Errorf("classifiedErrors names %s, which the sources no longer declare", name)
		}
	}
	for name := range unreachableErrors {
		if !found[name] {
			t.Errorf("unreachableErrors names %s, which the sources no longer declare", name)
		}
	}
}

// fakeErrorLinker records what the error replies ask of the account service.
type fakeErrorLinker struct {
	dropped []storage.Identity
}

func (f *fakeErrorLinker) BeginLogin(context.Context, accounts.LoginRequest) (accounts.LoginStart, error) {
	return accounts.LoginStart{State: "S", AuthorizeURL: "https://c66.example/oauth/authorize?state=S"}, nil
}

func (f *fakeErrorLinker) DropLink(_ context.Context, id storage.Identity, _ string) (bool, error) {
	f.dropped = append(f.dropped, id)
	return true, nil
}

// The table's rows, one representative error each: how it is counted,
// logged and answered, and whether a button's message is replaced.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	lock := storage.Lock{StackName: "shop", Environment: "production", Owner: storage.Identity{Team: "T1", User: "U9"}, Since: now.Add(-time.Hour), Reason: "release"}
	for _, tt := range []struct {
		err     error
		outcome string
		level   slog.Level
		replace bool
		want    string
	}{
		{deploy.ErrOwnApproval, OutcomeRefused, slog.LevelInfo, false, "Your own approval doesn't count"},
		{deploy.ErrNotYours, OutcomeRefused, slog.LevelInfo, false, "belongs to the person who asked"},
		{fmt.Errorf("deploy: %w", deploy.ErrIntentGone), OutcomeRefused, slog.LevelInfo, true, "already confirmed or cancelled"},
		{fmt.Errorf("deploy: %w", storage.ErrIntentExpired), OutcomeRefused, slog.LevelInfo, true, "This confirmation expired; run the command again. Nothing was sent."},
		{&deploy.ExpiredError{Words: "deploy shop:production@v2.1"}, OutcomeRefused, slog.LevelInfo, true,
			":hourglass: This confirmation expired; run `/c66 deploy shop:production@v2.1` again. Nothing was sent."},
		{&UsageError{Problem: "Which stack?"}, OutcomeUsage, slog.LevelInfo, false, "Which stack? Usage: `/c66 lock <stack> [for=<duration>] [reason…]`"},
		{fmt.Errorf("deploy: lock: %w", storage.ErrNotAudited), OutcomeError, slog.LevelError, false, "so I did not lock the stack"},
		{accounts.ErrNotLinked, OutcomeNotLinked, slog.LevelInfo, false, "haven't linked your Cloud 66 account"},
		{&cloud66.ErrorResponse{StatusCode: 401}, OutcomeUnauthorized, slog.LevelWarn, false, "expired or was revoked"},
		{&cloud66.ErrorResponse{StatusCode: 403, Description: "lacks redeploy"}, OutcomeForbidden, slog.LevelWarn, false, "Cloud 66 said: _lacks redeploy_"},
		{&cloud66.ErrorResponse{StatusCode: 503, Code: "throttled", RetryAt: now}, OutcomeThrottled, slog.LevelWarn, false, "Try again at <!date^"},
		{&AmbiguousError{Arg: "shop", Candidates: testStacks()[:2]}, OutcomeNotFound, slog.LevelInfo, false, "`shop` matches 2 stacks"},
		{&deploy.LockedError{Lock: lock}, OutcomeRefused, slog.LevelInfo, false, "is locked by <@U9> 1 h ago: release"},
		{&deploy.BusyError{Watch: storage.Watch{StackName: "shop", Environment: "production"}}, OutcomeRefused, slog.LevelInfo, false, "already running"},
		{&deploy.PolicyError{Rule: "prod", Reason: "not from here"}, OutcomeRefused, slog.LevelInfo, false, "Not allowed by policy rule *prod*: not from here"},
		{&deploy.FrozenError{Freeze: policy.FreezeHit{Name: "weekend"}, OverrideIntentID: "i1"}, OutcomeRefused, slog.LevelInfo, false, "Override the freeze"},
		{deploy.ErrNothingRunning, OutcomeRefused, slog.LevelInfo, false, "nothing to cancel"},
		{&deploy.FinishedError{Deployment: cloud66.Deployment{ID: 7}}, OutcomeRefused, slog.LevelInfo, true, "is no longer running, so there is nothing to cancel"},
		{deploy.ErrNotLocked, OutcomeRefused, slog.LevelInfo, false, "That stack isn't locked"},
		{fmt.Errorf("unlock: %w", &deploy.NotLockedError{StackName: "shop", Environment: "production"}), OutcomeRefused, slog.LevelInfo, false, ":unlock: *shop* · production isn't locked."},
		{&NotFoundError{Kind: "stack", Arg: "shpo", Suggestions: []string{"shop"}}, OutcomeNotFound, slog.LevelInfo, false, "Did you mean `shop`?"},
		// A Cloud 66 404 and 409 are logged as the person-caused refusals
		// they are counted as, not as errors.
		{&cloud66.ErrorResponse{StatusCode: 404}, OutcomeNotFound, slog.LevelInfo, false, "Cloud 66 says that doesn't exist"},
		{&cloud66.ErrorResponse{StatusCode: 409, Description: "stack is busy"}, OutcomeRefused, slog.LevelInfo, false, "It said: _stack is busy_"},
		{&cloud66.InvalidIDError{}, OutcomeError, slog.LevelError, false, "isn't shaped like a Cloud 66 id"},
		{&cloud66.ErrorResponse{StatusCode: 502}, OutcomeUnavailable, slog.LevelError, false, "didn't answer in time"},
		{context.DeadlineExceeded, OutcomeUnavailable, slog.LevelError, false, "didn't answer in time"},
		{storage.ErrReadOnly, OutcomeError, slog.LevelError, false, "Something went wrong on my side"},
		{errors.New("boom"), OutcomeError, slog.LevelError, false, "Something went wrong on my side"},
	} {
		t.Run(tt.err.Error(), func(t *testing.T) {
			t.Parallel()
			linker := &fakeErrorLinker{}
			e := &errorReplies{slash: "/c66", now: func() time.Time { return now }, accounts: linker,
				log: slog.New(slog.DiscardHandler), stacks: &stackCache{}}
			lockCmd := lockCommand(nil, nil, "/c66")
			c := classify(tt.err)
			if c.outcome != tt.outcome || c.level != tt.level || c.replace != tt.replace {
				t.Errorf("row %q: outcome %s, level %s, replace %v; want %s, %s, %v", c.name, c.outcome, c.level, c.replace, tt.outcome, tt.level, tt.replace)
			}
			if got := Outcome(tt.err); got != tt.outcome {
				t.Errorf("Outcome = %s, want %s", got, tt.outcome)
			}
			reply := c.reply(t.Context(), e, failure{err: tt.err, req: ana, cmd: lockCmd, args: []string{"shop"}, change: lockCmd.Change})
			if got := replyText(t, reply); !strings.Contains(got, tt.want) {
				t.Errorf("reply lacks %q:\n%s", tt.want, got)
			}
			if reply.InChannel {
				t.Error("an error reply went to the channel")
			}
			if reply.Text == "" {
				t.Error("no fallback text")
			}
			if errors.Is(tt.err, cloud66.ErrUnauthorized) && len(linker.dropped) != 1 {
				t.Errorf("a 401 dropped %d links, want 1", len(linker.dropped))
			}
		})
	}
}

// Rows counted as one outcome are logged at one level, so the metrics and
// the logs never tell two stories about the same kind of failure.
func TestRowsOfAnOutcomeShareALevel(t *testing.T) {
	t.Parallel()
	levels := map[string]slog.Level{}
	seen := map[string]bool{}
	for _, c := range append(errorTable(), fallbackClass, okClass) {
		if seen[c.name] {
			t.Errorf("two rows are named %q", c.name)
		}
		seen[c.name] = true
		if !slices.Contains(Outcomes(), c.outcome) {
			t.Errorf("row %q: outcome %q is not in Outcomes()", c.name, c.outcome)
		}
		if c.reply == nil && c.name != okClass.name {
			t.Errorf("row %q has no reply", c.name)
		}
		if l, ok := levels[c.outcome]; ok && l != c.level {
			t.Errorf("row %q logs outcome %s at %s, another row at %s", c.name, c.outcome, c.level, l)
		}
		levels[c.outcome] = c.level
	}
}

// Dispatch and HandleAction log an error at its row's level: a Cloud 66
// 404 was counted not_found but logged at ERROR before the table.
func TestFailuresAreLoggedAtTheirRowsLevel(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	d := &fakeDeployer{err: &cloud66.ErrorResponse{StatusCode: 409}}
	r, _ := newTestRouter(t, true, &fakeCloud66{err: &cloud66.ErrorResponse{StatusCode: 404}}, func(deps *Deps) {
		deps.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		deps.Deploy = d
	})
	req := ana
	req.Text = "stacks"
	r.Dispatch(t.Context(), req)
	r.HandleAction(t.Context(), Action{TeamID: "T1", UserID: "U1", ActionID: ActionDeployConfirm, Value: "i1", RequestID: "req9"})
	got := logs.String()
	for _, want := range []string{
		`"level":"INFO","msg":"command failed"`, `"outcome":"not_found"`,
		`"level":"INFO","msg":"button refused"`, `"outcome":"refused"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("logs lack %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"level":"ERROR"`) {
		t.Errorf("a 404 or a 409 was logged as an error:\n%s", got)
	}
}

// A Confirm button starts whatever change was parked, so its refusals name
// that change, not the deploy the button is named after.
func TestConfirmedChangeRefusalsNameTheirVerb(t *testing.T) {
	t.Parallel()
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()})
	reply := func(err error) string {
		f := failure{err: err, req: ana, change: "deploy"}
		return replyText(t, classify(err).reply(t.Context(), r.errors, f))
	}
	if got := reply(&deploy.VerbError{Verb: deploy.VerbRestart, Err: fmt.Errorf("claim: %w", storage.ErrNotAudited)}); !strings.Contains(got, "so I did not restart.") {
		t.Errorf("audit refusal of a confirmed restart: %s", got)
	}
	scope := &cloud66.ErrorResponse{StatusCode: 403, Code: "insufficient_scope", Scope: "redeploy"}
	if got := reply(&deploy.VerbError{Verb: deploy.VerbReboot, Err: scope}); !strings.Contains(got, "`reboot` scope") {
		t.Errorf("missing scope of a confirmed reboot: %s", got)
	}
	if got := reply(&deploy.VerbError{Verb: deploy.VerbRestart, Err: scope}); strings.Contains(got, "`reboot` scope") {
		t.Errorf("missing scope of a confirmed restart mentions reboot: %s", got)
	}
}
