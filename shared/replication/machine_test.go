package replication_test

import (
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

func machineSpec(disks ...replication.DiskSpec) replication.GroupSpec {
	for i := range disks {
		disks[i].Name, disks[i].SizeBytes, disks[i].Source = []string{"os", "data", "logs"}[i], 1<<20, "agent"
	}
	return replication.GroupSpec{VMs: []replication.VMSpec{{Name: "web", Disks: disks}}}
}

func TestMachineDefaultsAndRefusals(t *testing.T) {
	spec := machineSpec(replication.DiskSpec{}, replication.DiskSpec{})
	spec.Normalize("g1")
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	vm := spec.VMs[0]
	if os := vm.OSDisk(); os.Name != "os" || os.OSType != "Linux" || os.HyperVGeneration != "V1" || os.SecurityType != "Standard" ||
		vm.Disks[1].Role != "data" || vm.Disks[1].SKU != "Standard_LRS" || vm.Size != "Standard_D2s_v5" {
		t.Fatalf("defaults: %+v", vm)
	}
	for want, disks := range map[string][]replication.DiskSpec{
		"vms[0].disks: a VM boots from exactly one disk with role \"os\", it has 2":        {{Role: "os"}, {Role: "os"}},
		"vms[0].disks: a VM boots from exactly one disk with role \"os\", it has 0":        {{Role: "data"}},
		"vms[0].disks[0].securityType: TrustedLaunch needs hyperVGeneration V2":            {{Role: "os", SecurityType: "TrustedLaunch", HyperVGeneration: "V1"}},
		"vms[0].disks[1]: osType, hyperVGeneration and securityType belong to the OS disk": {{Role: "os"}, {Role: "data", OSType: "Linux"}},
		"vms[0].disks[0].sku: \"Gold_LRS\"":                                                {{SKU: "Gold_LRS"}},
		"vms[0].disks[0].osType: \"Solaris\"":                                              {{OSType: "Solaris"}},
		"vms[0].disks[0].role: \"boot\"":                                                   {{Role: "boot"}},
	} {
		spec := machineSpec(disks...)
		spec.Normalize("g1")
		if err := spec.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", disks, err, want)
		}
	}
	spec = machineSpec(replication.DiskSpec{})
	spec.VMs[0].Size = "huge"
	spec.Normalize("g1")
	if err := spec.Validate(); err == nil || !strings.Contains(err.Error(), `vms[0].size: "huge" is not an Azure VM size`) {
		t.Errorf("size: %v", err)
	}
}

// The SKUs a failover cannot make or attach are refused with the reason; where Premium SSD v2 is allowed
// (a data disk of a zonal VM, no availability set) the spec passes.
func TestDiskSKUsAFailoverCannotMake(t *testing.T) {
	for _, c := range []struct {
		zone, avset string
		disks       []replication.DiskSpec
		want        string
	}{
		{"1", "", []replication.DiskSpec{{Role: "os"}, {Role: "data", SKU: "UltraSSD_LRS"}}, "vms[0].disks[1].sku: UltraSSD_LRS cannot be failed over to: an Ultra Disk can only be created empty"},
		{"1", "", []replication.DiskSpec{{Role: "os", SKU: "PremiumV2_LRS"}}, "vms[0].disks[0].sku: PremiumV2_LRS can't be an OS disk"},
		{"", "", []replication.DiskSpec{{Role: "os"}, {Role: "data", SKU: "PremiumV2_LRS"}}, "can only be attached to a zonal VM"},
		{"1", "set", []replication.DiskSpec{{Role: "os"}, {Role: "data", SKU: "PremiumV2_LRS"}}, "can't be attached to a VM in an availability set"},
		{"1", "", []replication.DiskSpec{{Role: "os", SKU: "Premium_ZRS"}, {Role: "data", SKU: "PremiumV2_LRS"}}, ""},
	} {
		spec := machineSpec(c.disks...)
		spec.VMs[0].Zone, spec.VMs[0].AvailabilitySet = c.zone, c.avset
		spec.Normalize("g1")
		err := spec.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("zone %q set %q %+v: %v, want %q", c.zone, c.avset, c.disks, err, c.want)
		}
	}
}

// What a VM is brought up as changes in place, like its placement: replication never reads it.
func TestMachineChangesInPlace(t *testing.T) {
	a, b := machineSpec(replication.DiskSpec{}), machineSpec(replication.DiskSpec{SKU: "Premium_LRS"})
	b.VMs[0].Size = "Standard_E4s_v5"
	a.Normalize("g1")
	b.Normalize("g1")
	if c := a.Conflicts(&b); len(c) != 2 || !a.OnlyPlacementDiffers(&b) {
		t.Fatalf("conflicts %v, placement only %v", c, a.OnlyPlacementDiffers(&b))
	}
}

// The OS disk's properties nothing gave are named as defaulted; a Trusted Launch OS disk's capture says
// what a failover loses.
func TestDefaultedBootPropertiesAndTrustedLaunchLoss(t *testing.T) {
	spec := machineSpec(replication.DiskSpec{Role: "os", OSType: "Windows"}, replication.DiskSpec{Role: "data"})
	spec.Normalize("g1")
	if got := spec.VMs[0].Disks[0].Defaulted; strings.Join(got, ",") != "hyperVGeneration,securityType" {
		t.Errorf("defaulted %v", got)
	}
	if got := spec.VMs[0].Disks[1].Defaulted; len(got) != 0 {
		t.Errorf("a data disk's defaults %v", got)
	}
	again := spec
	again.Normalize("g1")
	if got := again.VMs[0].Disks[0].Defaulted; len(got) != 2 {
		t.Errorf("normalising twice: %v", got)
	}
	tl := machineSpec(replication.DiskSpec{Role: "os", SecurityType: "TrustedLaunch", HyperVGeneration: "V2"})
	tl.Normalize("g1")
	if err := tl.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := tl.Captures()[0]; !strings.Contains(c.Note, "guest state (its vTPM and UEFI variables) is not replicated") {
		t.Errorf("the Trusted Launch disk's capture says nothing of its guest state: %q", c.Note)
	}
}
