package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/policy"
	"github.com/c66bot/c66bot/storage"
)

// dyingClient is a person's Cloud 66 client in a process that dies the
// moment Cloud 66 has accepted a redeploy: the call reaches Cloud 66, and
// nothing after it runs until released.
type dyingClient struct {
	deploy.Cloud66
	accepted chan struct{}
	dead     chan struct{}
}

func (d *dyingClient) Redeploy(ctx context.Context, uid string, req cloud66.RedeployRequest) (*cloud66.RedeployResult, error) {
	res, err := d.Cloud66.Redeploy(ctx, uid, req)
	close(d.accepted)
	<-d.dead
	return res, err
}

// auditOf returns the entries of store with action.
func auditOf(t *testing.T, store *storage.DB, action string) []storage.AuditEntry {
	t.Helper()
	var out []storage.AuditEntry
	if err := store.Audit().Scan(context.Background(), time.Time{}, func(e storage.AuditEntry) error {
		if e.Action == action {
			out = append(out, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A deploy whose process dies right after Cloud 66 accepted it is in the
// audit log already, and the process that resumes it adds the outcome.
func TestDeployKilledAfterCloud66AcceptedIsAuditedToTheEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop := e.stack("shop", "staging")
	dying := &dyingClient{accepted: make(chan struct{}), dead: make(chan struct{})}
	first := deploy.New(deploy.Config{
		Stores: storesOf(e.Store), Slack: e.Slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll,
		Cloud66For: func(ctx context.Context, id storage.Identity) (deploy.Cloud66, error) {
			c, err := e.client(ctx, id)
			dying.Cloud66 = c
			return dying, err
		},
	})
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		_, _ = first.Deploy(context.Background(), origin(ana, "C1", "req-dies"), shop, deploy.Params{Ref: "v2.1"})
	}()
	t.Cleanup(func() { close(dying.dead); <-returned })
	select {
	case <-dying.accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the redeploy never reached Cloud 66")
	}
	// The database as the kill leaves it.
	killed := filepath.Join(t.TempDir(), "killed.db")
	if _, err := e.Store.BackupFile(t.Context(), killed); err != nil {
		t.Fatal(err)
	}

	store := e.OpenStore(storage.Options{Path: killed})
	requested := auditOf(t, store, "deploy")
	if len(requested) != 1 || requested[0].Result != "requested" || requested[0].User != ana.User ||
		requested[0].StackUID != shop.UID || requested[0].Args["ref"] != "v2.1" || requested[0].Args["user_reference"] != "c66bot:T1:UANA:C1:req-dies" {
		t.Fatalf("audit of the dead process = %+v, want one deploy requested by ana with its ref and user_reference", requested)
	}
	if got := auditOf(t, store, "deploy.finished"); len(got) != 0 {
		t.Fatalf("an outcome before the deploy ended: %+v", got)
	}

	next := deploy.New(deploy.Config{Stores: storesOf(store), Slack: testenv.NewSlack(), Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll, Cloud66For: e.client})
	t.Cleanup(testenv.Run(t, next.Run))
	waitStored := func(state storage.WatchState) storage.Watch {
		var w storage.Watch
		testenv.Eventually(t, "the resumed watch to be "+string(state), func() bool {
			ws, err := store.Watches().Active(context.Background())
			if err == nil && len(ws) == 1 {
				w = ws[0]
			} else if err == nil && len(ws) == 0 && w.ID != "" {
				w, _ = store.Watches().Get(context.Background(), w.ID)
			}
			return w.State == state
		})
		return w
	}
	w := waitStored("deploying")
	e.Clock.Advance(3*time.Minute + time.Second)
	w = waitStored("succeeded")

	finished := auditOf(t, store, "deploy.finished")
	if len(finished) != 1 || finished[0].Result != "succeeded" || finished[0].Cloud66ActionID != w.ActionID || w.ActionID == 0 ||
		finished[0].Args["git_hash"] != w.GitHash || finished[0].User != ana.User || finished[0].StackUID != shop.UID {
		t.Errorf("outcome = %+v, want one deploy.finished succeeded with the action %d and hash %s", finished, w.ActionID, w.GitHash)
	}
	if e.posts() != 1 {
		t.Errorf("%d redeploy POSTs, want 1", e.posts())
	}
}

// On a database that cannot be written (a full disk, a read-only file),
// deploys, locks and unlocks are refused for want of their audit entry,
// and nothing reaches Cloud 66.
func TestChangesAreRefusedWhenTheAuditCannotBeWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	staging, production := e.stack("shop", "staging"), e.stack("shop", "production")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "r1"), staging, "release"); err != nil {
		t.Fatal(err)
	}
	e.stop()
	path := e.Store.Path()
	if err := e.Store.Close(); err != nil {
		t.Fatal(err)
	}
	ro := e.OpenStore(storage.Options{Path: path, ReadOnly: true})
	svc := deploy.New(deploy.Config{Stores: storesOf(ro), Slack: e.Slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll, Cloud66For: e.client})

	if _, err := svc.Deploy(ctx, origin(ana, "C1", "r2"), staging, deploy.Params{}); !errors.Is(err, storage.ErrNotAudited) {
		t.Errorf("Deploy: %v, want ErrNotAudited", err)
	}
	if _, err := svc.Lock(ctx, origin(ben, "C1", "r3"), production, ""); !errors.Is(err, storage.ErrNotAudited) {
		t.Errorf("Lock: %v, want ErrNotAudited", err)
	}
	if _, err := svc.Unlock(ctx, origin(ana, "C1", "r4"), staging); !errors.Is(err, storage.ErrNotAudited) {
		t.Errorf("Unlock: %v, want ErrNotAudited", err)
	}
	if e.posts() != 0 || len(e.Slack.Calls("post")) != 0 {
		t.Errorf("%d redeploy POSTs and %d cards after refusals", e.posts(), len(e.Slack.Calls("post")))
	}
	if l, err := ro.Locks().Get(ctx, "T1", staging.UID); err != nil || l.Owner != ana {
		t.Errorf("ana's lock after a refused unlock: %+v, %v", l, err)
	}
}

// noAudit is an audit log that cannot be appended to.
type noAudit struct{}

func (noAudit) Append(context.Context, storage.AuditEntry) (storage.AuditEntry, error) {
	return storage.AuditEntry{}, fmt.Errorf("storage: append audit: %w: no space left on device", storage.ErrNotAudited)
}

// withoutAudit returns db's stores with an audit log that cannot be
// appended to, while the other writes work.
func withoutAudit(db *storage.DB) deploy.Stores {
	st := storesOf(db)
	st.Audit = noAudit{}
	return st
}

// A cancel is audited before Cloud 66 is asked; when that cannot be
// written, Cloud 66 is not asked.
func TestCancelIsRefusedWhenTheAuditCannotBeWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.svc.Deploy(ctx, origin(ana, "C1", "r1"), shop, deploy.Params{}); err != nil {
		t.Fatal(err)
	}
	cf, err := e.svc.RequestCancel(ctx, origin(ana, "C1", "r2"), shop)
	if err != nil {
		t.Fatal(err)
	}
	full := deploy.New(deploy.Config{Stores: withoutAudit(e.Store), Slack: e.Slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll, Cloud66For: e.client})
	if _, err := full.ConfirmCancel(ctx, cf.IntentID, ana); !errors.Is(err, storage.ErrNotAudited) {
		t.Fatalf("ConfirmCancel: %v, want ErrNotAudited", err)
	}
	if n := e.C66.RequestCount("DELETE", ""); n != 0 {
		t.Errorf("%d DELETEs reached Cloud 66", n)
	}
}

// The Cancel button of a confirmation (Abort) spends only the intents of
// confirmations; an approval request or a freeze override stays as it was
// whoever sends its id.
func TestAbortSpendsOnlyConfirmations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "production")
	for _, tt := range []struct {
		kind  string
		spent bool
	}{
		{"deploy", true}, {"cancel", true}, {"unlock", true},
		{"approval", false}, {"override", false},
	} {
		in, err := e.Store.Intents().Create(ctx, storage.Intent{Kind: tt.kind, Requester: ana, Channel: "C1", StackUID: shop.UID, StackName: shop.Name, Environment: shop.Environment})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Abort(ctx, in.ID, ana)
		_, gerr := e.Store.Intents().Get(ctx, in.ID)
		kept := gerr == nil
		switch {
		case tt.spent && (err != nil || got.Kind != tt.kind || kept):
			t.Errorf("Abort of a %s confirmation = %+v, %v; kept %v", tt.kind, got, err, kept)
		case !tt.spent && (!errors.Is(err, deploy.ErrIntentGone) || !kept || got.StackUID != ""):
			t.Errorf("Abort of a %s intent = %+v, %v (want ErrIntentGone and nothing of it); kept %v (want true)", tt.kind, got, err, kept)
		}
	}
}

// A freeze override nobody could find in the audit log must not happen: if
// its entry cannot be written, the deploy it would allow is refused.
func TestOverrideIsRefusedWhenTheAuditCannotBeWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withPolicy(freezePolicy))
	ctx := t.Context()
	shop := e.stack("shop", "production")
	_, err := e.svc.Deploy(ctx, origin(boss, "C1", "r1"), shop, deploy.Params{})
	var fe *deploy.FrozenError
	if !errors.As(err, &fe) || fe.OverrideIntentID == "" {
		t.Fatalf("the admin's Deploy: %v, want a *FrozenError with an override", err)
	}
	pol, err := policy.Parse("test.yaml", []byte(freezePolicy))
	if err != nil {
		t.Fatal(err)
	}
	full := deploy.New(deploy.Config{Stores: withoutAudit(e.Store), Slack: e.Slack, Cloud66URL: e.C66.URL, Now: e.Clock.Now, Poll: fastPoll, Cloud66For: e.client, Policy: pol})
	res, err := full.Override(ctx, fe.OverrideIntentID, boss)
	if !errors.Is(err, storage.ErrNotAudited) || res.Confirm != nil || res.Watch != nil {
		t.Fatalf("Override = %+v, %v; want ErrNotAudited and nothing to confirm", res, err)
	}
	if n := e.C66.ActionCount(); n != 0 {
		t.Errorf("%d deploys reached Cloud 66", n)
	}
}
