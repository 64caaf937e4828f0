package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/chat"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// refusedByLock deploys stack as who and returns the lock refusal, with
// its wait offer.
func refusedByLock(t *testing.T, svc *deploy.Service, who storage.Identity, channel, request string, stack cloud66.Stack) *deploy.LockedError {
	t.Helper()
	_, err := svc.Deploy(t.Context(), origin(who, channel, request), stack, deploy.Params{Ref: "main"})
	le, ok := errors.AsType[*deploy.LockedError](err)
	if !ok {
		t.Fatalf("Deploy by %s = %v, want a *LockedError", who.User, err)
	}
	if le.WaitIntentID == "" || le.Verb != deploy.VerbDeploy {
		t.Fatalf("lock refusal %+v offers no wait", le)
	}
	return le
}

// dmsTo returns the texts of the DMs to who.
func dmsTo(e *env, who storage.Identity) []string {
	var out []string
	for _, c := range e.Slack.Calls("dm") {
		if c.To == who {
			out = append(out, c.Text())
		}
	}
	return out
}

func countContaining(texts []string, s string) int {
	n := 0
	for _, x := range texts {
		if strings.Contains(x, s) {
			n++
		}
	}
	return n
}

func TestWaitForLockIsTheRefusedPersonsAndNeedsALock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l1"), shop, "migrating"); err != nil {
		t.Fatal(err)
	}
	le := refusedByLock(t, e.svc, ben, "C1", "r1", shop)

	if _, err := e.svc.WaitForLock(ctx, le.WaitIntentID, dan, storage.WaitNotify); !errors.Is(err, deploy.ErrNotYours) {
		t.Errorf("WaitForLock by someone else = %v, want ErrNotYours", err)
	}
	if _, err := e.svc.WaitForLock(ctx, "no-such-intent", ben, storage.WaitNotify); !errors.Is(err, deploy.ErrIntentGone) {
		t.Errorf("WaitForLock of an unknown id = %v, want ErrIntentGone", err)
	}
	// Both buttons of one refusal work, twice each, and queue once each.
	for range 2 {
		for _, k := range []storage.WaitKind{storage.WaitNotify, storage.WaitDeploy} {
			l, err := e.svc.WaitForLock(ctx, le.WaitIntentID, ben, k)
			if err != nil || l.Owner != ana {
				t.Fatalf("WaitForLock(%s) = %+v, %v; want ana's lock", k, l, err)
			}
		}
	}
	l, err := e.Store.Locks().Get(ctx, "T1", shop.UID)
	if err != nil || len(l.Waiters) != 2 || l.Waiters[1].Params["ref"] != "main" {
		t.Fatalf("lock's waiters = %+v, %v; want ben's two waits, the deploy of main", l.Waiters, err)
	}
	if !auditHas(t, e.Store, "lock.wait", "waiting") {
		t.Error("wait not audited")
	}

	if _, err := e.svc.Unlock(ctx, origin(ana, "C1", "u1"), shop); err != nil {
		t.Fatal(err)
	}
	var nl *deploy.NotLockedError
	if _, err := e.svc.WaitForLock(ctx, le.WaitIntentID, ben, storage.WaitNotify); !errors.As(err, &nl) {
		t.Errorf("WaitForLock on a free stack = %v, want *NotLockedError", err)
	}
}

func TestUnlockTellsWaitersAndRunsTheFirstQueuedDeployOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l1"), shop, "migrating"); err != nil {
		t.Fatal(err)
	}
	benWait := refusedByLock(t, e.svc, ben, "C1", "r1", shop)
	danWait := refusedByLock(t, e.svc, dan, "C2", "r2", shop)
	eveWait := refusedByLock(t, e.svc, eve, "C3", "r3", shop)
	for _, w := range []struct {
		id   string
		who  storage.Identity
		kind storage.WaitKind
	}{
		{benWait.WaitIntentID, ben, storage.WaitNotify},
		{benWait.WaitIntentID, ben, storage.WaitDeploy},
		{danWait.WaitIntentID, dan, storage.WaitDeploy},
		{eveWait.WaitIntentID, eve, storage.WaitNotify},
	} {
		if _, err := e.svc.WaitForLock(ctx, w.id, w.who, w.kind); err != nil {
			t.Fatal(err)
		}
	}
	before := e.posts()

	if _, err := e.svc.Unlock(ctx, origin(ana, "C1", "u1"), shop); err != nil {
		t.Fatal(err)
	}

	free := "*shop* · staging is free: <@UANA> unlocked it."
	for _, who := range []storage.Identity{ben, eve} {
		if got := dmsTo(e, who); countContaining(got, free) != 1 {
			t.Errorf("DMs to %s = %q, want one saying %q", who.User, got, free)
		}
	}
	if got := e.posts() - before; got != 1 {
		t.Fatalf("%d deploys sent after the unlock, want ben's one", got)
	}
	w, err := e.Store.Watches().ActiveForStack(ctx, shop.UID)
	if err != nil || w.Owner != ben || w.Channel != "C1" || w.MessageTS == "" || w.Params["ref"] != "main" {
		t.Fatalf("active watch = %+v, %v; want ben's deploy of main with its card in C1", w, err)
	}
	if posts := e.Slack.Posts("C1"); len(posts) == 0 || !strings.Contains(posts[len(posts)-1].Text(), "shop") {
		t.Errorf("no card posted in C1: %+v", posts)
	}
	if got := dmsTo(e, ben); countContaining(got, "your queued deploy started") != 1 {
		t.Errorf("DMs to ben = %q, want one saying his queued deploy started", got)
	}
	if got := dmsTo(e, dan); countContaining(got, "<@UBEN>'s queued deploy goes first, so yours did not start") != 1 {
		t.Errorf("DMs to dan = %q, want one saying ben's went first", got)
	}
	// One-shot: the next lock on the stack has nobody waiting, and its
	// release tells nobody.
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l2"), shop, ""); err != nil {
		t.Fatal(err)
	}
	dms := len(e.Slack.Calls("dm"))
	if _, err := e.svc.Unlock(ctx, origin(ana, "C1", "u2"), shop); err != nil {
		t.Fatal(err)
	}
	if got := len(e.Slack.Calls("dm")); got != dms {
		t.Errorf("the second unlock sent %d DMs, want none", got-dms)
	}
}

// freezeStagingFrom11 freezes staging deploys from 11:00 to 13:00 on t0's
// Tuesday.
const freezeStagingFrom11 = `
freeze:
  - name: release
    from: "Tue 11:00"
    to: "Tue 13:00"
    timezone: UTC
    environments: [staging]
`

func TestQueuedDeployRechecksThePolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(freezeStagingFrom11))
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l1"), shop, ""); err != nil {
		t.Fatal(err)
	}
	le := refusedByLock(t, e.svc, ben, "C1", "r1", shop)
	if _, err := e.svc.WaitForLock(ctx, le.WaitIntentID, ben, storage.WaitDeploy); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(90 * time.Minute) // the freeze has begun
	before := e.posts()
	if _, err := e.svc.Unlock(ctx, origin(ana, "C1", "u1"), shop); err != nil {
		t.Fatal(err)
	}
	if got := e.posts() - before; got != 0 {
		t.Errorf("%d deploys sent into a freeze", got)
	}
	if got := dmsTo(e, ben); countContaining(got, "did not start: deploys are frozen (*release*)") != 1 {
		t.Errorf("DMs to ben = %q, want one saying the freeze stopped it", got)
	}
}

func TestQueuedDeployToProductionAsksAgainByDM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var rendered *deploy.Confirmation
	svc := deploy.New(deploy.Config{
		Stores: storesOf(e.Store), Cloud66For: e.client, Slack: e.Slack, Cloud66URL: e.C66.URL, Command: "/c66",
		Now: e.Clock.Now, Poll: fastPoll,
		RenderConfirmation: func(cf *deploy.Confirmation) chat.Message {
			rendered = cf
			return chat.Message{Text: "confirm " + cf.IntentID, InChannel: true}
		},
	})
	shop := e.stack("shop", "production")
	if _, err := svc.Lock(ctx, origin(ana, "C1", "l1"), shop, ""); err != nil {
		t.Fatal(err)
	}
	le := refusedByLock(t, svc, dan, "C1", "r1", shop)
	if _, err := svc.WaitForLock(ctx, le.WaitIntentID, dan, storage.WaitDeploy); err != nil {
		t.Fatal(err)
	}
	before := e.posts()
	if _, err := svc.Unlock(ctx, origin(ana, "C1", "u1"), shop); err != nil {
		t.Fatal(err)
	}
	if e.posts() != before {
		t.Fatal("a queued production deploy was sent without a fresh confirmation")
	}
	if rendered == nil {
		t.Fatalf("no confirmation rendered; DMs to dan = %q", dmsTo(e, dan))
	}
	if rendered.Stack.UID != shop.UID || rendered.Params.Ref != "main" {
		t.Fatalf("confirmation rendered = %+v, want dan's deploy of main to production", rendered)
	}
	dms := dmsTo(e, dan)
	if countContaining(dms, "confirm "+rendered.IntentID) != 1 || countContaining(dms, "needs your confirmation again") != 1 {
		t.Fatalf("DMs to dan = %q, want the confirmation", dms)
	}
	for _, c := range e.Slack.Calls("dm") {
		if c.To == dan && c.Msg.InChannel {
			t.Error("the confirmation DM is marked in-channel")
		}
	}
	// The DM's Confirm is dan's, and starts it.
	w, err := svc.Confirm(ctx, rendered.IntentID, dan)
	if err != nil || w == nil || w.Owner != dan {
		t.Fatalf("Confirm = %+v, %v", w, err)
	}
}

func TestLockForExpiresAndTellsOwnerAndWaiters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	var de *deploy.LockDurationError
	for _, d := range []time.Duration{30 * time.Second, 8 * 24 * time.Hour, -time.Hour} {
		if _, err := e.svc.LockFor(ctx, origin(ana, "C1", "l0"), shop, "", d); !errors.As(err, &de) {
			t.Errorf("LockFor(%s) = %v, want *LockDurationError", d, err)
		}
	}
	l, err := e.svc.LockFor(ctx, origin(ana, "C1", "l1"), shop, "migrating", 2*time.Hour)
	if err != nil || !l.Expires.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("LockFor(2h) = %+v, %v; want it to expire at 12:00", l, err)
	}
	// Re-locking for longer is a change; the same reason without for= is not.
	if l, err := e.svc.LockFor(ctx, origin(ana, "C1", "l2"), shop, "migrating", 3*time.Hour); err != nil || !l.Changed() || !l.Expires.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("re-lock for 3h = %+v, %v", l, err)
	}
	if l, err := e.svc.Lock(ctx, origin(ana, "C1", "l3"), shop, ""); err != nil || l.Changed() || !l.Expires.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("re-lock without for= = %+v (changed %v), %v; want nothing changed", l, l.Changed(), err)
	}
	le := refusedByLock(t, e.svc, ben, "C1", "r1", shop)
	if _, err := e.svc.WaitForLock(ctx, le.WaitIntentID, ben, storage.WaitNotify); err != nil {
		t.Fatal(err)
	}

	e.Clock.Advance(3*time.Hour - time.Second)
	deploy.SweepLocks(e.svc, ctx)
	if _, err := e.Store.Locks().Get(ctx, "T1", shop.UID); err != nil {
		t.Fatalf("lock released before its time: %v", err)
	}
	e.Clock.Advance(time.Second)
	deploy.SweepLocks(e.svc, ctx)
	deploy.SweepLocks(e.svc, ctx)
	if _, err := e.Store.Locks().Get(ctx, "T1", shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("lock after its expiry: %v, want it gone", err)
	}
	if !auditHas(t, e.Store, "lock.expired", "expired") {
		t.Error("expiry not audited as lock.expired")
	}
	if got := dmsTo(e, ben); countContaining(got, "*shop* · staging is free: <@UANA>'s lock expired.") != 1 {
		t.Errorf("DMs to ben = %q, want one saying the lock expired", got)
	}
	if got := dmsTo(e, ana); countContaining(got, "Your lock on *shop* · staging expired") != 1 {
		t.Errorf("DMs to ana = %q, want one saying her lock expired", got)
	}
	// A lock with an expiry is never reminded of.
	if got := countContaining(dmsTo(e, ana), "You've held the lock"); got != 0 {
		t.Errorf("%d reminders for a lock with for=", got)
	}
}

func TestLongLockRemindsItsOwnerOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "production")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l1"), shop, "db migration"); err != nil {
		t.Fatal(err)
	}
	// A second replica on the same store, with leases of its own (local
	// ones): only the store's mark keeps the reminder to one.
	other := deploy.New(deploy.Config{Stores: storesOf(e.Store), Cloud66For: e.client, Slack: e.Slack, Command: "/c66", Now: e.Clock.Now})

	e.Clock.Advance(4*time.Hour - time.Minute)
	deploy.SweepLocks(e.svc, ctx)
	if got := countContaining(dmsTo(e, ana), "You've held the lock"); got != 0 {
		t.Fatalf("%d reminders before 4 h", got)
	}
	e.Clock.Advance(time.Minute)
	for range 3 {
		deploy.SweepLocks(e.svc, ctx)
		deploy.SweepLocks(other, ctx)
	}
	want := "You've held the lock on *shop* · production for 4 h: db migration. `/c66 unlock shop:production` when done."
	if got := dmsTo(e, ana); countContaining(got, want) != 1 || countContaining(got, "You've held the lock") != 1 {
		t.Errorf("DMs to ana = %q, want one %q", got, want)
	}
	if _, err := e.Store.Locks().Get(ctx, "T1", shop.UID); err != nil {
		t.Errorf("a reminder released the lock: %v", err)
	}
}

func TestRunSweepsTheLocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	sweeps := make(chan struct{})
	svc := deploy.New(deploy.Config{Stores: storesOf(e.Store), Cloud66For: e.client, Slack: e.Slack, Command: "/c66", Now: e.Clock.Now})
	deploy.SetLockSleep(svc, func(ctx context.Context, _ time.Duration) error {
		select {
		case <-sweeps:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	stop := testenv.Run(t, svc.Run)
	defer stop()
	if _, err := svc.LockFor(ctx, origin(ana, "C1", "l1"), shop, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Hour)
	sweeps <- struct{}{} // lets one sweep run
	sweeps <- struct{}{} // and waits until it has
	if _, err := e.Store.Locks().Get(ctx, "T1", shop.UID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Run's sweep left the expired lock: %v", err)
	}
}

// A lock removed by someone else frees it too: the waiters hear who
// removed it, and the person who removed it is not told what they did.
func TestForcedUnlockTellsWaitersButNotTheRemover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "l1"), shop, ""); err != nil {
		t.Fatal(err)
	}
	for _, who := range []storage.Identity{ben, eve} {
		le := refusedByLock(t, e.svc, who, "C1", "r-"+who.User, shop)
		if _, err := e.svc.WaitForLock(ctx, le.WaitIntentID, who, storage.WaitNotify); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.svc.Unlock(ctx, origin(ben, "C1", "u1"), shop)
	if err != nil || res.Confirm == nil {
		t.Fatalf("ben's Unlock = %+v, %v; want a confirmation", res, err)
	}
	if _, err := e.svc.ConfirmUnlock(ctx, res.Confirm.IntentID, ben); err != nil {
		t.Fatal(err)
	}
	if got := dmsTo(e, eve); countContaining(got, "*shop* · staging is free: <@UBEN> removed <@UANA>'s lock.") != 1 {
		t.Errorf("DMs to eve = %q", got)
	}
	if got := dmsTo(e, ben); countContaining(got, "is free") != 0 {
		t.Errorf("ben, who removed the lock, was told it is free: %q", got)
	}
}
