package commands

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

func (f *fakeDeployer) LockFor(_ context.Context, o deploy.Origin, st cloud66.Stack, reason string, d time.Duration) (deploy.LockResult, error) {
	return deploy.LockResult{Lock: storage.Lock{StackName: st.Name, Environment: st.Environment, Owner: o.Identity, Reason: reason,
		Since: testNow, Expires: testNow.Add(d)}}, f.recordCall(deployCall{Method: "LockFor " + d.String(), Origin: o, Stack: stackName(st)})
}

func (f *fakeDeployer) WaitForLock(_ context.Context, id string, by storage.Identity, kind storage.WaitKind) (storage.Lock, error) {
	return storage.Lock{StackName: "shop", Environment: "staging", Owner: storage.Identity{Team: "T1", User: "U9"},
		Expires: testNow.Add(time.Hour)}, f.recordCall(deployCall{Method: "WaitForLock " + string(kind), IntentID: id, Origin: deploy.Origin{Identity: by}})
}

func TestParseLockArgs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		words   string
		want    LockArgs
		problem string
	}{
		{words: "shop", want: LockArgs{Stack: "shop"}},
		{words: "shop release freeze", want: LockArgs{Stack: "shop", Reason: "release freeze"}},
		{words: "shop for=2h migrating", want: LockArgs{Stack: "shop", For: 2 * time.Hour, Reason: "migrating"}},
		{words: "shop:production FOR=30m", want: LockArgs{Stack: "shop:production", For: 30 * time.Minute}},
		{words: "shop for=1d", want: LockArgs{Stack: "shop", For: 24 * time.Hour}},
		{words: "shop for=1d12h x", want: LockArgs{Stack: "shop", For: 36 * time.Hour, Reason: "x"}},
		{words: "shop for=1h30m", want: LockArgs{Stack: "shop", For: 90 * time.Minute}},
		{words: "shop for=7d", want: LockArgs{Stack: "shop", For: 7 * 24 * time.Hour}},
		{words: "shop for=1m", want: LockArgs{Stack: "shop", For: time.Minute}},
		// for= counts only right after the stack: a reason says anything.
		{words: "shop waiting for=ever x=1", want: LockArgs{Stack: "shop", Reason: "waiting for=ever x=1"}},
		{words: "", problem: "Which stack?"},
		{words: "shop for=", problem: lockForProblem},
		{words: "shop for=2", problem: lockForProblem},
		{words: "shop for=8d", problem: lockForProblem},
		{words: "shop for=30s", problem: lockForProblem},
		{words: "shop for=-2h", problem: lockForProblem},
		{words: "shop for=d", problem: lockForProblem},
		{words: "shop for=1d-1h", problem: lockForProblem},
		{words: "shop for=soon", problem: lockForProblem},
		{words: "shop for=2h " + strings.Repeat("x", maxLockReason+1), problem: "The reason is longer than 200 characters."},
	} {
		t.Run(tt.words, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLockArgs(strings.Fields(tt.words))
			if tt.problem != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || ue.Problem != tt.problem {
					t.Fatalf("ParseLockArgs = %+v, %v; want the usage problem %q", got, err, tt.problem)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLockArgs = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzParseLockArgs: any words never panic; an accepted for= is within
// the bounds, and a refusal is a usage error shown safely.
func FuzzParseLockArgs(f *testing.F) {
	for _, s := range []string{"shop for=2h migrating", "shop for=1d", "shop for=1d12h", "shop FOR=30m x=y", "shop for=8d",
		"shop for=-1h", "shop for=255d", "shop for=1e3h", "shop for=dd", "shop for=0", `"" for=1h`, "s for=1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		got, err := ParseLockArgs(words)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: non-usage error %v", words, err)
			}
			return
		}
		if got.For != 0 && (got.For < deploy.MinLockFor || got.For > deploy.MaxLockFor) {
			t.Fatalf("%q: accepted for=%s", words, got.For)
		}
		if got.Stack == "" {
			t.Fatalf("%q: accepted without a stack", words)
		}
	})
}

// `lock … for=2h` asks for a lock that lasts and says until when; a bad
// duration is a usage reply and locks nothing.
func TestLockForReplies(t *testing.T) {
	t.Parallel()
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
	d := &fakeDeployer{}
	r := routerWith(t, true, c66, d)
	req := ana
	req.Text = "lock shop:production for=2h migrating"
	reply := r.Dispatch(t.Context(), req)
	until := testNow.Add(2 * time.Hour)
	want := ":lock: <@" + ana.UserID + "> locked *shop* · production until <!date^" + strconv.FormatInt(until.Unix(), 10) + "^{time}|2026-11-23 14:00 UTC>: migrating. Nobody else can deploy it until then, or until `/c66 unlock shop:production`."
	if got := replyText(t, reply); !strings.Contains(got, want) || !reply.InChannel {
		t.Errorf("lock for=2h reply (in channel %v):\n%s\nwant %q", reply.InChannel, got, want)
	}
	if calls := d.verbCalls(); len(calls) != 1 || calls[0].Method != "LockFor 2h0m0s" {
		t.Errorf("calls = %+v, want one LockFor 2h", calls)
	}

	req.Text = "lock shop:production for=9d"
	reply = r.Dispatch(t.Context(), req)
	if got := replyText(t, reply); !strings.Contains(got, lockForProblem) || reply.InChannel {
		t.Errorf("lock for=9d reply:\n%s", got)
	}
	if calls := d.verbCalls(); len(calls) != 1 {
		t.Errorf("a bad for= still locked: %+v", calls)
	}
}

// `locks` and `stack` show until when a lock lasts.
func TestLocksShowUntil(t *testing.T) {
	t.Parallel()
	locks := testLocks()[:1]
	locks[0].Expires = testNow.Add(90 * time.Minute)
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
	r := routerWith(t, true, c66, &lockDeployer{fakeDeployer: &fakeDeployer{}, locks: locks})
	until := "until <!date^" + strconv.FormatInt(locks[0].Expires.Unix(), 10) + "^{time}|2026-11-23 13:30 UTC>"
	for _, text := range []string{"locks", "stack shop:production"} {
		req := ana
		req.Text = text
		if got := replyText(t, r.Dispatch(t.Context(), req)); !strings.Contains(got, "<@U9> 2 h ago "+until+": release freeze") {
			t.Errorf("%s reply lacks the expiry:\n%s", text, got)
		}
	}
}

// A deploy refused by someone else's lock offers both waits, on buttons
// whose value is the parked intent's id and nothing else; a refusal with
// nothing parked (lock, or the store failing) offers none.
func TestLockedReplyOffersToWait(t *testing.T) {
	t.Parallel()
	l := storage.Lock{StackName: "shop", Environment: "staging", Owner: storage.Identity{Team: "T1", User: "U9"},
		Since: testNow.Add(-time.Hour), Expires: testNow.Add(time.Hour), Reason: "migrating"}
	for _, tt := range []struct {
		name    string
		err     *deploy.LockedError
		buttons []string
	}{
		{"deploy", &deploy.LockedError{Lock: l, WaitIntentID: "in-7f3a", Verb: deploy.VerbDeploy}, []string{"Tell me when it's free", "Deploy when it's free"}},
		{"restart", &deploy.LockedError{Lock: l, WaitIntentID: "in-7f3a", Verb: deploy.VerbRestart}, []string{"Tell me when it's free", "Restart when it's free"}},
		{"nothing parked", &deploy.LockedError{Lock: l}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
			r := routerWith(t, true, c66, &fakeDeployer{err: tt.err})
			req := ana
			req.Text = "deploy shop:staging"
			reply := r.Dispatch(t.Context(), req)
			got := replyText(t, reply)
			if reply.InChannel || !strings.Contains(got, ":lock: *shop* · staging is locked by <@U9> 1 h ago until <!date^") || !strings.Contains(got, ": migrating. Ask them") {
				t.Errorf("refusal (in channel %v):\n%s", reply.InChannel, got)
			}
			var labels []string
			for _, b := range reply.Blocks {
				ab, ok := b.(*slack.ActionBlock)
				if !ok {
					continue
				}
				for _, el := range ab.Elements.ElementSet {
					btn := el.(*slack.ButtonBlockElement)
					labels = append(labels, btn.Text.Text)
					if btn.Value != "in-7f3a" {
						t.Errorf("button %q carries %q, want only the intent id", btn.Text.Text, btn.Value)
					}
					if _, ok := r.table.interaction(btn.ActionID); !ok {
						t.Errorf("button %q (%s) has no interaction", btn.Text.Text, btn.ActionID)
					}
				}
			}
			if strings.Join(labels, "|") != strings.Join(tt.buttons, "|") {
				t.Errorf("buttons = %q, want %q", labels, tt.buttons)
			}
		})
	}
}

// Pressing a wait button queues the presser for that intent, and says
// what happens next, to them only.
func TestLockWaitButtons(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		action string
		kind   storage.WaitKind
		want   string
	}{
		{ActionLockNotify, storage.WaitNotify, ":bell: I'll DM you when *shop* · staging is free (<@U9>'s lock until <!date^"},
		{ActionLockQueue, storage.WaitDeploy, ":hourglass: Queued: when *shop* · staging is free (<@U9>'s lock until <!date^"},
	} {
		t.Run(tt.action, func(t *testing.T) {
			t.Parallel()
			d := &fakeDeployer{}
			r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()}, func(deps *Deps) { deps.Deploy = d })
			reply, handled := r.HandleAction(t.Context(), press(tt.action))
			if !handled || reply.Replace || reply.InChannel || !strings.Contains(replyText(t, reply.Message), tt.want) {
				t.Fatalf("press %s = %+v (handled %v), want %q", tt.action, reply, handled, tt.want)
			}
			calls := d.verbCalls()
			if len(calls) != 1 || calls[0].Method != "WaitForLock "+string(tt.kind) || calls[0].IntentID != "intent-1" ||
				calls[0].Origin.Identity != (storage.Identity{Team: "T1", User: "U1"}) {
				t.Errorf("WaitForLock calls = %+v", calls)
			}
		})
	}
	// A refused press goes through the error table.
	d := &fakeDeployer{err: deploy.ErrNotYours}
	r, _ := newTestRouter(t, true, &fakeCloud66{stacks: testStacks()}, func(deps *Deps) { deps.Deploy = d })
	reply, _ := r.HandleAction(t.Context(), press(ActionLockQueue))
	if got := replyText(t, reply.Message); !strings.Contains(got, "This button belongs to the person who asked for it") {
		t.Errorf("someone else's press:\n%s", got)
	}
}

// Re-locking one's own lock for longer says until when it now lasts.
func TestRelockForLongerReply(t *testing.T) {
	t.Parallel()
	u1 := storage.Identity{Team: "T1", User: "U1"}
	since, until := testNow.Add(-time.Hour), testNow.Add(3*time.Hour)
	c66 := &countingCloud66{fakeCloud66: &fakeCloud66{stacks: testStacks()}}
	r := routerWith(t, true, c66, &relockDeployer{lockDeployer{fakeDeployer: &fakeDeployer{}, lock: deploy.LockResult{
		Lock:        storage.Lock{StackName: "shop", Environment: "production", Owner: u1, Since: since, Reason: "migrating", Expires: until},
		AlreadyHeld: true, PreviousReason: "migrating", PreviousExpires: testNow.Add(time.Hour)}}})
	req := ana
	req.Text = "lock shop:production for=3h"
	reply := r.Dispatch(t.Context(), req)
	want := ":lock: <@U1> still holds the lock on *shop* · production (since <!date^" + strconv.FormatInt(since.Unix(), 10) +
		"^{date_short_pretty} {time}|2026-11-23 11:00 UTC>), now until <!date^" + strconv.FormatInt(until.Unix(), 10) +
		"^{time}|2026-11-23 15:00 UTC>: migrating. Nobody else can deploy it until then"
	if got := replyText(t, reply); !strings.Contains(got, want) || !reply.InChannel {
		t.Errorf("re-lock for longer (in channel %v):\n%s\nwant %q", reply.InChannel, got, want)
	}
}

// relockDeployer answers LockFor with its lock result.
type relockDeployer struct{ lockDeployer }

func (d *relockDeployer) LockFor(context.Context, deploy.Origin, cloud66.Stack, string, time.Duration) (deploy.LockResult, error) {
	return d.lock, d.record("LockFor")
}
