package cloud66test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stack status codes (reference §7.2) and health codes (§7.3).
const (
	statusSuccess   = 1
	statusFailed    = 2
	statusDeploying = 6

	healthUnknown = 0
	healthPartial = 2
	healthOK      = 3
	healthBroken  = 4
)

// Deployment code tables. Cloud 66 documents only one example code per table
// (outcome 1 = success, triggered_via 0 = web, deploy_type 0 = build); the
// other numbers are the fake's guesses, so clients must read "meaning".
const (
	outcomePending = 0
	outcomeSuccess = 1
	outcomeFailed  = 2
	// outcomeCancelled is not documented by Cloud 66 at all; the fake uses
	// it for deployments stopped with DELETE.
	outcomeCancelled = 3

	viaWeb  = 0
	viaAPI  = 1
	viaHook = 2

	typeBuild      = 0
	typeFirstBuild = 3
)

var (
	// The cancelled meaning is deliberately not the bare word "cancelled":
	// Cloud 66 documents none, so a client must not depend on one.
	outcomeMeanings = map[int]string{outcomePending: "pending", outcomeSuccess: "success", outcomeFailed: "failed", outcomeCancelled: "canceled by user"}
	viaMeanings     = map[int]string{viaWeb: "web", viaAPI: "api", viaHook: "hook"}
	typeMeanings    = map[int]string{typeBuild: "build", 1: "redeploy", 2: "scale", typeFirstBuild: "first_build", 4: "revert"}
)

const (
	msgSuccess   = "Completed successfully"
	msgFailed    = "Deployment failed"
	msgCancelled = "Deployment cancelled"
)

type user struct {
	email  string
	all    bool            // sees every stack
	stacks map[string]bool // visible stack uids when !all
}

func (u *user) canSee(uid string) bool { return u.all || u.stacks[uid] }

// userLocked returns the user for email, creating one who sees no stacks if
// it is not seeded.
func (s *Server) userLocked(email string) *user {
	u := s.users[email]
	if u == nil {
		u = &user{email: email, stacks: map[string]bool{}}
		s.users[email] = u
	}
	return u
}

type stackRec struct {
	id          int // internal numeric id (async action resource_id)
	uid         string
	name, env   string
	git, branch string // "" for Docker stacks (null in JSON)
	cloud       string
	fqdn        string
	language    string
	framework   string
	backend     string // "" = null
	version     string
	status      int // status when no deployment is running
	health      int
	maintenance bool
	lb          bool
	hook        string
	created     time.Time
	updated     time.Time
	lastAct     time.Time

	// services are a Docker stack's service names, in listing order.
	services []string

	servers []*serverRec
	deploys []*deployRec // oldest first
	actions []*actionRec // oldest first: deployments and stack actions
	queue   []*pendingDeploy
	outcome *plannedOutcome // for deployments requested from now on; nil = success
	// failing makes deployments fail, except one that ships again the git
	// hash (Docker: the image tags) of an earlier successful deployment, so
	// a rollback works; outcome, when set, wins.
	failing *plannedOutcome
	// actionOutcomes plans the stack actions requested from now on, by
	// action name; absent = success.
	actionOutcomes map[string]plannedOutcome
}

type serverRec struct {
	uid, vendorUID string
	name           string
	extIP, intIP   string
	serverType     string
	roles          []string
	groupID        int
	region, az     string
	health         int
	created        time.Time
	key            string
}

type deployRec struct {
	id         int
	by         string
	via        int
	started    time.Time
	finished   time.Time // zero while running
	outcome    int
	gitRef     string
	gitHash    string
	session    string
	deployType int
	duration   time.Duration
	plan       plannedOutcome
	action     *actionRec // nil for seeded (web/hook) deployments
	// tags are a Docker stack's services as this deployment left them,
	// name → image tag.
	tags map[string]string
}

func (d *deployRec) running() bool { return d.finished.IsZero() }

// actionRec is an async action: a deployment's (action
// application_deployment, with deploy set once it starts) or a stack
// action's (restart, maintenance_mode, a reboot…).
type actionRec struct {
	id           int
	kind         string // the "action" field
	resourceType string // "stack" or "server"
	user         string
	started      time.Time // zero while queued behind a running deployment
	finished     time.Time // zero while running
	success      bool
	message      string
	userRef      string
	deploy       *deployRec
	// Stack actions only: how long they run, how they end, and what a
	// maintenance_mode sets on success.
	duration    time.Duration
	plan        plannedOutcome
	maintenance *bool
}

func (a *actionRec) running() bool { return !a.started.IsZero() && a.finished.IsZero() }

type plannedOutcome struct {
	success bool
	message string
}

// pendingDeploy is an accepted POST, waiting behind a running deployment
// or about to start. Its action exists from the moment it is accepted.
type pendingDeploy struct {
	user     string
	gitRef   string
	userRef  string
	plan     plannedOutcome
	services []string
	profile  string
	strategy string
	action   *actionRec
	// dashboard: requested on the dashboard (DashboardDeploy), not the API.
	dashboard bool
}

func (st *stackRec) running() *deployRec {
	if n := len(st.deploys); n > 0 && st.deploys[n-1].running() {
		return st.deploys[n-1]
	}
	return nil
}

func (st *stackRec) currentStatus() int {
	if st.running() != nil {
		return statusDeploying
	}
	return st.status
}

func (st *stackRec) defaultRef() string { return st.branch }

// busy is what is_busy says: a deployment runs or waits, or a stack action
// runs.
func (st *stackRec) busy() bool {
	if st.running() != nil || len(st.queue) > 0 {
		return true
	}
	for _, a := range st.actions {
		if a.running() {
			return true
		}
	}
	return false
}

// settleLocked brings st's deployments and stack actions up to time now: a
// running deployment whose time is up finishes with its planned outcome,
// and the next queued deployment (if any) starts at that moment —
// repeatedly, so a clock jump over several deployments is handled; stack
// actions whose time is up finish likewise. State is therefore a pure
// function of the clock at read time.
func (s *Server) settleLocked(st *stackRec, now time.Time) {
	s.settleDeploysLocked(st, now)
	s.settleStackActionsLocked(st, now)
}

// settleDeploysLocked settles the deployments, see settleLocked.
func (s *Server) settleDeploysLocked(st *stackRec, now time.Time) {
	for {
		d := st.running()
		if d == nil {
			if len(st.queue) == 0 {
				return
			}
			// Not normally reachable (the queue is drained when a
			// deployment ends), but never leave work stuck.
			s.startLocked(st, s.popQueue(st), now)
			continue
		}
		end := d.started.Add(d.duration)
		if now.Before(end) {
			return
		}
		if d.plan.success {
			s.finishLocked(st, d, end, outcomeSuccess, d.plan.message)
		} else {
			s.finishLocked(st, d, end, outcomeFailed, d.plan.message)
		}
		if len(st.queue) > 0 {
			s.startLocked(st, s.popQueue(st), end)
		}
	}
}

func (s *Server) popQueue(st *stackRec) *pendingDeploy {
	p := st.queue[0]
	st.queue = st.queue[1:]
	return p
}

func (s *Server) finishLocked(st *stackRec, d *deployRec, at time.Time, outcome int, message string) {
	d.finished = at
	d.outcome = outcome
	switch outcome {
	case outcomeSuccess:
		st.status = statusSuccess
	default:
		// Cancelled deployments leave the stack "Deployment failed": Cloud
		// 66 documents nothing better, and cx's legacy poller treats 2 as
		// "finished with errors", which is what a cancel is.
		st.status = statusFailed
	}
	st.lastAct, st.updated = at, at
	if a := d.action; a != nil {
		a.finished = at
		a.success = outcome == outcomeSuccess
		a.message = message
	}
}

// startLocked starts p on st at time at, creating the deployment; its
// async action was created when p was accepted.
func (s *Server) startLocked(st *stackRec, p *pendingDeploy, at time.Time) *deployRec {
	ref := p.gitRef
	if ref == "" {
		ref = st.defaultRef()
	}
	shipped := st.deployedHash(ref)
	d := s.newDeployLocked(st, p.user, viaAPI, at, ref, typeBuild)
	if p.dashboard {
		d.via = viaWeb
	}
	if shipped != "" {
		// A deployment of an earlier deployment's commit (a rollback) runs
		// that commit again, as on Cloud 66, not a hash of its own.
		d.gitHash = shipped
	}
	d.duration = s.deployDuration
	d.plan = p.plan
	if len(st.services) > 0 {
		d.tags = st.requestedTags(p.services, len(st.deploys))
	}
	a := p.action
	a.started, a.deploy, d.action = at, d, a
	st.lastAct, st.updated = at, at
	return d
}

// newActionLocked creates an async action of kind on st, not yet started.
func (s *Server) newActionLocked(st *stackRec, kind, resourceType, user string) *actionRec {
	a := &actionRec{id: s.nextActionID, kind: kind, resourceType: resourceType, user: user}
	s.nextActionID++
	st.actions = append(st.actions, a)
	return a
}

func (s *Server) newDeployLocked(st *stackRec, by string, via int, at time.Time, ref string, typ int) *deployRec {
	id := s.nextDeployID
	s.nextDeployID++
	d := &deployRec{
		id:         id,
		by:         by,
		via:        via,
		started:    at,
		outcome:    outcomePending,
		gitRef:     ref,
		gitHash:    hexID(40, "commit", st.uid, ref, strconv.Itoa(id)),
		session:    hexID(10, "session", strconv.Itoa(id)),
		deployType: typ,
	}
	st.deploys = append(st.deploys, d)
	return d
}

// planFor decides how a deployment of p will end: as SetDeployOutcome
// said, else as a failing stack's do (unless p ships again what an earlier
// successful deployment shipped), else successfully.
func (s *Server) planFor(st *stackRec, p *pendingDeploy) plannedOutcome {
	switch {
	case st.outcome != nil:
		return *st.outcome
	case st.failing != nil && !st.shipsKnownGood(p):
		return *st.failing
	}
	return plannedOutcome{success: true, message: msgSuccess}
}

// shipsKnownGood reports whether p deploys the git hash, or on a Docker
// stack every service at the tag, of an earlier successful deployment.
func (st *stackRec) shipsKnownGood(p *pendingDeploy) bool {
	for _, d := range st.deploys {
		if d.outcome != outcomeSuccess {
			continue
		}
		if len(st.services) == 0 && p.gitRef != "" && (p.gitRef == d.gitHash || len(p.gitRef) >= 7 && strings.HasPrefix(d.gitHash, p.gitRef)) {
			return true
		}
		if len(st.services) > 0 && len(p.services) == len(st.services) && sameTags(p.services, d.tags) {
			return true
		}
	}
	return false
}

// deployedHash is the git hash of an earlier deployment that ref names
// (the whole hash, or a prefix of at least 7 characters, as git takes
// them), or "".
func (st *stackRec) deployedHash(ref string) string {
	if len(ref) < 7 {
		return ""
	}
	for _, d := range st.deploys {
		if strings.HasPrefix(d.gitHash, strings.ToLower(ref)) {
			return d.gitHash
		}
	}
	return ""
}

// sameTags reports whether every "name:tag" of services is in tags.
func sameTags(services []string, tags map[string]string) bool {
	for _, sv := range services {
		name, tag, ok := strings.Cut(sv, ":")
		if !ok || tags[name] != tag {
			return false
		}
	}
	return true
}

// liveTags are the image tags of the newest successful deployment.
func (st *stackRec) liveTags() map[string]string {
	for i := len(st.deploys) - 1; i >= 0; i-- {
		if d := st.deploys[i]; d.outcome == outcomeSuccess && d.tags != nil {
			return d.tags
		}
	}
	return nil
}

// requestedTags are the tags a deployment (the n-th of the stack) leaves:
// without services every service is built anew; with services those named
// get the tag given or a new build, and the others keep the live tags.
func (st *stackRec) requestedTags(services []string, n int) map[string]string {
	build := buildTag(n)
	tags := make(map[string]string, len(st.services))
	live := st.liveTags()
	for _, name := range st.services {
		tags[name] = build
		if len(services) > 0 && live[name] != "" {
			tags[name] = live[name]
		}
	}
	for _, sv := range services {
		name, tag, ok := strings.Cut(sv, ":")
		if !ok {
			tag = build
		}
		tags[name] = tag
	}
	return tags
}

// buildTag is the image tag a deployment that builds images gives them.
func buildTag(n int) string { return fmt.Sprintf("1.%d.%d", n/10, n%10) }

// hexID derives a deterministic lowercase hex identifier of n (≤ 64) digits.
func hexID(n int, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:n]
}

// ---------------------------------------------------------------------------
// Exported accessors

// StackInfo identifies a seeded stack.
type StackInfo struct {
	UID, Name, Environment string
}

// Stacks returns the seeded stacks in listing order.
func (s *Server) Stacks() []StackInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]StackInfo, len(s.stacks))
	for i, st := range s.stacks {
		out[i] = StackInfo{UID: st.uid, Name: st.name, Environment: st.env}
	}
	return out
}

// StackUID returns the uid of the stack with that name and environment, or "".
func (s *Server) StackUID(name, environment string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stacks {
		if st.name == name && st.env == environment {
			return st.uid
		}
	}
	return ""
}

// SetDeployOutcome sets the outcome of deployments requested (POSTed) on the
// stack after this call, including ones that wait in the queue. An empty
// message means "Completed successfully" or "Deployment failed". Unknown
// uids are ignored.
func (s *Server) SetDeployOutcome(stackUID string, success bool, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stackByUID[stackUID]; st != nil {
		p := planned(success, message, msgFailed)
		st.outcome = &p
	}
}

// planned is an outcome whose empty message reads "Completed successfully",
// or failed when it is a failure.
func planned(success bool, message, failed string) plannedOutcome {
	if message == "" {
		message = failed
		if success {
			message = msgSuccess
		}
	}
	return plannedOutcome{success: success, message: message}
}

// settledLocked returns the stack with that uid as it stands now, or nil.
func (s *Server) settledLocked(stackUID string) *stackRec {
	st := s.stackByUID[stackUID]
	if st != nil {
		s.settleLocked(st, s.Clock.Now())
	}
	return st
}

// ServerNames returns the names of the stack's servers (nil if unknown).
func (s *Server) ServerNames(stackUID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stackByUID[stackUID]
	if st == nil {
		return nil
	}
	out := make([]string, len(st.servers))
	for i, sv := range st.servers {
		out[i] = sv.name
	}
	return out
}

// ActionCount returns the number of deployments accepted through
// POST /stacks/{uid}/deployments.json, queued ones included. Stack actions
// and reboots are not counted; see Actions.
func (s *Server) ActionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actionCount
}

// DashboardDeploy starts a deployment of the stack's default branch as
// someone clicking Deploy on the Cloud 66 dashboard would: triggered via
// the web, by user (an e-mail; "" is DefaultUser), with no API request and
// so not counted by ActionCount. It ends as a deployment requested now
// would (SetDeployOutcome, a failing stack); while one runs it is queued.
// It reports whether the stack exists.
func (s *Server) DashboardDeploy(stackUID, user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.settledLocked(stackUID)
	if st == nil {
		return false
	}
	if user == "" {
		user = DefaultUser
	}
	p := &pendingDeploy{user: user, dashboard: true}
	p.plan = s.planFor(st, p)
	p.action = s.newActionLocked(st, ActionDeployment, "stack", user)
	now := s.Clock.Now()
	if st.running() != nil {
		st.queue = append(st.queue, p)
		st.updated = now
		return true
	}
	s.startLocked(st, p, now)
	return true
}
