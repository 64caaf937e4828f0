package cloud66

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// Stack is a Cloud 66 application stack.
//
// redeploy_hook is deliberately not decoded: it is a secret URL that
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
	FQDN            string      `json:"fqdn"`
	Language        string      `json:"language"`
	Framework       string      `json:"framework"`
	CloudStatus     string      `json:"cloud_status"`
	Backend         string      `json:"backend"`
	Version         string      `json:"version"`
	AccountID       int64       `json:"account_id"`
	Status          StackStatus `json:"status"`
	Health          Health      `json:"health"`
	MaintenanceMode bool        `json:"maintenance_mode"`
	HasLoadBalancer bool        `json:"has_loadbalancer"`
	IsBusy          bool        `json:"is_busy"`
	LastActivity    Time        `json:"last_activity_iso"`
	CreatedAt       Time        `json:"created_at_iso"`
	UpdatedAt       Time        `json:"updated_at_iso"`
}

// stackWire is a stack as Cloud 66 sends it, legacy timestamp fields
// included. It decodes in one pass: a custom UnmarshalJSON on Stack would
// make encoding/json scan every stack of a list three times, which was most
// of the CPU a `/c66 stacks` cost.
type stackWire struct {
	Stack
	LastActivityLegacy lenientTime `json:"last_activity"`
	CreatedAtLegacy    lenientTime `json:"created_at"`
	UpdatedAtLegacy    lenientTime `json:"updated_at"`
}

// stack prefers the *_iso timestamps and falls back to the legacy
// "2006-01-02 15:04:05 UTC" fields.
func (w *stackWire) stack() Stack {
	s := w.Stack
	s.LastActivity = orElse(s.LastActivity, w.LastActivityLegacy)
	s.CreatedAt = orElse(s.CreatedAt, w.CreatedAtLegacy)
	s.UpdatedAt = orElse(s.UpdatedAt, w.UpdatedAtLegacy)
	return s
}

// stacksFromWire converts a page of stacks, dropping those whose uid is not
// a Cloud 66 id (see InvalidIDError for why a list drops rather than fails).
func (c *Client) stacksFromWire(endpoint string, ws []stackWire) []Stack {
	out := make([]Stack, len(ws))
	for i := range ws {
		out[i] = ws[i].stack()
	}
	return keepValid(c, http.MethodGet, endpoint, out, stackIDError)
}

// ListStacks returns every stack the token can see, following pagination
// across all pages.
//
// GET /stacks.json
func (c *Client) ListStacks(ctx context.Context) ([]Stack, error) {
	ws, err := listAll[stackWire](ctx, c, "/stacks", "stacks.json")
	if err != nil {
		return nil, err
	}
	return c.stacksFromWire("/stacks", ws), nil
}

// GetStack returns one stack.
//
// GET /stacks/{uid}.json
func (c *Client) GetStack(ctx context.Context, uid string) (*Stack, error) {
	seg, err := uidSegment("stack uid", uid)
	if err != nil {
		return nil, err
	}
	w, _, err := call[stackWire](ctx, c, http.MethodGet, "/stacks/{uid}", "stacks/"+seg+".json", nil, nil)
	if err != nil {
		return nil, err
	}
	st := w.stack()
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
	err := eachPage(ctx, c, "/stacks", "stacks.json", q, func(page []stackWire) {
		for _, s := range c.stacksFromWire("/stacks", page) {
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
