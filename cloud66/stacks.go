package cloud66

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// StackStatus is a stack's build/deploy state (Cloud 66's STK_* codes).
type StackStatus int

// Stack status codes as documented by Cloud 66.
const (
	StatusQueued             StackStatus = 0 // STK_QUEUED: pending analysis
	StatusDeployed           StackStatus = 1 // STK_SUCCESS
	StatusFailed             StackStatus = 2 // STK_FAILED
	StatusAnalysing          StackStatus = 3 // STK_ANALYSING
	StatusAnalysed           StackStatus = 4 // STK_ANALYSED
	StatusQueuedForDeploying StackStatus = 5 // STK_QUEUED_FOR_DEPLOYING
	StatusDeploying          StackStatus = 6 // STK_DEPLOYING
	StatusTerminalFailure    StackStatus = 7 // STK_TERMINAL_FAILURE: unable to analyse
)

// String returns the wording Cloud 66's own tools show.
func (s StackStatus) String() string {
	switch s {
	case StatusQueued:
		return "Pending analysis"
	case StatusDeployed:
		return "Deployed successfully"
	case StatusFailed:
		return "Deployment failed"
	case StatusAnalysing:
		return "Analyzing"
	case StatusAnalysed:
		return "Analyzed"
	case StatusQueuedForDeploying:
		return "Queued for deployment"
	case StatusDeploying:
		return "Deploying"
	case StatusTerminalFailure:
		return "Unable to analyze"
	}
	return "Unknown (" + strconv.Itoa(int(s)) + ")"
}

// Health is a stack's "health" or a server's "health_state" (HLT_* codes;
// both use the same scale).
type Health int

// Health codes as documented by Cloud 66.
const (
	HealthUnknown  Health = 0 // HLT_UNKNOWN
	HealthBuilding Health = 1 // HLT_BUILDING
	HealthImpaired Health = 2 // HLT_PARTIAL
	HealthOK       Health = 3 // HLT_OK
	HealthFailed   Health = 4 // HLT_BROKEN
)

// String returns the wording Cloud 66's own tools show.
func (h Health) String() string {
	switch h {
	case HealthUnknown:
		return "Unknown"
	case HealthBuilding:
		return "Building"
	case HealthImpaired:
		return "Impaired"
	case HealthOK:
		return "Healthy"
	case HealthFailed:
		return "Failed"
	}
	return "Unknown (" + strconv.Itoa(int(h)) + ")"
}

// Stack is a Cloud 66 application stack: the fields the bot reads.
//
// Only these are decoded (stackdecode.go); the fifteen or so others Cloud
// 66 sends (fqdn, version, is_busy, created_at…) are skipped unread,
// which is most of what a `/c66 stacks` cost. Add a field here, to
// stackKeys and to the reference decoder in stackdecode_test.go when
// something needs it.
//
// redeploy_hook is deliberately never decoded: it is a secret URL that
// redeploys the stack without authentication, and a value that is never in
// memory can never be posted to a channel or a log.
type Stack struct {
	UID             string      `json:"uid"`
	Name            string      `json:"name"`
	Environment     string      `json:"environment"`
	AccountName     string      `json:"account_name"`
	Git             string      `json:"git"`
	GitBranch       string      `json:"git_branch"`
	Cloud           string      `json:"cloud"`
	Language        string      `json:"language"`
	Framework       string      `json:"framework"`
	Backend         string      `json:"backend"`
	Status          StackStatus `json:"status"`
	Health          Health      `json:"health"`
	MaintenanceMode bool        `json:"maintenance_mode"`
	// LastActivity is last_activity_iso, else the legacy
	// "2006-01-02 15:04:05 UTC" last_activity when that parses.
	LastActivity Time `json:"last_activity_iso"`
}

// maxPrefetch bounds the pages ListStacksPages asks for at once, and
// prefetchAtOnce how many requests are in flight: each is one of the
// person's hourly Cloud 66 requests, and a stale hint may waste some.
const (
	maxPrefetch    = 10
	prefetchAtOnce = 4
)

// ListStacks returns every stack the token can see, following pagination
// across all pages, one page after the other.
//
// GET /stacks.json
func (c *Client) ListStacks(ctx context.Context) ([]Stack, error) {
	stacks, _, err := c.ListStacksPages(ctx, 1)
	return stacks, err
}

// ListStacksPages is ListStacks for a caller that knows how many pages the
// list had last time: it asks for pages 1 to pages (at most 10) at once,
// so a listing costs one round trip instead of one per page. It also
// returns how many pages this listing took, to pass next time.
//
// The prefetched pages are then read exactly as ListStacks reads pages,
// following "next" from page 1: if the list has grown past the hint, the
// pages missing are fetched one after the other; if it has shrunk, the
// surplus pages are dropped unread (their requests are wasted). A
// prefetched page that failed fails the listing only if it is needed.
// pages < 2 is ListStacks. Like any walk of Cloud 66's offset pagination,
// a stack added or removed while the pages are read can shift another
// across a page boundary; fetching at once narrows that window.
func (c *Client) ListStacksPages(ctx context.Context, pages int) ([]Stack, int, error) {
	pages = min(pages, maxPrefetch)
	var all []Stack
	seen := make(map[int]bool)
	page := 1
	if pages > 1 {
		got := c.prefetchStackPages(ctx, pages)
		n := 0
		for _, r := range got {
			n += len(r.stacks)
		}
		all = make([]Stack, 0, n)
		for 1 <= page && page <= pages && !seen[page] {
			seen[page] = true
			r := got[page-1]
			if r.err != nil {
				return nil, 0, r.err
			}
			all = append(all, r.stacks...)
			if r.p.Next <= r.p.Current {
				return keepValid(c, http.MethodGet, "/stacks", all, stackIDError), len(seen), nil
			}
			page = r.p.Next
		}
	}
	err := eachPageFrom(ctx, c, "/stacks", "stacks.json", nil, decodeStackList, page, seen, func(p []Stack) {
		if all == nil {
			all = p // the decoder's own slice: no copy for a one-page list
			return
		}
		all = append(all, p...)
	})
	if err != nil {
		return nil, 0, err
	}
	return keepValid(c, http.MethodGet, "/stacks", all, stackIDError), len(seen), nil
}

// stackPage is one page of the stack list as fetched, or why it is not.
type stackPage struct {
	stacks []Stack
	p      Pagination
	err    error
}

// prefetchStackPages fetches pages 1 to pages of the stack list at once,
// prefetchAtOnce at a time; errors are per page.
func (c *Client) prefetchStackPages(ctx context.Context, pages int) []stackPage {
	got := make([]stackPage, pages)
	var g errgroup.Group
	g.SetLimit(prefetchAtOnce)
	for i := range got {
		g.Go(func() error {
			r := &got[i]
			r.stacks, r.p, r.err = callWith(ctx, c, http.MethodGet, "/stacks", "stacks.json",
				url.Values{"page": {strconv.Itoa(i + 1)}}, nil, decodeStackList)
			return nil
		})
	}
	_ = g.Wait() // the pages report no errors to the group
	return got
}

// GetStack returns one stack.
//
// GET /stacks/{uid}.json
func (c *Client) GetStack(ctx context.Context, uid string) (*Stack, error) {
	seg, err := uidSegment("stack uid", uid)
	if err != nil {
		return nil, err
	}
	st, _, err := callWith(ctx, c, http.MethodGet, "/stacks/{uid}", "stacks/"+seg+".json", nil, nil, func(b []byte) (Stack, Pagination, error) {
		st, err := decodeStackOne(b)
		return st, Pagination{}, err
	})
	if err != nil {
		return nil, err
	}
	if err := stackIDError(http.MethodGet, "/stacks/{uid}", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// FindStacks returns the stacks named name, ignoring case, and when
// environment is not "" only those in that environment (also ignoring case),
// following pagination.
//
// GET /stacks.json?filter_name={name}[&filter_environment={environment}]
//
// filter_name and filter_environment are undocumented: Cloud 66's own Go
// library has sent them since 2023 (reference §4 row 1), but nothing says how
// the server compares, or that it always will. So the server is never trusted
// to filter: FindStacks keeps only the exact, case-insensitive matches of
// whatever comes back. A server that applies the filters answers with one
// short page; one that ignores them answers with every stack across all
// pages, which is still correct, only costlier. A server that filters more
// strictly than this (say, case-sensitively) can make a stack look absent:
// callers that must be sure fall back to ListStacks when nothing is found.
func (c *Client) FindStacks(ctx context.Context, name, environment string) ([]Stack, error) {
	if strings.TrimSpace(name) == "" {
		return nil, &ArgError{Arg: "stack name", Reason: "must not be empty"}
	}
	q := url.Values{"filter_name": {name}}
	if environment != "" {
		q.Set("filter_environment", environment)
	}
	var out []Stack
	err := eachPage(ctx, c, "/stacks", "stacks.json", q, decodeStackList, func(page []Stack) {
		for _, s := range keepValid(c, http.MethodGet, "/stacks", page, stackIDError) {
			if strings.EqualFold(s.Name, name) && (environment == "" || strings.EqualFold(s.Environment, environment)) {
				out = append(out, s)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
