package cloud66

import (
	"context"
	"net/http"
	"strconv"
)

// maxUserReference is Cloud 66's documented limit for user_reference.
const maxUserReference = 255

// CodeMeaning is Cloud 66's {code, meaning} pair. Only a few codes are
// documented, so callers should show Meaning rather than switch on Code.
type CodeMeaning struct {
	Code    int    `json:"code"`
	Meaning string `json:"meaning"`
}

// Deployment is one entry of a stack's deployment history.
type Deployment struct {
	ID            int64       `json:"id"`
	TriggeredBy   string      `json:"triggered_by"`
	TriggeredVia  CodeMeaning `json:"triggered_via"`
	Outcome       CodeMeaning `json:"outcome"`
	DeployType    CodeMeaning `json:"deploy_type"`
	StartedAt     Time        `json:"started_at"`
	FinishedAt    Time        `json:"finished_at"`
	GitHash       string      `json:"git_hash"`
	GitRef        string      `json:"git_ref"`
	DeploySession string      `json:"deploy_session"`
	CommitURL     string      `json:"commit_url"`
	IsHead        bool        `json:"is_head"`
	IsLive        bool        `json:"is_live"`
	IsDeploying   bool        `json:"is_deploying"`
}

// RedeployRequest holds the optional redeploy parameters; the zero value
// redeploys with the stack's defaults.
type RedeployRequest struct {
	GitRef            string   `json:"git_ref,omitempty"`
	Services          []string `json:"services,omitempty"`
	DeploymentProfile string   `json:"deployment_profile,omitempty"`
	DeployStrategy    string   `json:"deploy_strategy,omitempty"`
	// UserReference is stored on the resulting async action's metadata, so a
	// caller can find its own deploy again; at most 255 bytes.
	UserReference string `json:"user_reference,omitempty"`
}

// RedeployResult is Cloud 66's answer to a redeploy.
type RedeployResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	// AsyncActionID tracks the deploy through GetAction; 0 when Cloud 66
	// returned none.
	AsyncActionID int64 `json:"async_action_id"`
	// Queued means the stack was busy and the deploy waits behind the
	// running one; it cannot be tracked until it starts.
	Queued bool `json:"queued"`
}

// Result is the plain {ok, message} answer of some calls.
type Result struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// ListDeployments returns a stack's whole deployment history, across all
// pages. Prefer ListDeploymentsPage when only recent entries are needed.
//
// GET /stacks/{uid}/deployments.json
func (c *Client) ListDeployments(ctx context.Context, stackUID string) ([]Deployment, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	return listAll[Deployment](ctx, c, "/stacks/{uid}/deployments", "stacks/"+seg+"/deployments.json")
}

// ListDeploymentsPage returns one page of a stack's deployments (newest
// first) and the pagination block; page < 1 means 1.
//
// GET /stacks/{uid}/deployments.json?page={page}
func (c *Client) ListDeploymentsPage(ctx context.Context, stackUID string, page int) ([]Deployment, Pagination, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, Pagination{}, err
	}
	return getPage[Deployment](ctx, c, "/stacks/{uid}/deployments", "stacks/"+seg+"/deployments.json", page)
}

// GetDeployment returns one deployment.
//
// GET /stacks/{uid}/deployments/{id}.json
func (c *Client) GetDeployment(ctx context.Context, stackUID string, id int64) (*Deployment, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	if err := checkID("deployment id", id); err != nil {
		return nil, err
	}
	d, _, err := call[Deployment](ctx, c, http.MethodGet, "/stacks/{uid}/deployments/{id}", "stacks/"+seg+"/deployments/"+strconv.FormatInt(id, 10)+".json", nil, nil)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Redeploy starts a deployment of the stack. It is never retried: a request
// that timed out may still have queued a deploy, and a second one would
// deploy twice.
//
// POST /stacks/{uid}/deployments.json
func (c *Client) Redeploy(ctx context.Context, stackUID string, req RedeployRequest) (*RedeployResult, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	if len(req.UserReference) > maxUserReference {
		return nil, &ArgError{Arg: "user reference", Reason: "longer than 255 bytes"}
	}
	r, _, err := call[RedeployResult](ctx, c, http.MethodPost, "/stacks/{uid}/deployments", "stacks/"+seg+"/deployments.json", nil, req)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CancelDeployment asks Cloud 66 to cancel a running deployment. Like
// Redeploy it is never retried.
//
// DELETE /stacks/{uid}/deployments/{id}.json
func (c *Client) CancelDeployment(ctx context.Context, stackUID string, id int64) (*Result, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	if err := checkID("deployment id", id); err != nil {
		return nil, err
	}
	r, _, err := call[Result](ctx, c, http.MethodDelete, "/stacks/{uid}/deployments/{id}", "stacks/"+seg+"/deployments/"+strconv.FormatInt(id, 10)+".json", nil, nil)
	if err != nil {
		return nil, err
	}
	return &r, nil
}
