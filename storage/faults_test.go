package storage_test

// Faults below the bot: the process killed mid-write, and stores that may
// not be written.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/c66bot/c66bot/storage"
)

func faultKey() []byte {
	sum := sha256.Sum256([]byte("c66bot fault test key"))
	return sum[:]
}

// writerChild is the child half of TestKilledMidWriteLosesNothingCommitted:
// it writes audit entries and watches as fast as it can, from several
// goroutines, and prints each one to stdout only after its commit returned:
//
//	audit <seq> <detail>
//	watch <id> <stack>
//	save <id> <polls>
//
// It never stops on its own; the parent kills it with SIGKILL.
func writerChild() {
	s, err := storage.Open(storage.Options{Path: os.Getenv("C66_DB"), Keys: [][]byte{faultKey()}, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	round := os.Getenv("C66_ROUND")
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	ctx := context.Background()
	fail := func(what string, err error) {
		say("error %s: %v", what, err)
		os.Exit(4)
	}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				detail := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				e := storage.AuditEntry{Team: "T1", User: "U1", Action: "fault.append", Detail: detail}
				if g == 2 {
					// Big entries spill over pages and split them.
					e.Args = map[string]string{"pad": strings.Repeat("x", 6000+i%5000)}
				}
				saved, err := s.Audit().Append(ctx, e)
				if err != nil {
					fail("append", err)
				}
				say("audit %d %s", saved.Seq, detail)
			}
		})
	}
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				w, err := s.Watches().Start(ctx, storage.Watch{
					Owner:       storage.Identity{Team: "T1", User: "U1"},
					Channel:     "C1",
					ResponseURL: "https://hooks.slack.com/actions/T1/" + strconv.Itoa(i),
					StackUID:    fmt.Sprintf("stack-r%s-g%d-%d", round, g, i),
					StackName:   "shop",
					Environment: "production",
					Params:      map[string]string{"ref": "main"},
				})
				if err != nil {
					fail("start watch", err)
				}
				say("watch %s %s", w.ID, w.StackUID)
				for p := 1; p <= 4; p++ {
					w.Polls, w.State = p, "deploying"
					if p == 4 {
						w.State, w.FinishedAt = "succeeded", time.Now()
					}
					if err := s.Watches().Save(ctx, w); err != nil {
						fail("save watch", err)
					}
					say("save %s %d", w.ID, p)
				}
			}
		})
	}
	wg.Wait()
}

type childReport struct {
	audits map[uint64]string // seq → detail
	watch  map[string]string // id → stack
	polls  map[string]int    // id → last saved polls
}

// runWriter starts the writer on path, lets it report lines committed
// lines, SIGKILLs it, and returns everything it reported.
func runWriter(t *testing.T, path string, round, lines int, rep *childReport) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestKilledMidWriteLosesNothingCommitted$", "-test.count=1")
	cmd.Env = append(os.Environ(), "C66_CHILD=storage-writer", "C66_DB="+path, "C66_ROUND="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	n := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "audit":
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			if prev, dup := rep.audits[seq]; dup {
				t.Errorf("audit seq %d handed out twice (%s, %s)", seq, prev, f[2])
			}
			rep.audits[seq] = f[2]
		case len(f) == 3 && f[0] == "watch":
			rep.watch[f[1]] = f[2]
		case len(f) == 3 && f[0] == "save":
			p, _ := strconv.Atoi(f[2])
			rep.polls[f[1]] = max(rep.polls[f[1]], p)
		default:
			t.Errorf("round %d: child said %q", round, sc.Text())
		}
		if n++; n == lines && !killed {
			// SIGKILL: no deferred code, no Close, mid-transaction.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("round %d: the child ended on its own after %d lines: %v", round, n, err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys() == nil || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("round %d: the child was not killed: %v", round, err)
	}
}

// checkConsistent opens the file with bbolt alone and runs its consistency
// check over every page.
func checkConsistent(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("bbolt cannot open the file after a kill: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatalf("read transaction after a kill: %v", err)
	}
}

// A process SIGKILLed while it appends audit entries and saves watches
// leaves a consistent bbolt file, and everything it reported committed is
// there after reopening, round after round on the same file.
func TestKilledMidWriteLosesNothingCommitted(t *testing.T) {
	if os.Getenv("C66_CHILD") == "storage-writer" {
		writerChild()
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c66bot.db")
	rep := &childReport{audits: map[uint64]string{}, watch: map[string]string{}, polls: map[string]int{}}
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	for round := range rounds {
		runWriter(t, path, round, 150+rand.IntN(400), rep)
		checkConsistent(t, path)

		s, err := storage.Open(storage.Options{Path: path, Keys: [][]byte{faultKey()}})
		if err != nil {
			t.Fatalf("round %d: reopen after the kill: %v", round, err)
		}
		ctx := context.Background()
		found := map[uint64]string{}
		if err := s.Audit().Scan(ctx, time.Time{}, func(e storage.AuditEntry) error {
			found[e.Seq] = e.Detail
			return nil
		}); err != nil {
			t.Fatalf("round %d: scan audit: %v", round, err)
		}
		for seq, detail := range rep.audits {
			if got, ok := found[seq]; !ok {
				t.Errorf("round %d: committed audit entry %d (%s) is gone", round, seq, detail)
			} else if got != detail {
				t.Errorf("round %d: audit entry %d reads %q, was committed as %q", round, seq, got, detail)
			}
		}
		for id, stack := range rep.watch {
			w, err := s.Watches().Get(ctx, id)
			if err != nil {
				t.Errorf("round %d: committed watch %s is gone: %v", round, id, err)
				continue
			}
			if w.StackUID != stack {
				t.Errorf("round %d: watch %s is on %s, was saved on %s", round, id, w.StackUID, stack)
			}
			if w.Polls < rep.polls[id] {
				t.Errorf("round %d: watch %s has %d polls, %d were committed", round, id, w.Polls, rep.polls[id])
			}
		}
		// The store still takes writes where the dead process left off.
		if _, err := s.Audit().Append(ctx, storage.AuditEntry{Action: "after.kill"}); err != nil {
			t.Errorf("round %d: append after reopening: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds: %d audit entries, %d watches committed before the kills", rounds, len(rep.audits), len(rep.watch))
	if len(rep.audits) < 100 || len(rep.watch) < 5 {
		t.Errorf("the children reported only %d audit entries and %d watches", len(rep.audits), len(rep.watch))
	}
}

// A store opened read-only reads everything and refuses every write with
// ErrReadOnly, leaving the file as it was.
func TestReadOnlyStoreRefusesEveryWrite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c66bot.db")
	keys := [][]byte{faultKey()}
	ctx := context.Background()
	id := storage.Identity{Team: "T1", User: "U1"}

	rw, err := storage.Open(storage.Options{Path: path, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Links().Save(ctx, storage.Link{Identity: id, AccessToken: "tok", Scopes: []string{"public"}, LinkedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Audit().Append(ctx, storage.AuditEntry{Action: "deploy"}); err != nil {
		t.Fatal(err)
	}
	w, err := rw.Watches().Start(ctx, storage.Watch{Owner: id, StackUID: "s1", StackName: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	rw.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ro, err := storage.Open(storage.Options{Path: path, Keys: keys, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Links().Get(ctx, id); err != nil {
		t.Errorf("read-only GetLink: %v", err)
	}
	if _, err := ro.Watches().Get(ctx, w.ID); err != nil {
		t.Errorf("read-only GetWatch: %v", err)
	}
	if err := ro.Ping(ctx); err != nil {
		t.Errorf("read-only Ping: %v", err)
	}

	w.Polls = 9
	writes := map[string]func() error{
		"AppendAudit": func() error { _, err := ro.Audit().Append(ctx, storage.AuditEntry{Action: "x"}); return err },
		"SaveLink": func() error {
			return ro.Links().Save(ctx, storage.Link{Identity: id, AccessToken: "t2", LinkedAt: time.Now()})
		},
		"DeleteLink": func() error { _, err := ro.Links().Delete(ctx, id); return err },
		"CreateLoginState": func() error {
			_, err := ro.Logins().Create(ctx, storage.PendingLogin{Identity: id, Verifier: strings.Repeat("v", 43),
				RedirectURL: "https://bot/oauth/callback", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
			return err
		},
		"StartWatch": func() error {
			_, err := ro.Watches().Start(ctx, storage.Watch{Owner: id, StackUID: "s2"})
			return err
		},
		"SaveWatch": func() error { return ro.Watches().Save(ctx, w) },
		"AcquireLock": func() error {
			_, _, err := ro.Locks().Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s1", Owner: id, Since: time.Now()})
			return err
		},
		"Subscribe": func() error {
			_, _, err := ro.Subscriptions().Subscribe(ctx, storage.Subscription{Team: "T1", Channel: "C1", StackUID: "s1", Subscriber: id, Events: []string{"deploy.succeeded"}})
			return err
		},
		"CreateAPIToken": func() error { _, _, err := ro.APITokens().Create(ctx, "ci", []string{"notify"}); return err },
		"FirstTime":      func() error { _, err := ro.Dedup().FirstTime(ctx, "k", time.Minute); return err },
		"EnqueueOutbox":  func() error { _, err := ro.Outbox().Enqueue(ctx, "notify", []byte("{}")); return err },
		"MarkOutboxDone": func() error { return ro.Outbox().MarkDone(ctx, 1, "T1:C1", "k", time.Minute) },
		"SweepExpired":   func() error { _, err := ro.SweepExpired(ctx); return err },
	}
	// Audited writes say the audit log is why: on a full disk or a
	// read-only file the change is refused for want of its entry.
	entry := storage.AuditEntry{Team: "T1", User: "U1", Action: "test"}
	audited := map[string]func() error{
		"StartWatch audited": func() error {
			_, err := ro.Watches().Start(ctx, storage.Watch{Owner: id, StackUID: "s2"}, entry)
			return err
		},
		"AcquireLock audited": func() error {
			_, _, err := ro.Locks().Acquire(ctx, storage.Lock{Team: "T1", StackUID: "s1", Owner: id}, entry)
			return err
		},
		"SaveLink audited": func() error {
			return ro.Links().Save(ctx, storage.Link{Identity: id, AccessToken: "t2"}, entry)
		},
	}
	for name, write := range audited {
		if err := write(); !errors.Is(err, storage.ErrNotAudited) || !errors.Is(err, storage.ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrNotAudited and ErrReadOnly", name, err)
		}
		writes[name] = write
	}
	for name, write := range writes {
		done := make(chan error, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- fmt.Errorf("panic: %v", r)
				}
			}()
			done <- write()
		}()
		select {
		case err := <-done:
			if !errors.Is(err, storage.ErrReadOnly) {
				t.Errorf("%s on a read-only store: %v, want ErrReadOnly", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s on a read-only store hangs", name)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("the read-only store changed the file")
	}
}
