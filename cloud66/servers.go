package cloud66

import (
	"context"
	"encoding/json"
	"net/http"
)

// Server is a server of a stack.
//
// ssh_private_key (returned only with include_private_key=1, which this
// client never sends) is deliberately not decoded, so a key can never be
// echoed into a channel or a log.
type Server struct {
	UID              string   `json:"uid"`
	Name             string   `json:"name"`
	Address          string   `json:"address"`
	DNSRecord        string   `json:"dns_record"`
	ServerType       string   `json:"server_type"`
	Distro           string   `json:"distro"`
	DistroVersion    string   `json:"distro_version"`
	Region           string   `json:"region"`
	AvailabilityZone string   `json:"availability_zone"`
	ExtIPv4          string   `json:"ext_ipv4"`
	IntIPv4          string   `json:"int_ipv4"`
	StackUID         string   `json:"stack_uid"`
	VendorUID        string   `json:"vendor_uid"`
	Roles            []string `json:"server_roles"`
	ServerGroupID    int64    `json:"server_group_id"`
	HasAgent         bool     `json:"has_agent"`
	Health           Health   `json:"health_state"`
	CreatedAt        Time     `json:"created_at_iso"`
	UpdatedAt        Time     `json:"updated_at_iso"`
}

// UnmarshalJSON prefers the *_iso timestamps and falls back to created_at
// and updated_at, which is all the documented server payload carries.
func (s *Server) UnmarshalJSON(b []byte) error {
	type plain Server
	aux := struct {
		*plain
		CreatedAt lenientTime `json:"created_at"`
		UpdatedAt lenientTime `json:"updated_at"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.CreatedAt = orElse(s.CreatedAt, aux.CreatedAt)
	s.UpdatedAt = orElse(s.UpdatedAt, aux.UpdatedAt)
	return nil
}

// ListServers returns every server of a stack, across all pages.
//
// GET /stacks/{uid}/servers.json
func (c *Client) ListServers(ctx context.Context, stackUID string) ([]Server, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return nil, err
	}
	servers, err := listAll[Server](ctx, c, "/stacks/{uid}/servers", "stacks/"+seg+"/servers.json")
	if err != nil {
		return nil, err
	}
	return keepValid(c, http.MethodGet, "/stacks/{uid}/servers", servers, serverIDError), nil
}

// GetServer returns one server of a stack.
//
// GET /stacks/{uid}/servers/{server_uid}.json
func (c *Client) GetServer(ctx context.Context, stackUID, serverUID string) (*Server, error) {
	path, err := serverPath(stackUID, serverUID)
	if err != nil {
		return nil, err
	}
	s, _, err := call[Server](ctx, c, http.MethodGet, "/stacks/{uid}/servers/{server_uid}", path+".json", nil, nil)
	if err != nil {
		return nil, err
	}
	if err := serverIDError(http.MethodGet, "/stacks/{uid}/servers/{server_uid}", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// serverPath validates both uids and returns the escaped path of the
// server, "stacks/{uid}/servers/{server_uid}".
func serverPath(stackUID, serverUID string) (string, error) {
	seg, err := uidSegment("stack uid", stackUID)
	if err != nil {
		return "", err
	}
	srv, err := uidSegment("server uid", serverUID)
	if err != nil {
		return "", err
	}
	return "stacks/" + seg + "/servers/" + srv, nil
}
