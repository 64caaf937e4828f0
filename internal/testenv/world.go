package testenv

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/c66bot/c66bot/accounts"
	"github.com/c66bot/c66bot/cloud66"
	"github.com/c66bot/c66bot/cloud66/cloud66test"
	"github.com/c66bot/c66bot/storage"
)

// World is one test's surroundings of a service. Its fields are set by New
// and read by the test; Tokens may be added to through Link.
type World struct {
	t      testing.TB
	C66    *cloud66test.Server
	Clock  *cloud66test.Clock
	Store  *storage.DB
	Slack  *Slack
	Tokens map[storage.Identity]string // who has linked Cloud 66, with their token
	// ClientOptions are added to every client Client makes.
	ClientOptions []cloud66.Option

	key []byte // the store's sealing key, for OpenStore
}

// New builds a world whose frozen clock reads start and whose fake
// Cloud 66's deployments take deployDuration. Everything in it is closed
// when the test ends.
func New(t testing.TB, start time.Time, deployDuration time.Duration) *World {
	t.Helper()
	clock := cloud66test.NewClock(start)
	w := &World{
		t:      t,
		Clock:  clock,
		C66:    cloud66test.Start(t, cloud66test.WithClock(clock), cloud66test.WithDeployDuration(deployDuration)),
		Slack:  NewSlack(),
		Tokens: map[storage.Identity]string{},
		key:    make([]byte, 32),
	}
	_, _ = rand.Read(w.key) // never fails (crypto/rand panics instead)
	w.Store = w.OpenStore(storage.Options{Path: filepath.Join(t.TempDir(), "c66bot.db")})
	return w
}

// OpenStore opens the database o names with the world's key and clock
// (unless o sets its own), closed when the test ends: for a second
// process's view of a copy, or a read-only reopening.
func (w *World) OpenStore(o storage.Options) *storage.DB {
	w.t.Helper()
	if o.Keys == nil {
		o.Keys = [][]byte{w.key}
	}
	if o.Now == nil {
		o.Now = w.Clock.Now
	}
	db, err := storage.Open(o)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { db.Close() })
	return db
}

// Link gives id a token of the fake's user email, as if they had linked
// Cloud 66 as that user.
func (w *World) Link(id storage.Identity, email string) {
	w.Tokens[id] = w.C66.IssueToken(email)
}

// Client is a client of the fake acting with tok, without the client's own
// retries, so that what the services do on a failure is what is tested.
func (w *World) Client(tok string) *cloud66.Client {
	w.t.Helper()
	opts := append([]cloud66.Option{cloud66.WithBaseURL(w.C66.URL), cloud66.WithToken(tok), cloud66.WithRetry(0, 0)}, w.ClientOptions...)
	c, err := cloud66.NewClient(opts...)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// ClientFor is the person's own client, or an error matching
// accounts.ErrNotLinked for someone not linked: what the services'
// Config.Cloud66For returns.
func (w *World) ClientFor(_ context.Context, id storage.Identity) (*cloud66.Client, error) {
	tok, ok := w.Tokens[id]
	if !ok {
		return nil, accounts.ErrNotLinked
	}
	return w.Client(tok), nil
}

// Cloud66For is w.ClientFor returning the interface C a service declares
// for its clients (deploy.Cloud66, notify.Cloud66), ready for its
// Config.Cloud66For. *cloud66.Client must satisfy C.
func Cloud66For[C any](w *World) func(context.Context, storage.Identity) (C, error) {
	return func(ctx context.Context, id storage.Identity) (C, error) {
		c, err := w.ClientFor(ctx, id)
		if err != nil {
			var none C
			return none, err
		}
		return any(c).(C), nil
	}
}
