package pageblobs_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/standby-dr/standby/shared/replication"

	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/testkit/storetest"
	"github.com/standby-dr/standby/shared/testkit/testenv"
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

// A disk leased indefinitely — the way a VM holds the disk it has attached — is never taken over by
// apply's lease: breaking it would pull the disk from under the VM.
func TestAnInfiniteLeaseIsNotTakenOver(t *testing.T) {
	ctx := context.Background()
	svc := testenv.BlobService(t, "target")
	store := pageblobs.New(svc)
	container := testenv.Unique("leases")
	store.EnsureContainer(ctx, container)
	d := replication.DiskRef{Container: container, Name: "attached"}
	if err := store.Create(ctx, d, 1<<20); err != nil {
		t.Fatal(err)
	}
	vm := "00000000-0000-4000-8000-000000000001"
	lc, err := lease.NewBlobClient(svc.NewContainerClient(container).NewPageBlobClient(d.Name), &lease.BlobClientOptions{LeaseID: &vm})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.AcquireLease(ctx, -1, nil); err != nil {
		t.Fatal(err)
	}
	err = store.AcquireLease(ctx, d, replication.NewLeaseID())
	if !errors.Is(err, replication.ErrConflict) || !strings.Contains(err.Error(), "holds an infinite lease (is it attached to a VM?): it is not taken over") {
		t.Fatalf("taking over an infinite lease: %v", err)
	}
	err = store.BreakLease(ctx, d)
	if !errors.Is(err, replication.ErrConflict) || !strings.Contains(err.Error(), "holds an infinite lease (is it attached to a VM?): it is not broken") {
		t.Fatalf("breaking an infinite lease: %v", err)
	}
	if err := store.WritePages(replication.WithLease(ctx, vm), d, 0, make([]byte, 512)); err != nil {
		t.Fatalf("the VM's lease was broken: %v", err)
	}
	lc.ReleaseLease(ctx, nil)
	store.Delete(ctx, d)
}

// The health check lists one container (an operation the Storage Blob Data roles allow).
func TestPing(t *testing.T) {
	if err := pageblobs.New(testenv.BlobService(t, "target")).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
