// Package modgraph reads the module's import graph from its sources, for
// the tests that keep the house in order (which package may import which).
// Only tests import it.
package modgraph

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Module is the module path.
const Module = "github.com/c66bot/c66bot"

// Graph maps a package path to the module packages its non-test files
// import.
type Graph map[string][]string

// Read parses the imports of every non-test Go file under root, the
// module's directory (testdata, vendor and dot directories left out).
func Read(root string) (Graph, error) {
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, fmt.Errorf("modgraph: %s is not the module's root: %w", root, err)
	}
	fset := token.NewFileSet()
	graph := Graph{}
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
		pkg := Module
		if rel != "." {
			pkg += "/" + filepath.ToSlash(rel)
		}
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if (p == Module || strings.HasPrefix(p, Module+"/")) && !slices.Contains(graph[pkg], p) {
				graph[pkg] = append(graph[pkg], p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, imps := range graph {
		slices.Sort(imps)
	}
	return graph, nil
}

// Reaches reports every package from imports, directly or not.
func (g Graph) Reaches(from string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, q := range g[p] {
			if !seen[q] {
				seen[q] = true
				walk(q)
			}
		}
	}
	walk(from)
	return seen
}
