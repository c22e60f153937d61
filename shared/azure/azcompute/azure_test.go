package azcompute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/protocol/vhd"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// contractDiskBytes is the test VHD's virtual size: 20 MiB, the smallest managed disk Azure takes from
// a VHD (CreationData.uploadSizeBytes: "between 20972032 (20 MiB + 512 bytes for the VHD footer) and
// …"; the same floor is assumed for Import). It holds no OS: the VM is created and runs, its guest
// never reports healthy, which is what the test expects.
const contractDiskBytes = 20 << 20

// TestComputeOnAzure is the contract with the real Resource Manager and Compute and Network providers:
// it uploads a tiny fixed VHD, deploys a virtual network and then one VM from the VHD through
// recovery.MachineDeployment, reads them back through the port, exports the disk, and deletes all it
// made. It needs, with `az login` (or any DefaultAzureCredential identity) holding Contributor on the
// resource group, and Reader and Storage Blob Data Contributor on the account:
//
//	STANDBY_TEST_SUBSCRIPTION        the subscription id
//	STANDBY_TEST_RESOURCE_GROUP      an existing resource group (everything is created in it, then deleted)
//	STANDBY_TEST_STORAGE_ACCOUNT_ID  a StorageV2 account's resource id, in the group's region (the VHD goes there)
//	STANDBY_TEST_LOCATION            optional: the region (default: the resource group's)
//	STANDBY_TEST_VM_SIZE             optional: the VM size (default Standard_B1s)
func TestComputeOnAzure(t *testing.T) {
	sub, rg, account := os.Getenv("STANDBY_TEST_SUBSCRIPTION"), os.Getenv("STANDBY_TEST_RESOURCE_GROUP"), os.Getenv("STANDBY_TEST_STORAGE_ACCOUNT_ID")
	if sub == "" || rg == "" || account == "" {
		t.Skip("set STANDBY_TEST_SUBSCRIPTION, STANDBY_TEST_RESOURCE_GROUP (an existing group) and STANDBY_TEST_STORAGE_ACCOUNT_ID " +
			"(a storage account in its region; DefaultAzureCredential with Contributor on the group, Reader and Storage Blob Data Contributor on the account) " +
			"to run the Compute contract on Azure (optional: STANDBY_TEST_LOCATION, STANDBY_TEST_VM_SIZE)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cred, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	env := contractEnv(ctx, t, cred, sub, rg, account)
	if id, err := env.c.EnsureResourceGroup(ctx, rg); err != nil || !strings.EqualFold(id, "/subscriptions/"+sub+"/resourceGroups/"+rg) {
		t.Fatalf("EnsureResourceGroup(%s) = %q, %v", rg, id, err)
	}
	diskURL := env.uploadVHD(ctx)

	vnet := env.deployNetwork(ctx)
	env.refusesABadTemplate(ctx)

	vm := replication.VMSpec{Name: "ct", Size: envOr("STANDBY_TEST_VM_SIZE", "Standard_B1s"), Disks: []replication.DiskSpec{{Name: "os",
		SizeBytes: contractDiskBytes, Role: replication.DiskRoleOS, OSType: "Linux", HyperVGeneration: "V1", SKU: "Standard_LRS"}}}
	tpl, values := recovery.MachineDeployment(recovery.MachinePlan{VM: vm, StorageAccountID: account, Subnet: vnet + "/default",
		Suffix: env.suffix, DiskURL: func(string) string { return diskURL }})
	st := env.deployAndWait(ctx, "standby-ct-"+env.suffix+"-vm", request(tpl, values))
	var vmID, diskID string
	for _, id := range st.Resources {
		switch {
		case strings.Contains(id, "/virtualMachines/"):
			vmID = id
		case strings.Contains(id, "/disks/"):
			diskID = id
		}
	}
	if vmID == "" || diskID == "" {
		t.Fatalf("the deployment made %v: no VM or disk", st.Resources)
	}
	// The same request again changes nothing.
	if err := env.c.Deploy(ctx, rg, "standby-ct-"+env.suffix+"-vm", request(tpl, values)); err != nil {
		t.Errorf("deploying the same request again: %v", err)
	}
	env.readsTheVM(ctx, values["vmName"].(string), vmID, diskID)

	// With the VM gone the disk exports: its SAS URL serves the fixed VHD, footer and all.
	if err := env.c.Delete(ctx, rg, []string{vmID}); err != nil {
		t.Fatalf("deleting the VM: %v", err)
	}
	if found, err := env.c.Exists(ctx, vmID); err != nil || found {
		t.Errorf("Exists(VM) after Delete = %v, %v", found, err)
	}
	env.exportsTheDisk(ctx, diskID)
	if err := env.c.Delete(ctx, rg, st.Resources); err != nil {
		t.Errorf("deleting the rest: %v", err)
	}
}

type contract struct {
	t                     *testing.T
	c                     *Compute
	cred                  azcore.TokenCredential
	rg, account, suffix   string
	blobs                 *service.Client
	container             string
	deployments, cleanups []string
}

func contractEnv(ctx context.Context, t *testing.T, cred azcore.TokenCredential, sub, rg, account string) *contract {
	loc := os.Getenv("STANDBY_TEST_LOCATION")
	groups, err := armresources.NewResourceGroupsClient(sub, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if loc == "" {
		g, err := groups.Get(ctx, rg, nil)
		if err != nil {
			t.Fatalf("reading resource group %s: %v", rg, err)
		}
		loc = str(g.Location)
	}
	c, err := New(sub, loc, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	var b [4]byte
	rand.Read(b[:])
	env := &contract{t: t, c: c, cred: cred, rg: rg, account: account, suffix: hex.EncodeToString(b[:])}
	t.Cleanup(env.cleanup)
	return env
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func request(tpl recovery.Template, values map[string]any) recovery.DeploymentRequest {
	var req recovery.DeploymentRequest
	req.Properties.Mode, req.Properties.Template, req.Properties.Parameters = "Incremental", tpl, map[string]map[string]any{}
	for k, v := range values {
		req.Properties.Parameters[k] = map[string]any{"value": v}
	}
	return req
}

// uploadVHD writes a fixed VHD of contractDiskBytes (all zero, then the shared/protocol/vhd footer) to a new
// container of the account and returns its URL.
func (e *contract) uploadVHD(ctx context.Context) string {
	res, err := e.c.resources.GetByID(ctx, e.account, "2023-05-01", nil)
	if err != nil {
		e.t.Fatalf("reading the storage account: %v", azarm.Translate(err, "storage account"))
	}
	props, _ := res.Properties.(map[string]any)
	endpoints, _ := props["primaryEndpoints"].(map[string]any)
	blob, _ := endpoints["blob"].(string)
	if blob == "" {
		e.t.Fatalf("the storage account has no blob endpoint: %v", props)
	}
	if e.blobs, err = service.NewClient(blob, e.cred, nil); err != nil {
		e.t.Fatal(err)
	}
	pages := pageblobs.New(e.blobs)
	e.container = "standby-ct-" + e.suffix
	if err := pages.EnsureContainer(ctx, e.container); err != nil {
		e.t.Fatal(err)
	}
	ref := replication.DiskRef{Container: e.container, Name: "ct/os.vhd"}
	if err := replication.CreateFixedVHD(ctx, pages, ref, contractDiskBytes, time.Now()); err != nil {
		e.t.Fatalf("uploading the VHD: %v", err)
	}
	return pages.URL(ref)
}

// deployNetwork deploys a virtual network with one subnet, its template built as data, and waits.
func (e *contract) deployNetwork(ctx context.Context) string {
	name := "ct-vnet-" + e.suffix
	tpl := recovery.Template{Schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", ContentVersion: "1.0.0.0",
		Parameters: map[string]map[string]any{"vnetName": {"type": "string"}},
		Resources: []map[string]any{{"type": "Microsoft.Network/virtualNetworks", "apiVersion": networkAPI, "name": "[parameters('vnetName')]",
			"location": "[resourceGroup().location]", "properties": map[string]any{
				"addressSpace": map[string]any{"addressPrefixes": []any{"10.42.0.0/16"}},
				"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "10.42.0.0/24"}}}}}}}
	e.deployAndWait(ctx, "standby-ct-"+e.suffix+"-net", request(tpl, map[string]any{"vnetName": name}))
	return name
}

// refusesABadTemplate: a template ARM refuses at validation comes back as ErrInvalid with ARM's code.
func (e *contract) refusesABadTemplate(ctx context.Context) {
	tpl := recovery.Template{Schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", ContentVersion: "1.0.0.0",
		Parameters: map[string]map[string]any{}, Resources: []map[string]any{{"type": "Microsoft.Network/networkInterfaces", "apiVersion": networkAPI,
			"name": "[parameters('missing')]", "location": "[resourceGroup().location]", "properties": map[string]any{}}}}
	name := "standby-ct-" + e.suffix + "-bad"
	err := e.c.Deploy(ctx, e.rg, name, request(tpl, nil))
	if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), "InvalidTemplate") {
		e.t.Errorf("a template naming a missing parameter: %v, want ErrInvalid with InvalidTemplate", err)
	}
	if _, err := e.c.Deployment(ctx, e.rg, name); !errors.Is(err, replication.ErrNotFound) {
		e.t.Errorf("a refused deployment is recorded: %v", err)
	}
}

func (e *contract) deployAndWait(ctx context.Context, name string, req recovery.DeploymentRequest) recovery.DeploymentStatus {
	e.deployments = append(e.deployments, name)
	if err := e.c.Deploy(ctx, e.rg, name, req); err != nil {
		e.t.Fatalf("deploying %s: %v", name, err)
	}
	for {
		st, err := e.c.Deployment(ctx, e.rg, name)
		if err != nil {
			e.t.Fatalf("reading deployment %s: %v", name, err)
		}
		e.cleanups = append(e.cleanups, st.Resources...)
		switch st.State {
		case recovery.DeploymentSucceeded:
			return st
		case recovery.DeploymentFailed:
			e.t.Fatalf("deployment %s failed: %s", name, st.Error)
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("deployment %s: %v", name, ctx.Err())
		case <-time.After(10 * time.Second):
		}
	}
}

// readsTheVM: the VM as the port reports it, and a disk a running VM holds refused for export.
func (e *contract) readsTheVM(ctx context.Context, name, vmID, diskID string) {
	st, err := e.c.VM(ctx, e.rg, name)
	if err != nil {
		e.t.Fatalf("VM(%s): %v", name, err)
	}
	e.t.Logf("VM %s: power %s, healthy %v, detail %q", name, st.PowerState, st.Healthy, st.Detail)
	if !strings.EqualFold(st.ID, vmID) || st.PowerState == "" || !st.Healthy && st.Detail == "" {
		e.t.Errorf("VM(%s) = %+v", name, st)
	}
	if found, err := e.c.Exists(ctx, vmID); err != nil || !found {
		e.t.Errorf("Exists(VM) = %v, %v", found, err)
	}
	if st.PowerState == "running" {
		if _, err := e.c.ExportDisk(ctx, diskID, time.Minute); !errors.Is(err, replication.ErrConflict) {
			e.t.Errorf("exporting the disk of a running VM: %v, want ErrConflict", err)
		}
	}
}

func (e *contract) exportsTheDisk(ctx context.Context, diskID string) {
	sas, err := e.c.ExportDisk(ctx, diskID, 10*time.Minute)
	if err != nil {
		e.t.Fatalf("ExportDisk: %v", err)
	}
	defer func() {
		if err := e.c.EndExport(ctx, diskID); err != nil {
			e.t.Errorf("EndExport: %v", err)
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sas, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", contractDiskBytes, contractDiskBytes+vhd.FooterSize-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("reading the exported footer failed") // the error text would hold the SAS URL
	}
	defer resp.Body.Close()
	footer, _ := io.ReadAll(resp.Body)
	f, err := vhd.Parse(footer)
	if resp.StatusCode != http.StatusPartialContent || err != nil || f.CurrentSize != contractDiskBytes {
		e.t.Errorf("exported footer: HTTP %d, %+v, %v", resp.StatusCode, f, err)
	}
}

// cleanup deletes what the test made, whatever happened: resources, deployment records, the container.
func (e *contract) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	seen, ids := map[string]bool{}, []string(nil)
	for _, id := range e.cleanups {
		if !seen[strings.ToLower(id)] {
			seen[strings.ToLower(id)], ids = true, append(ids, id)
		}
	}
	if err := e.c.Delete(ctx, e.rg, ids); err != nil {
		e.t.Errorf("cleanup: %v", err)
	}
	for _, name := range e.deployments {
		if p, err := e.c.deployments.BeginDelete(ctx, e.rg, name, nil); err == nil {
			p.PollUntilDone(ctx, nil)
		}
	}
	if e.blobs != nil && e.container != "" {
		if _, err := e.blobs.DeleteContainer(ctx, e.container, nil); err != nil {
			e.t.Errorf("cleanup: container %s: %v", e.container, err)
		}
	}
}
