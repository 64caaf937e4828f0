package blockkit

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// linkHelperFile is the one file allowed to write link syntax.
const linkHelperFile = "internal/blockkit/link.go"

var (
	// "<%s|label>", "<%v>": a link made with a format verb.
	formatLink = regexp.MustCompile(`<%`)
	// "<https://…|…>", "<mailto:…>": a link written out in a literal.
	literalLink = regexp.MustCompile(`(?i)<(https?|mailto|ftp):`)
)

// handMadeLinks reports where f writes mrkdwn link syntax itself instead
// of calling Link:
//
//   - a string literal with a format verb right after '<' ("<%s|…>");
//   - a string literal with a link in it ("<https://…");
//   - a concatenation whose left side ends in a literal ending in '<'
//     ("… <" + url), also through +=;
//   - a concatenation whose right side starts with a literal that starts
//     a link label and closes it ("|Open in Cloud 66>");
//   - a Write, WriteString, WriteByte or WriteRune of a lone '<'.
//
// Mentions ("<@" + id + ">", "<#…>", "<!date^…>") start with '@', '#' or
// '!' after the '<' and are not links, and a '<' elsewhere (a replacer's
// "<", a comparison with "<<", usage text such as "<stack>") is not
// reported, so the check has no false positives to wave through.
func handMadeLinks(fset *token.FileSet, f *ast.File) []string {
	var found []string
	report := func(n ast.Node, why string) {
		found = append(found, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), why))
	}
	endsOpen := func(e ast.Expr) bool {
		s, ok := stringLit(edge(e, false))
		return ok && strings.HasSuffix(s, "<")
	}
	startsLabel := func(e ast.Expr) bool {
		s, ok := stringLit(edge(e, true))
		return ok && strings.HasPrefix(s, "|") && strings.Contains(s, ">")
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BasicLit:
			if s, ok := stringLit(x); ok {
				if formatLink.MatchString(s) {
					report(x, fmt.Sprintf("format verb inside a link: %q", s))
				}
				if literalLink.MatchString(s) {
					report(x, fmt.Sprintf("link written in a literal: %q", s))
				}
			}
		case *ast.BinaryExpr:
			if x.Op != token.ADD {
				break
			}
			if endsOpen(x.X) {
				report(x, `link opened by concatenation ("…<" + …)`)
			}
			if startsLabel(x.Y) {
				report(x, `link label closed by concatenation (… + "|…>")`)
			}
		case *ast.AssignStmt:
			if x.Tok == token.ADD_ASSIGN && len(x.Rhs) == 1 && (endsOpen(x.Rhs[0]) || startsLabel(x.Rhs[0])) {
				report(x, `link built with +=`)
			}
		case *ast.CallExpr:
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok || len(x.Args) != 1 || !strings.HasPrefix(sel.Sel.Name, "Write") {
				break
			}
			if lit, ok := x.Args[0].(*ast.BasicLit); ok && (lit.Value == `"<"` || lit.Value == `'<'`) {
				report(x, "link opened by writing '<'")
			}
		}
		return true
	})
	return found
}

// edge is the leftmost (first) or rightmost operand of a concatenation.
func edge(e ast.Expr, first bool) ast.Expr {
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
		case *ast.BinaryExpr:
			if x.Op != token.ADD {
				return e
			}
			if first {
				e = x.X
			} else {
				e = x.Y
			}
		default:
			return e
		}
	}
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

func TestHandMadeLinkCheck(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"concatenated":        `x := "<" + u + "|Open in Cloud 66>"`,
		"concatenated inline": `x := msg + " <" + u + "|check it>."`,
		"parenthesised":       `x := ("a <") + u`,
		"label only":          `x := open + u + "|Open>"`,
		"plus-assign":         `x += " · <"`,
		"format":              `x := fmt.Sprintf("(<%s|its message>)", u)`,
		"format, no label":    `x := fmt.Sprintf("<%v>", u)`,
		"literal":             `x := "see <https://evil.example|here>"`,
		"literal mailto":      `x := "<mailto:a@example.com>"`,
		"builder":             `b.WriteString("<")`,
		"builder byte":        `b.WriteByte('<')`,
	}
	good := map[string]string{
		"mention":        `x := "<@" + id + ">"`,
		"channel":        `x := "<#" + id + ">"`,
		"user group":     `x := "<!subteam^" + id + ">"`,
		"date":           `x := fmt.Sprintf("<!date^%d^%s|%s>", 1, "{time}", "x")`,
		"replacer":       `r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")`,
		"comparison":     `ok := k == "<<"`,
		"index":          `i := strings.IndexByte(s, '<')`,
		"usage":          `x := "usage: <stack> [filter]" + more`,
		"html":           `x := "<!doctype html>" + body`,
		"cut":            `a, b, ok := strings.Cut(t, "|")`,
		"table":          `fmt.Fprintf(w, "| %s | %s |\n", a, b)`,
		"key":            `k := team + "|" + user`,
		"less than":      `ok := a < b`,
		"helper":         `x := bk.Link(u, "Open in Cloud 66")`,
		"arrow text":     `x := "a -> b" + c`,
		"escaped entity": `x := "&lt;" + s + "&gt;"`,
	}
	check := func(name, stmt string) []string {
		src := "package p\nfunc f() {\n" + stmt + "\n_ = x\n}\n"
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name+".go", src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return handMadeLinks(fset, f)
	}
	for name, stmt := range bad {
		if got := check(name, stmt); len(got) == 0 {
			t.Errorf("%s: %s not reported", name, stmt)
		}
	}
	for name, stmt := range good {
		if got := check(name, stmt); len(got) > 0 {
			t.Errorf("%s: %s reported: %v", name, stmt, got)
		}
	}
}

// TestNoHandMadeLinks walks every non-test Go file of the module: a mrkdwn
// link is made by Link, or a hostile url or label can close it early and
// add a mention or a link of its own.
func TestNoHandMadeLinks(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var found []string
	files, sawHelper := 0, false
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if filepath.ToSlash(rel) == linkHelperFile {
			sawHelper = true
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		found = append(found, handMadeLinks(fset, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawHelper || files < 50 {
		t.Fatalf("walked %d files from %s (helper seen: %v); is this the module?", files, root, sawHelper)
	}
	for _, f := range found {
		t.Errorf("%s: build the link with blockkit.Link", f)
	}
}

// moduleRoot is the directory holding go.mod, above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
