package cloud66test

import (
	"net/http"
	"strings"
	"time"
)

// Fault describes a failure to inject into matching requests.
//
// A fault matches API requests (paths under /api/3) whose bearer token equals
// Token ("" = any request), whose path starts with PathPrefix ("" = every API
// path), whose method equals Method ("" = any) and, when Command is set,
// whose body's "command" equals it (so one stack action can be refused:
// Fault{Command: "restart", Status: 409, Description: "Stack is busy"}). A fault whose PathPrefix
// starts with "/oauth" also matches the OAuth endpoints; with an empty
// PathPrefix it never does, so a blanket fault does not break linking.
//
// A matching request first sleeps Latency (real time). Then, if Status is
// non-zero, it is answered with Status and the JSON error body
// {"error": Error, "error_description": Description} (or Body verbatim, as
// text/html, when Body is set — e.g. a load balancer's HTML error page). The
// fault is used up after Times matches (0 = until cleared).
type Fault struct {
	Token       string
	PathPrefix  string
	Method      string
	Command     string // the "command" of a JSON or form body, e.g. "maintenance_mode"
	Status      int
	Error       string // JSON "error" code; derived from Status when empty
	Description string
	Latency     time.Duration
	Times       int
	RetryAfter  string // optional Retry-After header value

	// Addition beyond the original contract: a raw (non-JSON) body, sent as
	// text/html instead of the JSON error. Clients must cope with it.
	Body string
}

type faultRec struct {
	Fault
	left int // remaining uses when Times > 0
}

func (f *faultRec) matches(method, path, token, command string, api bool) bool {
	if f.Token != "" && f.Token != token {
		return false
	}
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	if f.Command != "" && f.Command != command {
		return false
	}
	if api {
		return f.PathPrefix == "" || strings.HasPrefix(path, f.PathPrefix)
	}
	return strings.HasPrefix(f.PathPrefix, "/oauth") && strings.HasPrefix(path, f.PathPrefix)
}

// InjectFault adds a fault; the returned func removes it (idempotent).
func (s *Server) InjectFault(f Fault) (clear func()) {
	rec := &faultRec{Fault: f, left: f.Times}
	s.mu.Lock()
	s.faults = append(s.faults, rec)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.removeFault(rec)
	}
}

func (s *Server) removeFault(rec *faultRec) {
	for i, f := range s.faults {
		if f == rec {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return
		}
	}
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Throttle makes every API request with token ("" = any token) fail with
// 503 {"error":"throttled"}, Cloud 66's documented rate-limit answer (it does
// not use 429), until cleared.
func (s *Server) Throttle(token string) (clear func()) {
	return s.InjectFault(Fault{
		Token:       token,
		Status:      http.StatusServiceUnavailable,
		Error:       "throttled",
		Description: "Rate limit exceeded: 3000 requests per hour. Try again in the next hour.",
	})
}

// Fail5xx makes the next n API requests fail with 500. n <= 0 does nothing.
func (s *Server) Fail5xx(n int) (clear func()) {
	if n <= 0 {
		return func() {}
	}
	return s.InjectFault(Fault{
		Status:      http.StatusInternalServerError,
		Error:       "internal_server_error",
		Description: "Something went wrong (injected fault)",
		Times:       n,
	})
}

// applyFaults applies the matching faults to r. It returns the reply to send
// (nil to continue normally) and false if the request must be abandoned
// because the client went away or the server is closing.
func (s *Server) applyFaults(r *http.Request, token string, body []byte) (*reply, bool) {
	path := r.URL.Path
	api := path == apiPrefix || strings.HasPrefix(path, apiPrefix+"/")
	var command string
	if r.Method == http.MethodPost && api {
		command = bodyCommand(r, body)
	}

	s.mu.Lock()
	var latency time.Duration
	var hit *Fault
	for i := 0; i < len(s.faults); i++ {
		f := s.faults[i]
		if !f.matches(r.Method, path, token, command, api) {
			continue
		}
		if f.Status != 0 && hit != nil {
			continue // only the first status fault answers; later ones stay unused
		}
		latency += f.Latency
		if f.Status != 0 {
			fc := f.Fault
			hit = &fc
		}
		if f.Times > 0 {
			f.left--
			if f.left <= 0 {
				s.removeFault(f)
				i--
			}
		}
	}
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return nil, false
		case <-s.closed:
			return nil, false
		}
	}
	if hit == nil {
		return nil, true
	}
	var rep *reply
	if hit.Body != "" {
		rep = htmlReply(hit.Status, hit.Body)
	} else {
		code := hit.Error
		if code == "" {
			code = errorCodeFor(hit.Status)
		}
		desc := hit.Description
		if desc == "" {
			desc = "injected fault"
		}
		rep = errReply(hit.Status, code, desc)
	}
	if hit.RetryAfter != "" {
		rep.setHeader("Retry-After", hit.RetryAfter)
	}
	return rep, true
}

// errorCodeFor maps a status to the error code Cloud 66 documents for it.
func errorCodeFor(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 401:
		return "unauthenticated"
	case 402:
		return "trial_expired"
	case 403:
		return "forbidden"
	case 404:
		return "not_found"
	case 408:
		return "time_out"
	case 409:
		return "conflict"
	case 503:
		return "throttled"
	}
	t := strings.ToLower(http.StatusText(status))
	if t == "" {
		return "error"
	}
	return strings.ReplaceAll(t, " ", "_")
}
