package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// auditScanBatch is how many entries Scan reads per query, so fn runs
// outside any query and no statement holds a snapshot for the whole log.
const auditScanBatch = 500

// AuditStore is the audit log, plain records in the order they were
// appended; get it from [DB.Audit]. It behaves as storage.AuditStore
// does, but for the numbering: Seq comes from a sequence, so it increases
// with every entry, and a rolled-back entry leaves a gap.
type AuditStore struct{ db *DB }

// Append adds e to the log and returns it with Seq (and At, when zero)
// set. Action is required. Its errors wrap storage.ErrNotAudited.
func (s *AuditStore) Append(ctx context.Context, e storage.AuditEntry) (storage.AuditEntry, error) {
	if e.Action == "" {
		return storage.AuditEntry{}, fmt.Errorf("%w: empty Action", storage.ErrNotAudited)
	}
	err := s.db.write(ctx, nil, func(q querier) error { return appendAudit(ctx, q, s.db.now(), &e) })
	if err != nil {
		if !errors.Is(err, storage.ErrNotAudited) {
			err = fmt.Errorf("%w: %w", storage.ErrNotAudited, err)
		}
		return storage.AuditEntry{}, fmt.Errorf("postgres: append audit %s: %w", e.Action, err)
	}
	return e, nil
}

// appendAudit appends e in tx, setting its Seq and, when zero, its At to
// now. Its errors wrap storage.ErrNotAudited; an At JSON cannot hold (a
// year past 9999) is one.
func appendAudit(ctx context.Context, q querier, now time.Time, e *storage.AuditEntry) error {
	if e.Action == "" {
		return fmt.Errorf("%w: empty Action", storage.ErrNotAudited)
	}
	if e.At.IsZero() {
		e.At = now
	}
	v, err := storage.EncodeAudit(*e)
	if err != nil {
		return fmt.Errorf("%w: %w", storage.ErrNotAudited, err)
	}
	var seq int64
	if err := q.QueryRow(ctx, `INSERT INTO audit (at, record) VALUES ($1, $2) RETURNING seq`, micro(e.At), v).Scan(&seq); err != nil {
		return fmt.Errorf("%w: %w", storage.ErrNotAudited, err)
	}
	e.Seq = uint64(seq)
	return nil
}

// Scan calls fn for every entry whose At is not before since (a zero since
// means all), in Seq order. It stops at the
// first error from fn and returns it unwrapped. Entries are read 500 at a
// time and fn runs between reads, so it may call the stores; entries
// appended meanwhile may or may not be seen.
func (s *AuditStore) Scan(ctx context.Context, since time.Time, fn func(storage.AuditEntry) error) error {
	var after int64
	for {
		var batch []storage.AuditEntry
		err := s.db.view(ctx, func(q querier) error {
			// The column is to the microsecond, so it only narrows the
			// read; the record's At decides.
			rows, err := q.Query(ctx, `SELECT seq, record FROM audit WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT $3`,
				after, micro(since), auditScanBatch)
			if err != nil {
				return err
			}
			batch, err = pgx.CollectRows(rows, bySeq(storage.DecodeAudit))
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: scan audit: %w", err)
		}
		for _, e := range batch {
			if !since.IsZero() && e.At.Before(since) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(batch) < auditScanBatch {
			return nil
		}
		after = int64(batch[len(batch)-1].Seq)
	}
}
