package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// LeaseStore holds the leases the replicas share, so each piece of work (a
// followed Cloud 66 action, a channel's posting, the outbox) has one owner
// at a time; get it from [DB.Leases]. It behaves as storage.LocalLeases
// does, on the store's clock: each change is one conditional statement, so
// of replicas racing for a lease exactly one wins.
type LeaseStore struct{ db *DB }

// leaseColumns are what scanLease reads.
const leaseColumns = `key, owner, epoch, expires_at, note`

// Acquire takes key for owner for ttl. A free, released or expired lease
// is taken with the next epoch; owner's own is renewed, same epoch. When
// another owner holds it, held is false and l is their lease.
func (s *LeaseStore) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (l storage.Lease, held bool, err error) {
	if key == "" || owner == "" || ttl <= 0 {
		return storage.Lease{}, false, errors.New("postgres: acquire lease: key, owner and a positive ttl are needed")
	}
	now := s.db.now()
	// Another owner's lease is returned as it stands; when it is gone by
	// the time it is read (released or expired meanwhile), try again.
	for range 10 {
		err = s.db.write(ctx, nil, func(q querier) error {
			l, err = scanLease(q.QueryRow(ctx, `INSERT INTO leases AS l (`+leaseColumns+`) VALUES ($1, $2, 1, $3, '')
				ON CONFLICT (key) DO UPDATE SET
					owner = excluded.owner,
					epoch = CASE WHEN l.owner = excluded.owner AND l.expires_at > $4 THEN l.epoch ELSE l.epoch + 1 END,
					expires_at = excluded.expires_at
				WHERE l.owner = excluded.owner OR l.owner = '' OR l.expires_at <= $4
				RETURNING `+leaseColumns, key, owner, micro(now.Add(ttl)), now))
			held = err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				l, err = scanLease(q.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE key = $1 AND owner <> '' AND expires_at > $2`, key, now))
			}
			return err
		})
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return storage.Lease{}, false, fmt.Errorf("postgres: acquire lease %s: %w", key, err)
	}
	return l, held, nil
}

// Renew extends l by ttl while it is still l: same owner and epoch, not
// released, and not taken by anyone since (an expired lease nobody took is
// renewed). storage.ErrLeaseLost otherwise.
func (s *LeaseStore) Renew(ctx context.Context, l storage.Lease, ttl time.Duration) (storage.Lease, error) {
	var cur storage.Lease
	err := s.db.write(ctx, nil, func(q querier) error {
		var err error
		cur, err = scanLease(q.QueryRow(ctx, `UPDATE leases SET expires_at = $4
			WHERE key = $1 AND owner = $2 AND epoch = $3 AND owner <> '' RETURNING `+leaseColumns,
			l.Key, l.Owner, l.Epoch, micro(s.db.now().Add(ttl))))
		return lost(err)
	})
	if err != nil {
		return storage.Lease{}, err
	}
	return cur, nil
}

// Release gives l up at once, leaving note for the next owner. A lease no
// longer l's is left alone (storage.ErrLeaseLost).
func (s *LeaseStore) Release(ctx context.Context, l storage.Lease, note string) error {
	return s.db.write(ctx, nil, func(q querier) error {
		return lost(changed(q.Exec(ctx, `UPDATE leases SET owner = '', expires_at = $4, note = $5
			WHERE key = $1 AND owner = $2 AND epoch = $3 AND owner <> ''`, l.Key, l.Owner, l.Epoch, s.db.now(), note)))
	})
}

// lost turns "no such lease" into storage.ErrLeaseLost.
func lost(err error) error {
	if errors.Is(err, pgx.ErrNoRows) || errors.Is(err, errNoChanges) {
		return storage.ErrLeaseLost
	}
	return err
}

func scanLease(r pgx.Row) (storage.Lease, error) {
	var l storage.Lease
	err := r.Scan(&l.Key, &l.Owner, &l.Epoch, &l.Expires, &l.Note)
	return l, err
}

// BudgetStore holds the per-key token buckets the replicas share (a
// person's Cloud 66 requests, counted once whoever makes them); get it
// from [DB.Budgets]. It behaves as storage.LocalBudgets does: a row per
// key, updated in one transaction with storage.ReserveToken's arithmetic.
type BudgetStore struct{ db *DB }

// Reserve takes one token from key's bucket (perHour refilled evenly,
// holding at most burst) and says how long to wait before using it. The
// token is taken even when the caller must wait, so concurrent takers, on
// any replicas, queue up.
func (s *BudgetStore) Reserve(ctx context.Context, key string, perHour, burst float64) (time.Duration, error) {
	if perHour <= 0 || burst < 1 {
		return 0, errors.New("postgres: reserve budget: perHour > 0 and burst >= 1 are needed")
	}
	now := s.db.now()
	var wait time.Duration
	err := s.db.update(ctx, nil, func(tx pgx.Tx) error {
		var (
			tokens float64
			last   time.Time
		)
		// The no-op update locks an existing row, so the read and the write
		// below are one step for concurrent takers.
		if err := tx.QueryRow(ctx, `INSERT INTO budgets (key, tokens, refilled_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING tokens, refilled_at`, key, burst, now).Scan(&tokens, &last); err != nil {
			return err
		}
		tokens, last, wait = storage.ReserveToken(tokens, last, now, perHour, burst)
		_, err := tx.Exec(ctx, `UPDATE budgets SET tokens = $2, refilled_at = $3 WHERE key = $1`, key, tokens, micro(last))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: reserve budget %s: %w", key, err)
	}
	return wait, nil
}
