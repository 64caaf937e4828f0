package cloud66

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
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
	// Services are the services of a Docker stack as this deployment left
	// them, each "name:tag" (or just "name" when no tag was given), the
	// shape RedeployRequest.Services takes, so a rollback can send them
	// back. Nil for other stacks, and whenever Cloud 66 does not say.
	Services ServiceTags `json:"services"`
}

// Succeeded reports whether the deployment ended well. Outcomes are read by
// their meaning, ignoring case: Cloud 66 documents one code ("1 =
// success") and no list, so "success", "succeeded" and "ok" all count.
func (d Deployment) Succeeded() bool {
	switch d.outcome() {
	case "success", "succeeded", "successful", "ok":
		return true
	}
	return false
}

// Cancelled reports whether the deployment was cancelled: any outcome
// meaning containing "cancel" ("cancelled", "canceled", "canceled by
// user"…), since Cloud 66 documents no word for it.
func (d Deployment) Cancelled() bool {
	return strings.Contains(d.outcome(), "cancel")
}

// Failed reports whether the deployment ended badly without being
// cancelled: a meaning containing "fail" ("failed", "failure"…) or "error".
func (d Deployment) Failed() bool {
	o := d.outcome()
	return !d.Cancelled() && (strings.Contains(o, "fail") || strings.Contains(o, "error"))
}

// outcome is the deployment's outcome meaning, trimmed and lower case.
func (d Deployment) outcome() string {
	return strings.ToLower(strings.TrimSpace(d.Outcome.Meaning))
}

// ServiceTags is the list of a Docker deployment's services as "name:tag".
//
// Cloud 66 does not document a deployment's services at all, so decoding is
// tolerant of every shape seen or plausible, and never fails the
// deployment (a list of deployments must not be lost to one odd field):
// absent or null is nil; an array of strings is kept as given ("web:1.4.2",
// "worker"); one string is split at commas, as the redeploy parameter is;
// an array of objects is read for "name" and the tag from "image_tag" or
// "tag", else the tag of "image" or "image_name" ("acme/web:1.4.2"), else
// "git_ref" — the fields of Cloud 66's Service and Container models.
// Anything else decodes to nil.
type ServiceTags []string

// UnmarshalJSON implements json.Unmarshaler. Each element is decoded once,
// by its own type, so the common absent field costs nothing and a present
// one little (see stacks.go on what repeated scans cost a list).
func (t *ServiceTags) UnmarshalJSON(b []byte) error {
	*t = nil
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			for part := range strings.SplitSeq(s, ",") {
				if part = strings.TrimSpace(part); part != "" {
					*t = append(*t, part)
				}
			}
		}
	case b[0] == '[':
		var items []serviceTag
		if json.Unmarshal(b, &items) != nil {
			return nil
		}
		for _, it := range items {
			if it != "" {
				*t = append(*t, string(it))
			}
		}
	}
	return nil
}

// serviceTag is one element of ServiceTags; "" stands for one that could
// not be read.
type serviceTag string

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (t *serviceTag) UnmarshalJSON(b []byte) error {
	*t = ""
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) == nil {
			*t = serviceTag(strings.TrimSpace(s))
		}
	case len(b) > 0 && b[0] == '{':
		var o struct {
			Name      string `json:"name"`
			ImageTag  string `json:"image_tag"`
			Tag       string `json:"tag"`
			Image     string `json:"image"`
			ImageName string `json:"image_name"`
			GitRef    string `json:"git_ref"`
		}
		if json.Unmarshal(b, &o) != nil || strings.TrimSpace(o.Name) == "" {
			return nil
		}
		tag := cmp.Or(o.ImageTag, o.Tag, imageTag(o.Image), imageTag(o.ImageName), o.GitRef)
		*t = serviceTag(strings.TrimSpace(o.Name))
		if tag = strings.TrimSpace(tag); tag != "" {
			*t += serviceTag(":" + tag)
		}
	}
	return nil
}

// imageTag returns the tag of an image reference ("registry:5000/acme/web:1.4.2"
// is "1.4.2"), or "" when it has none; a digest is not a tag.
func imageTag(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	name := ref[strings.LastIndex(ref, "/")+1:]
	if _, tag, ok := strings.Cut(name, ":"); ok {
		return tag
	}
	return ""
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
