package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/c66bot/c66bot/storage"
)

// LinkStore holds each Slack person's Cloud 66 link, sealed, with the
// person's identity as associated data; get it from [DB.Links]. It behaves
// as storage.LinkStore does.
type LinkStore struct{ db *DB }

// Save stores l, replacing any link for the same identity. A zero
// LinkedAt is set to the store's clock. The audit entries, if any, commit
// with it or it fails with storage.ErrNotAudited.
func (s *LinkStore) Save(ctx context.Context, l storage.Link, audit ...storage.AuditEntry) error {
	if err := storage.CheckIdentity(l.Identity); err != nil {
		return err
	}
	if l.AccessToken == "" {
		return fmt.Errorf("postgres: link for %s: empty access token", l.Identity)
	}
	if l.LinkedAt.IsZero() {
		l.LinkedAt = s.db.now()
	}
	sealed, err := sealRecord(s.db.sealer, storage.EncodeLink, l, l.Identity.Key())
	if err != nil {
		return fmt.Errorf("postgres: link for %s: %w", l.Identity, err)
	}
	err = s.db.write(ctx, audit, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO links (identity, sealed) VALUES ($1, $2)
			ON CONFLICT (identity) DO UPDATE SET sealed = excluded.sealed`, l.Identity.String(), sealed)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: save link for %s: %w", l.Identity, err)
	}
	return nil
}

// Get returns the link for id, or an error wrapping storage.ErrNotFound,
// also (with storage.ErrSealed) for a stored link the keys do not open: it
// is kept, so putting the missing key back brings it back.
func (s *LinkStore) Get(ctx context.Context, id storage.Identity) (storage.Link, error) {
	if err := storage.CheckIdentity(id); err != nil {
		return storage.Link{}, err
	}
	var sealed []byte
	err := s.db.view(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT sealed FROM links WHERE identity = $1`, id.String()).Scan(&sealed))
	})
	if err != nil {
		return storage.Link{}, fmt.Errorf("postgres: link for %s: %w", id, err)
	}
	l, err := openRecord(s.db.sealer, sealed, id.Key(), func(b []byte) (storage.Link, error) { return storage.DecodeLink(id, b) })
	if errors.Is(err, storage.ErrSealed) {
		return storage.Link{}, fmt.Errorf("postgres: link for %s does not open, so it counts as %w: %w", id, storage.ErrNotFound, err)
	}
	return l, err
}

// Delete removes the link for id and reports whether there was one. The
// audit entries, if any, are appended only when there was.
func (s *LinkStore) Delete(ctx context.Context, id storage.Identity, audit ...storage.AuditEntry) (existed bool, err error) {
	if err := storage.CheckIdentity(id); err != nil {
		return false, err
	}
	err = s.db.write(ctx, audit, func(q querier) error {
		return changed(q.Exec(ctx, `DELETE FROM links WHERE identity = $1`, id.String()))
	})
	if errors.Is(err, errNoChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: delete link for %s: %w", id, err)
	}
	return true, nil
}

// Count returns how many people have a link.
func (s *LinkStore) Count(ctx context.Context) (int, error) {
	n, err := s.db.count(ctx, `SELECT count(*) FROM links`)
	if err != nil {
		return 0, fmt.Errorf("postgres: count links: %w", err)
	}
	return n, nil
}

// SetEmail sets the Cloud 66 e-mail of id's existing link in one
// transaction (the row locked while it is resealed), as
// storage.LinkStore.SetEmail does.
func (s *LinkStore) SetEmail(ctx context.Context, id storage.Identity, email string) error {
	if err := storage.CheckIdentity(id); err != nil {
		return err
	}
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		var sealed []byte
		if err := noRows(tx.QueryRow(ctx, `SELECT sealed FROM links WHERE identity = $1 FOR UPDATE`, id.String()).Scan(&sealed)); err != nil {
			return err
		}
		l, err := openRecord(s.db.sealer, sealed, id.Key(), func(b []byte) (storage.Link, error) { return storage.DecodeLink(id, b) })
		if errors.Is(err, storage.ErrSealed) {
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		}
		if err != nil {
			return err
		}
		if l.Email == email {
			return nil
		}
		l.Email = email
		resealed, err := sealRecord(s.db.sealer, storage.EncodeLink, l, id.Key())
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE links SET sealed = $2 WHERE identity = $1`, id.String(), resealed)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set e-mail of link for %s: %w", id, err)
	}
	return nil
}
