package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// StateTTL is how long an OAuth login may take, from `login` in Slack to the
// callback: RFC 6749 §4.1.2 recommends at most ten minutes for the code, and
// the state needs no longer.
const StateTTL = 10 * time.Minute

// LoginStore holds the OAuth logins that have been started but not
// finished (the login states); get it from [DB.Logins].
type LoginStore struct{ db *DB }

// PendingLogin is an OAuth login that has been started but not finished.
type PendingLogin struct {
	Identity    Identity // who started it; the link will be saved for them
	Channel     string   // where to report the outcome
	ResponseURL string   // Slack response_url; lets anyone post as the bot, so sealed
	Verifier    string   // PKCE verifier; sealed
	RedirectURL string   // the redirect_uri this flow used (callback URL or out-of-band)
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Create records p and returns the OAuth state to put in the
// authorization URL: 32 random bytes, base64url without padding (43
// characters). Only the state's SHA-256 is stored, so the database file alone
// cannot be used to complete someone's login.
//
// CreatedAt is always set from the store's clock. ExpiresAt defaults to
// CreatedAt+StateTTL and may be shortened but not lengthened. A person has at
// most one pending login: starting a new one deletes the previous one, which
// also lets the out-of-band flow (`login <code>`, where no state comes back)
// find it by identity.
func (s *LoginStore) Create(ctx context.Context, p PendingLogin) (state string, err error) {
	if p, err = NewPendingLogin(p, s.db.now()); err != nil {
		return "", err
	}
	state, key, err := NewLoginState()
	if err != nil {
		return "", fmt.Errorf("storage: create login state: %w", err)
	}
	plain, err := encodeLogin(p)
	if err != nil {
		return "", fmt.Errorf("storage: create login state for %s: %w", p.Identity, err)
	}
	sealed, err := s.db.sealer.Seal(plain, key)
	if err != nil {
		return "", fmt.Errorf("storage: create login state for %s: %w", p.Identity, err)
	}

	idKey := p.Identity.Key()
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		states, index, err := loginBuckets(tx)
		if err != nil {
			return err
		}
		if old := index.Get(idKey); old != nil {
			if err := states.Delete(old); err != nil {
				return err
			}
		}
		if err := states.Put(key, sealed); err != nil {
			return err
		}
		return index.Put(idKey, key)
	})
	if err != nil {
		return "", fmt.Errorf("storage: create login state for %s: %w", p.Identity, err)
	}
	return state, nil
}

// Consume finishes the redirect flow: it looks up state, deletes it in the
// same transaction (so it works once), and returns the pending login.
//
// It returns ErrStateInvalid for a state that is malformed, unknown or
// already used, and ErrStateExpired for one past ExpiresAt, which is deleted
// all the same. With ErrStateExpired the PendingLogin is returned too, minus
// its Verifier, so the caller can tell the person in Slack to start again.
func (s *LoginStore) Consume(ctx context.Context, state string) (PendingLogin, error) {
	key, ok := stateKey(state)
	if !ok {
		return PendingLogin{}, ErrStateInvalid
	}
	return s.consume(ctx, Identity{}, func(tx *bbolt.Tx) ([]byte, error) {
		if _, _, err := getTx(tx, bucketLoginStates, key); err != nil {
			return nil, err
		}
		return key, nil
	})
}

// ConsumeFor finishes the out-of-band flow (`login <code>`), where no state
// comes back: it consumes id's latest pending login. Errors are as for
// Consume; ErrStateInvalid here means id has no pending login.
func (s *LoginStore) ConsumeFor(ctx context.Context, id Identity) (PendingLogin, error) {
	if !id.Valid() {
		return PendingLogin{}, invalidIdentity(id)
	}
	return s.consume(ctx, id, func(tx *bbolt.Tx) ([]byte, error) {
		// The index entry is spent with the state it points at.
		return takeTx(tx, bucketLoginByIdentity, id.Key())
	})
}

// consume is the one transaction behind Consume and ConsumeFor. find
// returns the key of the state to spend, or an error (ErrNotFound when
// there is none), which rolls back and is returned as ErrStateInvalid.
// After that the transaction commits whatever the verdict, since a state is
// spent once presented. owner, when valid, must be the identity sealed in
// the record: an index entry that disagrees was not written by us, and
// handing one person's flow to another is exactly what this check prevents.
func (s *LoginStore) consume(ctx context.Context, owner Identity, find func(tx *bbolt.Tx) ([]byte, error)) (PendingLogin, error) {
	now := s.db.now()
	var (
		p       PendingLogin
		verdict error
	)
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		p, verdict = PendingLogin{}, nil
		key, err := find(tx)
		if errors.Is(err, ErrNotFound) {
			return ErrStateInvalid
		}
		if err != nil {
			return err
		}
		// From here on the function returns nil so the deletes commit.
		sealed, err := takeTx(tx, bucketLoginStates, key)
		if errors.Is(err, ErrNotFound) {
			verdict = ErrStateInvalid // the index pointed at a swept state
			return nil
		}
		if err != nil {
			return err
		}
		pl, err := s.db.openLogin(sealed, key)
		if err != nil {
			verdict = fmt.Errorf("%w: %w", ErrStateInvalid, err)
			return nil
		}
		if owner.Valid() && pl.Identity != owner {
			verdict = ErrStateInvalid
			return nil
		}
		// Drop the identity index only if it still points here (ConsumeFor
		// has spent it already). The lookup above was by hash, so timing
		// reveals nothing about the state itself; the constant-time compare
		// is defence in depth.
		index, err := bucket(tx, bucketLoginByIdentity)
		if err != nil {
			return err
		}
		idKey := pl.Identity.Key()
		if subtle.ConstantTimeCompare(index.Get(idKey), key) == 1 {
			if err := index.Delete(idKey); err != nil {
				return err
			}
		}
		p, verdict = pl, expiryVerdict(&pl, now)
		return nil
	})
	if err != nil {
		return PendingLogin{}, wrapStateErr(err)
	}
	return p, verdict
}

// openLogin unseals a login_states value stored under key.
func (d *DB) openLogin(sealed, key []byte) (PendingLogin, error) {
	plain, err := d.sealer.Open(sealed, key)
	if err != nil {
		return PendingLogin{}, err
	}
	return decodeLogin(plain)
}

// expiryVerdict returns ErrStateExpired when p is no longer usable at now,
// and clears the verifier so an expired flow cannot be finished by mistake.
func expiryVerdict(p *PendingLogin, now time.Time) error {
	if now.Before(p.ExpiresAt) {
		return nil
	}
	p.Verifier = ""
	return ErrStateExpired
}

// wrapStateErr leaves ErrStateInvalid bare, since it is an expected outcome
// the caller switches on, and adds context to anything else.
func wrapStateErr(err error) error {
	if errors.Is(err, ErrStateInvalid) {
		return err
	}
	return fmt.Errorf("storage: consume login state: %w", err)
}

func loginBuckets(tx *bbolt.Tx) (states, index *bbolt.Bucket, err error) {
	if states, err = bucket(tx, bucketLoginStates); err != nil {
		return nil, nil, err
	}
	if index, err = bucket(tx, bucketLoginByIdentity); err != nil {
		return nil, nil, err
	}
	return states, index, nil
}

// Peek returns a pending login without consuming it, for the
// bot's start page, which shows the person who is being linked before the
// browser goes to Cloud 66. ErrStateInvalid for unknown or unreadable
// states, ErrStateExpired (with the login, verifier blanked) when expired.
func (s *LoginStore) Peek(ctx context.Context, state string) (PendingLogin, error) {
	key, ok := stateKey(state)
	if !ok {
		return PendingLogin{}, ErrStateInvalid
	}
	sealed, err := s.db.getCopy(ctx, bucketLoginStates, key)
	if errors.Is(err, ErrNotFound) {
		return PendingLogin{}, ErrStateInvalid
	}
	if err != nil {
		return PendingLogin{}, wrapStateErr(err)
	}
	p, err := s.db.openLogin(sealed, key)
	if err != nil {
		return PendingLogin{}, fmt.Errorf("%w: %w", ErrStateInvalid, err)
	}
	return p, expiryVerdict(&p, s.db.now())
}
