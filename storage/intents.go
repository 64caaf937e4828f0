package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// IntentTTL is how long a confirmation button stays usable. Five minutes is
// enough to read the prompt and click; after that the stack may have changed
// under the prompt, so the person should ask again.
const IntentTTL = 5 * time.Minute

// MaxIntentTTL bounds what a caller may ask for: an approval request waits
// for other people, so it lives longer than a confirmation, but not for ever.
const MaxIntentTTL = time.Hour

// IntentStore holds the pending confirmations; get it from [DB.Intents].
type IntentStore struct{ db *DB }

// Intent is a pending confirmation: what a person asked for, parked until
// they press Confirm. A Slack button's value is the intent's ID, never the
// parameters, so a forged or replayed payload cannot choose what runs; it
// can at most name an id, and an id works once.
//
// Errors from this file never include the id: like an OAuth state, it is a
// bearer capability until spent.
type Intent struct {
	ID          string   // 128 random bits, base64url without padding; set by Create
	Kind        string   // "deploy", "cancel", "unlock", …
	Requester   Identity // who asked; usually the only person allowed to confirm
	Channel     string
	ResponseURL string // Slack response_url; lets anyone post as the bot, so sealed
	StackUID    string
	StackName   string
	Environment string
	Params      map[string]string
	CreatedAt   time.Time // set by Create from the store's clock
	ExpiresAt   time.Time // set by Create: CreatedAt+IntentTTL, or the caller's value up to CreatedAt+MaxIntentTTL
}

// Create stores in and returns it with ID, CreatedAt and ExpiresAt
// set. It requires Kind and a valid Requester. A zero ExpiresAt means
// IntentTTL from now; a later one is capped at MaxIntentTTL.
func (s *IntentStore) Create(ctx context.Context, in Intent) (Intent, error) {
	in, err := NewIntent(in, s.db.now())
	if err != nil {
		return Intent{}, err
	}
	id, key, err := NewIntentID()
	if err != nil {
		return Intent{}, fmt.Errorf("storage: create intent: %w", err)
	}
	in.ID = id
	plain, err := encodeIntent(in)
	if err != nil {
		return Intent{}, fmt.Errorf("storage: create %s intent for %s: %w", in.Kind, in.Requester, err)
	}
	// Sealed before the transaction so the writer lock is held only for the
	// Put.
	sealed, err := s.db.sealer.Seal(plain, key)
	if err != nil {
		return Intent{}, fmt.Errorf("storage: create %s intent for %s: %w", in.Kind, in.Requester, err)
	}
	err = s.db.update(ctx, func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketIntents)
		if err != nil {
			return err
		}
		return b.Put(key, sealed)
	})
	if err != nil {
		return Intent{}, fmt.Errorf("storage: create %s intent for %s: %w", in.Kind, in.Requester, err)
	}
	return in, nil
}

// Get returns the intent with id without spending it, for showing
// what a button will do. It returns an error wrapping ErrNotFound for an id
// that is malformed, unknown, spent, or whose value no longer opens (its key
// was retired), and ErrIntentExpired, together with the intent, for one past
// ExpiresAt.
func (s *IntentStore) Get(ctx context.Context, id string) (Intent, error) {
	key, ok := intentKey(id)
	if !ok {
		return Intent{}, fmt.Errorf("storage: get intent: %w", ErrNotFound)
	}
	sealed, err := s.db.getCopy(ctx, bucketIntents, key)
	if err != nil {
		return Intent{}, fmt.Errorf("storage: get intent: %w", err)
	}
	in, err := s.db.openIntent(id, sealed, key)
	if err != nil {
		// An intent that does not open can never be confirmed; to the caller
		// it is as good as gone, and the sweep will delete it.
		return Intent{}, fmt.Errorf("storage: get intent: %w: %w", ErrNotFound, err)
	}
	if !s.db.now().Before(in.ExpiresAt) {
		return in, fmt.Errorf("storage: get intent: %w", ErrIntentExpired)
	}
	return in, nil
}

// Consume spends the intent with id, once, in a single write
// transaction, so of a double click or a duplicate delivery exactly one call
// gets the intent and the others get ErrNotFound.
//
//   - unknown, malformed, spent, or not opening: an error wrapping
//     ErrNotFound (an unopenable one is deleted);
//   - expired: deleted, and the intent returned with an error wrapping
//     ErrIntentExpired so the caller can say what expired;
//   - check(in) returns an error: the intent is kept, so its rightful owner
//     can still press the button, and the intent is returned with check's
//     error, unwrapped;
//   - otherwise the intent is deleted and returned.
//
// check may be nil. It runs inside the write transaction, so it must be
// quick and must not call the DB or its stores (bbolt's writer lock is not
// reentrant).
func (s *IntentStore) Consume(ctx context.Context, id string, check func(Intent) error) (Intent, error) {
	now := s.db.now()
	return s.inTx(ctx, "consume", id, func(got Intent, openErr error) IntentOutcome {
		return ConsumeIntent(got, openErr, now, check)
	}, func(b *bbolt.Bucket, key []byte, _ Intent) error {
		return b.Delete(key)
	})
}

// Update applies fn to the unexpired intent with id and saves the
// result, in one write transaction, so approvals collected from several
// clicks at once all land. Errors are as for Get: an error wrapping
// ErrNotFound for an id that is malformed, unknown, spent or no longer
// opening, and ErrIntentExpired, together with the intent, for one past
// ExpiresAt; fn does not run for either.
//
// If fn returns an error nothing is saved, and the intent as stored is
// returned with fn's error, unwrapped. fn may change anything but ID, Kind,
// Requester and CreatedAt (an error if it does: an intent confirmed by its
// requester must be the one they asked for), and may bring ExpiresAt
// forward but not push it back.
//
// fn runs inside the write transaction, so it must be quick and must not
// call the DB or its stores (bbolt's writer lock is not reentrant).
func (s *IntentStore) Update(ctx context.Context, id string, fn func(*Intent) error) (Intent, error) {
	if fn == nil {
		return Intent{}, errors.New("storage: update intent: nil fn")
	}
	now := s.db.now()
	return s.inTx(ctx, "update", id, func(got Intent, openErr error) IntentOutcome {
		return UpdateIntent(got, openErr, now, fn)
	}, func(b *bbolt.Bucket, key []byte, next Intent) error {
		plain, err := encodeIntent(next)
		if err != nil {
			return err
		}
		sealed, err := s.db.sealer.Seal(plain, key)
		if err != nil {
			return err
		}
		return b.Put(key, sealed)
	})
}

// inTx is the one write transaction behind Consume and Update: it reads
// the intent with id, or fails with ErrNotFound when there is none (or id
// is malformed), has decide rule on it (with the error of unsealing it),
// and carries the outcome out with write.
func (s *IntentStore) inTx(ctx context.Context, op, id string, decide func(got Intent, openErr error) IntentOutcome, write func(b *bbolt.Bucket, key []byte, in Intent) error) (Intent, error) {
	key, ok := intentKey(id)
	if !ok {
		return Intent{}, fmt.Errorf("storage: %s intent: %w", op, ErrNotFound)
	}
	var out IntentOutcome
	err := s.db.update(ctx, func(tx *bbolt.Tx) error {
		out = IntentOutcome{}
		b, v, err := getTx(tx, bucketIntents, key)
		if err != nil {
			return err
		}
		got, openErr := s.db.openIntent(id, v, key)
		if out = decide(got, openErr); !out.Write {
			return errNoChanges
		}
		return write(b, key, out.Intent)
	})
	if errors.Is(err, errNoChanges) {
		err = nil
	}
	return out.Result(op, err)
}

// openIntent unseals an intents value stored under key; id is only copied
// into the result.
func (d *DB) openIntent(id string, sealed, key []byte) (Intent, error) {
	plain, err := d.sealer.Open(sealed, key)
	if err != nil {
		return Intent{}, err
	}
	return decodeIntent(id, plain)
}
