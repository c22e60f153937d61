package tests

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The house rules of the layout (README, "Layout"), checked on the tree so that they cannot drift:
// functions are thin, mains only wire, the domain and the agent stay clear of what they must not know.

const module = "github.com/standby-dr/standby"

// sourceFiles are the repository's non-test Go files, by path relative to the repository root.
func sourceFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[filepath.ToSlash(strings.TrimPrefix(path, "../"))] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestLayoutSizes(t *testing.T) {
	functionsLines := 0
	for path, data := range sourceFiles(t) {
		lines := bytes.Count(data, []byte("\n"))
		if lines > 450 {
			t.Errorf("%s has %d lines: split it by subject (at most 450)", path, lines)
		}
		if strings.HasPrefix(path, "cmd/") && strings.HasSuffix(path, "/main.go") && lines > 150 {
			t.Errorf("%s has %d lines: a main parses flags and wires (at most 150)", path, lines)
		}
		if strings.HasPrefix(path, "functions/") {
			functionsLines += lines
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
				if n > 80 {
					t.Errorf("%s: func %s has %d lines (at most 80)", path, fn.Name.Name, n)
				}
			}
		}
	}
	if functionsLines >= 700 {
		t.Errorf("functions/ has %d lines of Go: functions decode, make one domain call and encode (under 700 in all)", functionsLines)
	}
}

// TestLayoutImports checks the arrows between rooms with go list -deps.
func TestLayoutImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if rel == p.ImportPath {
			continue // not ours
		}
		for _, dep := range p.Deps {
			if why := forbidden(rel, dep); why != "" {
				t.Errorf("%s depends on %s: %s", rel, dep, why)
			}
		}
	}
}

// forbidden says why package rel may not depend on dep ("" when it may).
func forbidden(rel, dep string) string {
	azure := strings.HasPrefix(dep, "github.com/Azure/")
	ours := strings.TrimPrefix(dep, module+"/")
	switch {
	case (strings.HasPrefix(rel, "shared/agent") || strings.HasPrefix(rel, "cmd/agent")) && strings.HasPrefix(ours, "functions/"):
		return "the agent runs on the source VM and knows no function"
	case strings.HasPrefix(rel, "functions/") && azure:
		return "a function reaches Azure only through the ports it is given"
	case (rel == "shared/replication" || rel == "shared/recovery" || rel == "shared/api/apiv1") && azure:
		return "the domain imports no Azure SDK"
	case strings.HasPrefix(rel, "shared/") && strings.HasPrefix(ours, "functions/"):
		return "shared packages serve the functions, not the other way round"
	}
	return ""
}

// TestLayoutFunctionsTouchNoTable: tables are the domain's; a function only calls its use cases.
func TestLayoutFunctionsTouchNoTable(t *testing.T) {
	for path, data := range sourceFiles(t) {
		if !strings.HasPrefix(path, "functions/") {
			continue
		}
		if name := tableAccess(t, path, data); name != "" {
			t.Errorf("%s uses %s: a function asks the domain, which owns the tables", path, name)
		}
	}
	if tableAccess(t, "x.go", []byte("package x\nvar _ = replication.JobsTable")) == "" {
		t.Error("the check misses a table name")
	}
}

// tableAccess names the first store-level identifier a file uses: a table name, the state store port
// or its read-modify-write helpers.
func tableAccess(t *testing.T, path string, data []byte) string {
	f, err := parser.ParseFile(token.NewFileSet(), path, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := ""
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok || found != "" {
			return found == ""
		}
		name := sel.Sel.Name
		if x, ok := sel.X.(*ast.Ident); ok && x.Name != "r" && (strings.HasSuffix(name, "Table") || name == "StateStore" || name == "Mutate" || name == "UpdateGroup" || name == "QueryAll") {
			found = x.Name + "." + name
		}
		return true
	})
	return found
}

func TestLayoutForbiddenCatchesAViolation(t *testing.T) {
	for _, c := range [][2]string{
		{"shared/agent", module + "/functions/api"},
		{"functions/apply", "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"},
		{"shared/recovery", "github.com/Azure/azure-sdk-for-go/sdk/data/aztables"},
	} {
		if forbidden(c[0], c[1]) == "" {
			t.Errorf("%s → %s passed the check", c[0], c[1])
		}
	}
	if why := forbidden("cmd/handler", module+"/functions/api"); why != "" {
		t.Errorf("cmd/handler → functions/api refused: %s", why)
	}
}
