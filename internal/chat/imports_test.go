package chat

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/c66bot/c66bot"

// moduleImports is the module's import graph from its non-test files:
// package path → the module packages it imports.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	// Tests run in the package's directory, internal/chat.
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod two levels up: %v", err)
	}
	fset := token.NewFileSet()
	graph := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := module
		if rel != "." {
			pkg += "/" + filepath.ToSlash(rel)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if (p == module || strings.HasPrefix(p, module+"/")) && !slices.Contains(graph[pkg], p) {
				graph[pkg] = append(graph[pkg], p)
			}
		}
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

// reaches reports every package from imports, directly or not.
func reaches(graph map[string][]string, from string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, q := range graph[p] {
			if !seen[q] {
				seen[q] = true
				walk(q)
			}
		}
	}
	walk(from)
	return seen
}

// The message type lives here so that no part imports another only to
// borrow it: notify, which posts messages as deploy does, must not depend
// on deploy or commands, and this package must stay a leaf.
func TestNoPartImportsAnotherForTheMessageType(t *testing.T) {
	t.Parallel()
	graph := moduleImports(t)
	if _, ok := graph[module+"/notify"]; !ok || len(graph) < 10 {
		t.Fatalf("read %d packages, notify among them: %v; is this the module?", len(graph), ok)
	}
	deps := reaches(graph, module+"/notify")
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
