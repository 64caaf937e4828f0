package storage

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// recordVersion is the "v" field of every sealed JSON record. Adding an
// optional field does not need a bump (encoding/json ignores unknown fields
// and zero-fills missing ones); changing what a field means does, together
// with a decoder for the old version.
const recordVersion = 1

// linkRecord is the JSON sealed under links/<team>:<user>. The identity is
// not repeated inside: it is the key, and the seal's associated data ties the
// record to it.
type linkRecord struct {
	V            int       `json:"v"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scopes       []string  `json:"scopes,omitempty"`
	Account      string    `json:"account,omitempty"`
	LinkedAt     time.Time `json:"linked_at"`
}

// loginRecord is the JSON sealed under login_states/sha256(state). Unlike a
// link, it carries the identity, because the OAuth callback arrives with only
// the state and must learn from the record whom the flow belongs to.
type loginRecord struct {
	V           int       `json:"v"`
	Team        string    `json:"team"`
	User        string    `json:"user"`
	Channel     string    `json:"channel,omitempty"`
	ResponseURL string    `json:"response_url,omitempty"`
	Verifier    string    `json:"verifier,omitempty"`
	RedirectURL string    `json:"redirect_url,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func encodeLink(l Link) ([]byte, error) {
	return json.Marshal(linkRecord{
		V:            recordVersion,
		AccessToken:  l.AccessToken,
		RefreshToken: l.RefreshToken,
		TokenType:    l.TokenType,
		Expiry:       l.Expiry,
		Scopes:       l.Scopes,
		Account:      l.Account,
		LinkedAt:     l.LinkedAt,
	})
}

func decodeLink(id Identity, b []byte) (Link, error) {
	var r linkRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Not wrapped: a JSON syntax error could quote part of a token.
		return Link{}, fmt.Errorf("storage: link for %s: malformed record", id)
	}
	if r.V != recordVersion {
		return Link{}, fmt.Errorf("storage: link for %s: record version %d is not supported by this c66bot", id, r.V)
	}
	return Link{
		Identity:     id,
		AccessToken:  r.AccessToken,
		RefreshToken: r.RefreshToken,
		TokenType:    r.TokenType,
		Expiry:       r.Expiry,
		Scopes:       r.Scopes,
		Account:      r.Account,
		LinkedAt:     r.LinkedAt,
	}, nil
}

func encodeLogin(p PendingLogin) ([]byte, error) {
	return json.Marshal(loginRecord{
		V:           recordVersion,
		Team:        p.Identity.Team,
		User:        p.Identity.User,
		Channel:     p.Channel,
		ResponseURL: p.ResponseURL,
		Verifier:    p.Verifier,
		RedirectURL: p.RedirectURL,
		CreatedAt:   p.CreatedAt,
		ExpiresAt:   p.ExpiresAt,
	})
}

func decodeLogin(b []byte) (PendingLogin, error) {
	var r loginRecord
	if err := json.Unmarshal(b, &r); err != nil {
		// Not wrapped: a JSON syntax error could quote part of the verifier.
		return PendingLogin{}, fmt.Errorf("storage: login state: malformed record")
	}
	if r.V != recordVersion {
		return PendingLogin{}, fmt.Errorf("storage: login state: record version %d is not supported by this c66bot", r.V)
	}
	return PendingLogin{
		Identity:    Identity{Team: r.Team, User: r.User},
		Channel:     r.Channel,
		ResponseURL: r.ResponseURL,
		Verifier:    r.Verifier,
		RedirectURL: r.RedirectURL,
		CreatedAt:   r.CreatedAt,
		ExpiresAt:   r.ExpiresAt,
	}, nil
}

// stateSize is the number of random bytes in an OAuth state: 256 bits, above
// RFC 6749 §10.10's 2^-160 guessing bound.
const stateSize = 32

func newStateString(random []byte) string {
	return base64.RawURLEncoding.EncodeToString(random)
}

// stateKey returns the bbolt key for an OAuth state: its SHA-256, so someone
// who reads the database file cannot replay a pending state. ok is false for
// text that newStateString could not have produced; such input is rejected
// before touching the database.
func stateKey(state string) (key []byte, ok bool) {
	if len(state) != base64.RawURLEncoding.EncodedLen(stateSize) {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(state); err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(state))
	return sum[:], true
}

// encodeUint64 is big-endian so that byte order equals numeric order, which
// bbolt's sorted keys and cursors rely on.
func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("storage: want an 8-byte integer, got %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// encodeTime stores t as Unix nanoseconds, which are fixed-size and compare
// without parsing; the monotonic clock reading and location are dropped on
// purpose since they mean nothing after a restart.
func encodeTime(t time.Time) []byte {
	return encodeUint64(uint64(t.UnixNano()))
}

func decodeTime(b []byte) (time.Time, error) {
	v, err := decodeUint64(b)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(v)), nil
}
