package storage

import (
	"fmt"
	"strings"
)

// Identity is who a Slack person is: the enterprise id (or the team id when
// the workspace is not in an Enterprise Grid) and the user id. It is never a
// display name, because display names can be changed by their owner and so
// cannot be trusted to pick whose Cloud 66 token to use.
type Identity struct {
	Team string
	User string
}

// Key returns "Team:User". It is the bbolt key of the person's link and the
// associated data of their sealed values, which is what stops a sealed token
// from being moved to someone else.
func (id Identity) Key() []byte {
	return []byte(id.String())
}

// String returns the same text as Key. Slack ids are not secret, so it is safe
// in logs and errors.
func (id Identity) String() string {
	return id.Team + ":" + id.User
}

// Valid reports whether both parts are set and neither contains ':'. The
// colon check keeps Key unambiguous: without it ("a:b", "c") and ("a", "b:c")
// would share a key and so share sealed values.
func (id Identity) Valid() bool {
	return id.Team != "" && id.User != "" &&
		!strings.Contains(id.Team, ":") && !strings.Contains(id.User, ":")
}

// invalidIdentity is the error for an Identity that fails Valid; the ids are
// included because they are not secret and they are what the caller got wrong.
func invalidIdentity(id Identity) error {
	return fmt.Errorf("storage: invalid identity %q: want non-empty team and user ids without ':'", id.String())
}
