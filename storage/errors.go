package storage

import "errors"

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

	// ErrClosed is returned by any operation on a Store after Close.
	ErrClosed = errors.New("storage: store is closed")

	// ErrReadOnly is returned by any write on a Store opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("storage: store is read-only")

	// ErrStackBusy is returned by StartWatch when an unfinished watch already
	// holds the stack; that watch is returned with it.
	ErrStackBusy = errors.New("storage: stack already has a deployment being watched")

	// ErrIntentExpired is returned for an intent past its ExpiresAt; the
	// intent is returned with it so the caller can say what expired.
	ErrIntentExpired = errors.New("storage: intent expired")

	// ErrExists is returned when a name is already taken, such as an API
	// token name, including one whose token has been revoked.
	ErrExists = errors.New("storage: name already taken")

	// ErrRevoked is returned by CheckAPIToken for a token that was revoked;
	// the token's record is returned with it, so the caller can log whose
	// token it was.
	ErrRevoked = errors.New("storage: API token revoked")
)

// errNoChanges is returned from inside an Update when there turned out to be
// nothing to write, so bbolt rolls back instead of paying for a commit and
// fsync (containerd's metadata Init does the same). It never leaves the
// package.
var errNoChanges = errors.New("storage: no changes")
