package cloud66test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const perPage = 30

// ---------------------------------------------------------------------------
// JSON shapes (reference §3, §5, §6, §7). Deliberately independent of the
// client package.

type envelope struct {
	Response   any         `json:"response"`
	Count      *int        `json:"count,omitempty"`
	Pagination *pagination `json:"pagination,omitempty"`
}

type pagination struct {
	Previous *int `json:"previous"`
	Next     *int `json:"next"`
	Current  int  `json:"current"`
	PerPage  int  `json:"per_page"`
	Count    int  `json:"count"`
	Pages    int  `json:"pages"`
}

type okMessage struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

type stackJSON struct {
	UID                  string   `json:"uid"`
	Name                 string   `json:"name"`
	AccountID            int      `json:"account_id"`
	AccountName          string   `json:"account_name"`
	Git                  *string  `json:"git"`
	GitBranch            *string  `json:"git_branch"`
	Environment          string   `json:"environment"`
	Cloud                string   `json:"cloud"`
	FQDN                 string   `json:"fqdn"`
	Language             string   `json:"language"`
	Framework            string   `json:"framework"`
	Status               int      `json:"status"`
	Health               int      `json:"health"`
	LastActivity         string   `json:"last_activity"`
	LastActivityISO      string   `json:"last_activity_iso"`
	MaintenanceMode      bool     `json:"maintenance_mode"`
	HasLoadbalancer      bool     `json:"has_loadbalancer"`
	CreatedAt            string   `json:"created_at"`
	UpdatedAt            string   `json:"updated_at"`
	CreatedAtISO         string   `json:"created_at_iso"`
	UpdatedAtISO         string   `json:"updated_at_iso"`
	DeployDirectory      string   `json:"deploy_directory"`
	CloudStatus          string   `json:"cloud_status"`
	RedeployHook         *string  `json:"redeploy_hook"`
	Backend              *string  `json:"backend"`
	Version              string   `json:"version"`
	Revision             string   `json:"revision"`
	IsBusy               bool     `json:"is_busy"`
	IsCluster            bool     `json:"is_cluster"`
	IsInsideCluster      bool     `json:"is_inside_cluster"`
	ClusterName          *string  `json:"cluster_name"`
	ApplicationAddress   *string  `json:"application_address"`
	ConfigstoreNamespace string   `json:"configstore_namespace"`
	Namespaces           []string `json:"namespaces"`
}

type serverJSON struct {
	UID                string         `json:"uid"`
	VendorUID          string         `json:"vendor_uid"`
	Name               string         `json:"name"`
	Address            string         `json:"address"`
	Distro             string         `json:"distro"`
	DistroVersion      string         `json:"distro_version"`
	DNSRecord          string         `json:"dns_record"`
	UserName           string         `json:"user_name"`
	ServerType         string         `json:"server_type"`
	ServerRoles        []string       `json:"server_roles"`
	ServerGroupID      int            `json:"server_group_id"`
	StackUID           string         `json:"stack_uid"`
	HasAgent           bool           `json:"has_agent"`
	Params             map[string]any `json:"params"`
	CreatedAt          string         `json:"created_at"`
	UpdatedAt          string         `json:"updated_at"`
	CreatedAtISO       string         `json:"created_at_iso"`
	UpdatedAtISO       string         `json:"updated_at_iso"`
	Region             string         `json:"region"`
	AvailabilityZone   string         `json:"availability_zone"`
	ExtIPv4            string         `json:"ext_ipv4"`
	IntIPv4            string         `json:"int_ipv4"`
	ExtIPv6            *string        `json:"ext_ipv6"`
	IntIPv6            *string        `json:"int_ipv6"`
	HealthState        int            `json:"health_state"`
	PersonalKey        bool           `json:"personal_key"`
	SSHPrivateKey      *string        `json:"ssh_private_key,omitempty"`
	HasDeployGateway   bool           `json:"has_deploy_gateway"`
	IsKubernetesMaster bool           `json:"is_kubernetes_master"`
}

type codeMeaning struct {
	Code    int    `json:"code"`
	Meaning string `json:"meaning"`
}

type deploymentJSON struct {
	ID            int         `json:"id"`
	TriggeredBy   string      `json:"triggered_by"`
	TriggeredVia  codeMeaning `json:"triggered_via"`
	StartedAt     string      `json:"started_at"`
	FinishedAt    *string     `json:"finished_at"`
	Outcome       codeMeaning `json:"outcome"`
	GitHash       string      `json:"git_hash"`
	GitRef        *string     `json:"git_ref"`
	DeploySession string      `json:"deploy_session"`
	DeployType    codeMeaning `json:"deploy_type"`
	IsHead        bool        `json:"is_head"`
	IsLive        bool        `json:"is_live"`
	Reverted      bool        `json:"reverted"`
	RevertedBy    *string     `json:"reverted_by"`
	RevertedAt    *string     `json:"reverted_at"`
	IsDeploying   bool        `json:"is_deploying"`
	CommitURL     *string     `json:"commit_url"`
	// Services is undocumented by Cloud 66; the fake sends it for Docker
	// stacks, shaped like Cloud 66's Service model (name, image_name,
	// image_tag), and leaves it out for the others.
	Services []serviceTagJSON `json:"services,omitempty"`
}

type serviceTagJSON struct {
	Name      string `json:"name"`
	ImageName string `json:"image_name"`
	ImageTag  string `json:"image_tag"`
}

type redeployJSON struct {
	OK            bool   `json:"ok"`
	Message       string `json:"message"`
	AsyncActionID *int   `json:"async_action_id"`
	Queued        bool   `json:"queued"`
}

type actionJSON struct {
	ID              int               `json:"id"`
	User            string            `json:"user"`
	ResourceType    string            `json:"resource_type"`
	ResourceID      string            `json:"resource_id"`
	Action          string            `json:"action"`
	StartedVia      string            `json:"started_via"`
	StartedAt       *string           `json:"started_at"`
	FinishedAt      *string           `json:"finished_at"`
	FinishedSuccess *bool             `json:"finished_success"`
	FinishedMessage *string           `json:"finished_message"`
	FinishedResult  any               `json:"finished_result"`
	Metadata        map[string]string `json:"metadata"`
}

func isoTime(t time.Time) string    { return t.UTC().Format("2006-01-02T15:04:05Z") }
func legacyTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func cm(code int, table map[int]string) codeMeaning {
	return codeMeaning{Code: code, Meaning: table[code]}
}

func (st *stackRec) toJSON() stackJSON {
	status := st.currentStatus()
	cloudStatus := map[int]string{healthOK: "healthy", healthPartial: "partial", healthBroken: "faulty"}[st.health]
	if cloudStatus == "" {
		cloudStatus = "unknown"
	}
	var rev string
	if n := len(st.deploys); n > 0 {
		rev = st.deploys[n-1].gitHash
	}
	return stackJSON{
		UID:                  st.uid,
		Name:                 st.name,
		AccountID:            seedAccountID,
		AccountName:          seedAccountName,
		Git:                  strPtr(st.git),
		GitBranch:            strPtr(st.branch),
		Environment:          st.env,
		Cloud:                st.cloud,
		FQDN:                 st.fqdn,
		Language:             st.language,
		Framework:            st.framework,
		Status:               status,
		Health:               st.health,
		LastActivity:         legacyTime(st.lastAct),
		LastActivityISO:      isoTime(st.lastAct),
		MaintenanceMode:      st.maintenance,
		HasLoadbalancer:      st.lb,
		CreatedAt:            legacyTime(st.created),
		UpdatedAt:            legacyTime(st.updated),
		CreatedAtISO:         isoTime(st.created),
		UpdatedAtISO:         isoTime(st.updated),
		DeployDirectory:      "/var/deploy/" + st.name + "/web_head/current",
		CloudStatus:          cloudStatus,
		RedeployHook:         strPtr(st.hook),
		Backend:              strPtr(st.backend),
		Version:              st.version,
		Revision:             rev,
		IsBusy:               st.busy(),
		ConfigstoreNamespace: hexID(32, "configstore", st.uid),
		Namespaces:           []string{},
	}
}

func (sv *serverRec) toJSON(st *stackRec, withKey bool) serverJSON {
	j := serverJSON{
		UID:              sv.uid,
		VendorUID:        sv.vendorUID,
		Name:             sv.name,
		Address:          sv.extIP,
		Distro:           "ubuntu",
		DistroVersion:    "22.04",
		DNSRecord:        strings.ToLower(sv.name + "." + st.name + "." + st.env + ".c66.me"),
		UserName:         "ubuntu",
		ServerType:       sv.serverType,
		ServerRoles:      slices.Clone(sv.roles),
		ServerGroupID:    sv.groupID,
		StackUID:         st.uid,
		HasAgent:         true,
		Params:           map[string]any{"region": sv.region, "size": "medium", "cached_cores": 2},
		CreatedAt:        isoTime(sv.created),
		UpdatedAt:        isoTime(st.updated),
		CreatedAtISO:     isoTime(sv.created),
		UpdatedAtISO:     isoTime(st.updated),
		Region:           sv.region,
		AvailabilityZone: sv.az,
		ExtIPv4:          sv.extIP,
		IntIPv4:          sv.intIP,
		HealthState:      sv.health,
	}
	if withKey {
		k := sv.key
		j.SSHPrivateKey = &k
	}
	return j
}

func (st *stackRec) deployJSON(d *deployRec) deploymentJSON {
	// is_head: the newest deployment; is_live: the newest successful one.
	var live *deployRec
	for i := len(st.deploys) - 1; i >= 0; i-- {
		if st.deploys[i].outcome == outcomeSuccess {
			live = st.deploys[i]
			break
		}
	}
	j := deploymentJSON{
		ID:            d.id,
		TriggeredBy:   d.by,
		TriggeredVia:  cm(d.via, viaMeanings),
		StartedAt:     isoTime(d.started),
		Outcome:       cm(d.outcome, outcomeMeanings),
		GitHash:       d.gitHash,
		GitRef:        strPtr(d.gitRef),
		DeploySession: d.session,
		DeployType:    cm(d.deployType, typeMeanings),
		IsHead:        d == st.deploys[len(st.deploys)-1],
		IsLive:        d == live,
		IsDeploying:   d.running(),
	}
	if !d.running() {
		f := isoTime(d.finished)
		j.FinishedAt = &f
	}
	if st.git != "" {
		u := "https://github.com/acme/" + st.name + "/commit/" + d.gitHash
		j.CommitURL = &u
	}
	for _, name := range st.services {
		if tag := d.tags[name]; tag != "" {
			j.Services = append(j.Services, serviceTagJSON{Name: name, ImageName: "registry.acme.example/acme/" + st.name + "-" + name, ImageTag: tag})
		}
	}
	return j
}

func (st *stackRec) actionJSON(a *actionRec) actionJSON {
	// A deployment queued behind a running one has no started_at until it
	// starts: Cloud 66 documents nothing for this, and null is the
	// plainest "not started yet" (clients must cope with a date too).
	var started *string
	if !a.started.IsZero() {
		t := isoTime(a.started)
		started = &t
	}
	j := actionJSON{
		ID:           a.id,
		User:         a.user,
		ResourceType: a.resourceType,
		ResourceID:   strconv.Itoa(st.id),
		Action:       a.kind,
		StartedVia:   "api",
		StartedAt:    started,
		Metadata:     map[string]string{},
	}
	if a.userRef != "" {
		j.Metadata["user_reference"] = a.userRef
	}
	if !a.finished.IsZero() {
		f, ok, msg := isoTime(a.finished), a.success, a.message
		j.FinishedAt, j.FinishedSuccess, j.FinishedMessage = &f, &ok, &msg
	}
	return j
}

// ---------------------------------------------------------------------------
// Routing

type apiCall struct {
	r     *http.Request
	body  []byte
	now   time.Time
	tok   *token
	user  *user
	stack *stackRec
	id    string // 4th path segment (server uid, deployment id, action id)
}

type apiRoute struct {
	auth  bool
	scope string // required scope, "" = any valid token
	stack bool   // segment 2 is a stack uid that must be visible
	fn    func(*Server, *apiCall) *reply
}

func notFound(desc string) *reply { return errReply(http.StatusNotFound, "not_found", desc) }

func badRequest(desc, details string) *reply {
	return jsonReply(http.StatusBadRequest, errorBody{Error: "bad_request", Description: desc, Details: details})
}

// route maps method + path segments to a handler; nil means no route (404,
// like a Rails routing error — this includes paths without ".json").
func route(method string, segs []string) *apiRoute {
	get, post, del := method == http.MethodGet, method == http.MethodPost, method == http.MethodDelete
	n := len(segs)
	switch {
	case n == 1 && segs[0] == "ping" && get:
		return &apiRoute{fn: (*Server).apiPing}
	case n == 2 && segs[0] == "ping" && segs[1] == "auth" && get:
		return &apiRoute{auth: true, fn: (*Server).apiPing}
	case n == 0 || segs[0] != "stacks":
		return nil
	case n == 1 && get:
		return &apiRoute{auth: true, fn: (*Server).apiListStacks}
	case n == 2 && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiGetStack}
	case n == 3 && segs[2] == "servers" && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiListServers}
	case n == 4 && segs[2] == "servers" && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiGetServer}
	case n == 3 && segs[2] == "deployments" && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiListDeployments}
	case n == 3 && segs[2] == "deployments" && post:
		return &apiRoute{auth: true, scope: "redeploy", stack: true, fn: (*Server).apiRedeploy}
	case n == 4 && segs[2] == "deployments" && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiGetDeployment}
	case n == 4 && segs[2] == "deployments" && del:
		return &apiRoute{auth: true, scope: "redeploy", stack: true, fn: (*Server).apiCancelDeployment}
	case n == 3 && segs[2] == "actions" && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiListActions}
	case n == 4 && segs[2] == "actions" && get:
		return &apiRoute{auth: true, stack: true, fn: (*Server).apiGetAction}
	case n == 3 && segs[2] == "actions" && post:
		return &apiRoute{auth: true, scope: "redeploy", stack: true, fn: (*Server).apiStackAction}
	case n == 3 && segs[2] == "reboot_servers" && post:
		return &apiRoute{auth: true, scope: "redeploy", stack: true, fn: (*Server).apiRebootServers}
	case n == 5 && segs[2] == "servers" && segs[4] == "reboot_server" && post:
		return &apiRoute{auth: true, scope: "redeploy", stack: true, fn: (*Server).apiRebootServer}
	}
	return nil
}

func (s *Server) handleAPI(r *http.Request, rec *Request, body []byte) *reply {
	p := strings.TrimPrefix(r.URL.Path, apiPrefix)
	rest, ok := strings.CutSuffix(p, ".json")
	var rt *apiRoute
	var segs []string
	if ok {
		segs = strings.Split(strings.TrimPrefix(rest, "/"), "/")
		rt = route(r.Method, segs)
	}
	if rt == nil {
		return notFound("No route matches " + r.Method + " " + r.URL.Path)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c := &apiCall{r: r, body: body, now: s.Clock.Now()}
	if len(segs) >= 4 {
		c.id = segs[3]
	}
	if rt.auth {
		if rep := s.authenticateLocked(c, rec.Token); rep != nil {
			return rep
		}
		if rt.scope != "" && !c.tok.has(rt.scope) {
			return insufficientScope(rt.scope)
		}
	}
	if rt.stack {
		st := s.stackByUID[segs[1]]
		if st == nil || !c.user.canSee(st.uid) {
			// Unknown and invisible stacks look the same, as on Cloud 66.
			return notFound("Stack not found, or you don't have access to it")
		}
		s.settleLocked(st, c.now)
		c.stack = st
	}
	return rt.fn(s, c)
}

func (s *Server) authenticateLocked(c *apiCall, tok string) *reply {
	var desc string
	t := s.tokens[tok]
	switch {
	case tok == "":
		desc = "No access token was provided: send Authorization: Bearer <token>"
	case t == nil:
		desc = "The access token is invalid"
	case t.revoked:
		desc = "The access token was revoked"
	default:
		c.tok, c.user = t, s.userLocked(t.email)
		return nil
	}
	rep := errReply(http.StatusUnauthorized, "unauthenticated", desc)
	rep.setHeader("WWW-Authenticate", `Bearer realm="Doorkeeper", error="invalid_token"`)
	return rep
}

// insufficientScope is Doorkeeper's answer to a token without the scope an
// endpoint needs: 403, error insufficient_scope with its wording, and the
// RFC 6750 challenge naming the scope (Cloud 66 documents only "403 —
// token lacks required scope").
func insufficientScope(scope string) *reply {
	desc := `Access to this resource requires scope "` + scope + `".`
	rep := errReply(http.StatusForbidden, "insufficient_scope", desc)
	rep.setHeader("WWW-Authenticate", `Bearer realm="Doorkeeper", error="insufficient_scope", error_description="The request requires higher privileges than provided by the access token.", scope="`+scope+`"`)
	return rep
}

func single(v any) *reply { return jsonReply(http.StatusOK, envelope{Response: v}) }

// list paginates items 30 per page (?page=, 1-based). A page past the end is
// an empty list; a malformed page is a 400.
func list[T any](c *apiCall, items []T) *reply {
	page := 1
	if ps := c.r.URL.Query().Get("page"); ps != "" {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 1 {
			return badRequest("Invalid page", "page must be a positive integer")
		}
		page = p
	}
	total := len(items)
	pages := max(1, (total+perPage-1)/perPage)
	lo := min((page-1)*perPage, total)
	hi := min(lo+perPage, total)
	out := append(make([]T, 0, hi-lo), items[lo:hi]...)
	pg := &pagination{Current: page, PerPage: perPage, Count: total, Pages: pages}
	if page > 1 {
		prev := page - 1
		pg.Previous = &prev
	}
	if page < pages {
		next := page + 1
		pg.Next = &next
	}
	return jsonReply(http.StatusOK, envelope{Response: out, Count: &total, Pagination: pg})
}

// ---------------------------------------------------------------------------
// Handlers (called with s.mu held)

// apiPing answers both ping endpoints. The reference only says they return
// {ok, message}; the fake wraps that in the usual envelope because the
// official Go client unwraps "response" for every call, ping included.
func (s *Server) apiPing(c *apiCall) *reply {
	return single(okMessage{OK: true, Message: "pong"})
}

// apiListStacks lists the stacks the user can see.
//
// Of the undocumented server-side filters (reference §4 row 1), filter_name
// and filter_environment are applied: each keeps the stacks whose name (or
// environment) equals the value, ignoring case; an empty value filters
// nothing, and pagination counts what is left. The reference does not say
// how Cloud 66 compares. Exact matching is the choice because Cloud 66's own
// Go library uses filter_name to find one stack by its name, and it is the
// strictest plausible reading: a client that re-checks what comes back (as
// it must, the filters being undocumented) is right under a substring
// match too. filter_git_repo and filter_git_branch are still ignored.
func (s *Server) apiListStacks(c *apiCall) *reply {
	q := c.r.URL.Query()
	name, env := q.Get("filter_name"), q.Get("filter_environment")
	var out []stackJSON
	for _, st := range s.stacks {
		if !c.user.canSee(st.uid) ||
			(name != "" && !strings.EqualFold(st.name, name)) ||
			(env != "" && !strings.EqualFold(st.env, env)) {
			continue
		}
		s.settleLocked(st, c.now)
		out = append(out, st.toJSON())
	}
	return list(c, out)
}

func (s *Server) apiGetStack(c *apiCall) *reply { return single(c.stack.toJSON()) }

func (s *Server) apiListServers(c *apiCall) *reply {
	withKey := c.r.URL.Query().Get("include_private_key") == "1"
	out := make([]serverJSON, 0, len(c.stack.servers))
	for _, sv := range c.stack.servers {
		out = append(out, sv.toJSON(c.stack, withKey))
	}
	return list(c, out)
}

func (s *Server) apiGetServer(c *apiCall) *reply {
	withKey := c.r.URL.Query().Get("include_private_key") == "1"
	for _, sv := range c.stack.servers {
		if sv.uid == c.id {
			return single(sv.toJSON(c.stack, withKey))
		}
	}
	return notFound("Server not found")
}

func (s *Server) apiListDeployments(c *apiCall) *reply {
	st := c.stack
	out := make([]deploymentJSON, 0, len(st.deploys))
	for i := len(st.deploys) - 1; i >= 0; i-- { // newest first
		out = append(out, st.deployJSON(st.deploys[i]))
	}
	return list(c, out)
}

func (s *Server) findDeploy(c *apiCall) *deployRec {
	id, err := strconv.Atoi(c.id)
	if err != nil {
		return nil
	}
	for _, d := range c.stack.deploys {
		if d.id == id {
			return d
		}
	}
	return nil
}

func (s *Server) apiGetDeployment(c *apiCall) *reply {
	d := s.findDeploy(c)
	if d == nil {
		return notFound("Deployment not found")
	}
	return single(c.stack.deployJSON(d))
}

func (s *Server) apiCancelDeployment(c *apiCall) *reply {
	st := c.stack
	d := s.findDeploy(c)
	if d == nil {
		return notFound("Deployment not found")
	}
	if !d.running() {
		return errReply(http.StatusConflict, "conflict", "Deployment is not running")
	}
	s.finishLocked(st, d, c.now, outcomeCancelled, msgCancelled)
	if len(st.queue) > 0 {
		s.startLocked(st, s.popQueue(st), c.now)
	}
	return single(okMessage{OK: true, Message: "Cancelling deployment"})
}

var deployStrategies = []string{"serial", "parallel", "rolling", "fast"}
var rolloutStrategies = []string{"none", "canary", "blue_green_immediate", "blue_green_delayed"}

func (s *Server) apiRedeploy(c *apiCall) *reply {
	st := c.stack
	params, rep := redeployParams(c.r, c.body)
	if rep != nil {
		return rep
	}
	if rep := st.refuseOptions(params); rep != nil {
		return rep
	}
	p := &pendingDeploy{
		user:     c.user.email,
		gitRef:   params.gitRef,
		userRef:  params.userRef,
		services: params.services,
		profile:  params.profile,
		strategy: params.strategy,
	}
	p.plan = s.planFor(st, p)
	p.action = s.newActionLocked(st, ActionDeployment, "stack", p.user)
	p.action.userRef = p.userRef
	s.actionCount++
	id := p.action.id
	if st.running() != nil {
		// Cloud 66 enqueues a deploy requested while one runs; it starts
		// when the running one ends. Its action exists already (Cloud 66's
		// docs show queued: true beside an async_action_id) but has not
		// started.
		st.queue = append(st.queue, p)
		st.updated = c.now
		return single(redeployJSON{OK: true, Message: "Stack queued for redeployment", AsyncActionID: &id, Queued: true})
	}
	s.startLocked(st, p, c.now)
	return single(redeployJSON{OK: true, Message: "Stack redeployment started", AsyncActionID: &id})
}

// refuseOptions answers the redeploy options that do not apply to the
// stack's type with a 400, as Cloud 66's CLI refuses them before sending
// (reference §5.1): services only on Docker stacks, git_ref not on them,
// rolling only on Rails and Rack stacks, fast only on Kubernetes. Unknown
// service names are refused too.
func (st *stackRec) refuseOptions(p redeployRequest) *reply {
	docker := st.framework == "docker"
	switch {
	case len(p.services) > 0 && !docker:
		return badRequest("Invalid services", "services only applies to Docker stacks")
	case p.gitRef != "" && docker:
		return badRequest("Invalid git_ref", "git_ref does not apply to Docker stacks: deploy services at an image tag instead")
	case p.strategy == "rolling" && st.framework != "rails" && st.framework != "rack":
		return badRequest("Invalid deploy_strategy", `the "rolling" deploy strategy only applies to Rails/Rack stacks`)
	case p.strategy == "fast" && st.backend != "kubernetes":
		return badRequest("Invalid deploy_strategy", `the "fast" deploy strategy only applies to Kubernetes stacks`)
	}
	for _, sv := range p.services {
		if name, _, _ := strings.Cut(sv, ":"); !slices.Contains(st.services, name) {
			return badRequest("Unknown service", "this stack has no service named "+strconv.Quote(name)+"; its services are "+strings.Join(st.services, ", "))
		}
	}
	return nil
}

type redeployRequest struct {
	gitRef, userRef, profile, strategy string
	services                           []string
}

// redeployParams reads the POST parameters (see postParams). services may
// be a JSON array, a comma-separated string or repeated services[] form
// fields.
func redeployParams(r *http.Request, body []byte) (redeployRequest, *reply) {
	var out redeployRequest
	vals, rep := postParams(r, body, "canary_percentage")
	if rep != nil {
		return out, rep
	}
	services := append(vals["services"], vals["services[]"]...)
	for _, sv := range services {
		for _, part := range strings.Split(sv, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out.services = append(out.services, part)
			}
		}
	}
	out.gitRef = vals.Get("git_ref")
	out.userRef = vals.Get("user_reference")
	out.profile = vals.Get("deployment_profile")
	out.strategy = vals.Get("deploy_strategy")
	if out.strategy != "" && !slices.Contains(deployStrategies, out.strategy) {
		return out, badRequest("Invalid deploy_strategy", "deploy_strategy must be one of "+strings.Join(deployStrategies, ", "))
	}
	if rs := vals.Get("rollout_strategy"); rs != "" && !slices.Contains(rolloutStrategies, rs) {
		return out, badRequest("Invalid rollout_strategy", "rollout_strategy must be one of "+strings.Join(rolloutStrategies, ", "))
	}
	if cp := vals.Get("canary_percentage"); cp != "" {
		if n, err := strconv.Atoi(cp); err != nil || n < 0 || n > 100 {
			return out, badRequest("Invalid canary_percentage", "canary_percentage must be an integer between 0 and 100")
		}
	}
	if n := len([]rune(out.userRef)); n > 255 {
		return out, badRequest("Invalid user_reference", fmt.Sprintf("user_reference must be at most 255 characters (got %d)", n))
	}
	return out, nil
}

func (s *Server) apiListActions(c *apiCall) *reply {
	st := c.stack
	ref, filter := c.r.URL.Query().Get("user_reference"), c.r.URL.Query().Has("user_reference")
	out := make([]actionJSON, 0, len(st.actions))
	for i := len(st.actions) - 1; i >= 0; i-- { // newest first
		if a := st.actions[i]; !filter || a.userRef == ref {
			out = append(out, st.actionJSON(a))
		}
	}
	return list(c, out)
}

func (s *Server) apiGetAction(c *apiCall) *reply {
	id, err := strconv.Atoi(c.id)
	if err == nil {
		for _, a := range c.stack.actions {
			if a.id == id {
				return single(c.stack.actionJSON(a))
			}
		}
	}
	return notFound("Action not found")
}
