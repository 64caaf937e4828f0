package cloud66test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// msgActionFailed is how a failing stack action ends by default.
const msgActionFailed = "Action failed"

// Action names of the async actions the fake runs (reference §6.2). They
// repeat the client package's on purpose: the fake shares nothing with it.
// Cloud 66 documents restart, stack_reboot, server_reboot and
// application_deployment; the fake names the service restart and the
// maintenance switch after their commands.
const (
	ActionDeployment      = "application_deployment"
	ActionRestart         = "restart"
	ActionServiceRestart  = "service_restart"
	ActionMaintenanceMode = "maintenance_mode"
	ActionServerReboot    = "server_reboot"
	ActionStackReboot     = "stack_reboot"
)

// rebootGroups are the groups POST reboot_servers.json takes: Cloud 66
// documents all, web, haproxy, db, mysql, redis "…" (default web); the
// fake adds the other database roles it seeds. A server is in a group when
// its server_roles name it; "all" is every server.
var rebootGroups = []string{"all", "web", "haproxy", "db", "mysql", "postgresql", "redis", "mongodb"}

// WithActionDuration sets how long stack actions named action (ActionRestart,
// ActionServiceRestart, ActionMaintenanceMode, ActionServerReboot,
// ActionStackReboot) run on the clock. Without it they take as long as a
// deployment (WithDeployDuration), so a sandbox that shortens deployments
// shortens them too.
func WithActionDuration(action string, d time.Duration) Option {
	return func(cfg *config) {
		if cfg.actionDurations == nil {
			cfg.actionDurations = map[string]time.Duration{}
		}
		cfg.actionDurations[action] = d
	}
}

// SetActionDuration is WithActionDuration on a running server, for actions
// requested from now on; d <= 0 goes back to the default.
func (s *Server) SetActionDuration(action string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.actionDurations, action)
		return
	}
	s.actionDurations[action] = d
}

func (s *Server) actionDurationLocked(action string) time.Duration {
	return cmp.Or(s.actionDurations[action], s.deployDuration)
}

// SetActionOutcome sets how stack actions named action end on the stack,
// for those requested after this call: success false makes them finish
// with finished_success false and message (default "Action failed"). To
// refuse the request itself, inject a Fault (Command matches one stack
// action). Unknown uids are ignored.
func (s *Server) SetActionOutcome(stackUID, action string, success bool, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stackByUID[stackUID]
	if st == nil {
		return
	}
	if st.actionOutcomes == nil {
		st.actionOutcomes = map[string]plannedOutcome{}
	}
	st.actionOutcomes[action] = planned(success, message, msgActionFailed)
}

// ActionInfo describes one async action of a stack, for tests.
type ActionInfo struct {
	ID     int
	Action string // e.g. ActionRestart
	User   string
	// Started is zero while a deployment waits in the queue; Finished is
	// zero while the action runs.
	Started, Finished time.Time
	Success           bool
	Message           string
}

// Actions returns the stack's async actions, deployments' included, oldest
// first, as they stand at the clock's current time; nil for unknown uids.
func (s *Server) Actions(stackUID string) []ActionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.settledLocked(stackUID)
	if st == nil {
		return nil
	}
	out := make([]ActionInfo, len(st.actions))
	for i, a := range st.actions {
		out[i] = ActionInfo{ID: a.id, Action: a.kind, User: a.user, Started: a.started, Finished: a.finished, Success: a.success, Message: a.message}
	}
	return out
}

// Maintenance reports whether the stack is in maintenance mode now.
func (s *Server) Maintenance(stackUID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.settledLocked(stackUID)
	return st != nil && st.maintenance
}

// settleStackActionsLocked finishes the stack actions whose time is up, in
// the order they end, so that of two maintenance switches the later wins.
func (s *Server) settleStackActionsLocked(st *stackRec, now time.Time) {
	var due []*actionRec
	for _, a := range st.actions {
		if a.kind != ActionDeployment && a.running() && !now.Before(a.started.Add(a.duration)) {
			due = append(due, a)
		}
	}
	slices.SortStableFunc(due, func(a, b *actionRec) int {
		return a.started.Add(a.duration).Compare(b.started.Add(b.duration))
	})
	for _, a := range due {
		end := a.started.Add(a.duration)
		a.finished, a.success, a.message = end, a.plan.success, a.plan.message
		if a.success && a.maintenance != nil {
			st.maintenance = *a.maintenance
		}
		st.lastAct, st.updated = end, end
	}
}

// startStackActionLocked starts a stack action of kind now and answers it.
func (s *Server) startStackActionLocked(c *apiCall, kind, resourceType string, maintenance *bool) *reply {
	st := c.stack
	a := s.newActionLocked(st, kind, resourceType, c.user.email)
	a.started, a.duration, a.maintenance = c.now, s.actionDurationLocked(kind), maintenance
	a.plan = plannedOutcome{success: true, message: msgSuccess}
	if p, ok := st.actionOutcomes[kind]; ok {
		a.plan = p
	}
	st.lastAct, st.updated = c.now, c.now
	return single(st.actionJSON(a))
}

// apiStackAction runs POST /stacks/{uid}/actions.json: restart,
// service_restart (service_name, Docker stacks) and maintenance_mode
// (value 1 or 0), with the bodies Cloud 66's Go client sends (JSON) or the
// docs' curl examples (form). Other commands are refused: the fake does not
// run them.
func (s *Server) apiStackAction(c *apiCall) *reply {
	st := c.stack
	vals, rep := postParams(c.r, c.body, "value")
	if rep != nil {
		return rep
	}
	switch cmd := vals.Get("command"); cmd {
	case "restart":
		return s.startStackActionLocked(c, ActionRestart, "stack", nil)
	case "service_restart":
		name := vals.Get("service_name")
		switch {
		case len(st.services) == 0:
			return badRequest("Invalid command", "service_restart only applies to Docker stacks")
		case name == "":
			return badRequest("Missing service_name", "service_restart needs a service_name")
		case !slices.Contains(st.services, name):
			return badRequest("Unknown service", "this stack has no service named "+strconv.Quote(name)+"; its services are "+strings.Join(st.services, ", "))
		}
		return s.startStackActionLocked(c, ActionServiceRestart, "stack", nil)
	case "maintenance_mode":
		var on bool
		switch vals.Get("value") {
		case "1":
			on = true
		case "0":
		default:
			return badRequest("Invalid value", "maintenance_mode needs value 1 (on) or 0 (off)")
		}
		return s.startStackActionLocked(c, ActionMaintenanceMode, "stack", &on)
	case "":
		return badRequest("Missing command", "command is required")
	default:
		return badRequest("Unknown command", "command must be one of restart, service_restart, maintenance_mode (the fake runs no other)")
	}
}

// apiRebootServer runs POST /stacks/{uid}/servers/{server_uid}/reboot_server.json.
func (s *Server) apiRebootServer(c *apiCall) *reply {
	for _, sv := range c.stack.servers {
		if sv.uid == c.id {
			return s.startStackActionLocked(c, ActionServerReboot, "server", nil)
		}
	}
	return notFound("Server not found")
}

// apiRebootServers runs POST /stacks/{uid}/reboot_servers.json with group
// (default web, as documented) and strategy (serial, parallel or empty:
// Cloud 66 decides; Cloud 66's CLI sends it empty when not asked).
func (s *Server) apiRebootServers(c *apiCall) *reply {
	vals, rep := postParams(c.r, c.body)
	if rep != nil {
		return rep
	}
	group := cmp.Or(vals.Get("group"), "web")
	if !slices.Contains(rebootGroups, group) {
		return badRequest("Invalid group", "group must be one of "+strings.Join(rebootGroups, ", "))
	}
	if st := vals.Get("strategy"); st != "" && st != "serial" && st != "parallel" {
		return badRequest("Invalid strategy", "strategy must be serial or parallel")
	}
	if len(c.stack.group(group)) == 0 {
		return badRequest("No servers in group", "this stack has no servers in group "+group)
	}
	return s.startStackActionLocked(c, ActionStackReboot, "stack", nil)
}

// group returns the stack's servers in a reboot group.
func (st *stackRec) group(name string) []*serverRec {
	var out []*serverRec
	for _, sv := range st.servers {
		if name == "all" || slices.Contains(sv.roles, name) {
			out = append(out, sv)
		}
	}
	return out
}

// postParams reads the parameters of a POST from a JSON body (what Cloud
// 66's Go client sends) or a form body (the docs' curl examples), merged
// over the query string as Rails does. A JSON value must be a string or an
// array of strings (several values), or for the keys named in numeric a
// number or a boolean, read as its text so that {"value":1} and value=1
// are the same.
func postParams(r *http.Request, body []byte, numeric ...string) (url.Values, *reply) {
	vals := r.URL.Query()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case len(bytes.TrimSpace(body)) == 0:
	case mt == "application/json":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, badRequest("Invalid JSON body", err.Error())
		}
		for k, raw := range m {
			var (
				str string
				arr []string
				num json.Number
				b   bool
			)
			isNumeric := slices.Contains(numeric, k)
			switch {
			case string(raw) == "null":
			case json.Unmarshal(raw, &str) == nil:
				vals.Set(k, str)
			case json.Unmarshal(raw, &arr) == nil:
				vals[k] = arr
			case isNumeric && json.Unmarshal(raw, &num) == nil:
				vals.Set(k, num.String())
			case isNumeric && json.Unmarshal(raw, &b) == nil:
				vals.Set(k, strconv.FormatBool(b))
			case isNumeric:
				return nil, badRequest("Invalid "+k, k+" must be a number")
			default:
				return nil, badRequest("Invalid "+k, k+" must be a string or an array of strings")
			}
		}
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, badRequest("Invalid form body", err.Error())
		}
		for k, vs := range form {
			vals[k] = vs
		}
	default:
		return nil, badRequest("Unsupported content type", "send application/json or application/x-www-form-urlencoded")
	}
	return vals, nil
}

// bodyCommand is the "command" of a POST, JSON or form, or "", read
// leniently: a fault matches before the request is checked.
func bodyCommand(r *http.Request, body []byte) string {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		var b struct {
			Command string `json:"command"`
		}
		_ = json.Unmarshal(body, &b)
		return b.Command
	}
	form, _ := url.ParseQuery(string(body))
	return cmp.Or(form.Get("command"), r.URL.Query().Get("command"))
}
