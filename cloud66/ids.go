package cloud66

import (
	"errors"
	"fmt"
)

// MaxUIDLen bounds a uid. Cloud 66's stack and server uids are 32 hex
// digits (reference §7.1, §7.4); the bound leaves room for longer shapes.
const MaxUIDLen = 64

// ValidUID reports whether s is shaped like a Cloud 66 uid: 1 to MaxUIDLen
// ASCII letters, digits, '-' or '_'.
//
// Real uids are lowercase hex (stacks, servers, jobs), and webhook payloads
// show UUIDs; the set is wider than hex so that any such shape passes, and
// narrow enough that a uid can never carry mrkdwn ('<', '>', '|', '&'), a
// path ('/', '.'), a query, whitespace or a new line into a card, a link or
// a request path. Numeric ids (deployments, actions) are decoded as
// integers and need no check.
func ValidUID(s string) bool {
	if s == "" || len(s) > MaxUIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ErrInvalidID matches, with errors.Is, an *InvalidIDError.
var ErrInvalidID = errors.New("cloud66: id in the answer is not a Cloud 66 id")

// InvalidIDError reports an id in a Cloud 66 answer that ValidUID refuses.
//
// A single object with such an id (GetStack, GetServer) is an error. In a
// list (ListStacks, FindStacks, ListServers) the item is dropped instead and
// the rest returned, so one hostile or broken stack cannot make every
// stack unreachable from chat; WithInvalidIDHook hears of each drop.
type InvalidIDError struct {
	Method   string
	Endpoint string // path template, as in ErrorResponse
	Field    string // "stack uid", "server uid" or "server stack_uid"
	// Value is the id as received. It may be hostile: quote it in logs,
	// never show it in chat. Error leaves it out.
	Value string
}

// Error reads "cloud66: GET /stacks: stack uid in the answer is not a Cloud
// 66 id". Like every error of this package it holds no id, so it is safe to
// log and to show.
func (e *InvalidIDError) Error() string {
	return fmt.Sprintf("cloud66: %s %s: %s in the answer is not a Cloud 66 id", e.Method, e.Endpoint, e.Field)
}

// Is makes errors.Is(err, ErrInvalidID) true.
func (e *InvalidIDError) Is(target error) bool { return target == ErrInvalidID }

// WithInvalidIDHook registers fn to hear of every item dropped from a list
// because an id in it is not a Cloud 66 id (see InvalidIDError), so the
// caller can log it. fn runs on the request goroutine and must be quick.
func WithInvalidIDHook(fn func(*InvalidIDError)) Option {
	return func(c *Client) error {
		c.invalidIDHook = fn
		return nil
	}
}

// stackIDError checks the ids of a decoded stack.
func stackIDError(method, endpoint string, s *Stack) *InvalidIDError {
	if !ValidUID(s.UID) {
		return &InvalidIDError{Method: method, Endpoint: endpoint, Field: "stack uid", Value: s.UID}
	}
	return nil
}

// serverIDError checks the ids of a decoded server; stack_uid is optional.
func serverIDError(method, endpoint string, s *Server) *InvalidIDError {
	switch {
	case !ValidUID(s.UID):
		return &InvalidIDError{Method: method, Endpoint: endpoint, Field: "server uid", Value: s.UID}
	case s.StackUID != "" && !ValidUID(s.StackUID):
		return &InvalidIDError{Method: method, Endpoint: endpoint, Field: "server stack_uid", Value: s.StackUID}
	}
	return nil
}

// keepValid drops the items whose ids check refuses, telling the hook.
func keepValid[T any](c *Client, method, endpoint string, items []T, check func(method, endpoint string, item *T) *InvalidIDError) []T {
	out := items[:0]
	for i := range items {
		if err := check(method, endpoint, &items[i]); err != nil {
			if c.invalidIDHook != nil {
				c.invalidIDHook(err)
			}
			continue
		}
		out = append(out, items[i])
	}
	return out
}
