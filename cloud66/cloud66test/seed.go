package cloud66test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Seed data. Everything is derived deterministically from the stack table and
// the clock reading at New, so a frozen clock gives identical data (uids,
// hashes, times) on every run.

const (
	seedAccountID   = 4711
	seedAccountName = "Acme"
	seedBen         = "ben@example.com"
	seedCarol       = "carol@example.com" // account member without a fake login
	benStagingCount = 5                   // ben sees the first 5 staging stacks
)

type stackSpec struct {
	name, env string
	framework string // rails | docker | nodejs
	status    int    // statusSuccess, statusFailed or statusDeploying
	health    int
	servers   int
	deploys   int // finished historical deployments
}

// The seeded stack whose deploys fail, for trying rollback: its head
// commit is broken, so every new deployment ends with FailingDeployMessage
// except one of an earlier successful deployment's git hash (a rollback).
// Its history, oldest first, is success, success (live), failed (head),
// each with its own hash; it is also in maintenance mode. (Seeded
// deployment ids and hashes run on across stacks, so a longer history here
// would change every later one.)
const (
	FailingStack            = "legacy-crm"
	FailingStackEnvironment = "production"
	FailingDeployMessage    = "Migrations failed: PG::UndefinedColumn: column invoices.tax_code does not exist"
)

// dockerServices names the services of the seeded Docker stacks; those
// not listed have web and worker.
var dockerServices = map[string][]string{
	"api":           {"web", "worker"},
	"search":        {"web", "indexer"},
	"analytics":     {"web", "collector", "worker"},
	"media":         {"web", "transcoder"},
	"data-pipeline": {"scheduler", "worker"},
}

var seedStacks = []stackSpec{
	{"shop", "production", "rails", statusSuccess, healthOK, 4, 5},
	{"shop", "staging", "rails", statusSuccess, healthOK, 2, 4},
	{"api", "production", "docker", statusSuccess, healthOK, 3, 35}, // > 30: deployments list pages
	{"api", "staging", "docker", statusSuccess, healthOK, 1, 3},
	{"blog", "staging", "rails", statusSuccess, healthOK, 1, 2},
	{"payments", "production", "rails", statusSuccess, healthOK, 4, 5},
	{"payments", "staging", "rails", statusSuccess, healthOK, 2, 3},
	{"web", "production", "nodejs", statusSuccess, healthOK, 2, 4},
	{"admin", "production", "rails", statusSuccess, healthOK, 2, 3},
	{"admin", "staging", "rails", statusFailed, healthBroken, 1, 3},
	{"search", "production", "docker", statusSuccess, healthPartial, 3, 4},
	{"search", "staging", "docker", statusSuccess, healthOK, 1, 2},
	{"notifications", "production", "nodejs", statusSuccess, healthOK, 2, 3},
	{"mailer", "production", "rails", statusSuccess, healthOK, 1, 2},
	{"mailer", "staging", "rails", statusSuccess, healthOK, 1, 2},
	{"analytics", "production", "docker", statusSuccess, healthPartial, 4, 5},
	{"reports", "production", "rails", statusSuccess, healthOK, 2, 3},
	{"auth", "production", "nodejs", statusSuccess, healthOK, 3, 4},
	{"auth", "staging", "nodejs", statusSuccess, healthOK, 1, 2},
	{"inventory", "production", "rails", statusSuccess, healthOK, 3, 4},
	{"inventory", "staging", "rails", statusSuccess, healthOK, 1, 2},
	{"billing", "production", "rails", statusSuccess, healthOK, 3, 5},
	{"billing", "staging", "rails", statusDeploying, healthOK, 1, 3},
	{"checkout", "production", "nodejs", statusSuccess, healthOK, 2, 4},
	{"cart", "production", "nodejs", statusSuccess, healthOK, 2, 3},
	{"catalog", "production", "docker", statusSuccess, healthOK, 3, 4},
	{"catalog", "qa", "docker", statusSuccess, healthOK, 1, 2},
	{"media", "production", "docker", statusSuccess, healthOK, 2, 3},
	{"cdn-edge", "production", "nodejs", statusSuccess, healthOK, 2, 2},
	{"docs", "production", "nodejs", statusSuccess, healthOK, 1, 2},
	{"status-page", "production", "nodejs", statusSuccess, healthOK, 1, 2},
	{"worker", "production", "rails", statusSuccess, healthOK, 2, 4},
	{"worker", "development", "rails", statusSuccess, healthUnknown, 1, 2},
	{"legacy-crm", "production", "rails", statusFailed, healthBroken, 2, 3}, // FailingStack
	{"marketing-site", "production", "nodejs", statusSuccess, healthOK, 1, 2},
	{"data-pipeline", "production", "docker", statusDeploying, healthOK, 2, 4},
}

var animals = []string{
	"Lion", "Tiger", "Otter", "Falcon", "Badger", "Heron", "Lynx", "Moose",
	"Panda", "Koala", "Eagle", "Bison", "Gecko", "Raven", "Walrus", "Jaguar",
	"Puffin", "Marten", "Ibex", "Osprey", "Wombat", "Yak", "Zebra", "Coyote",
}

var clouds = []string{"aws", "DigitalOcean", "gcp", "aws", "azure", "no_cloud"}

var regions = map[string][2]string{
	"aws":          {"us-east-1", "us-east-1a"},
	"DigitalOcean": {"ams3", "ams3"},
	"gcp":          {"europe-west1", "europe-west1-b"},
	"azure":        {"westeurope", "westeurope-1"},
	"no_cloud":     {"", ""},
}

// serverSlots lists, per framework, the roles of the 1st, 2nd, ... server.
var serverSlots = map[string][][]string{
	"rails":  {{"rails", "web", "app"}, {"postgresql", "db"}, {"rails", "web", "app"}, {"redis", "db"}},
	"docker": {{"docker", "kubes", "web"}, {"docker", "kubes"}, {"docker", "kubes"}, {"postgresql", "db"}},
	"nodejs": {{"node", "web", "app"}, {"mysql", "db"}, {"node", "web", "app"}, {"redis", "db"}},
}

func (s *Server) seed(now time.Time) {
	s.users["ana@example.com"] = &user{email: "ana@example.com", all: true}
	ben := &user{email: seedBen, stacks: map[string]bool{}}
	s.users[seedBen] = ben

	for i, sp := range seedStacks {
		st := s.seedStack(i, sp, now)
		s.stacks = append(s.stacks, st)
		s.stackByUID[st.uid] = st
		if sp.env == "staging" && len(ben.stacks) < benStagingCount {
			ben.stacks[st.uid] = true
		}
	}
	// Deployment histories are generated after visibility is known so ben
	// appears as a deployer only on stacks he can see.
	for i, sp := range seedStacks {
		s.seedDeploys(i, sp, s.stacks[i], ben.canSee(s.stacks[i].uid), now)
	}
}

func (s *Server) seedStack(i int, sp stackSpec, now time.Time) *stackRec {
	uid := hexID(32, "stack", sp.name, sp.env)
	st := &stackRec{
		id:        2001 + i,
		uid:       uid,
		name:      sp.name,
		env:       sp.env,
		cloud:     clouds[i%len(clouds)],
		framework: sp.framework,
		status:    sp.status,
		health:    sp.health,
		lb:        sp.servers >= 3 && sp.env == "production",
		hook: fmt.Sprintf("https://hooks.cloud66.com/stacks/redeploy/%s/%s",
			hexID(32, "hook-user", uid), hexID(32, "hook-secret", uid)),
		created: now.Add(-time.Duration(900-i*17) * 24 * time.Hour),
	}
	if sp.status == statusDeploying {
		st.status = statusSuccess // what it becomes once the seeded deploy ends
	}
	switch sp.framework {
	case "rails":
		st.language, st.version = "ruby", "3.3.4"
	case "nodejs":
		st.language, st.version = "node", "20.15.0"
	case "docker":
		st.language, st.backend, st.version = "docker", "kubernetes", "2.0"
		st.services = dockerServices[sp.name]
		if st.services == nil {
			st.services = []string{"web", "worker"}
		}
	}
	if sp.name == FailingStack && sp.env == FailingStackEnvironment {
		st.failing = &plannedOutcome{success: false, message: FailingDeployMessage}
	}
	if sp.framework != "docker" { // Docker stacks have null git fields
		st.git = "git@github.com:acme/" + sp.name + ".git"
		switch sp.env {
		case "production":
			st.branch = "main"
		case "staging":
			st.branch = "staging"
		default:
			st.branch = "develop"
		}
	}
	// Production load balancer host names omit the environment.
	if sp.env == "production" {
		st.fqdn = sp.name + ".c66.me"
	} else {
		st.fqdn = sp.name + "-" + sp.env + ".c66.me"
	}

	slots := serverSlots[sp.framework]
	reg := regions[st.cloud]
	for j := 0; j < sp.servers; j++ {
		name := animals[(i*3+j)%len(animals)]
		roles := slots[j%len(slots)]
		sv := &serverRec{
			uid:        hexID(32, "server", uid, name),
			vendorUID:  "i-" + hexID(17, "vendor", uid, name),
			name:       name,
			extIP:      fmt.Sprintf("203.0.113.%d", 10+(i*4+j)%240),
			intIP:      fmt.Sprintf("10.%d.0.%d", i%250, 10+j),
			serverType: roles[0],
			roles:      roles,
			groupID:    100*(i+1) + j,
			region:     reg[0],
			az:         reg[1],
			health:     sp.health,
			created:    st.created.Add(time.Duration(j) * time.Hour),
			key:        "fake-cloud66-ssh-private-key:" + hexID(64, "ssh", uid, name),
		}
		if sp.health == healthPartial && j == sp.servers-1 {
			sv.health = healthBroken // the impaired stack has one broken server
		} else if sp.health == healthPartial {
			sv.health = healthOK
		}
		st.servers = append(st.servers, sv)
	}
	return st
}

func (s *Server) seedDeploys(i int, sp stackSpec, st *stackRec, benSees bool, now time.Time) {
	spacing := time.Duration(20+i%5) * time.Hour
	newest := now.Add(-time.Duration(2+i%7) * time.Hour).Add(-time.Duration(i%4) * 13 * time.Minute)
	for k := 0; k < sp.deploys; k++ {
		start := newest.Add(-time.Duration(sp.deploys-1-k) * spacing)
		by := "ana@example.com"
		switch {
		case benSees && k%3 == 1:
			by = seedBen
		case k%2 == 1:
			by = seedCarol
		}
		via := viaWeb
		if k%3 == 2 {
			via = viaHook
		}
		typ := typeBuild
		if k == 0 {
			typ = typeFirstBuild
		}
		d := s.newDeployLocked(st, by, via, start, st.defaultRef(), typ)
		d.duration = 2*time.Minute + time.Duration(k%4)*45*time.Second
		d.finished = start.Add(d.duration)
		d.outcome = outcomeSuccess
		last := k == sp.deploys-1
		if (last && sp.status == statusFailed) || (!last && (i+k)%7 == 3) {
			d.outcome = outcomeFailed
		}
		if len(st.services) > 0 {
			d.tags = st.requestedTags(nil, len(st.deploys))
		}
		st.lastAct = d.finished
	}
	if sp.status == statusDeploying {
		d := s.newDeployLocked(st, seedCarol, viaHook, now.Add(-time.Minute), st.defaultRef(), typeBuild)
		d.duration = s.deployDuration
		d.plan = plannedOutcome{success: true, message: msgSuccess}
		if len(st.services) > 0 {
			d.tags = st.requestedTags(nil, len(st.deploys))
		}
		st.lastAct = d.started
	}
	st.updated = st.lastAct
	if strings.HasPrefix(sp.name, "legacy") {
		st.maintenance = true
	}
}

// StackSpec describes a stack for AddStack. Its fields are served exactly
// as given, unchecked, so a test can play a Cloud 66 that sends hostile or
// broken names and ids.
type StackSpec struct {
	// UID is the stack's uid; "" derives one, as for the seeded stacks.
	UID         string
	Name        string
	Environment string
	// Framework is rails (the default), docker or nodejs.
	Framework string
	// Branch is the git branch and the ref of its deployments; "" is main
	// ("" and no git for docker stacks).
	Branch string
	// Servers names its servers; none gives it one server with a seeded
	// animal name.
	Servers []string
	// Services names a docker stack's services; none gives it web and
	// worker.
	Services []string
	// DeployedBy is who triggered its one finished deployment; "" is
	// DefaultUser.
	DeployedBy string
}

// AddStack adds a healthy, deployed stack after the seeded ones, with its
// servers and one successful deployment, and returns how to name it. Only
// users who see every stack (DefaultUser) see it. A uid already served is
// replaced in lookups by the new stack.
func (s *Server) AddStack(spec StackSpec) StackInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Clock.Now().UTC().Truncate(time.Second)
	i := len(s.stacks)
	fw := spec.Framework
	if fw == "" {
		fw = "rails"
	}
	n := max(len(spec.Servers), 1)
	st := s.seedStack(i, stackSpec{name: spec.Name, env: spec.Environment, framework: fw, status: statusSuccess, health: healthOK, servers: n}, now)
	if spec.UID != "" {
		st.uid = spec.UID
	}
	for j, name := range spec.Servers {
		st.servers[j].name = name
	}
	if fw != "docker" {
		st.branch = cmp.Or(spec.Branch, "main")
	} else if len(spec.Services) > 0 {
		st.services = slices.Clone(spec.Services)
	}
	by := cmp.Or(spec.DeployedBy, DefaultUser)
	d := s.newDeployLocked(st, by, viaWeb, now.Add(-time.Hour), st.defaultRef(), typeFirstBuild)
	if len(st.services) > 0 {
		d.tags = st.requestedTags(nil, len(st.deploys))
	}
	d.duration = 2 * time.Minute
	d.finished = d.started.Add(d.duration)
	d.outcome = outcomeSuccess
	st.lastAct, st.updated = d.finished, d.finished
	s.stacks = append(s.stacks, st)
	s.stackByUID[st.uid] = st
	return StackInfo{UID: st.uid, Name: st.name, Environment: st.env}
}
