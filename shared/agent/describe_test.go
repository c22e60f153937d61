package agent

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

// machineRoot is a file system root with UEFI firmware (efi) or not, and Azure's chassis tag or not.
func machineRoot(t *testing.T, efi, azure bool) string {
	root := t.TempDir()
	if efi {
		os.MkdirAll(filepath.Join(root, "sys/firmware/efi"), 0o755)
	}
	os.MkdirAll(filepath.Join(root, "sys/class/dmi/id"), 0o755)
	tag := "Default string"
	if azure {
		tag = azureAssetTag
	}
	os.WriteFile(filepath.Join(root, "sys/class/dmi/id/chassis_asset_tag"), []byte(tag+"\n"), 0o644)
	return root
}

// imds answers the compute metadata with the given secure boot and vTPM flags, checking the header the
// service demands.
func imds(t *testing.T, secureBoot, vtpm string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" || r.URL.Path != "/metadata/instance/compute" {
			http.Error(w, "bad request", 400)
			return
		}
		w.Write([]byte(`{"osType":"Linux","securityProfile":{"secureBootEnabled":"` + secureBoot + `","virtualTpmEnabled":"` + vtpm + `"},"vmSize":"Standard_D2s_v5"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestMachineDescribesItself(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		m    Machine
		want replication.DiskInfo
	}{
		{"BIOS, not on Azure", Machine{Root: machineRoot(t, false, false), GOOS: "linux"}, replication.DiskInfo{OSType: "Linux", HyperVGeneration: "V1"}},
		{"UEFI", Machine{Root: machineRoot(t, true, false), GOOS: "linux"}, replication.DiskInfo{OSType: "Linux", HyperVGeneration: "V2"}},
		{"Trusted Launch", Machine{Root: machineRoot(t, true, false), GOOS: "linux", IMDS: imds(t, "true", "true")}, replication.DiskInfo{OSType: "Linux", HyperVGeneration: "V2", SecurityType: "TrustedLaunch"}},
		{"secure boot without vTPM", Machine{Root: machineRoot(t, true, false), GOOS: "linux", IMDS: imds(t, "true", "false")}, replication.DiskInfo{OSType: "Linux", HyperVGeneration: "V2", SecurityType: "Standard"}},
		{"IMDS off", Machine{Root: machineRoot(t, true, true), GOOS: "linux", IMDS: "off"}, replication.DiskInfo{OSType: "Linux", HyperVGeneration: "V2"}},
		{"Windows", Machine{Root: machineRoot(t, true, false), GOOS: "windows"}, replication.DiskInfo{OSType: "Windows"}},
	} {
		if got, err := c.m.describe(ctx); got != c.want || err != nil {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	// Azure's address is asked only on an Azure VM (its chassis tag), never elsewhere.
	if got := (Machine{Root: machineRoot(t, false, true)}).imdsURL(); got != defaultIMDS {
		t.Errorf("on Azure: %q", got)
	}
	if got := (Machine{Root: machineRoot(t, false, false)}).imdsURL(); got != "" {
		t.Errorf("elsewhere: %q", got)
	}
	// A service that fails is a note, not a guess.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer failing.Close()
	if got, err := (Machine{Root: machineRoot(t, false, false), GOOS: "linux", IMDS: failing.URL}).describe(ctx); got.SecurityType != "" || got.OSType != "Linux" || err == nil {
		t.Errorf("failing service: %+v %v", got, err)
	}
}

// describedSnapshots describes one managed disk; nothing else of the port is used here.
type describedSnapshots struct {
	replication.DiskSnapshots
	info replication.DiskInfo
}

func (d describedSnapshots) DescribeDisk(context.Context, string) (replication.DiskInfo, error) {
	return d.info, nil
}

// The spec the agent enables carries the OS disks' boot properties from the sources: a managed: disk's
// from the Compute provider, the agent's own VM's from itself; what the spec gives is kept; a VM the
// agent cannot see (another VM's agent disks) is left to the defaults.
func TestDescribeOSDisks(t *testing.T) {
	managed := "managed:/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/disks/db-os"
	spec := replication.GroupSpec{VMs: []replication.VMSpec{
		{Name: "db", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: managed}}},
		{Name: "web", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "nbd:/dev/vda", OSType: "Linux", SecurityType: "Standard"}, {Name: "data", SizeBytes: 1 << 20, Source: "nbd:/dev/vdb"}}},
		{Name: "cache", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "agent"}}},
	}}
	r := &runner{log: slog.New(slog.DiscardHandler), cfg: RunConfig{
		DiskSnapshots: func() (replication.DiskSnapshots, error) {
			return describedSnapshots{info: replication.DiskInfo{SizeBytes: 1 << 20, OSType: "Windows", HyperVGeneration: "V2", SecurityType: "TrustedLaunch"}}, nil
		},
		Machine: Machine{Root: machineRoot(t, true, false), GOOS: "linux", IMDS: "off"}}}
	if err := r.describeOSDisks(context.Background(), &spec); err != nil {
		t.Fatal(err)
	}
	if d := spec.VMs[0].Disks[0]; d.OSType != "Windows" || d.HyperVGeneration != "V2" || d.SecurityType != "TrustedLaunch" {
		t.Errorf("managed: %+v", d)
	}
	if d := spec.VMs[1].Disks[0]; d.OSType != "Linux" || d.HyperVGeneration != "V2" || d.SecurityType != "Standard" {
		t.Errorf("this VM: %+v", d)
	}
	if d := spec.VMs[1].Disks[1]; d.OSType != "" || d.HyperVGeneration != "" {
		t.Errorf("a data disk got boot properties: %+v", d)
	}
	if d := spec.VMs[2].Disks[0]; d.OSType != "" || d.HyperVGeneration != "" || d.SecurityType != "" {
		t.Errorf("a VM the agent cannot see: %+v", d)
	}
	spec.Normalize("g1")
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := spec.VMs[2].Disks[0].Defaulted; len(got) != 3 {
		t.Errorf("the unseen VM's defaults are not named: %v", got)
	}
	if got := spec.VMs[0].Disks[0].Defaulted; len(got) != 0 {
		t.Errorf("a described disk is said to be defaulted: %v", got)
	}
}
