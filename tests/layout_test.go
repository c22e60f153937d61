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

// The wings of shared/ (README, "Layout"): the domain (replication, recovery, agent, notify, proof), the
// wire (api/apiv1, api/apiclient) and its server side (api/apiserver), the Azure adapters (azure/…), the
// local stand-ins (standin/…), the protocols (protocol/…), the test kits (testkit/…) and the wiring
// (backends, backends/sourceside).
var domain = []string{"shared/replication", "shared/recovery", "shared/agent", "shared/notify", "shared/proof"}

func in(rel string, prefixes ...string) bool {
	for _, p := range prefixes {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

// forbidden says why package rel may not depend on dep ("" when it may).
func forbidden(rel, dep string) string {
	azure := strings.HasPrefix(dep, "github.com/Azure/")
	ours := strings.TrimPrefix(dep, module+"/")
	isOurs := ours != dep
	stdlib := !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".")
	switch {
	case in(rel, "shared/agent", "cmd/agent") && strings.HasPrefix(ours, "functions/"):
		return "the agent runs on the source VM and knows no function"
	case in(rel, "cmd/agent", "shared/agent", "shared/backends/sourceside") && in(ours, "shared/standin"):
		return "the agent's Azure build links no stand-in (they register from cmd/agent/standin.go, built with -tags standin)"
	case in(rel, "cmd/agent", "shared/agent", "shared/backends/sourceside") && in(ours, "shared/recovery", "shared/backends", "shared/azure/tables", "shared/azure/servicebus", "shared/azure/azcompute") && ours != "shared/backends/sourceside":
		return "the agent knows no job engine and nothing of the target side"
	case in(rel, "cmd/agent", "shared/agent", "shared/backends/sourceside") && strings.HasPrefix(dep, "modernc.org/sqlite"):
		return "the agent links no SQLite (the embedded broker is a stand-in)"
	case strings.HasPrefix(rel, "functions/") && azure:
		return "a function reaches Azure only through the ports it is given"
	case in(rel, domain...) && azure:
		return "the domain imports no Azure SDK"
	case in(rel, domain...) && in(ours, "shared/azure", "shared/standin", "shared/testkit", "shared/backends", "shared/api/apiserver", "shared/api/apiclient"):
		return "the domain knows no adapter, stand-in, test kit or server side of the API"
	case in(rel, "shared/replication", "shared/recovery") && in(ours, "shared/api"):
		return "the replication and recovery domains know no wire"
	case rel == "shared/api/apiv1" && !stdlib:
		return "the wire types depend on the standard library only (as river's rivertype)"
	case rel == "shared/api/apiclient" && isOurs && ours != "shared/api/apiv1":
		return "the API client links the wire types only"
	case in(rel, "shared/protocol") && isOurs:
		return "a protocol package stands alone"
	case in(rel, "shared/azure") && in(ours, "shared/standin", "shared/testkit", "shared/backends", "shared/api"):
		return "an Azure adapter knows no stand-in, test kit, wiring or API"
	case in(rel, "shared/standin") && in(ours, "shared/azure") && !in(ours, "shared/azure/azconn", "shared/azure/armtypes"):
		return "a stand-in uses no Azure adapter (only the settings' grammar, azconn, and the published types, armtypes)"
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
		{"cmd/agent", module + "/shared/standin/broker"},
		{"cmd/agent", module + "/shared/recovery"},
		{"cmd/agent", "modernc.org/sqlite"},
		{"shared/api/apiv1", module + "/shared/replication"},
		{"shared/api/apiv1", "github.com/google/uuid"},
		{"shared/api/apiclient", module + "/shared/recovery"},
		{"shared/replication", module + "/shared/azure/tables"},
		{"shared/recovery", module + "/shared/api/apiv1"},
		{"shared/azure/tables", module + "/shared/standin/memstore"},
		{"shared/standin/broker", module + "/shared/azure/eventhubs"},
		{"shared/protocol/nbd", module + "/shared/replication"},
	} {
		if forbidden(c[0], c[1]) == "" {
			t.Errorf("%s → %s passed the check", c[0], c[1])
		}
	}
	for _, c := range [][2]string{
		{"cmd/handler", module + "/functions/api"},
		{"shared/api/apiv1", "encoding/json"},
		{"shared/agent", module + "/shared/api/apiv1"},
		{"shared/standin/broker", module + "/shared/azure/azconn"},
		{"cmd/agent", module + "/shared/backends/sourceside"},
	} {
		if why := forbidden(c[0], c[1]); why != "" {
			t.Errorf("%s → %s refused: %s", c[0], c[1], why)
		}
	}
}
