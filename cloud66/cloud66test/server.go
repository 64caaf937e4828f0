package cloud66test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults used when no Option overrides them.
const (
	DefaultClientID       = "c66bot-test-client"
	DefaultClientSecret   = "c66bot-test-secret"
	DefaultDeployDuration = 3 * time.Minute
	DefaultUser           = "ana@example.com"

	// OOBRedirectURI is the out-of-band redirect URI: instead of redirecting,
	// /oauth/authorize shows the code on a page. It is always registered.
	OOBRedirectURI = "urn:ietf:wg:oauth:2.0:oob"

	apiPrefix   = "/api/3"
	maxBodySize = 1 << 20

	// maxRecorded bounds the request log so a long-running sandbox does not
	// grow without limit; tests never come close.
	maxRecorded = 10000
)

// TB is the part of testing.TB that Start needs; *testing.T and *testing.B
// satisfy it. It exists so this package need not import testing.
type TB interface {
	Helper()
	Cleanup(func())
}

type config struct {
	clock           *Clock
	clientID        string
	clientSecret    string
	redirectURIs    []string
	deployDuration  time.Duration
	actionDurations map[string]time.Duration
	user            string
}

// Option configures a Server.
type Option func(*config)

// WithClock makes the server read time from c (default: a real-time clock).
func WithClock(c *Clock) Option { return func(cfg *config) { cfg.clock = c } }

// WithClient sets the OAuth client credentials the server accepts.
func WithClient(id, secret string) Option {
	return func(cfg *config) { cfg.clientID, cfg.clientSecret = id, secret }
}

// WithRedirectURI registers a redirect URI (matched exactly). It may be given
// more than once. OOBRedirectURI is always registered.
func WithRedirectURI(uri string) Option {
	return func(cfg *config) { cfg.redirectURIs = append(cfg.redirectURIs, uri) }
}

// WithDeployDuration sets how long a simulated deployment runs on the clock
// (default 3 minutes).
func WithDeployDuration(d time.Duration) Option {
	return func(cfg *config) { cfg.deployDuration = d }
}

// WithAutoApprove sets the user who is "logged in" in the browser that visits
// /oauth/authorize (default ana@example.com). "" makes the user deny access.
func WithAutoApprove(email string) Option { return func(cfg *config) { cfg.user = email } }

// Server is a running fake Cloud 66. OAuth lives at URL+"/oauth/authorize"
// and URL+"/oauth/token"; the API at URL+"/api/3".
type Server struct {
	URL          string // base URL, e.g. http://127.0.0.1:41234
	ClientID     string
	ClientSecret string
	Clock        *Clock

	hs        *httptest.Server
	closeOnce sync.Once
	closed    chan struct{}

	mu              sync.Mutex
	deployDuration  time.Duration
	actionDurations map[string]time.Duration // by action name; absent = deployDuration
	redirectURIs    map[string]bool
	authorizingUser string
	users           map[string]*user
	codes           map[string]*authCode
	tokens          map[string]*token
	stacks          []*stackRec // listing order
	stackByUID      map[string]*stackRec
	faults          []*faultRec
	requests        []*Request
	nextDeployID    int
	nextActionID    int
	actionCount     int
}

// New starts a fake Cloud 66 on 127.0.0.1 with a random port. Call Close when
// done (or use Start in tests).
func New(opts ...Option) *Server {
	cfg := config{
		clientID:       DefaultClientID,
		clientSecret:   DefaultClientSecret,
		deployDuration: DefaultDeployDuration,
		user:           DefaultUser,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = &Clock{}
	}
	if cfg.deployDuration <= 0 {
		cfg.deployDuration = DefaultDeployDuration
	}
	s := &Server{
		ClientID:        cfg.clientID,
		ClientSecret:    cfg.clientSecret,
		Clock:           cfg.clock,
		closed:          make(chan struct{}),
		deployDuration:  cfg.deployDuration,
		actionDurations: map[string]time.Duration{},
		redirectURIs:    map[string]bool{OOBRedirectURI: true},
		authorizingUser: cfg.user,
		users:           map[string]*user{},
		codes:           map[string]*authCode{},
		tokens:          map[string]*token{},
		stackByUID:      map[string]*stackRec{},
		nextDeployID:    10001,
		nextActionID:    70001,
	}
	for _, u := range cfg.redirectURIs {
		s.redirectURIs[u] = true
	}
	for action, d := range cfg.actionDurations {
		if d > 0 {
			s.actionDurations[action] = d
		}
	}
	s.seed(cfg.clock.Now().UTC().Truncate(time.Second))
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.hs.URL
	return s
}

// Start is New plus tb.Cleanup(srv.Close).
func Start(tb TB, opts ...Option) *Server {
	tb.Helper()
	s := New(opts...)
	tb.Cleanup(s.Close)
	return s
}

// Close shuts the server down, waking requests stalled by a latency fault.
// It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.hs.Close()
	})
}

// RegisterRedirectURI registers one more exact redirect URI.
func (s *Server) RegisterRedirectURI(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirectURIs[uri] = true
}

// SetAuthorizingUser changes who approves at /oauth/authorize. The empty
// string makes the user deny access: authorize then redirects with
// error=access_denied.
func (s *Server) SetAuthorizingUser(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorizingUser = email
}

// ---------------------------------------------------------------------------
// Request log

// Request is one recorded HTTP request (OAuth and API alike).
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Token  string // bearer token from the Authorization header, if any
	Body   []byte
	Form   url.Values // parsed form body (application/x-www-form-urlencoded), else nil
	At     time.Time  // fake-clock time of arrival
	Status int        // status answered; 0 while in flight or if the client went away

	// Additions beyond the original contract:
	Header     http.Header // request headers (copy)
	ClientAuth string      // POST /oauth/token only: "basic", "form" or "none"
}

// Requests returns a copy of every request received so far (since the last
// ResetRequests), in arrival order. Only the latest 10,000 are kept.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = copyRequest(r)
	}
	return out
}

func copyRequest(r *Request) Request {
	c := *r
	c.Query = cloneValues(r.Query)
	c.Form = cloneValues(r.Form)
	c.Body = bytes.Clone(r.Body)
	c.Header = r.Header.Clone()
	return c
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// RequestCount counts recorded requests whose method equals method ("" = any)
// and whose path starts with pathPrefix ("" = any).
func (s *Server) RequestCount(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if (method == "" || strings.EqualFold(method, r.Method)) && strings.HasPrefix(r.Path, pathPrefix) {
			n++
		}
	}
	return n
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// ---------------------------------------------------------------------------
// HTTP plumbing

// reply is a response computed under s.mu and written after unlocking (the
// status recorder takes s.mu, so nothing may be written while holding it).
type reply struct {
	status      int
	contentType string
	body        []byte
	header      http.Header
}

func (rep *reply) setHeader(k, v string) *reply {
	if rep.header == nil {
		rep.header = http.Header{}
	}
	rep.header.Set(k, v)
	return rep
}

func jsonReply(status int, v any) *reply {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen with the fake's own types
		panic("cloud66test: marshal: " + err.Error())
	}
	return &reply{status: status, contentType: "application/json; charset=utf-8", body: append(b, '\n')}
}

// errorBody is the Cloud 66 (and OAuth 2) error shape.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Details     string `json:"details,omitempty"`
}

func errReply(status int, code, desc string) *reply {
	return jsonReply(status, errorBody{Error: code, Description: desc})
}

func htmlReply(status int, html string) *reply {
	return &reply{status: status, contentType: "text/html; charset=utf-8", body: []byte(html)}
}

func (rep *reply) write(w http.ResponseWriter) {
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	if rep.contentType != "" {
		w.Header().Set("Content-Type", rep.contentType)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

type statusWriter struct {
	http.ResponseWriter
	wrote    bool
	onStatus func(int)
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.onStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodySize+1))
	tooBig := len(body) > maxBodySize
	if tooBig {
		body = body[:maxBodySize]
	}
	rec := &Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Token:  bearerToken(r),
		Body:   body,
		Header: r.Header.Clone(),
		At:     s.Clock.Now(),
	}
	if isFormContent(r) {
		if f, perr := url.ParseQuery(string(body)); perr == nil {
			rec.Form = f
		}
	}
	s.mu.Lock()
	if len(s.requests) >= maxRecorded {
		s.requests = slices.Delete(s.requests, 0, len(s.requests)-maxRecorded+1)
	}
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	w := &statusWriter{ResponseWriter: rw, onStatus: func(code int) {
		s.mu.Lock()
		rec.Status = code
		s.mu.Unlock()
	}}

	if err != nil {
		errReply(http.StatusBadRequest, "bad_request", "could not read request body").write(w)
		return
	}
	if tooBig {
		errReply(http.StatusRequestEntityTooLarge, "bad_request", "request body too large").write(w)
		return
	}

	if rep, ok := s.applyFaults(r, rec.Token, body); !ok {
		return // client went away or server closed while stalling
	} else if rep != nil {
		rep.write(w)
		return
	}

	var rep *reply
	switch p := r.URL.Path; {
	case p == "/oauth/authorize":
		rep = s.handleAuthorize(r)
	case p == "/oauth/token":
		rep = s.handleToken(r, rec, body)
	case p == apiPrefix || strings.HasPrefix(p, apiPrefix+"/"):
		rep = s.handleAPI(r, rec, body)
	default:
		rep = errReply(http.StatusNotFound, "not_found", "no route matches "+r.Method+" "+p)
	}
	rep.write(w)
}

func isFormContent(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header
// (scheme matched case-insensitively, as Doorkeeper does), or "".
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// randomToken returns 32 random bytes as 43 URL-safe characters, the format
// of Doorkeeper's codes and tokens.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}
