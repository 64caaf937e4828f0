package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The records Export hands out where a kind's own type leaves something
// out: the hashes that stand in for secrets, which no store method
// returns, and a watch's place in the indexes.
type (
	// ExportedLogin is a pending login and the SHA-256 of its state.
	ExportedLogin struct {
		StateHash []byte
		Login     PendingLogin
	}
	// ExportedIntent is an intent and the SHA-256 of its id; Intent.ID is
	// empty, since the file holds only the hash.
	ExportedIntent struct {
		IDHash []byte
		Intent Intent
	}
	// ExportedWatch is a watch, whether it holds its stack (Active), and
	// when it finished for the history sweep (DoneAt; zero while active,
	// or when the file did not record it).
	ExportedWatch struct {
		Watch  Watch
		Active bool
		DoneAt time.Time
	}
	// ExportedSubscription is a subscription and the SHA-256 of its
	// webhook secret.
	ExportedSubscription struct {
		SecretHash   []byte
		Subscription Subscription
	}
	// ExportedAPIToken is an API token's record and the token's SHA-256.
	ExportedAPIToken struct {
		Hash  []byte
		Token APIToken
	}
	// DedupMark is a dedup key and when it expires.
	DedupMark struct {
		Key     string
		Expires time.Time
	}
)

// ExportKinds are the kinds Export hands out, in its order, each with the
// type of its records:
//
//	links          Link
//	logins         ExportedLogin
//	intents        ExportedIntent
//	watches        ExportedWatch
//	locks          Lock
//	subscriptions  ExportedSubscription
//	outbox         OutboxItem
//	dedup          DedupMark
//	audit          AuditEntry, in Seq order
//	api_tokens     ExportedAPIToken
func ExportKinds() []string {
	var names []string
	for _, k := range (exporter{}).kinds() {
		names = append(names, k.name)
	}
	return names
}

// Export calls fn with every record in the file, kind by kind (see
// ExportKinds), opened and decoded, for `c66bot migrate` to copy them into
// another backend. Sealed values that no configured key opens are of no
// use anywhere (the stores treat them as absent and SweepExpired deletes
// them), so they are left out and counted in unopenable. It stops at the
// first error from fn and returns it unwrapped.
//
// It reads in one transaction and fn runs inside it, so fn must not call
// the DB; it is meant for a file opened ReadOnly, which no bot writes.
func (d *DB) Export(ctx context.Context, fn func(kind string, rec any) error) (unopenable int, err error) {
	var fnErr error
	err = d.view(ctx, func(tx *bbolt.Tx) error {
		unopenable = 0
		wb, err := openWatchBuckets(tx)
		if err != nil {
			return err
		}
		e := exporter{d: d, watches: wb}
		for _, kind := range e.kinds() {
			b, err := bucket(tx, kind.bucket)
			if err != nil {
				return err
			}
			err = b.ForEach(func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				rec, err := kind.decode(k, v)
				if errors.Is(err, ErrSealed) {
					unopenable++
					return nil
				}
				if err != nil || rec == nil {
					return err
				}
				fnErr = fn(kind.name, rec)
				return fnErr
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if fnErr != nil {
		return unopenable, fnErr
	}
	if err != nil {
		return unopenable, fmt.Errorf("storage: export: %w", err)
	}
	return unopenable, nil
}

// exporter turns the keys and values of the file's buckets into Export's
// records.
type exporter struct {
	d       *DB
	watches watchBuckets
}

// exportKind is one kind of Export: its bucket, and decode, which makes a
// key and value there the record handed out (nil: none; an error wrapping
// ErrSealed: a value that does not open).
type exportKind struct {
	name   string
	bucket []byte
	decode func(k, v []byte) (any, error)
}

func (e exporter) kinds() []exportKind {
	return []exportKind{
		{"links", bucketLinks, func(k, v []byte) (any, error) {
			team, user, _ := bytes.Cut(k, []byte(":"))
			id := Identity{Team: string(team), User: string(user)}
			return e.unseal(k, v, func(b []byte) (any, error) { return decodeLink(id, b) })
		}},
		{"logins", bucketLoginStates, func(k, v []byte) (any, error) {
			return e.unseal(k, v, func(b []byte) (any, error) {
				p, err := decodeLogin(b)
				return ExportedLogin{StateHash: bytes.Clone(k), Login: p}, err
			})
		}},
		{"intents", bucketIntents, func(k, v []byte) (any, error) {
			return e.unseal(k, v, func(b []byte) (any, error) {
				in, err := decodeIntent("", b)
				return ExportedIntent{IDHash: bytes.Clone(k), Intent: in}, err
			})
		}},
		{"watches", bucketWatches, func(k, v []byte) (any, error) {
			return e.unseal(k, v, func(b []byte) (any, error) {
				w, err := decodeWatch(string(k), b)
				// Active as the stack claim has it: the one unfinished
				// watch its stack points at.
				x := ExportedWatch{Watch: w, Active: !w.Done() && e.watches.active.Get(k) != nil && bytes.Equal(e.watches.byStack.Get([]byte(w.StackUID)), k)}
				if t := e.watches.done.Get(k); t != nil {
					x.DoneAt, _ = decodeTime(t)
				}
				return x, err
			})
		}},
		{"locks", bucketLocks, func(k, v []byte) (any, error) {
			team, stack, _ := bytes.Cut(k, []byte(":"))
			return decodeLock(string(team), string(stack), v)
		}},
		{"subscriptions", bucketSubscriptions, func(k, v []byte) (any, error) {
			sub, hash, err := decodeSubscription(k, v)
			return ExportedSubscription{SecretHash: hash, Subscription: sub}, err
		}},
		{"outbox", bucketOutbox, bySeq(decodeOutbox)},
		{"dedup", bucketDedup, func(k, v []byte) (any, error) {
			exp, err := decodeTime(v)
			if err != nil {
				return nil, nil // unreadable counts as expired, as FirstTime reads it
			}
			return DedupMark{Key: string(k), Expires: exp}, nil
		}},
		{"audit", bucketAudit, bySeq(decodeAudit)},
		{"api_tokens", bucketAPITokens, func(k, v []byte) (any, error) {
			t, hash, err := decodeAPIToken(string(k), v)
			return ExportedAPIToken{Hash: hash, Token: t}, err
		}},
	}
}

// unseal opens v, sealed under k, and decodes it.
func (e exporter) unseal(k, v []byte, decode func([]byte) (any, error)) (any, error) {
	plain, err := e.d.sealer.Open(v, k)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return decode(plain)
}

// bySeq is the decode of a bucket keyed by big-endian numbers.
func bySeq[T any](decode func(uint64, []byte) (T, error)) func(k, v []byte) (any, error) {
	return func(k, v []byte) (any, error) {
		n, err := decodeUint64(k)
		if err != nil {
			return nil, err
		}
		return decode(n, v)
	}
}
