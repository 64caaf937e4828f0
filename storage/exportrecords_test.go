package storage

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Export hands out every record of every kind, in ExportKinds' order,
// with what no store method returns (the hashes, a watch's claim), and
// leaves out, counting them, the sealed values no key opens.
func TestExport(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c66bot.db")
	s := mustOpenWith(t, Options{Path: path})
	ctx := t.Context()
	ana := Identity{Team: "T1", User: "UANA"}
	if err := s.Links().Save(ctx, Link{Identity: ana, AccessToken: "tok"}, AuditEntry{Action: "login"}); err != nil {
		t.Fatal(err)
	}
	state := mustCreateState(t, s, testPending(ana, "a"))
	in := mustCreateIntent(t, s, testIntent(ana, "a"))
	done := mustStartWatch(t, s, testWatch(ana, "s1"))
	done.State = WatchFailed
	mustSaveWatch(t, s, done)
	active := mustStartWatch(t, s, testWatch(ana, "s1"))
	if _, _, err := s.Locks().Acquire(ctx, Lock{Team: "T1", StackUID: "s1", Owner: ana}); err != nil {
		t.Fatal(err)
	}
	_, secret := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	if _, err := s.Outbox().Enqueue(ctx, "api.notify", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mustFirstTime(t, s, "env-1", time.Hour, true)
	token, _ := mustCreateAPIToken(t, s, "ci", "notify")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A link under a key that is not configured below.
	other := mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("B")}, SkipKeyCheck: true})
	if err := other.Links().Save(ctx, Link{Identity: Identity{Team: "T1", User: "ULOST"}, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	other.Close()

	s = mustOpenWith(t, Options{Path: path, ReadOnly: true})
	var kinds []string
	recs := map[string][]any{}
	unopenable, err := s.Export(ctx, func(kind string, rec any) error {
		if len(kinds) == 0 || kinds[len(kinds)-1] != kind {
			kinds = append(kinds, kind)
		}
		recs[kind] = append(recs[kind], rec)
		return nil
	})
	if err != nil || unopenable != 1 {
		t.Fatalf("Export = %d unopenable, %v; want the lost key's link", unopenable, err)
	}
	if !slices.Equal(kinds, ExportKinds()) {
		t.Errorf("kinds in the order %v, want %v", kinds, ExportKinds())
	}
	stateHash, _ := stateKey(state)
	idHash, _ := intentKey(in.ID)
	secretHash, _ := webhookSecretKey(secret)
	tokenHash, _ := apiTokenKey(token)
	checks := map[string]func(recs []any) bool{
		"links": func(r []any) bool {
			return len(r) == 1 && r[0].(Link).Identity == ana && r[0].(Link).AccessToken == "tok"
		},
		"logins": func(r []any) bool {
			return len(r) == 1 && bytes.Equal(r[0].(ExportedLogin).StateHash, stateHash) && r[0].(ExportedLogin).Login.Identity == ana
		},
		"intents": func(r []any) bool {
			return len(r) == 1 && bytes.Equal(r[0].(ExportedIntent).IDHash, idHash) && r[0].(ExportedIntent).Intent.StackUID == in.StackUID
		},
		"watches": func(r []any) bool {
			if len(r) != 2 {
				return false
			}
			a, b := r[0].(ExportedWatch), r[1].(ExportedWatch)
			return a.Watch.ID == done.ID && !a.Active && !a.DoneAt.IsZero() && b.Watch.ID == active.ID && b.Active && b.DoneAt.IsZero()
		},
		"locks": func(r []any) bool { return len(r) == 1 && r[0].(Lock).Owner == ana },
		"subscriptions": func(r []any) bool {
			return len(r) == 1 && bytes.Equal(r[0].(ExportedSubscription).SecretHash, secretHash)
		},
		"outbox":     func(r []any) bool { return len(r) == 1 && string(r[0].(OutboxItem).Payload) == "x" },
		"dedup":      func(r []any) bool { return len(r) == 1 && r[0].(DedupMark).Key == "env-1" },
		"audit":      func(r []any) bool { return len(r) == 1 && r[0].(AuditEntry).Action == "login" },
		"api_tokens": func(r []any) bool { return len(r) == 1 && bytes.Equal(r[0].(ExportedAPIToken).Hash, tokenHash) },
	}
	for kind, ok := range checks {
		if !ok(recs[kind]) {
			t.Errorf("%s: exported %+v", kind, recs[kind])
		}
	}

	stop := errors.New("stop")
	if _, err := s.Export(ctx, func(string, any) error { return stop }); err != stop {
		t.Errorf("Export = %v, want fn's error unwrapped", err)
	}
}
