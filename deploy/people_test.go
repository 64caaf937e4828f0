package deploy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/c66bot/c66bot/deploy"
	"github.com/c66bot/c66bot/internal/testenv"
	"github.com/c66bot/c66bot/storage"
)

// noted records Config.People.
type noted struct {
	mu     sync.Mutex
	emails map[storage.Identity][]string
}

func (n *noted) NoteEmail(_ context.Context, id storage.Identity, email string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.emails[id] = append(n.emails[id], email)
	return nil
}

func (n *noted) of(id storage.Identity) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.emails[id]...)
}

// A deployment started through the bot teaches who its owner is in Cloud
// 66: the user Cloud 66 names on its action. A restart, whose action is
// found by name and time and so may be someone else's, teaches nothing.
func TestDeploymentTeachesTheOwnersEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.stop()
	people := &noted{emails: map[storage.Identity][]string{}}
	e.svc = deploy.New(deploy.Config{
		Stores: storesOf(e.Store), Cloud66For: e.client, Slack: e.Slack, Cloud66URL: e.C66.URL,
		Command: "/c66", Now: e.Clock.Now, Poll: fastPoll, People: people,
	})
	e.stop = testenv.Run(e.t, e.svc.Run)
	t.Cleanup(e.stop)

	restart, err := e.svc.Change(t.Context(), origin(ben, "C1", "r0"), e.stack("api", "staging"), deploy.Change{Verb: deploy.VerbRestart})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Deploy(t.Context(), origin(ana, "C1", "r1"), e.stack("shop", "staging"), deploy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitPolls(res.Watch.ID, 2)
	e.Clock.Advance(4 * time.Minute)
	e.waitState(res.Watch.ID, "succeeded")
	e.waitState(restart.Watch.ID, "succeeded")
	got := people.of(ana)
	if len(got) == 0 || got[0] != "ana@example.com" {
		t.Errorf("noted for ana %v, want ana@example.com", got)
	}
	if got := people.of(ben); len(got) != 0 {
		t.Errorf("a restart noted %v for ben", got)
	}
}
