package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/storage"
)

// Notices answered 202 by `c66bot serve` and still waiting in the paced
// queue of their channel when the process is SIGKILLed are posted after the
// restart, and each notice is in the channel exactly once.
//
// The kill comes while the channel's worker waits out a 429: every post the
// fake Slack took before it has been recorded by then (the worker records
// a post before it sends the next), so no post sits between Slack's ok and
// its record, the one window in which a kill may repeat a post.
func TestKilledServeDeliversEveryAcceptedNoticeOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds c66bot and waits for about a dozen posts at Slack's pace of one a second")
	}
	t.Parallel()
	bin := buildC66bot(t)
	e := newOpsEnv(t, opsKey("crash"))
	token := prepareNoticeDB(t, e)
	addr := e.env["C66BOT_LISTEN"]
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	first := startServe(t, bin, e.env)
	waitReady(t, ctx, addr, first)
	const notices = 12
	marker := func(i int) string { return fmt.Sprintf("crash-notice-%02d", i) }
	for i := range notices {
		postNotice(t, addr, token, marker(i), first)
	}
	// The first posts go out at once (Slack's burst); from then on Slack
	// refuses every post with a long Retry-After, and the kill comes once
	// the worker is waiting one out.
	if _, err := e.slack.WaitMessage(ctx, isNotice); err != nil {
		t.Fatalf("no notice posted before the kill: %v\n%s", err, first.logs.String())
	}
	e.slack.RateLimitNext("chat.postMessage", 1000, time.Minute)
	waitFor(t, ctx, "a post refused with 429", first, func() bool {
		for _, c := range e.slack.Calls() {
			if c.Method == "chat.postMessage" && c.Status == http.StatusTooManyRequests {
				return true
			}
		}
		return false
	})
	before := len(postedNotices(e.slack))
	if before >= notices {
		t.Fatalf("all %d notices were posted before the kill; nothing was queued", before)
	}
	first.kill(t)
	e.slack.RateLimitNext("chat.postMessage", 0, 0)

	second := startServe(t, bin, e.env)
	// The fake Slack may still count the dead process's socket; the posts
	// are what matter.
	waitFor(t, ctx, fmt.Sprintf("all %d notices in the channel", notices), second, func() bool {
		return len(postedNotices(e.slack)) >= notices
	})
	second.stop(t)

	counts := map[string]int{}
	for _, m := range postedNotices(e.slack) {
		for i := range notices {
			if strings.Contains(string(m.Blocks), marker(i)) {
				counts[marker(i)]++
			}
		}
	}
	for i := range notices {
		if n := counts[marker(i)]; n != 1 {
			t.Errorf("%s was posted %d times, want once", marker(i), n)
		}
	}
	s, err := storage.Open(storage.Options{Path: e.db, Keys: [][]byte{opsKey("crash")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// What may be left is an item whose post is recorded but whose ack the
	// shutdown cut short: the next start drops it without posting.
	left, err := s.Outbox().Pending(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Outbox().Count(t.Context()); err != nil || n != len(left) {
		t.Errorf("outbox holds %d items, %v; %d of them due", n, err, len(left))
	}
	for _, it := range left {
		if !slices.Contains(it.Done, bottest.DefaultTeamID+":"+bottest.ChannelGeneral) {
			t.Errorf("outbox item %d is left unposted after the restart: %+v", it.ID, it)
		}
	}
	t.Logf("%d of %d notices were posted before the kill, the rest after the restart", before, notices)
}

// buildC66bot builds this package's binary, the one operators run.
func buildC66bot(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build c66bot: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "c66bot")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// prepareNoticeDB subscribes the general channel to shop:production and
// creates an API token allowed to notify, before the bot starts.
func prepareNoticeDB(t *testing.T, e *opsEnv) (token string) {
	t.Helper()
	s, err := storage.Open(storage.Options{Path: e.db, Keys: [][]byte{opsKey("crash")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Subscriptions().Subscribe(t.Context(), storage.Subscription{
		Team: bottest.DefaultTeamID, Channel: bottest.ChannelGeneral,
		StackUID: e.c66.StackUID("shop", "production"), StackName: "shop", Environment: "production",
		Events:     []string{"deploy.succeeded", "deploy.failed"},
		Subscriber: storage.Identity{Team: bottest.DefaultTeamID, User: "U0ANA"},
	}); err != nil {
		t.Fatal(err)
	}
	token, _, err = s.APITokens().Create(t.Context(), "crash", []string{"notify"})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// serveProcess is `c66bot serve` running as a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	logs   *syncWriter
	exited chan struct{}
	err    error // set before exited is closed
}

func startServe(t *testing.T, bin string, env map[string]string) *serveProcess {
	t.Helper()
	p := &serveProcess{cmd: exec.Command(bin, "serve"), logs: &syncWriter{}, exited: make(chan struct{})}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// kill SIGKILLs the process: no deferred code, no draining, no Close.
func (p *serveProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("serve was not killed: %v\n%s", p.err, p.logs.String())
	}
}

// stop asks the process to shut down as an operator does and waits.
func (p *serveProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM:\n%s", p.logs.String())
	}
	if p.err != nil {
		t.Fatalf("serve exited with %v:\n%s", p.err, p.logs.String())
	}
}

// waitFor polls cond until it holds; it fails the test when ctx ends or
// the process exits first.
func waitFor(t *testing.T, ctx context.Context, what string, p *serveProcess, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s:\n%s", what, p.logs.String())
		case <-p.exited:
			t.Fatalf("serve exited (%v) while waiting for %s:\n%s", p.err, what, p.logs.String())
		case <-tick.C:
		}
	}
}

// waitReady waits for the bot's /readyz to answer 200.
func waitReady(t *testing.T, ctx context.Context, addr string, p *serveProcess) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	waitFor(t, ctx, "/readyz", p, func() bool {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// postNotice sends one notice through POST /api/v1/notify and insists on
// the 202 that promises it will be posted.
func postNotice(t *testing.T, addr, token, text string, p *serveProcess) {
	t.Helper()
	body := fmt.Sprintf(`{"stack":"shop:production","event":"deploy.succeeded","text":%q}`, text)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/notify", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("notify: %v\n%s", err, p.logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notify %s: HTTP %d, want 202\n%s", text, resp.StatusCode, p.logs.String())
	}
}

// isNotice matches a crash test notice posted in the general channel.
func isNotice(m bottest.Message) bool {
	return m.Kind == bottest.KindPost && m.Channel == bottest.ChannelGeneral && strings.Contains(string(m.Blocks), "crash-notice-")
}

// postedNotices returns the crash test notices the fake Slack took, in order.
func postedNotices(s *bottest.Server) []bottest.Message {
	var out []bottest.Message
	for _, m := range s.PostsIn(bottest.ChannelGeneral) {
		if isNotice(m) {
			out = append(out, m)
		}
	}
	return out
}
