package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/armtypes"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/qemu"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// newComputeSitePair is newSitePair with a local compute in each region: fwd's boots failed-over VMs,
// rev's holds the original VMs' managed disks (and boots the VMs that fail back).
func newComputeSitePair(t *testing.T) (fwd, rev *stack, fwdDir, revDir string, images qemu.Images) {
	images = vmImages(t)
	types, _ := filepath.Abs(filepath.Join("..", "..", "shared", "reference", "azure-types"))
	source, target := testenv.Storage(t, "source"), testenv.Storage(t, "target")
	fwd = defineStack(t, "*/1 * * * * *", target, target, source)
	rev = defineStack(t, "*/1 * * * * *", source, source, target)
	fwdDir, revDir = t.TempDir(), t.TempDir()
	compute := func(dir string) string {
		return "UseLocalCompute=true;Dir=" + dir + ";Images=" + images.Dir + ";Types=" + types
	}
	fwd.app.setValues(t, peerValues(t, rev))
	rev.app.setValues(t, peerValues(t, fwd))
	fwd.app.setValues(t, map[string]string{"StandbyCompute": compute(fwdDir)})
	rev.app.setValues(t, map[string]string{"StandbyCompute": compute(revDir)})
	fwd.app.start(t)
	rev.app.start(t)
	t.Cleanup(func() {
		localcompute.StopAll(fwdDir, localcompute.QEMU{})
		localcompute.StopAll(revDir, localcompute.QEMU{})
	})
	return fwd, rev, fwdDir, revDir, images
}

// originalDisks makes the source VM's managed disks in the source region's compute, as an operator's
// environment has them: its network, and its OS disk (the bootable image) and data disk imported from
// VHDs. It returns the disks' images (what the agent in the VM reads) by disk name.
func originalDisks(t *testing.T, dir, rg string, images qemu.Images) map[string]string {
	ctx := context.Background()
	types, err := armtypes.Load(filepath.Join("..", "..", "shared", "reference", "azure-types"))
	if err != nil {
		t.Fatal(err)
	}
	pages := pageblobs.New(testenv.BlobService(t, "source"))
	c := &localcompute.Compute{Dir: dir, Types: types, Pages: pages, Launcher: localcompute.QEMU{Images: images}, Log: slog.New(slog.DiscardHandler)}
	if _, err := c.EnsureResourceGroup(ctx, rg); err != nil {
		t.Fatal(err)
	}
	container := testenv.Unique("vhds")
	pages.EnsureContainer(ctx, container)
	image, _ := os.ReadFile(images.OS)
	data := make([]byte, 8<<20)
	for _, b := range []int{0, 4, 6} {
		rand.Read(data[b<<20 : b<<20+64<<10])
	}
	var resources []map[string]any
	for name, content := range map[string][]byte{"web-os": image, "web-data": data} {
		ref := replication.DiskRef{Container: container, Name: name + ".vhd"}
		if err := replication.CreateFixedVHD(ctx, pages, ref, int64(len(content)), time.Now()); err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(content); off += replication.MaxPageWrite {
			if err := pages.WritePages(ctx, ref, int64(off), content[off:min(off+replication.MaxPageWrite, len(content))]); err != nil {
				t.Fatal(err)
			}
		}
		props := map[string]any{"creationData": map[string]any{"createOption": "Import", "sourceUri": pages.URL(ref),
			"storageAccountId": "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"}}
		if name == "web-os" {
			props["osType"] = "Linux"
		}
		resources = append(resources, map[string]any{"type": "Microsoft.Compute/disks", "apiVersion": "2025-01-02", "name": name,
			"location": "[resourceGroup().location]", "sku": map[string]any{"name": "Standard_LRS"}, "properties": props})
	}
	resources = append(resources, map[string]any{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2024-05-01", "name": "src",
		"location": "[resourceGroup().location]", "properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.1.0.0/16"}},
			"subnets": []any{map[string]any{"name": "app", "properties": map[string]any{"addressPrefix": "10.1.0.0/24"}}}}})
	var req recovery.DeploymentRequest
	req.Properties.Mode = "Incremental"
	req.Properties.Template = recovery.Template{Schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
		ContentVersion: "1.0.0.0", Resources: resources}
	if err := c.Deploy(ctx, rg, "operator-environment", req); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"os": filepath.Join(dir, rg, "disks", "web-os.img"), "data": filepath.Join(dir, rg, "disks", "web-data.img")}
}

// writeFileBlock puts random bytes into part of a 1 MiB block of a disk image (what a VM does).
func writeFileBlock(t *testing.T, path string, block int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, 64<<10)
	rand.Read(data)
	if _, err := f.WriteAt(data, int64(block)*replication.BlockSize+128<<10); err != nil {
		t.Fatal(err)
	}
}

func differingFileBlocks(t *testing.T, a, b string) int {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || len(x) != len(y) {
		t.Fatalf("comparing %s and %s: %v %v (%d and %d bytes)", a, b, err1, err2, len(x), len(y))
	}
	return differingBlocks(x, y)
}

// The way back with managed disks, across both regions: the source VM's disks are managed disks; a
// planned failover boots the VM in the target region; after commit, reprotect has the source region's
// deployment export the original managed disks and copy them into fixed VHDs there, and the agent on
// the failed-over VM sends only the blocks that differ; failback imports those VHDs into new managed
// disks in the original resource group and the VM boots on them, holding the failed-over disks' bytes,
// while the original disks are kept.
func TestReprotectFromManagedDisksAndFailbackBootsTheVM(t *testing.T) {
	fwd, rev, fwdDir, revDir, images := newComputeSitePair(t)
	group := testenv.Unique("managed")
	orig := originalDisks(t, revDir, group, images)
	diskID := func(name string) string {
		return "/subscriptions/local/resourceGroups/" + group + "/providers/Microsoft.Compute/disks/" + name
	}
	osSize, _ := os.Stat(orig["os"])
	spec := filepath.Join(t.TempDir(), "spec.json")
	os.WriteFile(spec, []byte(`{"vms":[{"name":"web","subnet":"src/app","disks":[
		{"name":"os","sizeBytes":`+itoa(int(osSize.Size()))+`,"source":"file:`+orig["os"]+`","role":"os","managedDisk":"`+diskID("web-os")+`"},
		{"name":"data","sizeBytes":8388608,"source":"file:`+orig["data"]+`","managedDisk":"`+diskID("web-data")+`"}]}],
		"network":{"mappings":[{"source":"src/app","target":"dr/app","test":"drtest/app","targetPrefix":"10.2.0.0/24","testPrefix":"10.3.0.0/24"}]}}`), 0o644)

	// Forward: protected, a write the last scan finds, a planned failover that boots the VM; commit.
	agentFwd := startAgent(t, fwd, "-group", group, "-spec", spec, "-state", t.TempDir(), "-scan-interval", "300ms", "-marker-interval", "1s")
	waitFor(t, 90*time.Second, "the group to be protected with a point", func() bool {
		_, _, body := fwd.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "Protected"`) && strings.Contains(body, `"lastRecoveryPoint"`)
	})
	writeFileBlock(t, orig["data"], 2)
	time.Sleep(time.Second) // a scan pass takes it
	fo := fwd.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 4*time.Minute)
	agentFwd.wait(t, 30*time.Second)
	if !strings.Contains(fo.Result["vm:web"], "running healthy") {
		t.Fatalf("the failed-over VM: %v", fo.Result)
	}
	failedOver := map[string]string{}
	for _, d := range []string{"os", "data"} {
		failedOver[d] = filepath.Join(fwdDir, group+"-asr", "disks", "web-"+d+"-"+fo.ID[:8]+".img")
	}
	if n := differingFileBlocks(t, orig["data"], failedOver["data"]); n != 0 {
		t.Fatalf("the failed-over data disk differs from the original in %d blocks", n)
	}
	fwd.runJob(t, "/api/v1/groups/"+group+"/commit", "", time.Minute)

	// The failed-over VM wrote and shut down; the original data disk took a stray write.
	localcompute.StopAll(fwdDir, localcompute.QEMU{})
	writeFileBlock(t, failedOver["data"], 1)
	writeFileBlock(t, failedOver["data"], 3)
	writeFileBlock(t, orig["data"], 5)
	want := differingFileBlocks(t, orig["os"], failedOver["os"]) + differingFileBlocks(t, orig["data"], failedOver["data"])
	originalBefore := map[string][]byte{}
	for d, path := range orig {
		originalBefore[d], _ = os.ReadFile(path)
	}

	// Reprotect: the peer seeds from the original managed disks, the agent on the failed-over VM sends
	// only what differs.
	body, _ := json.Marshal(map[string]any{"sources": map[string]string{"web/os": "file:" + failedOver["os"], "web/data": "file:" + failedOver["data"]}})
	reprotect := fwd.postJob(t, "/api/v1/groups/"+group+"/reprotect", string(body))
	waitFor(t, 60*time.Second, "the reversed group on the peer site", func() bool {
		status, _, _ := rev.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return status == 200
	})
	// The agent on the failed-over VM reads its disks where its own configuration says.
	agentRev := startAgent(t, rev, "-group", group, "-state", t.TempDir(), "-scan-interval", "300ms", "-marker-interval", "1s",
		"-source", "web/os="+failedOver["os"], "-source", "web/data="+failedOver["data"])
	job := fwd.awaitJob(t, reprotect, 3*time.Minute)
	if !strings.Contains(job.Steps[0].Outcome, "2 original managed disks exported and copied") || job.Result["blocksSent"] != strconv.Itoa(want) {
		t.Fatalf("reprotect: seeding %q, sent %s blocks, want %d (compared %s)", job.Steps[0].Outcome, job.Result["blocksSent"], want, job.Result["blocksCompared"])
	}
	t.Logf("reprotect: %s; %s", job.Steps[0].Outcome, job.Steps[2].Outcome)

	// Failback: the VM comes up in the original resource group on new disks holding the failed-over bytes.
	fb := fwd.runJob(t, "/api/v1/groups/"+group+"/failback", "", 4*time.Minute)
	agentRev.wait(t, 30*time.Second)
	if !strings.Contains(fb.Result["vm:web"], "running healthy") {
		t.Fatalf("the failed-back VM: %v", fb.Result)
	}
	serials, _ := filepath.Glob(filepath.Join(revDir, group, "vms", "*", "serial.log"))
	if len(serials) != 1 {
		t.Fatalf("VMs in the original resource group: %v", serials)
	}
	serial, _ := os.ReadFile(serials[0])
	if !strings.Contains(string(serial), qemu.Healthy) {
		t.Fatalf("the failed-back VM's console:\n%s", serial)
	}
	for _, d := range []string{"os", "data"} {
		back := filepath.Join(revDir, group, "disks", "web-"+d+"-"+fb.Result["peerJob"][:8]+".img")
		if d == "data" && differingFileBlocks(t, back, failedOver[d]) != 0 {
			t.Fatalf("the failed-back data disk differs from the failed-over one")
		}
		if now, _ := os.ReadFile(orig[d]); !bytes.Equal(now, originalBefore[d]) {
			t.Fatalf("the original %s disk changed: it is kept as it was", d)
		}
	}
}
