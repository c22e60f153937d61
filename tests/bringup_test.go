package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/qemu"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// vmImages are scripts/vm-image.sh's outputs (make test builds them first).
func vmImages(t testing.TB) qemu.Images {
	t.Helper()
	images, err := qemu.LoadImages(filepath.Join("..", qemu.DefaultImageDir))
	if err == nil {
		images.Dir, _ = filepath.Abs(images.Dir)
		images, err = qemu.LoadImages(images.Dir)
	}
	if err != nil {
		if os.Getenv("STANDBY_REQUIRE_QEMU") != "" {
			t.Fatal(err)
		}
		t.Skipf("%v: run scripts/vm-image.sh (make test does)", err)
	}
	return images
}

// newComputeStack is a stack whose failovers bring the VMs up on the local compute (QEMU), which keeps
// its state in the returned directory; every VM it started is stopped when the test ends.
func newComputeStack(t testing.TB, schedule string) (*stack, string, qemu.Images) {
	t.Helper()
	return newComputeStackWith(t, schedule, nil)
}

// newComputeStackWith is newComputeStack with more app settings.
func newComputeStackWith(t testing.TB, schedule string, settings map[string]string) (*stack, string, qemu.Images) {
	t.Helper()
	images := vmImages(t)
	types, _ := filepath.Abs(filepath.Join("..", "..", "shared", "reference", "azure-types"))
	computeDir := t.TempDir()
	s := defineStack(t, schedule, testenv.Storage(t, "target"), testenv.Storage(t, "target"), testenv.Storage(t, "source"))
	values := map[string]string{"StandbyCompute": "UseLocalCompute=true;Dir=" + computeDir + ";Images=" + images.Dir + ";Types=" + types}
	for k, v := range settings {
		values[k] = v
	}
	s.app.setValues(t, values)
	s.app.start(t)
	t.Cleanup(func() { localcompute.StopAll(computeDir, localcompute.QEMU{}) })
	return s, computeDir, images
}

// A test failover ends with the VM running: the OS disk — a bootable image, replicated through the
// whole pipeline — is copied from the recovery point into a fixed VHD, the local compute imports it as
// a managed disk and boots the VM with QEMU in no network, and the guest reports healthy on its own
// serial console. Cleanup deletes the VM, its NIC and its disks.
func TestTestFailoverBootsTheVM(t *testing.T) {
	s, computeDir, images := newComputeStack(t, "*/1 * * * * *")

	group := testenv.Unique("boot")
	image, err := os.ReadFile(images.OS)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(image))
	status, _, body := s.app.call(t, "PUT", "/api/v1/groups/"+group, "test-key", `{"vms":[{"name":"web","subnet":"src/app",
		"disks":[{"name":"os","sizeBytes":`+itoa(int(size))+`,"source":"agent","role":"os","osType":"Linux"}]}],
		"network":{"mappings":[{"source":"src/app","target":"dr/app","test":"drtest/app","targetPrefix":"10.2.0.0/24","testPrefix":"10.3.0.0/24"}]}}`)
	if status != http.StatusCreated {
		t.Fatalf("PUT: %d %s", status, body)
	}
	// Enable made the recovery resource group, the production and the isolated networks.
	vnets, _ := filepath.Glob(filepath.Join(computeDir, group+"-asr", "virtualNetworks", "*.json"))
	if !strings.Contains(body, `"state": "Succeeded"`) || !strings.Contains(body, `"dr/app": "/subscriptions/local/resourceGroups/`+group+`-asr/providers/Microsoft.Network/virtualNetworks/dr/subnets/app"`) || len(vnets) != 2 {
		t.Fatalf("target resources: %v\n%s", vnets, body)
	}
	a := s.agent(t, group, []replication.DiskRefSpec{{Key: "web/os", VM: "web", Spec: replication.DiskSpec{Name: "os", SizeBytes: size, Source: "agent"}}})
	zero := make([]byte, 1<<20)
	for off := int64(0); off < size; off += 1 << 20 {
		if block := image[off : off+1<<20]; !bytes.Equal(block, zero) {
			if err := a.Write("web/os", off, block); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.Marker("crash", true)
	waitFor(t, 60*time.Second, "the baseline's recovery point", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/recovery-points", "test-key", "")
		return strings.Contains(body, `"kind": "crash"`)
	})

	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"test"}`, 4*time.Minute)
	if !strings.Contains(job.Result["vm:web"], "running healthy") {
		t.Fatalf("the test VM: %q (result %v)", job.Result["vm:web"], job.Result)
	}
	logs, _ := filepath.Glob(filepath.Join(computeDir, group+"-asr", "vms", "*", "serial.log"))
	if len(logs) != 1 {
		t.Fatalf("serial logs: %v", logs)
	}
	serial, _ := os.ReadFile(logs[0])
	if !strings.Contains(string(serial), qemu.Healthy+" host=standby-vm disks=/dev/vda") {
		t.Fatalf("the guest's console does not say it is up:\n%s", serial)
	}
	deployments, _ := filepath.Glob(filepath.Join(computeDir, group+"-asr", "deployments", "standby-*-web.json"))
	if len(deployments) != 1 {
		t.Fatalf("deployments kept: %v", deployments)
	}
	if !bootedIsolated(t, filepath.Dir(logs[0])) {
		t.Fatal("the drill's VM had a network")
	}

	s.runJob(t, "/api/v1/groups/"+group+"/cleanup-test-failover", "", 2*time.Minute)
	for _, kind := range []string{"vms/*", "disks/*.img", "networkInterfaces/*.json"} {
		if left, _ := filepath.Glob(filepath.Join(computeDir, group+"-asr", kind)); len(left) != 0 {
			t.Errorf("cleanup left %v", left)
		}
	}

	// The source region is lost: the unplanned failover brings the VM up on the production network.
	job = s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"unplanned"}`, 4*time.Minute)
	if !strings.Contains(job.Result["vm:web"], "running healthy") {
		t.Fatalf("the failed-over VM: %q", job.Result["vm:web"])
	}
	vms, _ := filepath.Glob(filepath.Join(computeDir, group+"-asr", "vms", "*"))
	if len(vms) != 1 || bootedIsolated(t, vms[0]) {
		t.Fatalf("failed-over VMs %v: want one, on the network", vms)
	}
}

// bootedIsolated says whether the local compute booted the VM in dir without a network.
func bootedIsolated(t *testing.T, dir string) bool {
	var vm struct {
		Spec struct{ Isolated bool } `json:"spec"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "vm.json"))
	if err != nil || json.Unmarshal(data, &vm) != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return vm.Spec.Isolated
}

// A planned failover loses nothing and ends with the VMs running: the agent on the source stops taking
// writes and flushes, the job fails over to its final point and boots the VM from it.
func TestPlannedFailoverBootsTheVMsAndLosesNothing(t *testing.T) {
	s, _, images := newComputeStack(t, "*/1 * * * * *")
	spec, _ := bootableWebVM(t, images)
	group := testenv.Unique("planned")
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", t.TempDir(), "-workload-rate", "2", "-workload-data-only", "-duration", "2m")
	waitFor(t, 60*time.Second, "the group to be protected with a point", func() bool {
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "Protected"`) && strings.Contains(body, `"lastRecoveryPoint"`)
	})
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 4*time.Minute)
	p.wait(t, 30*time.Second)
	if !strings.Contains(job.Result["vm:web"], "running healthy") {
		t.Fatalf("the failed-over VM: %q", job.Result["vm:web"])
	}
	compareWithSources(t, spec, group+"-failover")
}

// bootableWebVM writes a one-VM group spec whose VM "web" boots from a copy of the bootable image (its
// OS disk) and has an 8 MiB data disk, both file: sources; it returns the spec file and its directory.
func bootableWebVM(t *testing.T, images qemu.Images) (spec, dir string) {
	t.Helper()
	dir = t.TempDir()
	osDisk, dataDisk := filepath.Join(dir, "web-os.img"), filepath.Join(dir, "web-data.img")
	image, err := os.ReadFile(images.OS)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(osDisk, image, 0o644)
	os.WriteFile(dataDisk, make([]byte, 8<<20), 0o644)
	spec = filepath.Join(dir, "spec.json")
	os.WriteFile(spec, []byte(`{"vms":[{"name":"web","subnet":"src/app","disks":[
		{"name":"os","sizeBytes":`+itoa(len(image))+`,"source":"file:`+osDisk+`","role":"os"},
		{"name":"data","sizeBytes":8388608,"source":"file:`+dataDisk+`"}]}],
		"network":{"mappings":[{"source":"src/app","target":"dr/app","test":"drtest/app","targetPrefix":"10.2.0.0/24","testPrefix":"10.3.0.0/24"}]},"policy":{"crashConsistentIntervalSeconds":60}}`), 0o644)
	return spec, dir
}
