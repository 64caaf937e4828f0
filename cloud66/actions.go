package cloud66

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	if ref == "" || len(ref) > maxUserReference {
		return nil, &ArgError{Arg: "user_reference", Reason: "must be 1 to 255 characters"}
	}
	q := url.Values{"user_reference": {ref}}
	out, _, err := call[[]AsyncAction](ctx, c, http.MethodGet, "/stacks/{uid}/actions", "stacks/"+seg+"/actions.json", q, nil)
	return out, err
}
