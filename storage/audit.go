package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// auditScanBatch is how many audit entries Scan reads per read
// transaction. bbolt's docs warn that a long-running read transaction keeps
// the pages it sees from being reused, so the file grows while writers
// continue; short batches keep each transaction to a few milliseconds.
const auditScanBatch = 500

// AuditStore is the audit log; get it from [DB.Audit].
type AuditStore struct{ db *DB }

// AuditEntry is one line of the audit log: who did what to which stack, and
// how it ended. The log is append-only; entries are never changed or
// deleted by this package. It is stored in the clear, so Args and Detail
// must never hold tokens or response URLs.
type AuditEntry struct {
	Seq             uint64            `json:"seq"` // set by Append; increases with every entry
	At              time.Time         `json:"at"`  // set to the store's clock when zero
	Team            string            `json:"team"`
	User            string            `json:"user"`
	Channel         string            `json:"channel,omitempty"`
	Action          string            `json:"action"` // "deploy", "deploy.confirm", "deploy.abort", "cancel", "lock", "unlock", "unlock.force", "login", "logout", …
	StackUID        string            `json:"stack_uid,omitempty"`
	StackName       string            `json:"stack,omitempty"`
	Args            map[string]string `json:"args,omitempty"`
	Result          string            `json:"result"` // "ok", "refused: …", "error: …", "pending confirmation"
	Cloud66ActionID int64             `json:"cloud66_action_id,omitempty"`
	Detail          string            `json:"detail,omitempty"`
}

// ErrNotAudited is wrapped by the error of an audited write whose audit
// entry could not be written: the database refused the write (full disk,
// read-only file, I/O error) or the entry could not be encoded. Nothing of
// the change was written either, so the caller refuses it and says why.
var ErrNotAudited = errors.New("storage: the audit log could not be written")

// Append adds e to the log and returns it with Seq (and At, when zero)
// set. Action is required. Its errors wrap ErrNotAudited.
//
// Changes stored here take their entry as a trailing argument instead
// (WatchStore.Start and Save, LockStore.Acquire, LinkStore.Save,
// SubscriptionStore.Subscribe, …), which writes both in one transaction;
// Append is for what happens elsewhere:
// a call to Cloud 66 about to be made, or a refusal.
func (s *AuditStore) Append(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if e.Action == "" {
		return AuditEntry{}, fmt.Errorf("%w: empty Action", ErrNotAudited)
	}
	err := s.db.update(ctx, func(tx *bbolt.Tx) error { return s.db.appendAuditTx(tx, &e) })
	if err != nil {
		if !errors.Is(err, ErrNotAudited) {
			err = fmt.Errorf("%w: %w", ErrNotAudited, err)
		}
		return AuditEntry{}, fmt.Errorf("storage: append audit %s: %w", e.Action, err)
	}
	return e, nil
}

// appendAuditTx appends e inside tx, setting its Seq and, when zero, At.
// Its errors wrap ErrNotAudited.
func (d *DB) appendAuditTx(tx *bbolt.Tx, e *AuditEntry) error {
	if e.Action == "" {
		return fmt.Errorf("%w: empty Action", ErrNotAudited)
	}
	if e.At.IsZero() {
		e.At = d.now()
	}
	b, err := bucket(tx, bucketAudit)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotAudited, err)
	}
	// NextSequence is part of the transaction, so a rolled-back append
	// does not use up a number, and concurrent appends are numbered in
	// commit order.
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotAudited, err)
	}
	e.Seq = seq
	v, err := encodeAudit(*e)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotAudited, err)
	}
	if err := b.Put(encodeUint64(seq), v); err != nil {
		return fmt.Errorf("%w: %w", ErrNotAudited, err)
	}
	return nil
}

// updateAudited is update for a change that is audited: when fn makes its
// change (returns nil), the entries are appended in the same transaction,
// so the change and its record commit together or not at all. An error of
// fn's own (ErrNotFound, ErrStackBusy, errNoChanges) comes back as it is and
// appends nothing; any other failure (the transaction could not begin or
// commit, an entry could not be written) wraps ErrNotAudited. Without
// entries it is update.
func (d *DB) updateAudited(ctx context.Context, audit []AuditEntry, fn func(tx *bbolt.Tx) error) error {
	if len(audit) == 0 {
		return d.update(ctx, fn)
	}
	var fnErr error
	err := d.update(ctx, func(tx *bbolt.Tx) error {
		if fnErr = fn(tx); fnErr != nil {
			return fnErr
		}
		for i := range audit {
			e := audit[i] // the caller's entries stay as they were
			if err := d.appendAuditTx(tx, &e); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || fnErr != nil && errors.Is(err, fnErr) || errors.Is(err, ErrNotAudited) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNotAudited, err)
}

// Scan calls fn for every entry whose At is not before since (a zero
// since means all), in Seq order, which is oldest first. It stops at the
// first error from fn and returns that error unwrapped.
//
// Entries are read auditScanBatch at a time, each batch in its own short
// read transaction, and fn runs outside any transaction, so fn may take its
// time and may even call the DB or its stores. The flip side is that entries appended
// during the scan may or may not be seen. Every entry is read and decoded
// to apply since, since At is the caller's and need not follow Seq order;
// that is fine for an occasional export of a chat bot's log.
func (s *AuditStore) Scan(ctx context.Context, since time.Time, fn func(AuditEntry) error) error {
	next := []byte(nil) // key to resume from; nil starts at the first entry
	for {
		var (
			batch []AuditEntry
			more  bool
		)
		err := s.db.view(ctx, func(tx *bbolt.Tx) error {
			batch, more = nil, false
			b, err := bucket(tx, bucketAudit)
			if err != nil {
				return err
			}
			c := b.Cursor()
			k, v := c.First()
			if next != nil {
				k, v = c.Seek(next)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == auditScanBatch {
					// k is the first entry of the next batch.
					next, more = bytes.Clone(k), true
					return nil
				}
				n++
				seq, err := decodeUint64(k)
				if err != nil {
					return fmt.Errorf("corrupt key %x: %w", k, err)
				}
				// Decoding copies everything out of bbolt's memory map.
				e, err := decodeAudit(seq, v)
				if err != nil {
					return err
				}
				if !since.IsZero() && e.At.Before(since) {
					continue
				}
				batch = append(batch, e)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storage: scan audit: %w", err)
		}
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}
