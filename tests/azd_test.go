package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real Azure Developer CLI packages the app the way the README deploys it: from the root of a fresh
// clone, offline and before any login, with azd's alpha feature language.custom enabled (without it
// azd 1.31 refuses the project). STANDBY_AZD names the azd to judge with (else azd on PATH); without
// one the test skips, saying so. `make azd-check` runs it.
func TestAzdPackagesTheApp(t *testing.T) {
	azd := os.Getenv("STANDBY_AZD")
	if azd == "" {
		azd, _ = exec.LookPath("azd")
	}
	if azd == "" {
		t.Skip("no azd: set STANDBY_AZD to an Azure Developer CLI (1.31 or later) or put azd on PATH (make azd-check AZD=<path>)")
	}
	root := t.TempDir()
	clone := filepath.Join(root, "standby")
	if out, err := exec.Command("git", "clone", "-q", "..", clone).CombinedOutput(); err != nil {
		t.Fatalf("cloning the repository: %v\n%s", err, out)
	}
	run := func(alpha bool, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, azd, args...)
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "AZD_CONFIG_DIR="+filepath.Join(root, "azd-config"), "AZURE_DEV_COLLECT_TELEMETRY=no",
			"AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM="+map[bool]string{true: "true", false: "false"}[alpha])
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("azd %s did not end within 10 minutes:\n%s", strings.Join(args, " "), out)
		}
		return string(out), err
	}
	version, _ := run(false, "version")
	t.Logf("judging with %s: %s", azd, strings.TrimSpace(version))
	if out, err := run(false, "package", "--all", "--no-prompt"); err == nil {
		t.Errorf("azd packaged a language: custom service without the alpha feature; the README's step to enable it is then needless:\n%s", out)
	}
	outDir := filepath.Join(root, "out")
	out, err := run(true, "package", "--all", "--no-prompt", "--output-path", outDir)
	if err != nil {
		t.Fatalf("azd package from the repository root: %v\n%s", err, out)
	}
	zips, _ := filepath.Glob(filepath.Join(outDir, "*.zip"))
	if len(zips) != 1 {
		t.Fatalf("azd package left %d zips in %s:\n%s", len(zips), outDir, out)
	}
	checkAppZip(t, zips[0])
	readme, _ := os.ReadFile("../README.md")
	if !strings.Contains(string(readme), "azd config set alpha.language.custom on") {
		t.Error("the README does not say how to enable azd's language.custom")
	}
}
