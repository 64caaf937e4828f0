package deploy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/storage"
)

// lockAudits counts the "lock" entries of the audit log that record a
// lock taken or changed.
func lockAudits(t *testing.T, store *storage.DB) int {
	t.Helper()
	n := 0
	err := store.Audit().Scan(context.Background(), time.Time{}, func(e storage.AuditEntry) error {
		if e.Action == "lock" && e.Result == "locked" {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Locking your own lock again keeps when you took it; a new reason
// replaces the old one, no reason or the same one changes (and audits)
// nothing.
func TestRelockOwnLock(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		first, next string
		wantReason  string
		wantChanged bool
	}{
		{"no reason keeps the old one", "release freeze", "", "release freeze", false},
		{"same reason changes nothing", "release freeze", "release freeze", "release freeze", false},
		{"new reason replaces the old one", "release freeze", "db migration", "db migration", true},
		{"a reason where there was none", "", "db migration", "db migration", true},
		{"still no reason", "", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			shop := e.stack("shop", "staging")
			first, err := e.svc.Lock(ctx, origin(ana, "C1", "r1"), shop, tt.first)
			if err != nil || first.AlreadyHeld || !first.Changed() || !first.Since.Equal(t0) {
				t.Fatalf("first Lock = %+v, %v", first, err)
			}
			e.Clock.Advance(time.Hour)
			got, err := e.svc.Lock(ctx, origin(ana, "C1", "r2"), shop, tt.next)
			if err != nil {
				t.Fatal(err)
			}
			if !got.AlreadyHeld || got.PreviousReason != tt.first || got.Reason != tt.wantReason || !got.Since.Equal(t0) || got.Owner != ana {
				t.Errorf("re-Lock = %+v, want already held since t0 with reason %q (was %q)", got, tt.wantReason, tt.first)
			}
			if got.Changed() != tt.wantChanged {
				t.Errorf("Changed = %v, want %v", got.Changed(), tt.wantChanged)
			}
			stored, err := e.Store.Locks().Get(ctx, "T1", shop.UID)
			if err != nil || stored.Reason != tt.wantReason || !stored.Since.Equal(t0) {
				t.Errorf("stored lock = %+v, %v", stored, err)
			}
			wantAudits := 1
			if tt.wantChanged {
				wantAudits = 2
			}
			if n := lockAudits(t, e.Store); n != wantAudits {
				t.Errorf("%d lock entries audited, want %d", n, wantAudits)
			}
		})
	}
}

// Someone else's lock still refuses a lock, and is left as it was.
func TestRelockSomeoneElsesLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")
	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "r1"), shop, "release"); err != nil {
		t.Fatal(err)
	}
	var le *deploy.LockedError
	if _, err := e.svc.Lock(ctx, origin(ben, "C1", "r2"), shop, ""); !errors.As(err, &le) || le.Lock.Owner != ana {
		t.Fatalf("ben's Lock: %v, want ana's *LockedError", err)
	}
	if l, err := e.Store.Locks().Get(ctx, "T1", shop.UID); err != nil || l.Owner != ana || l.Reason != "release" {
		t.Fatalf("lock after ben's try = %+v, %v", l, err)
	}
}

// "Not locked" names the stack, whether it came from unlock or from the
// Confirm of someone else's lock removed meanwhile.
func TestNotLockedNamesTheStack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	shop := e.stack("shop", "staging")

	_, err := e.svc.Unlock(ctx, origin(ana, "C1", "r1"), shop)
	var nl *deploy.NotLockedError
	if !errors.Is(err, deploy.ErrNotLocked) || !errors.As(err, &nl) || nl.StackName != "shop" || nl.Environment != "staging" {
		t.Fatalf("Unlock of a free stack: %v (%+v), want a *NotLockedError for shop:staging", err, nl)
	}
	if want := "deploy: shop:staging is not locked"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	if _, err := e.svc.Lock(ctx, origin(ana, "C1", "r2"), shop, ""); err != nil {
		t.Fatal(err)
	}
	ur, err := e.svc.Unlock(ctx, origin(ben, "C1", "r3"), shop)
	if err != nil || ur.Confirm == nil {
		t.Fatalf("ben's Unlock = %+v, %v", ur, err)
	}
	if _, err := e.svc.Unlock(ctx, origin(ana, "C1", "r4"), shop); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ConfirmUnlock(ctx, ur.Confirm.IntentID, ben)
	if !errors.Is(err, deploy.ErrNotLocked) || !errors.As(err, &nl) || nl.StackName != "shop" || nl.Environment != "staging" {
		t.Fatalf("ConfirmUnlock of a lock gone: %v, want a *NotLockedError for shop:staging", err)
	}
}
