package cloud66

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/c66bot/c66bot/internal/clock"
)

// DefaultBaseURL is the Cloud 66 site. OAuth lives at /oauth/authorize and
// /oauth/token under it, the v3 API under /api/3.
const DefaultBaseURL = "https://app.cloud66.com"

// OOBRedirectURL is the out-of-band redirect: Cloud 66 shows the
// authorization code to the user instead of redirecting, who pastes it back.
const OOBRedirectURL = "urn:ietf:wg:oauth:2.0:oob"

// PageSize is the fixed number of items Cloud 66 returns per page; the API
// has no per-page parameter.
const PageSize = 30

const (
	apiPath           = "/api/3"
	defaultUserAgent  = "c66bot"
	defaultTimeout    = 30 * time.Second
	defaultMaxRetries = 3
	defaultRetryBase  = 200 * time.Millisecond
	maxRetryDelay     = 5 * time.Second

	// Bodies are read through limits so a misbehaving server or proxy cannot
	// make the bot buffer unbounded data.
	maxBodySize      = 10 << 20
	maxErrorBodySize = 64 << 10
	drainLimit       = 4 << 10

	// maxPages bounds a List* walk; at 30 items a page this is 30,000 items,
	// far beyond any real account, so hitting it means the server is looping.
	maxPages = 1000
)

// Client talks to the Cloud 66 v3 API. It is safe for concurrent use and
// immutable once built; create one per user token (cheap, see WithToken).
type Client struct {
	httpClient *http.Client
	apiRoot    *url.URL // always ends in "/api/3/"
	token      string
	userAgent  string
	maxRetries int
	retryBase  time.Duration
	hook       func(RequestInfo)
	// invalidIDHook hears of list items dropped for an id that is not a
	// Cloud 66 id (see InvalidIDError).
	invalidIDHook func(*InvalidIDError)
	now           func() time.Time // injectable so RetryAt is testable
	bodies        *bodyPool
}

// Option configures a Client in NewClient.
type Option func(*Client) error

// RequestInfo describes one HTTP attempt, for metrics. It deliberately holds
// no URL, ids or query so it is safe to log or use as a metric label.
type RequestInfo struct {
	Method     string
	Endpoint   string // template such as "/stacks/{uid}/servers"
	StatusCode int    // 0 when the transport failed
	Duration   time.Duration
	Attempt    int // 1 for the first try
}

// WithHTTPClient sets the underlying HTTP client. Several Clients may share
// one so per-user clients reuse connections.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return &ArgError{Arg: "http client", Reason: "must not be nil"}
		}
		c.httpClient = hc
		return nil
	}
}

// WithBaseURL points the client at another Cloud 66 site (for tests or a
// proxy). Pass the site root, without /api/3.
func WithBaseURL(base string) Option {
	return func(c *Client) error {
		root, err := apiRootURL(base)
		if err != nil {
			return err
		}
		c.apiRoot = root
		return nil
	}
}

// WithToken makes every request carry "Authorization: Bearer <token>". Adding
// the header per request, rather than wrapping the transport, keeps per-user
// clients cheap: they can all share one *http.Client.
func WithToken(token string) Option {
	return func(c *Client) error {
		if token == "" {
			return &ArgError{Arg: "token", Reason: "must not be empty"}
		}
		if strings.ContainsFunc(token, isSpaceOrControl) {
			return &ArgError{Arg: "token", Reason: "must not contain spaces or control characters"}
		}
		c.token = token
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "c66bot").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if ua == "" || strings.ContainsFunc(ua, isControl) {
			return &ArgError{Arg: "user agent", Reason: "must be non-empty printable text"}
		}
		c.userAgent = ua
		return nil
	}
}

// WithRetry sets how often idempotent GETs are retried after transient
// failures, and the first backoff delay; later delays double, with jitter,
// up to 5s. maxRetries 0 disables retries.
func WithRetry(maxRetries int, baseDelay time.Duration) Option {
	return func(c *Client) error {
		if maxRetries < 0 {
			return &ArgError{Arg: "max retries", Reason: "must not be negative"}
		}
		if baseDelay < 0 {
			return &ArgError{Arg: "retry delay", Reason: "must not be negative"}
		}
		c.maxRetries = maxRetries
		c.retryBase = baseDelay
		return nil
	}
}

// WithRequestHook registers fn to be called after every HTTP attempt,
// including retries, so callers can count requests against Cloud 66's
// hourly limit. fn runs on the request goroutine and must be quick.
func WithRequestHook(fn func(RequestInfo)) Option {
	return func(c *Client) error {
		c.hook = fn
		return nil
	}
}

// withClock replaces the clock used for RetryAt; tests only.
func withClock(now func() time.Time) Option {
	return func(c *Client) error {
		c.now = now
		return nil
	}
}

// NewClient builds a Client. Without options it talks to DefaultBaseURL
// anonymously (enough for Ping).
func NewClient(opts ...Option) (*Client, error) {
	root, err := apiRootURL(DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		httpClient: &http.Client{Timeout: defaultTimeout},
		apiRoot:    root,
		userAgent:  defaultUserAgent,
		maxRetries: defaultMaxRetries,
		retryBase:  defaultRetryBase,
		now:        time.Now,
		bodies:     sharedBodies,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// apiRootURL validates a site URL and returns its API root.
func apiRootURL(base string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		return nil, &ArgError{Arg: "base URL", Reason: "not a valid URL"}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &ArgError{Arg: "base URL", Reason: "scheme must be http or https"}
	}
	if u.Host == "" {
		return nil, &ArgError{Arg: "base URL", Reason: "missing host"}
	}
	// Credentials, queries or fragments would leak into every request URL.
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, &ArgError{Arg: "base URL", Reason: "must not contain credentials, query or fragment"}
	}
	// Accept a base that already ends in /api/3: config values are copied
	// from docs that show the API root.
	p := strings.TrimSuffix(strings.TrimRight(u.Path, "/"), apiPath)
	u.Path = strings.TrimRight(p, "/") + apiPath + "/"
	u.RawPath = ""
	return u, nil
}

// newRequest builds a request for path (relative to the API root, already
// escaped) with the common headers.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u, err := c.apiRoot.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("cloud66: building request URL: %w", err)
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("cloud66: encoding request body: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("cloud66: building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends req, retrying idempotent requests on transient failures, and
// returns the body of the 2xx response. endpoint is the path template used in
// errors and hooks, so neither ever shows ids, queries or tokens.
func (c *Client) do(req *http.Request, endpoint string) (*body, error) {
	ctx := req.Context()
	// Only GET is retried: a POST or DELETE that timed out may have been
	// applied, and repeating a redeploy or cancel is worse than failing.
	retryable := req.Method == http.MethodGet && req.Body == nil
	for attempt := 1; ; attempt++ {
		data, err := c.attempt(req, endpoint, attempt)
		if err == nil {
			return data, nil
		}
		// As go-github's bareDo does: once the caller gave up, report that
		// rather than whatever the transport made of it.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if !retryable || attempt > c.maxRetries || !IsTransient(err) {
			return nil, err
		}
		if err := clock.Sleep(ctx, c.backoff(attempt)); err != nil {
			return nil, err
		}
	}
}

// attempt performs one round trip and reports it to the hook.
func (c *Client) attempt(req *http.Request, endpoint string, n int) (data *body, err error) {
	if n > 1 {
		req = req.Clone(req.Context())
	}
	start := time.Now()
	status := 0
	if c.hook != nil {
		defer func() {
			c.hook(RequestInfo{Method: req.Method, Endpoint: endpoint, StatusCode: status, Duration: time.Since(start), Attempt: n})
		}()
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		// *url.Error would print the full URL with its query; keep only the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cloud66: %s %s: %w", req.Method, endpoint, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	if err := checkResponse(resp, req.Method, endpoint, c.now()); err != nil {
		return nil, err
	}
	b := c.bodies.get()
	tooBig, err := b.read(resp.Body, resp.ContentLength, maxBodySize)
	if err != nil {
		c.bodies.put(b)
		return nil, fmt.Errorf("cloud66: %s %s: reading response: %w", req.Method, endpoint, err)
	}
	if tooBig {
		c.bodies.put(b)
		return nil, fmt.Errorf("cloud66: %s %s: response body exceeds %d bytes", req.Method, endpoint, maxBodySize)
	}
	return b, nil
}

// backoff returns the delay before retry number attempt (1-based):
// exponential, capped, with "equal jitter" so concurrent clients spread out
// but never retry immediately.
func (c *Client) backoff(attempt int) time.Duration {
	if c.retryBase <= 0 {
		return 0
	}
	d := maxRetryDelay
	if shift := attempt - 1; shift < 30 {
		if e := c.retryBase << shift; e > 0 && e < maxRetryDelay {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// readLimited reads at most limit bytes and reports whether there was more.
func readLimited(r io.Reader, limit int64) ([]byte, bool, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(data)) > limit {
		return data[:limit], true, err
	}
	return data, false, err
}

// root is the envelope around every Cloud 66 payload. The top-level "count"
// is ignored: it disagrees with pagination.count in the docs' own examples.
type root[T any] struct {
	Response   *T          `json:"response"`
	Pagination *Pagination `json:"pagination"`
}

// decodeEnvelope is the one place the envelope is unwrapped.
func decodeEnvelope[T any](data []byte) (T, Pagination, error) {
	var (
		zero T
		r    root[T]
	)
	if err := json.Unmarshal(data, &r); err != nil {
		return zero, Pagination{}, err
	}
	if r.Response == nil {
		// A missing or null payload would otherwise pass as a zero value.
		return zero, Pagination{}, errors.New(`envelope has no "response"`)
	}
	var p Pagination
	if r.Pagination != nil {
		p = *r.Pagination
	}
	return *r.Response, p, nil
}

// call runs one request and decodes its envelope.
func call[T any](ctx context.Context, c *Client, method, endpoint, path string, query url.Values, body any) (T, Pagination, error) {
	return callWith(ctx, c, method, endpoint, path, query, body, decodeEnvelope[T])
}

// callWith is call with the envelope decoder given, for payloads that
// have a faster one than encoding/json (stacks).
func callWith[T any](ctx context.Context, c *Client, method, endpoint, path string, query url.Values, body any, decode func([]byte) (T, Pagination, error)) (T, Pagination, error) {
	var zero T
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return zero, Pagination{}, err
	}
	b, err := c.do(req, endpoint)
	if err != nil {
		return zero, Pagination{}, err
	}
	// Every decoder copies what it keeps, so the body can be reused.
	out, p, err := decode(b.Bytes())
	c.bodies.put(b)
	if err != nil {
		return zero, Pagination{}, fmt.Errorf("cloud66: %s %s: decoding response: %w", method, endpoint, err)
	}
	return out, p, nil
}

// getPage fetches one page of a list endpoint.
func getPage[T any](ctx context.Context, c *Client, endpoint, path string, page int) ([]T, Pagination, error) {
	if page < 1 {
		page = 1
	}
	q := url.Values{"page": {strconv.Itoa(page)}}
	return call[[]T](ctx, c, http.MethodGet, endpoint, path, q, nil)
}

// listAll walks every page of a list endpoint, the way Cloud 66's own
// client does: follow "next" while it is ahead of "current".
func listAll[T any](ctx context.Context, c *Client, endpoint, path string) ([]T, error) {
	var all []T
	err := eachPage(ctx, c, endpoint, path, nil, decodeEnvelope[[]T], func(page []T) { all = append(all, page...) })
	if err != nil {
		return nil, err
	}
	return all, nil
}

// eachPage walks every page of a list endpoint like listAll, with query
// sent on every page, handing each page to fn as it arrives so a caller
// that keeps few items never holds them all.
func eachPage[T any](ctx context.Context, c *Client, endpoint, path string, query url.Values, decode func([]byte) ([]T, Pagination, error), fn func([]T)) error {
	return eachPageFrom(ctx, c, endpoint, path, query, decode, 1, nil, fn)
}

// eachPageFrom is eachPage starting at page, with the pages in seen
// already fetched (a prefetch); seen may be nil.
func eachPageFrom[T any](ctx context.Context, c *Client, endpoint, path string, query url.Values, decode func([]byte) ([]T, Pagination, error), page int, seen map[int]bool, fn func([]T)) error {
	if seen == nil {
		seen = make(map[int]bool)
	}
	for n := len(seen); ; n++ {
		if n >= maxPages {
			return fmt.Errorf("cloud66: GET %s: more than %d pages", endpoint, maxPages)
		}
		if seen[page] {
			return fmt.Errorf("cloud66: GET %s: pagination loop: page %d requested twice", endpoint, page)
		}
		seen[page] = true
		q := maps.Clone(query)
		if q == nil {
			q = url.Values{}
		}
		q.Set("page", strconv.Itoa(page))
		items, p, err := callWith(ctx, c, http.MethodGet, endpoint, path, q, nil, decode)
		if err != nil {
			return err
		}
		fn(items)
		if p.Next <= p.Current {
			return nil
		}
		page = p.Next
	}
}

// Pagination is the paging block of a list response. Pages are 1-based; a
// null "previous" or "next" decodes to 0.
type Pagination struct {
	Previous int `json:"previous"`
	Next     int `json:"next"`
	Current  int `json:"current"`
	PerPage  int `json:"per_page"`
	Count    int `json:"count"`
	Pages    int `json:"pages"`
}

// UnmarshalJSON accepts both "previous" (used in every example response) and
// "prev" (the name in the v3 pagination model docs), since the docs disagree.
func (p *Pagination) UnmarshalJSON(b []byte) error {
	var aux struct {
		Previous *int `json:"previous"`
		Prev     *int `json:"prev"`
		Next     int  `json:"next"`
		Current  int  `json:"current"`
		PerPage  int  `json:"per_page"`
		Count    int  `json:"count"`
		Pages    int  `json:"pages"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*p = Pagination{Next: aux.Next, Current: aux.Current, PerPage: aux.PerPage, Count: aux.Count, Pages: aux.Pages}
	switch {
	case aux.Previous != nil:
		p.Previous = *aux.Previous
	case aux.Prev != nil:
		p.Previous = *aux.Prev
	}
	return nil
}

// uidSegment validates a uid and escapes it for use as one path segment.
// "/" and ".." are refused outright: escaping alone would still let a
// crafted uid address a different resource on a normalising proxy.
func uidSegment(arg, uid string) (string, error) {
	switch {
	case uid == "":
		return "", &ArgError{Arg: arg, Reason: "must not be empty"}
	case strings.Contains(uid, "/"), strings.Contains(uid, ".."):
		return "", &ArgError{Arg: arg, Reason: `must not contain "/" or ".."`}
	}
	return url.PathEscape(uid), nil
}

// checkID validates a numeric id.
func checkID(arg string, id int64) error {
	if id < 1 {
		return &ArgError{Arg: arg, Reason: "must be positive"}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func isSpaceOrControl(r rune) bool { return r == ' ' || isControl(r) }
