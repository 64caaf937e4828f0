package chat

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/c66bot/c66bot/internal/modgraph"
)

const module = modgraph.Module

// The message type lives here so that no part imports another only to
// borrow it: notify, which posts messages as deploy does, must not depend
// on deploy or commands, and this package must stay a leaf.
func TestNoPartImportsAnotherForTheMessageType(t *testing.T) {
	t.Parallel()
	// Tests run in the package's directory, internal/chat.
	graph, err := modgraph.Read(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := graph[module+"/notify"]; !ok || len(graph) < 10 {
		t.Fatalf("read %d packages, notify among them: %v; is this the module?", len(graph), ok)
	}
	deps := graph.Reaches(module + "/notify")
	for _, p := range []string{"deploy", "commands", "bot"} {
		if deps[module+"/"+p] {
			t.Errorf("notify depends on %s", p)
		}
	}
	if got := graph[module+"/internal/chat"]; len(got) > 0 {
		t.Errorf("internal/chat imports %v; it must be a leaf", got)
	}
	for _, p := range []string{"commands", "deploy", "notify", "bot"} {
		if !slices.Contains(graph[module+"/"+p], module+"/internal/chat") {
			t.Errorf("%s does not use internal/chat", p)
		}
	}
}
