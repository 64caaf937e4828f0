package cloud66test

import (
	"crypto/sha256"
	"encoding/hex"
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
	outcomeMeanings = map[int]string{outcomePending: "pending", outcomeSuccess: "success", outcomeFailed: "failed", outcomeCancelled: "cancelled"}
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

	servers []*serverRec
	deploys []*deployRec // oldest first
	actions []*actionRec // oldest first
	queue   []*pendingDeploy
	outcome *plannedOutcome // for deployments requested from now on; nil = success
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
}

func (d *deployRec) running() bool { return d.finished.IsZero() }

type actionRec struct {
	id       int
	user     string
	started  time.Time
	finished time.Time // zero while running
	success  bool
	message  string
	userRef  string
	deploy   *deployRec
}

type plannedOutcome struct {
	success bool
	message string
}

// pendingDeploy is an accepted POST waiting behind a running deployment.
type pendingDeploy struct {
	user     string
	gitRef   string
	userRef  string
	plan     plannedOutcome
	services []string
	profile  string
	strategy string
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

// settleLocked brings st's deployments up to time now: a running deployment
// whose time is up finishes with its planned outcome, and the next queued
// deployment (if any) starts at that moment — repeatedly, so a clock jump
// over several deployments is handled. Deployment state is therefore a pure
// function of the clock at read time.
func (s *Server) settleLocked(st *stackRec, now time.Time) {
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

// startLocked starts p on st at time at, creating the deployment and its
// async action.
func (s *Server) startLocked(st *stackRec, p *pendingDeploy, at time.Time) *deployRec {
	ref := p.gitRef
	if ref == "" {
		ref = st.defaultRef()
	}
	d := s.newDeployLocked(st, p.user, viaAPI, at, ref, typeBuild)
	d.duration = s.deployDuration
	d.plan = p.plan
	a := &actionRec{id: s.nextActionID, user: p.user, started: at, userRef: p.userRef, deploy: d}
	s.nextActionID++
	d.action = a
	st.actions = append(st.actions, a)
	st.lastAct, st.updated = at, at
	return d
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

func (s *Server) planFor(st *stackRec) plannedOutcome {
	if st.outcome == nil {
		return plannedOutcome{success: true, message: msgSuccess}
	}
	return *st.outcome
}

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
	st := s.stackByUID[stackUID]
	if st == nil {
		return
	}
	if message == "" {
		message = msgFailed
		if success {
			message = msgSuccess
		}
	}
	st.outcome = &plannedOutcome{success: success, message: message}
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
// POST /stacks/{uid}/deployments.json, queued ones included.
func (s *Server) ActionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actionCount
}
