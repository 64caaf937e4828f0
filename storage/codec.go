package storage

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// What other backends share with this one (storage/postgres): the records
// encoded, the secrets made and hashed, and the input checked exactly as
// here, so a sealed value opens with the same keys whichever backend wrote
// it, `c66bot migrate` moves records between backends unchanged, and an id
// or a secret handed out by one is the same shape as the other's. The
// functions are the ones this package's stores use; the layouts are in
// encoding.go.

// EncodeLink is a link's record, sealed with its Identity.Key as
// associated data; the identity is not inside.
func EncodeLink(l Link) ([]byte, error) { return encodeLink(l) }

// DecodeLink reverses EncodeLink for the link of id.
func DecodeLink(id Identity, b []byte) (Link, error) { return decodeLink(id, b) }

// EncodeLogin is a pending login's record, identity included, sealed with
// the hash of its state as associated data.
func EncodeLogin(p PendingLogin) ([]byte, error) { return encodeLogin(p) }

// DecodeLogin reverses EncodeLogin.
func DecodeLogin(b []byte) (PendingLogin, error) { return decodeLogin(b) }

// EncodeIntent is an intent's record, sealed with the hash of its id as
// associated data; the id is not inside.
func EncodeIntent(in Intent) ([]byte, error) { return encodeIntent(in) }

// DecodeIntent reverses EncodeIntent, giving the intent the id it was
// looked up by.
func DecodeIntent(id string, b []byte) (Intent, error) { return decodeIntent(id, b) }

// EncodeWatch is a watch's record, sealed with its ID as associated data;
// the id is not inside.
func EncodeWatch(w Watch) ([]byte, error) { return encodeWatch(w) }

// DecodeWatch reverses EncodeWatch for the watch id.
func DecodeWatch(id string, b []byte) (Watch, error) { return decodeWatch(id, b) }

// EncodeLock is a lock's plain record; team and stack uid are not inside.
func EncodeLock(l Lock) ([]byte, error) { return encodeLock(l) }

// DecodeLock reverses EncodeLock for the lock on stackUID in team.
func DecodeLock(team, stackUID string, b []byte) (Lock, error) { return decodeLock(team, stackUID, b) }

// EncodeAudit is an audit entry's plain record; the sequence number is not
// inside. It fails for an At that JSON cannot hold (a year past 9999).
func EncodeAudit(e AuditEntry) ([]byte, error) { return encodeAudit(e) }

// DecodeAudit reverses EncodeAudit for the entry numbered seq.
func DecodeAudit(seq uint64, b []byte) (AuditEntry, error) { return decodeAudit(seq, b) }

// EncodeSubscription is a subscription's plain record with the hash of its
// current webhook secret; team, channel and stack uid are not inside, its
// id is.
func EncodeSubscription(sub Subscription, secretHash []byte) ([]byte, error) {
	return encodeSubscription(sub, secretHash)
}

// DecodeSubscription reverses EncodeSubscription for the subscription of
// channel to stackUID in team, and returns the secret's hash alongside.
func DecodeSubscription(team, channel, stackUID string, b []byte) (sub Subscription, secretHash []byte, err error) {
	key, err := subscriptionKey(team, channel, stackUID)
	if err != nil {
		return Subscription{}, nil, err
	}
	return decodeSubscription(key, b)
}

// EncodeAPIToken is an API token's plain record with the token's hash; the
// name is not inside, and the token never is.
func EncodeAPIToken(t APIToken, hash []byte) ([]byte, error) { return encodeAPIToken(t, hash) }

// DecodeAPIToken reverses EncodeAPIToken for the token named name, and
// returns the hash alongside.
func DecodeAPIToken(name string, b []byte) (t APIToken, hash []byte, err error) {
	return decodeAPIToken(name, b)
}

// EncodeOutbox is an outbox item's plain record; the id is not inside.
func EncodeOutbox(it OutboxItem) ([]byte, error) { return encodeOutbox(it) }

// DecodeOutbox reverses EncodeOutbox for item id.
func DecodeOutbox(id uint64, b []byte) (OutboxItem, error) { return decodeOutbox(id, b) }

// WatchID is how watch number n is spelt: 20 digits, zero-padded, so string
// order is number order.
func WatchID(n uint64) string { return fmt.Sprintf("%020d", n) }

// NewLoginState returns a new OAuth state (32 random bytes, base64url
// without padding) and the SHA-256 that is stored in its place.
func NewLoginState() (state string, hash []byte, err error) {
	return newSecret(stateSize, "", stateKey)
}

// LoginStateHash returns the SHA-256 of state, or false for text
// NewLoginState could not have made.
func LoginStateHash(state string) (hash []byte, ok bool) { return stateKey(state) }

// NewIntentID returns a new intent id (16 random bytes, base64url without
// padding) and the SHA-256 that is stored in its place.
func NewIntentID() (id string, hash []byte, err error) {
	return newSecret(intentIDSize, "", intentKey)
}

// IntentIDHash returns the SHA-256 of id, or false for text NewIntentID
// could not have made.
func IntentIDHash(id string) (hash []byte, ok bool) { return intentKey(id) }

// NewWebhookSecret returns a new webhook secret (32 random bytes,
// base64url without padding) and the SHA-256 that is stored in its place.
func NewWebhookSecret() (secret string, hash []byte, err error) {
	return newSecret(webhookSecretSize, "", webhookSecretKey)
}

// WebhookSecretHash returns the SHA-256 of secret, or false for text
// NewWebhookSecret could not have made.
func WebhookSecretHash(secret string) (hash []byte, ok bool) { return webhookSecretKey(secret) }

// NewSubscriptionID returns a new subscription id: 16 random bytes,
// base64url without padding.
func NewSubscriptionID() (string, error) {
	id, _, err := newSecret(subscriptionIDSize, "", nil)
	return id, err
}

// NewAPIToken returns a new API token ("c66bot_" and 32 random bytes,
// base64url without padding) and the SHA-256 that is stored in its place.
func NewAPIToken() (token string, hash []byte, err error) {
	return newSecret(apiTokenSize, apiTokenPrefix, apiTokenKey)
}

// APITokenHash returns the SHA-256 of token, or false for text NewAPIToken
// could not have made.
func APITokenHash(token string) (hash []byte, ok bool) { return apiTokenKey(token) }

// newSecret returns prefix followed by size random bytes in base64url
// without padding, and its hash by hash (none when hash is nil).
func newSecret(size int, prefix string, hash func(string) ([]byte, bool)) (s string, h []byte, err error) {
	random := make([]byte, size)
	if _, err := rand.Read(random); err != nil {
		return "", nil, err
	}
	s = prefix + newStateString(random)
	if hash != nil {
		h, _ = hash(s)
	}
	return s, h, nil
}

// CheckIdentity returns the error the stores give for an identity that is
// not Valid, or nil.
func CheckIdentity(id Identity) error {
	if id.Valid() {
		return nil
	}
	return invalidIdentity(id)
}

// CheckLock returns the error the lock store gives for a team or stack
// uid it refuses, or nil.
func CheckLock(team, stackUID string) error {
	_, err := lockKey(team, stackUID)
	return err
}

// CheckLockTeam is CheckLock for listing a team's locks.
func CheckLockTeam(team string) error { return validLockTeam(team) }

// CheckSubscriptionChannel returns the error the subscription store gives
// for a team or channel it refuses, or nil.
func CheckSubscriptionChannel(team, channel string) error {
	_, err := subscriptionPrefix(team, channel)
	return err
}

// CheckAPITokenName returns the error the API token store gives for a
// name it refuses, or nil.
func CheckAPITokenName(name string) error { return validAPITokenName(name) }

// LoginVerdict returns ErrStateExpired when p can no longer be finished at
// now, and clears its verifier then, so an expired flow cannot be finished
// by mistake.
func LoginVerdict(p *PendingLogin, now time.Time) error { return expiryVerdict(p, now) }

// APITokenStale reports whether t's LastUsedAt is due to be written at now
// (it is written at most once a minute).
func APITokenStale(t APIToken, now time.Time) bool { return apiTokenStale(t, now) }

// Tally counts sealed, a value stored with ad as associated data, in r, as
// CheckKeys counts each of the file's sealed values.
func (r *KeyReport) Tally(s *Sealer, sealed, ad []byte) {
	plain, err := s.Open(sealed, ad)
	clear(plain)
	switch {
	case err != nil:
		r.Unopenable++
		if id, ok := s.unknownKeyID(sealed); ok {
			r.UnknownKeyIDs = addKeyID(r.UnknownKeyIDs, id)
		}
	case s.SealedWithPrimary(sealed):
		r.Primary++
	default:
		r.Older++
	}
}

// Reseal returns sealed, a value stored with ad as associated data,
// sealed again under the primary key, and counts it in r, as Rekey does
// with each of the file's sealed values; it returns nil, nothing to
// write, for a value already under the primary key or one no configured
// key opens.
func (r *RekeyReport) Reseal(s *Sealer, sealed, ad []byte) ([]byte, error) {
	if s.SealedWithPrimary(sealed) {
		r.AlreadyPrimary++
		return nil, nil
	}
	plain, err := s.Open(sealed, ad)
	if err != nil {
		r.Failed++
		if id, ok := s.unknownKeyID(sealed); ok {
			r.UnknownKeyIDs = addKeyID(r.UnknownKeyIDs, id)
		}
		return nil, nil
	}
	defer clear(plain)
	out, err := s.Seal(plain, ad)
	if err != nil {
		return nil, err
	}
	r.Resealed++
	return out, nil
}

// Add adds o's counts to r.
func (r *RekeyReport) Add(o RekeyReport) {
	r.Resealed += o.Resealed
	r.AlreadyPrimary += o.AlreadyPrimary
	r.Failed += o.Failed
	for _, id := range o.UnknownKeyIDs {
		r.UnknownKeyIDs = addKeyID(r.UnknownKeyIDs, id)
	}
}

// addKeyID adds id to the sorted set ids.
func addKeyID(ids []string, id string) []string {
	if i, found := slices.BinarySearch(ids, id); !found {
		ids = slices.Insert(ids, i, id)
	}
	return ids
}

// WrongKey is Open's verdict on the keys of s after a check of the
// durable sealed values (links and watches) counted in r, which stops at
// the first that opens: a *WrongKeyError naming path when r counted some
// and none opened, else nil.
func (r KeyReport) WrongKey(path string, s *Sealer) error {
	if r.Unopenable == 0 || r.Primary+r.Older > 0 {
		return nil
	}
	e := &WrongKeyError{Path: path, Sealed: r.Unopenable, SealedWith: r.UnknownKeyIDs}
	for _, k := range s.keys {
		e.Configured = append(e.Configured, hex.EncodeToString(k.id[:]))
	}
	return e
}
