package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// LinkStore holds each Slack person's Cloud 66 link; get it from
// [DB.Links].
type LinkStore struct{ db *DB }

// Link is a Slack person's Cloud 66 link. Everything but Identity is sealed
// as one value with Identity.Key() as associated data, so a sealed value
// copied under another person's key does not open.
type Link struct {
	Identity     Identity
	AccessToken  string
	RefreshToken string
	TokenType    string
	Expiry       time.Time // zero means the token does not expire
	Scopes       []string
	Account      string // which Cloud 66 account(s), e.g. "Acme"; for display, not secret
	// Email is the Cloud 66 user's e-mail, when known, so that Cloud 66's
	// "triggered by ana@example.com" can be shown as the Slack person. For
	// display only: it never decides whose token is used. Links saved before
	// it existed have none.
	Email    string
	LinkedAt time.Time
}

// Save stores l, replacing any link for the same identity; a refreshed
// token is saved the same way. A zero LinkedAt is set to the store's clock.
//
// The audit entries, if any, are appended in the same transaction when the
// change is made (see updateAudited): a change whose entry cannot be written
// is not made, and the error wraps ErrNotAudited.
func (s *LinkStore) Save(ctx context.Context, l Link, audit ...AuditEntry) error {
	if !l.Identity.Valid() {
		return invalidIdentity(l.Identity)
	}
	if l.AccessToken == "" {
		return fmt.Errorf("storage: link for %s: empty access token", l.Identity)
	}
	if l.LinkedAt.IsZero() {
		l.LinkedAt = s.db.now()
	}
	plain, err := encodeLink(l)
	if err != nil {
		return fmt.Errorf("storage: link for %s: %w", l.Identity, err)
	}
	key := l.Identity.Key()
	// Sealed before the transaction so the single writer lock is held only
	// for the Put.
	sealed, err := s.db.sealer.Seal(plain, key)
	if err != nil {
		return fmt.Errorf("storage: link for %s: %w", l.Identity, err)
	}
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		return b.Put(key, sealed)
	})
	if err != nil {
		return fmt.Errorf("storage: save link for %s: %w", l.Identity, err)
	}
	return nil
}

// Get returns the link for id, or an error wrapping ErrNotFound. A
// stored link that does not open with the configured keys (sealed with a key
// since removed, or tampered with) is no use to anyone, so it counts as no
// link: the error wraps ErrNotFound as well as ErrSealed, and the person is
// asked to log in again, which replaces it. It is kept, not deleted, so that
// putting the missing key back brings it back.
func (s *LinkStore) Get(ctx context.Context, id Identity) (Link, error) {
	if !id.Valid() {
		return Link{}, invalidIdentity(id)
	}
	key := id.Key()
	sealed, err := s.db.getCopy(ctx, bucketLinks, key)
	if err != nil {
		return Link{}, fmt.Errorf("storage: link for %s: %w", id, err)
	}
	// Opened outside the transaction to keep the read short.
	plain, err := s.db.sealer.Open(sealed, key)
	if err != nil {
		return Link{}, fmt.Errorf("storage: link for %s does not open, so it counts as %w: %w", id, ErrNotFound, err)
	}
	return decodeLink(id, plain)
}

// Delete removes the link for id (on unlink, on invalid_grant, or when
// the person leaves the workspace) and reports whether there was one.
//
// The audit entries, if any, are appended in the same transaction when there
// was a link to delete (see updateAudited): a change whose entry cannot be written
// is not made, and the error wraps ErrNotAudited.
func (s *LinkStore) Delete(ctx context.Context, id Identity, audit ...AuditEntry) (existed bool, err error) {
	if !id.Valid() {
		return false, invalidIdentity(id)
	}
	key := id.Key()
	err = s.db.updateAudited(ctx, audit, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		if b.Get(key) == nil {
			return errNoChanges
		}
		existed = true
		return b.Delete(key)
	})
	if errors.Is(err, errNoChanges) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage: delete link for %s: %w", id, err)
	}
	return existed, nil
}

// Count returns how many people have a link, for metrics and the
// startup log.
func (s *LinkStore) Count(ctx context.Context) (int, error) {
	n, err := s.db.countKeys(ctx, bucketLinks)
	if err != nil {
		return 0, fmt.Errorf("storage: count links: %w", err)
	}
	return n, nil
}

// SetEmail sets the Cloud 66 e-mail of id's existing link, reading and
// writing it in one transaction so that a login or logout at the same time
// is never undone by it. It fails with an error wrapping ErrNotFound when
// there is no link (or it does not open).
func (s *LinkStore) SetEmail(ctx context.Context, id Identity, email string) error {
	if !id.Valid() {
		return invalidIdentity(id)
	}
	key := id.Key()
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		sealed := b.Get(key)
		if sealed == nil {
			return ErrNotFound
		}
		plain, err := s.db.sealer.Open(sealed, key)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		l, err := decodeLink(id, plain)
		clear(plain)
		if err != nil {
			return err
		}
		if l.Email == email {
			return errNoChanges
		}
		l.Email = email
		plain, err = encodeLink(l)
		if err != nil {
			return err
		}
		defer clear(plain)
		resealed, err := s.db.sealer.Seal(plain, key)
		if err != nil {
			return err
		}
		return b.Put(key, resealed)
	})
	if errors.Is(err, errNoChanges) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: set e-mail of link for %s: %w", id, err)
	}
	return nil
}
