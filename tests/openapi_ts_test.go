package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/api/apiv1"
)

// A client generated from the OpenAPI document by generators no one here wrote — openapi-typescript's
// types and openapi-fetch's client, pinned in tools/openapi-ts — compiles a program (openapi_ts/client.ts)
// that uses the document's enums, operations, request bodies and typed query parameters; its
// @ts-expect-error lines make tsc fail when the document stops refusing a wrong value.
func TestGeneratedTypeScriptClientCompiles(t *testing.T) {
	tools, _ := filepath.Abs(filepath.Join("..", "tools", "openapi-ts"))
	gen, tsc := filepath.Join(tools, "node_modules", ".bin", "openapi-typescript"), filepath.Join(tools, "node_modules", ".bin", "tsc")
	for _, bin := range []string{gen, tsc} {
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("STANDBY_REQUIRE_TSC") == "1" {
				t.Fatalf("%s is missing: make test installs it (scripts/npm-ci.sh tools/openapi-ts tsc openapi-client)", bin)
			}
			t.Skipf("%s is missing: run scripts/npm-ci.sh tools/openapi-ts tsc openapi-client", bin)
		}
	}
	// Inside the tools' folder, so that the program's imports resolve to their node_modules.
	dir, err := os.MkdirTemp(tools, ".check-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	program, _ := os.ReadFile(filepath.Join("openapi_ts", "client.ts"))
	tsconfig := `{"compilerOptions": {"strict": true, "noEmit": true, "target": "es2022", "module": "esnext", "moduleResolution": "bundler",
		"lib": ["es2022", "dom"], "types": [], "skipLibCheck": true, "noUnusedLocals": false}, "files": ["client.ts"]}`
	for name, data := range map[string][]byte{"openapi.json": apiv1.OpenAPI(), "client.ts": program, "tsconfig.json": []byte(tsconfig)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(gen, "openapi.json", "-o", "api.d.ts")
	api, _ := os.ReadFile(filepath.Join(dir, "api.d.ts"))
	for _, want := range []string{`startFailover: {`, `"Protected"`, `"disconnected"`, `Location?: string`} {
		if !strings.Contains(string(api), want) {
			t.Errorf("the generated types lack %s", want)
		}
	}
	run(tsc, "-p", "tsconfig.json")
	t.Logf("openapi-typescript generated %d lines; tsc compiled the program against them", strings.Count(string(api), "\n"))
}
