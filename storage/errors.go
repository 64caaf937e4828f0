package storage

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package. Callers test for them with errors.Is;
// most are wrapped with context (which link, which file) on the way out.
var (
	// ErrNotFound is returned when nothing is stored under the key asked
	// for: no link for an identity, no intent for an id (or one already
	// spent), no lock on a stack, no watch with that id, no subscription,
	// API token or outbox item of that name or id, and for a webhook secret
	// or API token that is unknown or malformed.
	ErrNotFound = errors.New("storage: not found")

	// ErrStateInvalid is returned for an OAuth state (or pending login) that
	// is unknown, already used, malformed, or cannot be opened.
	ErrStateInvalid = errors.New("storage: login state invalid or already used")

	// ErrStateExpired is returned for an OAuth state that existed but is past
	// its expiry; it has been deleted all the same.
	ErrStateExpired = errors.New("storage: login state expired")

	// ErrSealed is returned when a sealed value does not open: it was
	// tampered with, moved under another key, or sealed with a key that is not
	// configured.
	ErrSealed = errors.New("storage: sealed value does not open")

	// ErrLocked is returned by Open when another process holds the database
	// file's lock for longer than Options.Timeout.
	ErrLocked = errors.New("storage: database file is locked by another process")

	// ErrNotDatabase is returned by Open for a file that is not a bbolt
	// database (or whose header is damaged).
	ErrNotDatabase = errors.New("storage: not a c66bot database, or a damaged one")

	// ErrKeyFileMissing is returned by DatabaseKey when the database holds
	// sealed values but its key file is gone: a new key would open none of
	// them, so none is made.
	ErrKeyFileMissing = errors.New("storage: the key file is missing")

	// ErrClosed is returned by any operation on a DB, or one of its
	// stores, after Close.
	ErrClosed = errors.New("storage: store is closed")

	// ErrReadOnly is returned by any write on a DB opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("storage: store is read-only")

	// ErrStackBusy is returned by WatchStore.Start when an unfinished watch already
	// holds the stack; that watch is returned with it.
	ErrStackBusy = errors.New("storage: stack already has a deployment being watched")

	// ErrIntentExpired is returned for an intent past its ExpiresAt; the
	// intent is returned with it so the caller can say what expired.
	ErrIntentExpired = errors.New("storage: intent expired")

	// ErrExists is returned when a name is already taken, such as an API
	// token name, including one whose token has been revoked.
	ErrExists = errors.New("storage: name already taken")

	// ErrRevoked is returned by APITokenStore.Check for a token that was revoked;
	// the token's record is returned with it, so the caller can log whose
	// token it was.
	ErrRevoked = errors.New("storage: API token revoked")
)

// errNoChanges is returned from inside an Update when there turned out to be
// nothing to write, so bbolt rolls back instead of paying for a commit and
// fsync (containerd's metadata Init does the same). It never leaves the
// package.
var errNoChanges = errors.New("storage: no changes")

// WrongKeyError is Open's refusal of keys that open none of the sealed
// values in the file that outlive a few minutes (links, and deployments
// being followed). It wraps ErrSealed.
type WrongKeyError struct {
	Path string
	// Sealed is how many such values the file holds; none opens.
	Sealed int
	// SealedWith are the key ids (see KeyID) that sealed them, none of them
	// configured. It is empty when the values name a configured key but do
	// not open: they were damaged.
	SealedWith []string
	// Configured are the key ids of the keys given to Open.
	Configured []string
}

func (e *WrongKeyError) Error() string {
	msg := fmt.Sprintf("storage: open %s: none of its %d sealed values opens with the configured key (id %s)", e.Path, e.Sealed, strings.Join(e.Configured, ", "))
	if len(e.SealedWith) > 0 {
		msg += "; they were sealed with key id " + strings.Join(e.SealedWith, ", ")
	}
	return msg
}

func (e *WrongKeyError) Unwrap() error { return ErrSealed }
