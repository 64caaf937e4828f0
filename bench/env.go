package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/c66bot/c66bot/app"
	"github.com/c66bot/c66bot/app/apptest"
	"github.com/c66bot/c66bot/bot/bottest"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// benchTeam is the workspace of every seeded person: the fake Slack's own,
// so slash commands it sends map to the seeded identities.
const benchTeam = bottest.DefaultTeamID

// person is the Slack user id of the i-th seeded person. Slack user ids
// start with U; users.info in the fake accepts any such id.
func person(i int) string { return fmt.Sprintf("UB%07d", i) }

func newKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

// tempDir is a short directory: the bot's admin socket (<db>.sock) must fit
// a Unix socket path.
func tempDir(parent string) (string, error) {
	return os.MkdirTemp(parent, "c66b")
}

// seedSpec is what a database is filled with before the bot opens it:
// bbolt allows one opener, so seeding happens first, with the same key.
type seedSpec struct {
	people        int // linked people, person(0) … person(people-1)
	watches       int // active watches on stacks watchStack(i)
	subscriptions int // subscriptions of channel subChannel(i) to a real stack
	now           func() time.Time
}

// watchStackPrefix names stacks the fake Cloud 66 does not have; a fault
// on this prefix keeps their watches alive (see the memory scenario).
const watchStackPrefix = "benchwatch"

func watchStack(i int) string { return fmt.Sprintf("%s%05d", watchStackPrefix, i) }

func subChannel(i int) string { return fmt.Sprintf("CB%07d", i) }

// benchLink is the link of person(i), with a token of its own from c66 as
// Cloud 66's default user, who sees every stack.
func benchLink(c66 *cloud66test.Server, i int) storage.Link {
	return storage.Link{
		Identity:    storage.Identity{Team: benchTeam, User: person(i)},
		AccessToken: c66.IssueToken(cloud66test.DefaultUser),
		TokenType:   "Bearer",
		Scopes:      []string{"public", "redeploy"},
		Account:     "Acme",
	}
}

// seed fills a new database at path. Every person gets a token of their
// own from c66 (as Cloud 66's default user, who sees every stack), sealed
// with key. It returns the file size after closing.
func seed(path string, key []byte, c66 *cloud66test.Server, sp seedSpec) (int64, error) {
	ctx := context.Background()
	st, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{key}, Now: sp.now})
	if err != nil {
		return 0, err
	}
	closeErr := func(err error) (int64, error) {
		_ = st.Close()
		return 0, err
	}
	for i := range sp.people {
		if err := st.Links().Save(ctx, benchLink(c66, i)); err != nil {
			return closeErr(err)
		}
	}
	for i := range sp.watches {
		_, err := st.Watches().Start(ctx, storage.Watch{
			Owner:         storage.Identity{Team: benchTeam, User: person(i % max(sp.people, 1))},
			Channel:       bottest.ChannelGeneral,
			StackUID:      watchStack(i),
			StackName:     watchStack(i),
			Environment:   "production",
			Params:        map[string]string{"ref": "main"},
			UserReference: fmt.Sprintf("c66bot-bench-%05d", i),
			ActionID:      int64(900000 + i),
			DeploymentID:  int64(800000 + i),
			State:         storage.WatchDeploying,
		})
		if err != nil {
			return closeErr(err)
		}
	}
	if sp.subscriptions > 0 {
		stacks := c66.Stacks()
		for i := range sp.subscriptions {
			s := stacks[i%len(stacks)]
			_, _, err := st.Subscriptions().Subscribe(ctx, storage.Subscription{
				Team:        benchTeam,
				Channel:     subChannel(i),
				StackUID:    s.UID,
				StackName:   s.Name,
				Environment: s.Environment,
				Events:      []string{"deploy.succeeded", "deploy.failed"},
				Subscriber:  storage.Identity{Team: benchTeam, User: person(i % max(sp.people, 1))},
			})
			if err != nil {
				return closeErr(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// dbUsed is how much of a bbolt file holds pages (its high-water mark):
// bbolt grows the file itself in power-of-two steps (up to 1 GiB), so the
// file size alone overstates what the data needs.
func dbUsed(path string) (int64, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bbolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}

// logSink counts the bot's log lines at warn and above and keeps the first
// few, so a run that went wrong says why.
type logSink struct {
	mu    sync.Mutex
	lines int
	first []string
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.SplitSeq(strings.TrimSpace(string(p)), "\n") {
		l.lines++
		if len(l.first) < 5 {
			l.first = append(l.first, line)
		}
	}
	return len(p), nil
}

func (l *logSink) summary() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, slices.Clone(l.first)
}

// inproc is the real bot (bot.New + Run, what `c66bot serve` runs) in this
// process, against a fake Slack and a fake Cloud 66 also in this process.
type inproc struct {
	slack *bottest.Server
	c66   *cloud66test.Server
	dir   string
	logs  *logSink

	cancel context.CancelFunc
	done   chan error
}

type inprocOptions struct {
	parentDir string
	people    int
	clock     *cloud66test.Clock // nil: real time
	c66Opts   []cloud66test.Option
	poll      deploy.PollConfig
}

func startInproc(o inprocOptions) (_ *inproc, err error) {
	e := &inproc{logs: &logSink{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = tempDir(o.parentDir); err != nil {
		return nil, err
	}
	now := time.Now
	c66Opts := o.c66Opts
	if o.clock != nil {
		now = o.clock.Now
		c66Opts = append(slices.Clone(c66Opts), cloud66test.WithClock(o.clock))
	}
	e.slack = bottest.New()
	e.slack.SetChatWritePublic(true)
	e.c66 = cloud66test.New(c66Opts...)
	key := newKey()
	db := filepath.Join(e.dir, "c66bot.db")
	if _, err := seed(db, key, e.c66, seedSpec{people: o.people, now: now}); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	settings := apptest.Settings(e.slack, e.c66, "")
	settings.DB = db
	cfg := app.Config{
		Settings: settings,
		Listener: ln,
		Keys:     [][]byte{key},
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Tuning:   app.Tuning{ShutdownTimeout: 5 * time.Second, Poll: o.poll},
	}
	if o.clock != nil {
		cfg.Now = o.clock.Now
	}
	b, err := app.New(cfg)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("app.New: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- b.Run(ctx) }()
	if err := waitConnected(e.slack, 15*time.Second); err != nil {
		return nil, fmt.Errorf("the bot never connected to the fake Slack: %w", err)
	}
	return e, nil
}

func waitConnected(s *bottest.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.WaitConnected(ctx, 1)
}

// close stops the bot (waiting for Run) and the fakes.
func (e *inproc) close() error {
	var err error
	if e.cancel != nil {
		e.cancel()
		select {
		case err = <-e.done:
		case <-time.After(20 * time.Second):
			err = errors.New("the bot did not stop within 20s")
		}
		e.cancel = nil
	}
	if e.slack != nil {
		e.slack.Close()
	}
	if e.c66 != nil {
		e.c66.Close()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
	return err
}

// ---------------------------------------------------------------------------
// The bot as a child process

// buildBot builds cmd/c66bot into dir, unless a binary was given.
func buildBot(ctx context.Context, given, dir string) (string, error) {
	if given != "" {
		return given, nil
	}
	out := filepath.Join(dir, "c66bot")
	// Built as the Dockerfile builds the released binary: static (no libc
	// mapped, about 2 MB less resident) and without the symbol table.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/c66bot/c66bot/cmd/c66bot")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/c66bot: %w\n%s", err, stderr.String())
	}
	return out, nil
}

// child is `c66bot serve` running in its own process, configured through
// the environment as an operator would, talking to fakes in this process.
type child struct {
	// addr is the child's HTTP listener (host:port), for /metrics.
	addr    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan error

	stopOnce sync.Once
	stopErr  error
}

// settingsEnv are the variables cmd/c66bot reads; any the caller's
// environment has are dropped so only the benchmark's apply.
var settingsEnv = []string{
	"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_API_URL", "CLOUD66_CLIENT_ID", "CLOUD66_CLIENT_SECRET",
	"CLOUD66_URL", "CLOUD66_SCOPES", "C66BOT_PUBLIC_URL", "C66BOT_LISTEN", "C66BOT_DB", "C66BOT_SECRET_KEY",
	"C66BOT_COMMAND", "C66BOT_POLICY", "C66BOT_LOG_LEVEL", "C66BOT_LOG_FORMAT",
}

// seededChild is the built bot as a child process on a database seeded
// with people linked people, against fakes of its own, its socket up.
type seededChild struct {
	*child
	sl  *bottest.Server
	c66 *cloud66test.Server
}

// startSeededChild starts one; close stops the bot and the fakes.
func startSeededChild(o *options, bin string, people int) (*seededChild, error) {
	dir, err := tempDir(o.tmp)
	if err != nil {
		return nil, err
	}
	sc := &seededChild{sl: bottest.New(), c66: cloud66test.New()}
	key := newKey()
	db := filepath.Join(dir, "c66bot.db")
	if _, err := seed(db, key, sc.c66, seedSpec{people: people}); err != nil {
		sc.close()
		return nil, fmt.Errorf("seed: %w", err)
	}
	if sc.child, err = startChild(bin, sc.sl, sc.c66, db, key); err != nil {
		sc.close()
		return nil, err
	}
	if err := sc.waitConnected(sc.sl, 20*time.Second); err != nil {
		sc.close()
		return nil, err
	}
	return sc, nil
}

func (sc *seededChild) close() {
	if sc.child != nil {
		_ = sc.stop() // a failed stop is reported by whoever reads its log
	}
	sc.c66.Close()
	sc.sl.Close()
}

func startChild(bin string, sl *bottest.Server, c66 *cloud66test.Server, db string, key []byte) (*child, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(settingsEnv, k)
	})
	env = append(env,
		"SLACK_APP_TOKEN="+sl.AppToken,
		"SLACK_BOT_TOKEN="+sl.BotToken,
		"SLACK_API_URL="+sl.APIURL(),
		"CLOUD66_URL="+c66.URL,
		"CLOUD66_CLIENT_ID="+c66.ClientID,
		"CLOUD66_CLIENT_SECRET="+c66.ClientSecret,
		"C66BOT_LISTEN="+addr,
		"C66BOT_DB="+db,
		"C66BOT_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"C66BOT_LOG_LEVEL=warn",
		"C66BOT_LOG_FORMAT=json",
	)
	logPath := db + ".log"
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &child{addr: addr, cmd: cmd, logPath: logPath, logFile: f, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitConnected waits for the child's Socket Mode connection, failing early
// if the child exits.
func (c *child) waitConnected(sl *bottest.Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- sl.WaitConnected(ctx, 1) }()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("the bot never connected: %w; its log:\n%s", err, c.logTail())
		}
		return nil
	case err := <-c.done:
		c.done <- err
		return fmt.Errorf("the bot exited at start (%v); its log:\n%s", err, c.logTail())
	}
}

// stop sends SIGTERM (what a supervisor does) and waits; after 30 s it
// kills. Later calls return the first call's result.
func (c *child) stop() error {
	c.stopOnce.Do(func() {
		defer c.logFile.Close()
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-c.done:
			c.done <- err
			c.stopErr = err
		case <-time.After(30 * time.Second):
			_ = c.cmd.Process.Kill()
			err := <-c.done
			c.done <- err
			c.stopErr = fmt.Errorf("the bot did not stop within 30s after SIGTERM")
		}
	})
	return c.stopErr
}

// logTail is the end of the child's log.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// logCounts counts the child's warn and error lines.
func (c *child) logCounts() (warn, errs int) {
	f, err := os.Open(c.logPath)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, `"level":"WARN"`):
			warn++
		case strings.Contains(line, `"level":"ERROR"`):
			errs++
		}
	}
	return warn, errs
}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat, which
// counts every thread, including ones that have exited. Its resolution is
// one clock tick (USER_HZ, 100 on Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/pid/stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/pid/stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc/pid/stat format")
	}
	const userHZ = 100
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads the memory lines of /proc/<pid>/status, in kB.
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseStatus(f)
}

func parseStatus(r io.Reader) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Vm") && !strings.HasPrefix(k, "Rss") && k != "Threads" {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	if len(out) == 0 {
		return nil, errors.New("no memory lines in /proc/pid/status")
	}
	return out, sc.Err()
}

// freeAddr is a loopback address with a port free a moment ago, for a
// child's listener whose port the benchmark must know.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// metric reads one counter or gauge (no labels) from the child's /metrics.
func (c *child) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + c.addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s not in /metrics", name)
}
