package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

type observed struct {
	command, outcome string
	took             time.Duration
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestDispatchObservesEveryCommandOnceWithABoundedName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, text       string
		linked           bool
		c66err           error
		command, outcome string
	}{
		{name: "ok", text: "stacks", linked: true, command: "stacks", outcome: OutcomeOK},
		{name: "canonical name for case", text: "STACKS", linked: true, command: "stacks", outcome: OutcomeOK},
		{name: "canonical name for alias", text: "redeploy", linked: true, command: "deploy", outcome: OutcomeUsage},
		{name: "empty is help", text: "", command: "help", outcome: OutcomeOK},
		{name: "unknown word", text: "frobnicate xoxb-not-a-real-token", command: UnknownCommand, outcome: OutcomeUsage},
		{name: "unreadable", text: `stacks "shop`, command: UnknownCommand, outcome: OutcomeUsage},
		{name: "wrong number of words", text: "servers a b c", command: "servers", outcome: OutcomeUsage},
		{name: "not linked", text: "stacks", command: "stacks", outcome: OutcomeNotLinked},
		{name: "not found", text: "stack apl", linked: true, command: "stack", outcome: OutcomeNotFound},
		{name: "401", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 401, Code: "unauthenticated"}, command: "stacks", outcome: OutcomeUnauthorized},
		{name: "403", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 403, Code: "forbidden"}, command: "stacks", outcome: OutcomeForbidden},
		{name: "throttled", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 503, Code: "throttled"}, command: "stacks", outcome: OutcomeThrottled},
		{name: "5xx", text: "stacks", linked: true, c66err: &cloud66.ErrorResponse{StatusCode: 502}, command: "stacks", outcome: OutcomeUnavailable},
		{name: "bug", text: "stacks", linked: true, c66err: fmt.Errorf("boom"), command: "stacks", outcome: OutcomeError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			var got []observed
			r, _ := newTestRouter(t, tt.linked, &fakeCloud66{stacks: testStacks(), err: tt.c66err}, func(d *Deps) {
				d.Logger = slog.New(slog.NewJSONHandler(logs, nil))
				d.Observe = func(c, o string, took time.Duration) { got = append(got, observed{c, o, took}) }
			})
			req := ana
			req.Text = tt.text
			r.Dispatch(context.Background(), req)
			if len(got) != 1 || got[0].command != tt.command || got[0].outcome != tt.outcome || got[0].took < 0 {
				t.Fatalf("observed %+v, want one %s/%s", got, tt.command, tt.outcome)
			}
			if !slices.Contains(append(CommandNames(), UnknownCommand), got[0].command) {
				t.Errorf("command %q is not from the table", got[0].command)
			}
			if !slices.Contains(Outcomes(), got[0].outcome) {
				t.Errorf("outcome %q is not in Outcomes()", got[0].outcome)
			}
			checkCommandLogs(t, logs.String(), req.RequestID, tt.outcome, "frobnicate", "xoxb-")
		})
	}
}

// checkCommandLogs: exactly one line about the command, and every line
// carries the request id and none of the words the person typed.
func checkCommandLogs(t *testing.T, logs, requestID, outcome string, never ...string) {
	t.Helper()
	about := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["request_id"] != requestID {
			t.Errorf("log line without request_id %q: %s", requestID, line)
		}
		if _, ok := rec["command"]; ok {
			about++
			if rec["outcome"] != outcome {
				t.Errorf("logged outcome %v, want %s: %s", rec["outcome"], outcome, line)
			}
		}
	}
	if about != 1 {
		t.Errorf("%d log lines about the command, want 1:\n%s", about, logs)
	}
	for _, s := range never {
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain %q, which the person typed:\n%s", s, logs)
		}
	}
}

func TestPastedLoginCodeNeverReachesLogsOrMetrics(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	var got []observed
	r, l := newTestRouter(t, false, &fakeCloud66{stacks: testStacks()}, func(d *Deps) {
		d.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d.Observe = func(c, o string, took time.Duration) { got = append(got, observed{c, o, took}) }
	})
	l.oob = true
	for _, code := range []string{"good-code", "wrong-code"} {
		req := ana
		req.Text = "login " + code
		r.Dispatch(context.Background(), req)
		if strings.Contains(logs.String(), code) {
			t.Errorf("the pasted code %q reached the logs:\n%s", code, logs)
		}
	}
	for _, o := range got {
		if o.command != "login" {
			t.Errorf("observed command %q for login", o.command)
		}
	}
}

func TestOutcomeClassifiesEveryReplyKind(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{&UsageError{Problem: "x"}, OutcomeUsage},
		{fmt.Errorf("wrapped: %w", accounts.ErrNotLinked), OutcomeNotLinked},
		{&AmbiguousError{Arg: "shop"}, OutcomeNotFound},
		{&NotFoundError{Kind: "stack", Arg: "x"}, OutcomeNotFound},
		{&cloud66.ErrorResponse{StatusCode: 404}, OutcomeNotFound},
		{&cloud66.ErrorResponse{StatusCode: 401}, OutcomeUnauthorized},
		{&cloud66.ErrorResponse{StatusCode: 403}, OutcomeForbidden},
		{&cloud66.ErrorResponse{StatusCode: 503, Code: "throttled"}, OutcomeThrottled},
		{&cloud66.ErrorResponse{StatusCode: 409}, OutcomeRefused},
		{&deploy.LockedError{}, OutcomeRefused},
		{&deploy.BusyError{}, OutcomeRefused},
		{&deploy.PolicyError{}, OutcomeRefused},
		{&deploy.FrozenError{}, OutcomeRefused},
		{deploy.ErrNotYours, OutcomeRefused},
		{deploy.ErrIntentGone, OutcomeRefused},
		{storage.ErrIntentExpired, OutcomeRefused},
		{deploy.ErrNothingRunning, OutcomeRefused},
		{deploy.ErrNotLocked, OutcomeRefused},
		{deploy.ErrOwnApproval, OutcomeRefused},
		{context.DeadlineExceeded, OutcomeUnavailable},
		{&cloud66.ErrorResponse{StatusCode: 500}, OutcomeUnavailable},
		{fmt.Errorf("boom"), OutcomeError},
	} {
		got := Outcome(tt.err)
		if got != tt.want {
			t.Errorf("Outcome(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if !slices.Contains(Outcomes(), got) {
			t.Errorf("Outcome(%v) = %q is not in Outcomes()", tt.err, got)
		}
	}
}

func TestCommandNamesAreTheTableWithoutAliases(t *testing.T) {
	t.Parallel()
	names := CommandNames()
	r := NewRouter(Deps{})
	if len(names) != len(r.Commands()) {
		t.Fatalf("%d names for %d commands", len(names), len(r.Commands()))
	}
	for i, c := range r.Commands() {
		if names[i] != c.Name {
			t.Errorf("name %d = %q, want %q", i, names[i], c.Name)
		}
	}
	if slices.Contains(names, "redeploy") || slices.Contains(names, UnknownCommand) {
		t.Errorf("names %v include an alias or %q", names, UnknownCommand)
	}
}
