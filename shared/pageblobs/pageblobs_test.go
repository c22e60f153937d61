package pageblobs_test

import (
	"os"
	"testing"

	"github.com/standby-dr/standby/shared/azconn"
	"github.com/standby-dr/standby/shared/pageblobs"
	"github.com/standby-dr/standby/shared/storetest"
	"github.com/standby-dr/standby/shared/testenv"
)

func TestPageStoreContractAzurite(t *testing.T) {
	storetest.RunPageStore(t, pageblobs.New(testenv.BlobService(t, "target")), testenv.Unique("disks"))
}

// TestPageStoreContractAzure runs the contract against a real storage account when one is configured.
func TestPageStoreContractAzure(t *testing.T) {
	cs := os.Getenv("STANDBY_AZURE_STORAGE")
	if cs == "" {
		t.Skip("STANDBY_AZURE_STORAGE is not set: no real storage account to test against")
	}
	svc, err := pageblobs.ServiceClient(azconn.Setting{Name: "STANDBY_AZURE_STORAGE", ConnectionString: cs})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunPageStore(t, pageblobs.New(svc), testenv.Unique("disks"))
}
