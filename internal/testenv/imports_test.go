package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const importPath = "github.com/c66bot/c66bot/internal/testenv"

// TestOnlyTestsImportIt keeps the package out of the shipped binary: no
// package of the module may import it but from its tests.
func TestOnlyTestsImportIt(t *testing.T) {
	t.Parallel()
	// Tests run in the package's directory, internal/testenv.
	root := filepath.Join("..", "..")
	bad, err := nonTestImporters(root, importPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("non-test code imports %s: %s", importPath, strings.Join(bad, ", "))
	}
}

// The check finds a package whose own files import the path, and not one
// that imports it only from its tests.
func TestNonTestImportersFindsThem(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("support/support.go", "package support\n")
	imp := "import _ \"example.com/m/support\"\n"
	write("shipped/shipped.go", "package shipped\n"+imp)
	write("tested/tested.go", "package tested\n")
	write("tested/tested_test.go", "package tested\n"+imp)
	write("external/external.go", "package external\n")
	write("external/external_test.go", "package external_test\n"+imp)
	got, err := nonTestImporters(root, "example.com/m/support")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"example.com/m/shipped"}; !slices.Equal(got, want) {
		t.Errorf("importers = %v, want %v", got, want)
	}
}

// nonTestImporters lists, sorted, the packages of the module at root whose
// non-test files import path, as the go tool sees them.
func nonTestImporters(root, path string) ([]string, error) {
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list in %s: %w: %s", root, err, stderr.Bytes())
	}
	var bad []string
	lines := bufio.NewScanner(bytes.NewReader(out))
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) > 1 && slices.Contains(fields[1:], path) {
			bad = append(bad, fields[0])
		}
	}
	slices.Sort(bad)
	return bad, lines.Err()
}
