package storage

import (
	"bytes"
	"context"
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
	return []string{"links", "logins", "intents", "watches", "locks", "subscriptions", "outbox", "dedup", "audit", "api_tokens"}
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
		e := exporter{d: d, tx: tx, skipped: &unopenable}
		for _, kind := range []func(func(string, any) error) error{
			e.links, e.logins, e.intents, e.watches, e.locks, e.subscriptions, e.outbox, e.dedup, e.audit, e.apiTokens,
		} {
			err := kind(func(kind string, rec any) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				fnErr = fn(kind, rec)
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

// exporter reads one kind at a time for Export.
type exporter struct {
	d       *DB
	tx      *bbolt.Tx
	skipped *int
}

// each calls fn with every key and value of bucket name.
func (e exporter) each(name []byte, fn func(k, v []byte) error) error {
	b, err := bucket(e.tx, name)
	if err != nil {
		return err
	}
	return b.ForEach(fn)
}

// open unseals v, stored under k, or counts it as skipped (nil, nil).
func (e exporter) open(v, k []byte) ([]byte, error) {
	plain, err := e.d.sealer.Open(v, k)
	if err != nil {
		*e.skipped++
		return nil, nil
	}
	return plain, nil
}

func (e exporter) links(put func(string, any) error) error {
	return e.each(bucketLinks, func(k, v []byte) error {
		team, user, _ := bytes.Cut(k, []byte(":"))
		id := Identity{Team: string(team), User: string(user)}
		plain, err := e.open(v, k)
		if plain == nil {
			return err
		}
		l, err := decodeLink(id, plain)
		if err != nil {
			return err
		}
		return put("links", l)
	})
}

func (e exporter) logins(put func(string, any) error) error {
	return e.each(bucketLoginStates, func(k, v []byte) error {
		plain, err := e.open(v, k)
		if plain == nil {
			return err
		}
		p, err := decodeLogin(plain)
		if err != nil {
			return err
		}
		return put("logins", ExportedLogin{StateHash: bytes.Clone(k), Login: p})
	})
}

func (e exporter) intents(put func(string, any) error) error {
	return e.each(bucketIntents, func(k, v []byte) error {
		plain, err := e.open(v, k)
		if plain == nil {
			return err
		}
		in, err := decodeIntent("", plain)
		if err != nil {
			return err
		}
		return put("intents", ExportedIntent{IDHash: bytes.Clone(k), Intent: in})
	})
}

func (e exporter) watches(put func(string, any) error) error {
	wb, err := openWatchBuckets(e.tx)
	if err != nil {
		return err
	}
	return wb.watches.ForEach(func(k, v []byte) error {
		plain, err := e.open(v, k)
		if plain == nil {
			return err
		}
		w, err := decodeWatch(string(k), plain)
		if err != nil {
			return err
		}
		// Active as the stack claim has it: the one unfinished watch the
		// stack points at.
		x := ExportedWatch{Watch: w, Active: wb.active.Get(k) != nil && bytes.Equal(wb.byStack.Get([]byte(w.StackUID)), k) && !w.Done()}
		if t := wb.done.Get(k); t != nil {
			x.DoneAt, _ = decodeTime(t)
		}
		return put("watches", x)
	})
}

func (e exporter) locks(put func(string, any) error) error {
	return e.each(bucketLocks, func(k, v []byte) error {
		team, stack, _ := bytes.Cut(k, []byte(":"))
		l, err := decodeLock(string(team), string(stack), v)
		if err != nil {
			return err
		}
		return put("locks", l)
	})
}

func (e exporter) subscriptions(put func(string, any) error) error {
	return e.each(bucketSubscriptions, func(k, v []byte) error {
		sub, hash, err := decodeSubscription(k, v)
		if err != nil {
			return err
		}
		return put("subscriptions", ExportedSubscription{SecretHash: hash, Subscription: sub})
	})
}

func (e exporter) outbox(put func(string, any) error) error {
	return e.each(bucketOutbox, func(k, v []byte) error {
		id, err := decodeUint64(k)
		if err != nil {
			return err
		}
		it, err := decodeOutbox(id, v)
		if err != nil {
			return err
		}
		return put("outbox", it)
	})
}

func (e exporter) dedup(put func(string, any) error) error {
	return e.each(bucketDedup, func(k, v []byte) error {
		exp, err := decodeTime(v)
		if err != nil {
			return nil // unreadable counts as expired, as FirstTime reads it
		}
		return put("dedup", DedupMark{Key: string(k), Expires: exp})
	})
}

func (e exporter) audit(put func(string, any) error) error {
	return e.each(bucketAudit, func(k, v []byte) error {
		seq, err := decodeUint64(k)
		if err != nil {
			return err
		}
		a, err := decodeAudit(seq, v)
		if err != nil {
			return err
		}
		return put("audit", a)
	})
}

func (e exporter) apiTokens(put func(string, any) error) error {
	return e.each(bucketAPITokens, func(k, v []byte) error {
		t, hash, err := decodeAPIToken(string(k), v)
		if err != nil {
			return err
		}
		return put("api_tokens", ExportedAPIToken{Hash: hash, Token: t})
	})
}
