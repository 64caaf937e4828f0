package storage

import (
	"bytes"
	"errors"
	"os"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// countKeys counts a bucket's keys straight from bbolt.
func countKeys(t testing.TB, s *DB, bucket []byte) int {
	t.Helper()
	var n int
	if err := s.bolt.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatalf("count keys: %v", err)
	}
	return n
}

// The id and secret indexes keep one entry per subscription through a
// re-subscribe (a new secret replaces the old) and an unsubscribe.
func TestSubscriptionIndexesStayInStep(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	indexes := func() (ids, secrets int) {
		return countKeys(t, s, bucketSubscriptionIDs), countKeys(t, s, bucketSubSecrets)
	}
	mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	mustSubscribe(t, s, testSubscription("T1", "C1", "s1", ""))
	if n, m := indexes(); n != 1 || m != 1 {
		t.Errorf("after a re-subscribe: %d id and %d secret index entries, want 1 and 1", n, m)
	}
	mustSubscribe(t, s, testSubscription("T1", "C1", "", ""))
	if _, err := s.Subscriptions().Unsubscribe(ctx, "T1", "C1", "s1"); err != nil {
		t.Fatal(err)
	}
	if n, m := indexes(); n != 1 || m != 1 {
		t.Errorf("after an unsubscribe: %d id and %d secret index entries, want the other subscription's 1 and 1", n, m)
	}
}

func TestSubscriptionSecretsNeverReachTheFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	_, old := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	_, current := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	_, gone := mustSubscribe(t, s, testSubscription("T1", "C2", "", ""))
	if _, err := s.Subscriptions().Unsubscribe(ctx, "T1", "C2", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{"replaced secret": old, "current secret": current, "unsubscribed secret": gone} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("database file contains the %s", name)
		}
	}
}

func TestUnsubscribeUnreadableRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := mustOpen(t)
	sub, secret := mustSubscribe(t, s, testSubscription("T1", "C1", "s1", "Shop"))
	mustSubscribe(t, s, testSubscription("T1", "C2", "s1", "Shop"))
	key, _ := subscriptionKey("T1", "C1", "s1")
	rawPut(t, s, bucketSubscriptions, key, []byte(`{"v":99}`))

	if _, err := s.Subscriptions().ForChannel(ctx, "T1", "C1"); err == nil {
		t.Error("ChannelSubscriptions of an unreadable record succeeded")
	}
	got, err := s.Subscriptions().Unsubscribe(ctx, "T1", "C1", "s1")
	if err != nil || got.Team != "T1" || got.Channel != "C1" || got.StackUID != "s1" {
		t.Fatalf("Unsubscribe of an unreadable record = %+v, %v", got, err)
	}
	if _, err := s.Subscriptions().BySecret(ctx, secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("SubscriptionBySecret after unsubscribe = %v, want ErrNotFound", err)
	}
	if v := rawGet(t, s, bucketSubscriptionIDs, []byte(sub.ID)); v != nil {
		t.Errorf("id index still has %q", v)
	}
	if n, m := countKeys(t, s, bucketSubscriptionIDs), countKeys(t, s, bucketSubSecrets); n != 1 || m != 1 {
		t.Errorf("index entries = %d ids, %d secrets; want the other channel's 1 and 1", n, m)
	}
}
