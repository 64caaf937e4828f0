package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is the console's output, read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fastOptions keep a deployment to a few hundred milliseconds.
func fastOptions(out io.Writer) Options {
	return Options{Out: out, EchoInput: true, DeployDuration: 300 * time.Millisecond, Poll: 50 * time.Millisecond}
}

// startSandbox starts a sandbox for the test; its bot's log is shown if
// the test fails.
func startSandbox(t *testing.T, o Options) *Sandbox {
	t.Helper()
	logs := &syncBuffer{}
	o.Log = logs
	sb, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("Socket Mode connections opened: %d; bot log:\n%s", sb.Slack.ConnectionsOpened(), logs.String())
		}
	})
	return sb
}

// term is a person at the console: they type into a pipe and read what
// the console printed.
type term struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *syncBuffer
	mark int // output before this offset has been read
	done chan error
}

func startConsole(t *testing.T) (*term, *Sandbox) {
	t.Helper()
	return startConsoleWith(t, func(*Options) {})
}

// startConsoleWith is startConsole with fastOptions changed by change.
func startConsoleWith(t *testing.T, change func(*Options)) (*term, *Sandbox) {
	t.Helper()
	out := &syncBuffer{}
	o := fastOptions(out)
	change(&o)
	sb := startSandbox(t, o)
	r, w := io.Pipe()
	tm := &term{t: t, in: w, out: out, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { tm.done <- sb.Console(ctx, r) }()
	t.Cleanup(func() {
		cancel()
		w.Close()
		<-tm.done
	})
	return tm, sb
}

// typeLine types a line and forgets the output so far.
func (tm *term) typeLine(line string) {
	tm.t.Helper()
	tm.mark = len(tm.out.String())
	if _, err := fmt.Fprintln(tm.in, line); err != nil {
		tm.t.Fatalf("type %q: %v", line, err)
	}
}

// expect waits until the output since the last line typed contains every
// want, in order.
func (tm *term) expect(want ...string) string {
	tm.t.Helper()
	// Generous: a loaded machine (-race, a shared CI box) can stall a
	// database fsync for seconds.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := tm.out.String()[tm.mark:]
		rest, ok := got, true
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("output lacks %q (in order); it reads:\n%s", want, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConsole(t *testing.T) {
	t.Parallel()
	tm, sb := startConsole(t)
	tm.expect("c66bot sandbox", "/c66 deploy shop:production@v2.1", ":user U0BEN", ":quit", "ana in #general> ")

	tm.typeLine("/c66 login")
	tm.expect("/c66 login\n", "[only you]", "[Link Cloud 66 account ↗ "+sb.URL+"/oauth/start?state=",
		"(browser) signed in to Cloud 66 as ana@example.com",
		"[only you] (edited)\n  ✅ Linked to Cloud 66 account Acme (36 stacks visible).", "ana in #general> ")

	tm.typeLine("/c66 stacks")
	tm.expect("[only you]\n  Stacks (36)\n  ───────────\n", "🟢 shop · production — ✅ Deployed successfully · Healthy")

	// Nothing to press yet: the confirmation of a deploy is what has buttons.
	tm.typeLine("1")
	tm.expect("No message with buttons to press yet.")

	tm.typeLine("/c66 deploy shop:production@v2.1")
	tm.expect("⚠️ Deploy shop · production? This stack needs your confirmation.", "Ref to ship: `v2.1`", "[1] Deploy production  [2] Cancel", "ana in #general> ")
	tm.typeLine("3")
	tm.expect("The latest message with buttons has buttons 1 to 2.")
	tm.typeLine("1")
	tm.expect("(@ana pressed “Deploy production”)", "[only you] (edited)\n  🚀 Confirmed: deploying shop · production.")
	tm.expect("[#general] msg 1\n  ⏳ Starting — shop · production\n  Requested by: @ana\n  Ref: `v2.1`")
	tm.expect("[#general] msg 1 (edited)\n  ✅ Deployed — shop · production", "Git hash: 6507918 (https://github.com/acme/shop/commit/65079182d07a1a34440e3097382ac10d38d49b91)",
		"↳ [#general] reply in the thread of msg 1\n    Cloud 66: Completed successfully")
	if n := sb.Cloud66.ActionCount(); n != 1 {
		t.Errorf("Cloud 66 got %d deployments, want 1", n)
	}
	// The confirmation was replaced; its buttons are gone.
	tm.typeLine("1")
	tm.expect("No message with buttons to press yet.")

	tm.typeLine(":user U0BEN")
	tm.expect("Now typing as @ben (U0BEN, Cloud 66 ben@example.com).", "ben in #general> ")
	tm.typeLine("/c66 whoami")
	tm.expect("/c66 whoami\n", "You haven't linked", "(browser) signed in to Cloud 66 as ben@example.com",
		"Linked to Cloud 66 account Acme (5 stacks visible).")
	tm.typeLine(":user ana")
	tm.expect("Now typing as @ana", "ana in #general> ")
	tm.typeLine(":user nobody")
	tm.expect(`"nobody" is neither a person here nor a Slack user ID`)

	tm.typeLine(":channel C0PRIVBOT")
	tm.expect("Now in #ops (C0PRIVBOT).", "ana in #ops> ")
	tm.typeLine("deploy blog") // "/c66" may be left out
	tm.expect("deploy blog\n", "[#ops] msg 2\n  ⏳ Starting — blog · staging")
	tm.expect("[#ops] msg 2 (edited)\n  ✅ Deployed — blog · staging")
	tm.typeLine(":channel #secret")
	tm.expect("Now in #secret (G0PRIVATE). It is private and the bot is not in it", "ana in #secret> ")
	tm.typeLine(":channel nowhere")
	tm.expect(`no channel "nowhere"; the channels are C0GENERAL (#general), C0PRIVBOT (#ops)`)

	tm.typeLine(":foo")
	tm.expect("Unknown console command :foo.", "Console commands:", ":channel C0PRIVBOT", ":quit")
	tm.typeLine("/deploy x")
	tm.expect("Only /c66 is installed in this workspace")

	tm.typeLine(":quit")
	select {
	case err := <-tm.done:
		tm.done <- err // for the cleanup
		if err != nil {
			t.Errorf("Console: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the console did not stop on :quit")
	}
}

func TestConsoleEndsAtEOFAndOnCancel(t *testing.T) {
	t.Parallel()
	out := &syncBuffer{}
	sb := startSandbox(t, fastOptions(out))
	if err := sb.Console(t.Context(), strings.NewReader("/c66 help\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ana in #general> /c66 help\n", "Cloud 66 from Slack", "`/c66 deploy <stack>[@ref] [key=value…]`"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	r, w := io.Pipe()
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- sb.Console(ctx, r) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Console after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the console did not stop when its context was cancelled")
	}
}

func TestCloseRemovesTheDatabase(t *testing.T) {
	t.Parallel()
	sb, err := Start(t.Context(), fastOptions(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sb.dir); err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sb.dir); !os.IsNotExist(err) {
		t.Errorf("the sandbox's directory survived Close: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestTry(t *testing.T) {
	t.Parallel()
	t.Run("stacks links first and prints the list", func(t *testing.T) {
		t.Parallel()
		out := &syncBuffer{}
		sb := startSandbox(t, fastOptions(out))
		if err := sb.Try(t.Context(), TryOptions{Text: "/c66 stacks shop"}); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		want := "ana in #general> /c66 stacks shop\n[only you]\n  Stacks matching “shop” (2)\n"
		if !strings.HasPrefix(got, want) {
			t.Errorf("got:\n%s\nwant it to start with:\n%s", got, want)
		}
		if strings.Contains(got, "Link Cloud 66") {
			t.Errorf("linking was shown:\n%s", got)
		}
	})
	t.Run("production deploy shows the confirmation and presses nothing", func(t *testing.T) {
		t.Parallel()
		out := &syncBuffer{}
		sb := startSandbox(t, fastOptions(out))
		if err := sb.Try(t.Context(), TryOptions{Text: "deploy shop:production@v2.1", User: "ana"}); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"[1] Deploy production  [2] Cancel", "add --press N"} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
		if n := sb.Cloud66.ActionCount(); n != 0 {
			t.Errorf("Try deployed without --press (%d)", n)
		}
	})
	t.Run("press 1 deploys and follows the message to the end", func(t *testing.T) {
		t.Parallel()
		out := &syncBuffer{}
		sb := startSandbox(t, fastOptions(out))
		if err := sb.Try(t.Context(), TryOptions{Text: "deploy shop:production@v2.1", Press: 1, Wait: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"(@ana pressed “Deploy production”)", "⏳ Starting — shop · production", "[#general] msg 1 (edited)\n  ✅ Deployed — shop · production", "Cloud 66: Completed successfully"} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
	})
	t.Run("rollback of the stack whose deploys fail", func(t *testing.T) {
		t.Parallel()
		out := &syncBuffer{}
		sb := startSandbox(t, fastOptions(out))
		if err := sb.Try(t.Context(), TryOptions{Text: "rollback legacy-crm", Press: 1, Wait: 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"Live now", "Goes back to", "[1] Roll back production", "✅ Rolled back — legacy-crm · production"} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
	})
	t.Run("as ben in another channel", func(t *testing.T) {
		t.Parallel()
		out := &syncBuffer{}
		sb := startSandbox(t, fastOptions(out))
		if err := sb.Try(t.Context(), TryOptions{Text: "stacks", User: "U0BEN", Channel: "#ops"}); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); !strings.Contains(got, "ben in #ops> /c66 stacks\n") || !strings.Contains(got, "Stacks (5)") {
			t.Errorf("got:\n%s", got)
		}
	})
	t.Run("bad press", func(t *testing.T) {
		t.Parallel()
		sb := startSandbox(t, fastOptions(io.Discard))
		if err := sb.Try(t.Context(), TryOptions{Text: "stacks", Press: 1}); err == nil || !strings.Contains(err.Error(), "no buttons") {
			t.Errorf("err = %v", err)
		}
	})
}
