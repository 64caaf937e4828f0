package cloud66

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// AsyncAction tracks a long-running operation such as a deploy, restart or
// reboot. Poll GetAction until Finished.
type AsyncAction struct {
	ID           int64  `json:"id"`
	User         string `json:"user"`
	ResourceType string `json:"resource_type"`
	Action       string `json:"action"`
	ResourceID   string `json:"resource_id"`
	StartedVia   string `json:"started_via"`
	StartedAt    Time   `json:"started_at"`
	FinishedAt   Time   `json:"finished_at"`
	// FinishedSuccess is nil while the action runs.
	FinishedSuccess *bool  `json:"finished_success"`
	FinishedMessage string `json:"finished_message"`
	// FinishedResult is operation specific; nil when absent or null.
	FinishedResult json.RawMessage `json:"finished_result,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`
}

// UnmarshalJSON accepts resource_id as a string or a number (it is a
// numeric id documented as a string) and maps a null finished_result to nil.
func (a *AsyncAction) UnmarshalJSON(b []byte) error {
	type plain AsyncAction
	aux := struct {
		*plain
		ResourceID flexString `json:"resource_id"`
	}{plain: (*plain)(a)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	a.ResourceID = string(aux.ResourceID)
	if bytes.Equal(bytes.TrimSpace(a.FinishedResult), []byte("null")) {
		a.FinishedResult = nil
	}
	return nil
}

// Finished reports whether the action has ended (finished_at is set).
func (a *AsyncAction) Finished() bool {
	return !a.FinishedAt.IsZero()
}

// Started reports whether the action has begun (started_at is set). An
// action queued behind a running one (a redeploy answered queued: true with
// an action id) may carry no started_at until it starts: the fake does so,
// and real Cloud 66 is not documented either way, so a caller treats
// Started as "known to have started" and nothing more.
func (a *AsyncAction) Started() bool {
	return !a.StartedAt.IsZero()
}

// UserReference returns metadata.user_reference, the value passed in
// RedeployRequest.UserReference, or "" when there is none.
func (a *AsyncAction) UserReference() string {
	s, _ := a.Metadata["user_reference"].(string)
	return s
}

// GetAction returns one async action of a stack.
//
// GET /stacks/{uid}/actions/{id}.json
func (c *Client) GetAction(ctx context.Context, stackUID string, id int64) (*AsyncAction, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	if err := checkID("action id", id); err != nil {
		return nil, err
	}
	a, _, err := call[AsyncAction](ctx, c, http.MethodGet, "/stacks/{uid}/actions/{id}", "stacks/"+seg+"/actions/"+strconv.FormatInt(id, 10)+".json", nil, nil)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// flexString decodes a JSON string or number as text; null is "".
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// ListActionsByReference returns the first page of a stack's async actions
// whose metadata.user_reference equals ref (newest first). It finds a
// deployment the bot asked for when no action id came back (queued) or
// when the bot restarted between asking and hearing the answer.
//
// GET /stacks/{uid}/actions.json?user_reference={ref}
func (c *Client) ListActionsByReference(ctx context.Context, stackUID, ref string) ([]AsyncAction, error) {
	if ref == "" || len(ref) > maxUserReference {
		return nil, &ArgError{Arg: "user_reference", Reason: "must be 1 to 255 characters"}
	}
	return c.firstActionsPage(ctx, stackUID, url.Values{"user_reference": {ref}})
}

// ListActions returns the first page of a stack's async actions, newest
// first: 30 actions, enough to find one started moments ago by its Action
// name and StartedAt when the answer to its POST was lost. Stack actions
// and reboots take no user_reference, so this is how they are found again.
//
// GET /stacks/{uid}/actions.json
func (c *Client) ListActions(ctx context.Context, stackUID string) ([]AsyncAction, error) {
	return c.firstActionsPage(ctx, stackUID, nil)
}

// firstActionsPage fetches page 1 of a stack's actions with query q. Only
// the first page is read: the callers look for something recent, and the
// list is newest first.
func (c *Client) firstActionsPage(ctx context.Context, stackUID string, q url.Values) ([]AsyncAction, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	out, _, err := call[[]AsyncAction](ctx, c, http.MethodGet, "/stacks/{uid}/actions", "stacks/"+seg+"/actions.json", q, nil)
	return out, err
}

// Action names an AsyncAction carries in Action, for the operations this
// client starts (reference §6.2). Cloud 66 documents restart, stack_reboot,
// server_reboot and application_deployment; service_restart and
// maintenance_mode are assumed to be named after their command, so match
// them tolerantly.
const (
	ActionDeployment      = "application_deployment"
	ActionRestart         = "restart"
	ActionServiceRestart  = "service_restart"
	ActionMaintenanceMode = "maintenance_mode"
	ActionServerReboot    = "server_reboot"
	ActionStackReboot     = "stack_reboot"
)

// Commands of POST /stacks/{uid}/actions.json (reference §6.1) that
// RunStackAction is used with.
const (
	// CommandRestart restarts every component of the stack (web server,
	// app servers, databases…).
	CommandRestart = "restart"
	// CommandServiceRestart restarts one service of a Docker stack; it
	// needs ServiceName.
	CommandServiceRestart = "service_restart"
	// CommandMaintenanceMode switches maintenance mode; it needs Value, 1
	// for on and 0 for off.
	CommandMaintenanceMode = "maintenance_mode"
)

// StackActionRequest is the body of a stack action.
type StackActionRequest struct {
	Command string `json:"command"`
	// ServiceName names the service of a service_restart.
	ServiceName string `json:"service_name,omitempty"`
	// Value is maintenance_mode's 1 (on) or 0 (off); a pointer so that 0
	// is sent.
	Value *int `json:"value,omitempty"`
}

// MaintenanceRequest is the stack action that switches maintenance mode on
// or off.
func MaintenanceRequest(on bool) StackActionRequest {
	v := 0
	if on {
		v = 1
	}
	return StackActionRequest{Command: CommandMaintenanceMode, Value: &v}
}

// check validates req before anything is sent.
func (req StackActionRequest) check() error {
	switch {
	case req.Command == "", strings.ContainsFunc(req.Command, isSpaceOrControl):
		return &ArgError{Arg: "command", Reason: "must be one word"}
	case req.Command == CommandServiceRestart && strings.TrimSpace(req.ServiceName) == "":
		return &ArgError{Arg: "service name", Reason: "service_restart needs one"}
	case req.Command == CommandMaintenanceMode && (req.Value == nil || *req.Value != 0 && *req.Value != 1):
		return &ArgError{Arg: "value", Reason: "maintenance_mode needs 1 (on) or 0 (off)"}
	}
	return nil
}

// RunStackAction runs a stack action (restart, service_restart,
// maintenance_mode…) and returns the async action that follows it. Like
// Redeploy it is never retried: a request that timed out may have started
// the action; ListActions finds it again.
//
// POST /stacks/{uid}/actions.json
func (c *Client) RunStackAction(ctx context.Context, stackUID string, req StackActionRequest) (*AsyncAction, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	return startAction(ctx, c, "/stacks/{uid}/actions", "stacks/"+seg+"/actions.json", req)
}

// Reboot strategies of RebootServers. The empty strategy lets Cloud 66
// choose, as Cloud 66's CLI allows.
const (
	RebootSerial   = "serial"
	RebootParallel = "parallel"
)

// RebootRequest is the body of a reboot of a server group. The official
// client always sends both fields, strategy "" included, and so does this
// one.
type RebootRequest struct {
	// Group is the server group: all, web, db, haproxy, mysql, redis…
	Group string `json:"group"`
	// Strategy is RebootSerial, RebootParallel or "" (Cloud 66 decides).
	Strategy string `json:"strategy"`
}

// RebootServer reboots one server of a stack. It is never retried.
//
// POST /stacks/{uid}/servers/{server_uid}/reboot_server.json
func (c *Client) RebootServer(ctx context.Context, stackUID, serverUID string) (*AsyncAction, error) {
	path, err := serverPath(stackUID, serverUID)
	if err != nil {
		return nil, err
	}
	return startAction(ctx, c, "/stacks/{uid}/servers/{server_uid}/reboot_server", path+"/reboot_server.json", nil)
}

// RebootServers reboots a group of a stack's servers. It is never retried.
//
// POST /stacks/{uid}/reboot_servers.json
func (c *Client) RebootServers(ctx context.Context, stackUID string, req RebootRequest) (*AsyncAction, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	switch {
	case req.Group == "", strings.ContainsFunc(req.Group, isSpaceOrControl):
		return nil, &ArgError{Arg: "group", Reason: "must be one word, such as web, db or all"}
	case req.Strategy != "" && req.Strategy != RebootSerial && req.Strategy != RebootParallel:
		return nil, &ArgError{Arg: "strategy", Reason: `must be "serial", "parallel" or empty`}
	}
	return startAction(ctx, c, "/stacks/{uid}/reboot_servers", "stacks/"+seg+"/reboot_servers.json", req)
}

// startAction POSTs body (nil: no body) and decodes the async action
// Cloud 66 answers with. POSTs are never retried (see Client.do).
func startAction(ctx context.Context, c *Client, endpoint, path string, body any) (*AsyncAction, error) {
	a, _, err := call[AsyncAction](ctx, c, http.MethodPost, endpoint, path, nil, body)
	if err != nil {
		return nil, err
	}
	return &a, nil
}
