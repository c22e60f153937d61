package armtypes

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMainBicepOnAzure is the contract with the real resource providers: Azure validates infra/main.bicep
// (the Bicep compiler, then the providers' preflight) and computes a what-if against a resource group.
// It changes nothing. It runs when STANDBY_TEST_SUBSCRIPTION and STANDBY_TEST_RESOURCE_GROUP are set and
// the az CLI is installed and signed in (az login); STANDBY_TEST_SOURCE_LOCATION is the source region
// (default: the resource group's).
func TestMainBicepOnAzure(t *testing.T) {
	sub, rg := os.Getenv("STANDBY_TEST_SUBSCRIPTION"), os.Getenv("STANDBY_TEST_RESOURCE_GROUP")
	if sub == "" || rg == "" {
		t.Skip("set STANDBY_TEST_SUBSCRIPTION and STANDBY_TEST_RESOURCE_GROUP (an existing resource group; az CLI signed in) to validate infra/main.bicep on Azure (az deployment group validate and what-if)")
	}
	if _, err := exec.LookPath("az"); err != nil {
		t.Fatal("STANDBY_TEST_SUBSCRIPTION is set but the az CLI is not installed")
	}
	az := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("az", append(args, "--subscription", sub, "--only-show-errors")...).CombinedOutput()
		if err != nil {
			t.Fatalf("az %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	source := os.Getenv("STANDBY_TEST_SOURCE_LOCATION")
	if source == "" {
		source = az("group", "show", "-n", rg, "--query", "location", "-o", "tsv")
	}
	file, err := filepath.Abs(filepath.Join("..", "..", "..", "infra", "main.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	deploy := []string{"-g", rg, "-f", file, "-p", "sourceLocation=" + source}
	az(append([]string{"deployment", "group", "validate"}, deploy...)...)
	t.Log(az(append([]string{"deployment", "group", "what-if", "--no-pretty-print", "--result-format", "ResourceIdOnly"}, deploy...)...))
}
