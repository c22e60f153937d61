// Package testenv gives tests the local stand-ins' connection settings. `make test` starts two Azurite
// instances (source and target region) and sets STANDBY_REQUIRE_AZURITE=1, so a missing emulator fails
// the run there instead of skipping silently; a bare `go test` skips storage tests with a clear message.
package testenv

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/standby-dr/standby/shared/azure/armtypes"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// AzuriteAccountKey is the emulator's published well-known key (not a secret).
const AzuriteAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// AzuriteConnection builds the connection string of an Azurite instance with the given blob and table ports.
func AzuriteConnection(blobPort, tablePort int) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"+
		"BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;TableEndpoint=http://127.0.0.1:%d/devstoreaccount1;",
		AzuriteAccountKey, blobPort, tablePort)
}

// Default ports of the two regions' instances (scripts/azurite.sh uses the same).
var (
	SourceStorage = AzuriteConnection(10000, 10002)
	TargetStorage = AzuriteConnection(10010, 10012)
)

// Storage returns the connection string for a region ("source" or "target"), from
// STANDBY_TEST_<REGION>_STORAGE or the default ports, after checking the emulator answers.
func Storage(t testing.TB, region string) string {
	if t == nil { // only the connection string is wanted, reachability already checked
		if cs := os.Getenv("STANDBY_TEST_" + strings.ToUpper(region) + "_STORAGE"); cs != "" {
			return cs
		}
		return map[string]string{"source": SourceStorage, "target": TargetStorage}[region]
	}
	t.Helper()
	cs := os.Getenv("STANDBY_TEST_" + strings.ToUpper(region) + "_STORAGE")
	if cs == "" {
		cs = map[string]string{"source": SourceStorage, "target": TargetStorage}[region]
	}
	for _, part := range strings.Split(cs, ";") {
		k, v, _ := strings.Cut(part, "=")
		if k != "BlobEndpoint" && k != "TableEndpoint" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			t.Fatalf("%s storage: %v", region, err)
		}
		conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
		if err != nil {
			if os.Getenv("STANDBY_REQUIRE_AZURITE") != "" {
				t.Fatalf("%s-region storage at %s is not reachable (make test starts Azurite): %v", region, u.Host, err)
			}
			t.Skipf("%s-region storage at %s is not reachable; run `make test` (it starts Azurite) or `scripts/azurite.sh start`", region, u.Host)
		}
		conn.Close()
	}
	return cs
}

// Unique returns a name unique to this test run, valid as a container or table name.
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000_000_000)
}

// BlobService is the blob service of a region's storage (see Storage).
func BlobService(t testing.TB, region string) *service.Client {
	t.Helper()
	svc, err := pageblobs.ServiceClient(azconn.Setting{Name: region, ConnectionString: Storage(t, region)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TableService is the table service of a region's storage (see Storage).
func TableService(t testing.TB, region string) *aztables.ServiceClient {
	t.Helper()
	svc, err := tables.ServiceClient(azconn.Setting{Name: region, ConnectionString: Storage(t, region)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// PublishedTypes loads the Azure resource type definitions from bicep-types-az the repository keeps
// beside it (shared/reference/azure-types, found from the working folder up). Without them a test
// skips, unless STANDBY_REQUIRE_TYPES is set (make test), which makes it fail.
func PublishedTypes(t testing.TB) *armtypes.Catalog {
	t.Helper()
	dir, _ := os.Getwd()
	for ; filepath.Dir(dir) != dir; dir = filepath.Dir(dir) {
		d := filepath.Join(dir, "shared", "reference", "azure-types")
		if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
			continue
		}
		cat, err := armtypes.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		return cat
	}
	if os.Getenv("STANDBY_REQUIRE_TYPES") != "" {
		t.Fatal("no shared/reference/azure-types here or above")
	}
	t.Skip("no shared/reference/azure-types here or above")
	return nil
}
