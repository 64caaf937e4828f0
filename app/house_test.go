package app_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/c66bot/c66bot/internal/modgraph"
)

// house is docs/architecture.md's rule of the house as data: which of the
// module's packages each package may import. Imports point down; the
// Slack transport, the HTTP side and the operator's tools are siblings
// that never reach each other (web takes admin's audit writer and token
// scopes, the one way across); only the composition root and the programs
// built on it (cmd, sandbox, bench) see app. A new edge fails here until
// it is added on purpose, with the doc.
var house = map[string][]string{
	"app":                {"accounts", "admin", "bot", "cloud66", "commands", "deploy", "internal/admission", "metrics", "notify", "policy", "slackapp", "storage", "storage/postgres", "web"},
	"app/apptest":        {"app", "bot/bottest", "cloud66/cloud66test", "web"},
	"bot":                {"commands", "internal/admission", "internal/chat", "internal/leases", "metrics", "storage"},
	"web":                {"accounts", "admin", "commands", "internal/chat", "notify", "storage"},
	"admin":              {"storage"},
	"commands":           {"accounts", "cloud66", "deploy", "internal/blockkit", "internal/chat", "notify", "slackapp", "storage"},
	"deploy":             {"accounts", "cloud66", "internal/blockkit", "internal/chat", "internal/clock", "internal/gitweb", "internal/leases", "policy", "slackapp", "storage"},
	"notify":             {"accounts", "cloud66", "internal/blockkit", "internal/chat", "internal/leases", "slackapp", "storage"},
	"accounts":           {"cloud66", "storage"},
	"cloud66":            {"internal/clock"},
	"storage":            nil,
	"policy":             nil,
	"metrics":            nil,
	"slackapp":           nil,
	"internal/admission": nil,
	"internal/blockkit":  {"cloud66"},
	"internal/chat":      nil,
	"internal/clock":     nil,
	"internal/fakeclock": nil,
	"internal/gitweb":    nil,
	"internal/leases":    {"storage"},
	"internal/modgraph":  nil,
	// Only tests import testenv: no row lists it, so a non-test import of
	// it fails here.
	"internal/testenv":    {"accounts", "cloud66", "cloud66/cloud66test", "internal/chat", "storage"},
	"storage/storagetest": {"internal/fakeclock", "storage"},
	"bot/bottest":         {"slackapp"},
	"cloud66/cloud66test": nil,
	"cmd/c66bot":          {"admin", "app", "cloud66", "policy", "sandbox", "slackapp", "storage", "storage/postgres"},
	"sandbox":             {"app", "app/apptest", "bot/bottest", "cloud66/cloud66test", "deploy", "policy", "slackapp"},
	"bench":               {"app", "app/apptest", "bot/bottest", "cloud66/cloud66test", "deploy", "storage", "storage/postgres"},

	// The PostgreSQL backend of the stores, beside bbolt's; only tests
	// import pgtest.
	"storage/postgres":        {"storage"},
	"storage/postgres/pgtest": nil,
}

func TestTheHouseKeepsItsRules(t *testing.T) {
	t.Parallel()
	graph, err := modgraph.Read(filepath.Join(".."))
	if err != nil {
		t.Fatal(err)
	}
	for pkg, imports := range graph {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, modgraph.Module), "/")
		allowed, known := house[rel]
		if !known {
			t.Errorf("package %s has no place in the house (add it, and to docs/architecture.md)", rel)
			continue
		}
		for _, imp := range imports {
			to := strings.TrimPrefix(imp, modgraph.Module+"/")
			if !slices.Contains(allowed, to) {
				t.Errorf("%s imports %s, which the house does not allow", rel, to)
			}
		}
	}
	for rel := range house {
		if _, ok := graph[modgraph.Module+"/"+rel]; !ok {
			t.Errorf("the house names %s, which is no package", rel)
		}
	}
}
