package storage

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// sealedSet is one value of each sealed kind, written under whatever key
// the store seals with, and how to read each back.
type sealedSet struct {
	link   Identity
	state  string
	intent string
	watch  string
}

func writeSealedSet(t *testing.T, s *DB, tag string) sealedSet {
	t.Helper()
	ctx := t.Context()
	id := Identity{"T1", "U" + tag}
	if err := s.Links().Save(ctx, Link{Identity: id, AccessToken: "tok-" + tag, RefreshToken: "ref-" + tag}); err != nil {
		t.Fatal(err)
	}
	in := mustCreateIntent(t, s, testIntent(id, tag))
	w := mustStartWatch(t, s, testWatch(id, "stack-"+tag))
	return sealedSet{link: id, state: mustCreateState(t, s, testPending(id, tag)), intent: in.ID, watch: w.ID}
}

// readSealedSet opens every value of set, failing the test for any that
// does not open.
func readSealedSet(t *testing.T, s *DB, set sealedSet, tag string) {
	t.Helper()
	ctx := t.Context()
	if l, err := s.Links().Get(ctx, set.link); err != nil || l.AccessToken != "tok-"+tag || l.RefreshToken != "ref-"+tag {
		t.Errorf("link %s = %+v, %v", tag, l, err)
	}
	if p, err := s.Logins().Peek(ctx, set.state); err != nil || p.Identity != set.link {
		t.Errorf("login state %s = %+v, %v", tag, p, err)
	}
	if in, err := s.Intents().Get(ctx, set.intent); err != nil || in.Requester != set.link {
		t.Errorf("intent %s = %+v, %v", tag, in, err)
	}
	if w, err := s.Watches().Get(ctx, set.watch); err != nil || w.Owner != set.link {
		t.Errorf("watch %s = %+v, %v", tag, w, err)
	}
}

func TestRekeyKeepsEveryTokenReadable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keyA, keyB, keyC := testKey("A"), testKey("B"), testKey("C")

	s := mustOpenWith(t, Options{Keys: [][]byte{keyA}})
	path := s.Path()
	setA := writeSealedSet(t, s, "a")
	setA2 := writeSealedSet(t, s, "a2")
	s.Close()

	// A value sealed with a key nobody will configure again. (Open would
	// refuse a key that opens nothing already there.)
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyC}, SkipKeyCheck: true})
	lost := Identity{"T1", "ULOST"}
	if err := s.Links().Save(ctx, Link{Identity: lost, AccessToken: "tok-lost"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Rotation: B in front, A kept so the old values still open.
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB, keyA}})
	setB := writeSealedSet(t, s, "b")
	if k, err := s.CheckKeys(ctx); err != nil || k.Primary != 4 || k.Older != 8 || k.Unopenable != 1 {
		t.Errorf("CheckKeys before rekey = %+v, %v; want 4 primary, 8 older, 1 unopenable", k, err)
	}
	rep, err := s.Rekey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := RekeyReport{Resealed: 8, AlreadyPrimary: 4, Failed: 1, UnknownKeyIDs: []string{KeyID(keyC)}}
	if !rekeyReportsEqual(rep, want) {
		t.Errorf("first rekey = %+v, want %+v", rep, want)
	}
	if k, err := s.CheckKeys(ctx); err != nil || k.Primary != 12 || k.Older != 0 || k.Unopenable != 1 || !slices.Equal(k.UnknownKeyIDs, []string{KeyID(keyC)}) {
		t.Errorf("CheckKeys after rekey = %+v, %v", k, err)
	}

	// Twice is a no-op: nothing to reseal, and nothing committed.
	before := txID(t, s)
	rep, err = s.Rekey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = RekeyReport{AlreadyPrimary: 12, Failed: 1, UnknownKeyIDs: []string{KeyID(keyC)}}
	if !rekeyReportsEqual(rep, want) {
		t.Errorf("second rekey = %+v, want %+v", rep, want)
	}
	if after := txID(t, s); after != before {
		t.Errorf("second rekey committed %d write transactions, want none", after-before)
	}
	s.Close()

	// A retired: every token still opens with B alone.
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB}})
	readSealedSet(t, s, setA, "a")
	readSealedSet(t, s, setA2, "a2")
	readSealedSet(t, s, setB, "b")
	// The value under the unknown key was kept, not deleted: with its key
	// back in the list it opens again.
	if _, err := s.Links().Get(ctx, lost); !errors.Is(err, ErrSealed) {
		t.Errorf("link sealed with C, opened with B = %v, want ErrSealed", err)
	}
	s.Close()
	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB, keyC}})
	if l, err := s.Links().Get(ctx, lost); err != nil || l.AccessToken != "tok-lost" {
		t.Errorf("link sealed with C, with C configured again = %+v, %v", l, err)
	}
}

// TestRekeyManyBatches reseals more values than fit in one batch, so the
// walk must resume after each batch without skipping or repeating a key.
func TestRekeyManyBatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keyA, keyB := testKey("A"), testKey("B")
	s := mustOpenWith(t, Options{Keys: [][]byte{keyA}})
	path := s.Path()
	n := 2*rekeyBatch + 17
	// One transaction for all of them: a commit per link would make the
	// test slow for nothing.
	if err := s.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		for i := range n {
			id := Identity{"T1", fmt.Sprintf("U%05d", i)}
			plain, err := encodeLink(Link{Identity: id, AccessToken: fmt.Sprint("tok-", i)})
			if err != nil {
				return err
			}
			sealed, err := s.sealer.Seal(plain, id.Key())
			if err != nil {
				return err
			}
			if err := b.Put(id.Key(), sealed); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB, keyA}})
	before := txID(t, s)
	rep, err := s.Rekey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resealed != n || rep.AlreadyPrimary != 0 || rep.Failed != 0 {
		t.Errorf("rekey of %d links = %+v", n, rep)
	}
	if commits := txID(t, s) - before; commits < 3 {
		t.Errorf("rekey of %d links took %d write transactions, want one per batch of %d", n, commits, rekeyBatch)
	}
	s.Close()

	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB}})
	for i := range n {
		id := Identity{"T1", fmt.Sprintf("U%05d", i)}
		if l, err := s.Links().Get(ctx, id); err != nil || l.AccessToken != fmt.Sprint("tok-", i) {
			t.Fatalf("link %d after rekey = %+v, %v", i, l, err)
		}
	}
}

// TestRekeyWhileWriting runs a rekey while links are being saved, as on a
// running bot: no write is lost and everything ends under the new key.
func TestRekeyWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	keyA, keyB := testKey("A"), testKey("B")
	s := mustOpenWith(t, Options{Keys: [][]byte{keyA}})
	path := s.Path()
	for i := range 50 {
		if err := s.Links().Save(ctx, Link{Identity: Identity{"T1", fmt.Sprint("U", i)}, AccessToken: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB, keyA}})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			if err := s.Links().Save(ctx, Link{Identity: Identity{"T1", fmt.Sprint("U", i)}, AccessToken: "new"}); err != nil {
				t.Error(err)
			}
		}
	})
	if _, err := s.Rekey(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.Rekey(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpenWith(t, Options{Path: path, Keys: [][]byte{keyB}})
	for i := range 50 {
		if l, err := s.Links().Get(ctx, Identity{"T1", fmt.Sprint("U", i)}); err != nil || l.AccessToken != "new" {
			t.Errorf("link %d = %q, %v; want the concurrent save's token", i, l.AccessToken, err)
		}
	}
}

func TestRekeyEmptyStore(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	rep, err := s.Rekey(t.Context())
	if err != nil || !rekeyReportsEqual(rep, RekeyReport{}) {
		t.Errorf("rekey of an empty store = %+v, %v", rep, err)
	}
	if k, err := s.CheckKeys(t.Context()); err != nil || k.Total() != 0 {
		t.Errorf("CheckKeys of an empty store = %+v, %v", k, err)
	}
}

func TestRekeyReadOnly(t *testing.T) {
	t.Parallel()
	s := mustOpen(t)
	writeSealedSet(t, s, "a")
	path := s.Path()
	s.Close()
	ro := mustOpenWith(t, Options{Path: path, Keys: [][]byte{testKey("B"), testKey("A")}, ReadOnly: true})
	if _, err := ro.Rekey(t.Context()); !errors.Is(err, ErrReadOnly) {
		t.Errorf("rekey of a read-only store = %v, want ErrReadOnly", err)
	}
	// CheckKeys only reads, so it works read-only.
	if k, err := ro.CheckKeys(t.Context()); err != nil || k.Older != 4 {
		t.Errorf("CheckKeys read-only = %+v, %v", k, err)
	}
}

// TestEveryBucketIsClassified fails when a bucket is added without saying
// whether its values are sealed, so Rekey and CheckKeys cannot silently
// miss a new sealed bucket.
func TestEveryBucketIsClassified(t *testing.T) {
	t.Parallel()
	plain := []string{
		"meta", "login_by_identity", "dedup", "locks", "watches_active", "watch_by_stack", "watches_done",
		"audit", "subscriptions", "subscription_ids", "subscription_secrets", "api_tokens", "api_token_hashes", "outbox",
	}
	var sealed []string
	for _, b := range sealedBuckets() {
		sealed = append(sealed, string(b))
	}
	s := mustOpen(t)
	if err := s.bolt.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if !slices.Contains(plain, string(name)) && !slices.Contains(sealed, string(name)) {
				t.Errorf("bucket %q is neither in sealedBuckets() nor in this test's plain list; if its values are sealed, add it to sealedBuckets", name)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	s := mustOpenWith(t, Options{Keys: [][]byte{testKey("A")}})
	if err := s.Links().Save(t.Context(), Link{Identity: Identity{"T1", "U1"}, AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	v := rawGet(t, s, bucketLinks, Identity{"T1", "U1"}.Key())
	if got, want := fmt.Sprintf("%x", v[1:sealHeaderSize]), KeyID(testKey("A")); got != want || len(want) != 8 {
		t.Errorf("KeyID = %q, the sealed value names %q", want, got)
	}
}

func rekeyReportsEqual(a, b RekeyReport) bool {
	return a.Resealed == b.Resealed && a.AlreadyPrimary == b.AlreadyPrimary && a.Failed == b.Failed &&
		slices.Equal(a.UnknownKeyIDs, b.UnknownKeyIDs)
}
