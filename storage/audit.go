package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// auditScanBatch is how many audit entries ScanAudit reads per read
// transaction. bbolt's docs warn that a long-running read transaction keeps
// the pages it sees from being reused, so the file grows while writers
// continue; short batches keep each transaction to a few milliseconds.
const auditScanBatch = 500

// AuditEntry is one line of the audit log: who did what to which stack, and
// how it ended. The log is append-only; entries are never changed or
// deleted by this package. It is stored in the clear, so Args and Detail
// must never hold tokens or response URLs.
type AuditEntry struct {
	Seq             uint64            `json:"seq"` // set by AppendAudit; increases with every entry
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

// AppendAudit adds e to the log and returns it with Seq (and At, when zero)
// set. Action is required.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if e.Action == "" {
		return AuditEntry{}, errors.New("storage: append audit: empty Action")
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Seq = 0
	v, err := encodeAudit(e)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("storage: append audit %s: %w", e.Action, err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketAudit)
		if err != nil {
			return err
		}
		// NextSequence is part of the transaction, so a rolled-back append
		// does not use up a number, and concurrent appends are numbered in
		// commit order.
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		return b.Put(encodeUint64(seq), v)
	})
	if err != nil {
		return AuditEntry{}, fmt.Errorf("storage: append audit %s: %w", e.Action, err)
	}
	return e, nil
}

// ScanAudit calls fn for every entry whose At is not before since (a zero
// since means all), in Seq order, which is oldest first. It stops at the
// first error from fn and returns that error unwrapped.
//
// Entries are read auditScanBatch at a time, each batch in its own short
// read transaction, and fn runs outside any transaction, so fn may take its
// time and may even call the Store. The flip side is that entries appended
// during the scan may or may not be seen. Every entry is read and decoded
// to apply since, since At is the caller's and need not follow Seq order;
// that is fine for an occasional export of a chat bot's log.
func (s *Store) ScanAudit(ctx context.Context, since time.Time, fn func(AuditEntry) error) error {
	next := []byte(nil) // key to resume from; nil starts at the first entry
	for {
		var (
			batch []AuditEntry
			more  bool
		)
		err := s.view(ctx, func(tx *bbolt.Tx) error {
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
