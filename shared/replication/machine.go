package replication

import (
	"fmt"
	"regexp"
	"slices"
)

// What a failed-over VM needs of its spec besides the bytes of its disks: its size, which disk boots,
// and the properties the OS disk must keep to boot (Microsoft.Compute/disks: osType, hyperVGeneration,
// securityProfile; Microsoft.Compute/virtualMachines: securityProfile.securityType).
const (
	DiskRoleOS   = "os"
	diskRoleData = "data"

	defaultVMSize           = "Standard_D2s_v5"
	defaultOSType           = "Linux"
	defaultHyperVGeneration = "V1"
	defaultSecurityType     = "Standard"
	defaultDiskSKU          = "Standard_LRS"
)

var (
	osTypes           = []string{"Linux", "Windows"}
	hyperVGenerations = []string{"V1", "V2"}
	securityTypes     = []string{"Standard", "TrustedLaunch"}
	// diskSKUs are DiskSku.name's values (reference type definitions, microsoft.compute_2025-01-02.md).
	diskSKUs = []string{"Standard_LRS", "Premium_LRS", "StandardSSD_LRS", "UltraSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS", "PremiumV2_LRS"}
	// vmSizeName is an Azure VM size's form (Standard_D2s_v5, Basic_A1).
	vmSizeName = regexp.MustCompile(`^(Standard|Basic)_[A-Za-z0-9_]{1,60}$`)
)

// normalizeMachine fills what the spec leaves out: the first disk boots unless a role is given, and
// the OS disk's properties and every SKU take their defaults.
func (vm *VMSpec) normalizeMachine() {
	if vm.Size == "" {
		vm.Size = defaultVMSize
	}
	boot := vm.OSDiskIndex()
	for j := range vm.Disks {
		d := &vm.Disks[j]
		if d.Role == "" {
			d.Role = diskRoleData
			if j == boot {
				d.Role = DiskRoleOS
			}
		}
		if d.SKU == "" {
			d.SKU = defaultDiskSKU
		}
		if d.Role != DiskRoleOS {
			continue
		}
		for _, f := range []struct {
			name  string
			value *string
			def   string
		}{{"osType", &d.OSType, defaultOSType}, {"hyperVGeneration", &d.HyperVGeneration, defaultHyperVGeneration}, {"securityType", &d.SecurityType, defaultSecurityType}} {
			if *f.value == "" {
				*f.value = f.def
				d.Defaulted = append(d.Defaulted, f.name)
			}
		}
	}
}

// validateMachine checks the VM at (its JSON path) can be brought up: a size, exactly one OS disk with
// an OS type, generation and security type it can boot with, a SKU per disk.
func (vm VMSpec) validateMachine(at string) error {
	if !vmSizeName.MatchString(vm.Size) {
		return fmt.Errorf("%s.size: %q is not an Azure VM size (e.g. %s)", at, vm.Size, defaultVMSize)
	}
	osDisks := 0
	for j, d := range vm.Disks {
		at := fmt.Sprintf("%s.disks[%d]", at, j)
		if err := d.validateMachine(at); err != nil {
			return err
		}
		if err := vm.validateDiskSKU(at, d); err != nil {
			return err
		}
		if d.Role == DiskRoleOS {
			osDisks++
		}
	}
	if osDisks != 1 {
		return fmt.Errorf("%s.disks: a VM boots from exactly one disk with role %q, it has %d", at, DiskRoleOS, osDisks)
	}
	return nil
}

// validateDiskSKU refuses a SKU a failover cannot make or attach. Every failover disk is imported from
// its replica's VHD (createOption Import); the Disk RP's own rules (learn.microsoft.com, "Azure managed
// disk types", "Deploy a Premium SSD v2", Limitations):
//   - an Ultra Disk "can only be created as an empty disk" and is data-only: no failover can make one;
//   - a Premium SSD v2 "can't be used as an OS disk", "can only be attached to zonal VMs" and not to
//     VMs in an availability set; as a data disk of a zonal VM it is made (MachineDeployment attaches
//     it without host caching, which it does not support).
func (vm VMSpec) validateDiskSKU(at string, d DiskSpec) error {
	switch d.SKU {
	case "UltraSSD_LRS":
		return fmt.Errorf("%s.sku: UltraSSD_LRS cannot be failed over to: an Ultra Disk can only be created empty, and a failover imports every disk from its replica (createOption Import); use PremiumV2_LRS (a data disk of a zonal VM) or Premium_LRS", at)
	case "PremiumV2_LRS":
		switch {
		case d.Role == DiskRoleOS:
			return fmt.Errorf("%s.sku: PremiumV2_LRS can't be an OS disk (Azure's Premium SSD v2 limitations): use Premium_LRS or Premium_ZRS", at)
		case vm.Zone == "":
			return fmt.Errorf("%s.sku: a PremiumV2_LRS disk can only be attached to a zonal VM: give the VM a zone", at)
		case vm.AvailabilitySet != "":
			return fmt.Errorf("%s.sku: a PremiumV2_LRS disk can't be attached to a VM in an availability set", at)
		}
	}
	return nil
}

func (d DiskSpec) validateMachine(at string) error {
	oneOf := func(field, v string, allowed []string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%s.%s: %q, want one of %v", at, field, v, allowed)
		}
		return nil
	}
	if err := oneOf("role", d.Role, []string{DiskRoleOS, diskRoleData}); err != nil {
		return err
	}
	if err := oneOf("sku", d.SKU, diskSKUs); err != nil {
		return err
	}
	if d.ManagedDisk != "" && !managedDiskID.MatchString(d.ManagedDisk) {
		return fmt.Errorf("%s.managedDisk: %q is not a managed disk's resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/disks/<name>)", at, d.ManagedDisk)
	}
	if d.Role == diskRoleData {
		if d.OSType != "" || d.HyperVGeneration != "" || d.SecurityType != "" || len(d.Defaulted) > 0 {
			return fmt.Errorf("%s: osType, hyperVGeneration and securityType belong to the OS disk, this is a data disk", at)
		}
		return nil
	}
	for _, c := range []struct {
		field, v string
		allowed  []string
	}{{"osType", d.OSType, osTypes}, {"hyperVGeneration", d.HyperVGeneration, hyperVGenerations}, {"securityType", d.SecurityType, securityTypes}} {
		if err := oneOf(c.field, c.v, c.allowed); err != nil {
			return err
		}
	}
	if d.SecurityType == "TrustedLaunch" && d.HyperVGeneration != "V2" {
		return fmt.Errorf("%s.securityType: TrustedLaunch needs hyperVGeneration V2 (UEFI), this disk is %s", at, d.HyperVGeneration)
	}
	return nil
}

// OSDiskIndex is the index of the disk the VM boots from, as normalisation decides it: the one with
// role "os"; when no disk has a role, the first; -1 when roles are given and none is "os".
func (vm VMSpec) OSDiskIndex() int {
	for j, d := range vm.Disks {
		if d.Role == DiskRoleOS {
			return j
		}
	}
	for _, d := range vm.Disks {
		if d.Role != "" {
			return -1
		}
	}
	if len(vm.Disks) == 0 {
		return -1
	}
	return 0
}

// OSDisk is the disk the VM boots from.
func (vm VMSpec) OSDisk() DiskSpec {
	for _, d := range vm.Disks {
		if d.Role == DiskRoleOS {
			return d
		}
	}
	return vm.Disks[0] // a spec stored before roles: the first disk boots
}

// machineConflicts lists what differs in what the VMs are brought up as; it changes in place, as
// placement does: replication never reads it.
func machineConflicts(a, b VMSpec, vm int, diff func(path string, x, y any)) {
	diff(fmt.Sprintf("vms[%d].size", vm), a.Size, b.Size)
	for j := 0; j < len(a.Disks) && j < len(b.Disks); j++ {
		x, y := a.Disks[j], b.Disks[j]
		x.Name, x.SizeBytes, x.Source, y.Name, y.SizeBytes, y.Source = "", 0, "", "", 0, ""
		diff(fmt.Sprintf("vms[%d].disks[%d] (role, osType, hyperVGeneration, securityType, sku, managedDisk)", vm, j), x, y)
	}
}

// withoutMachine is the VM without what machineConflicts compares.
func (vm VMSpec) withoutMachine() VMSpec {
	vm.Size = ""
	vm.Disks = slices.Clone(vm.Disks)
	for j := range vm.Disks {
		d := &vm.Disks[j]
		d.Role, d.OSType, d.HyperVGeneration, d.SecurityType, d.SKU, d.ManagedDisk, d.Defaulted = "", "", "", "", "", "", nil
	}
	return vm
}

// managedDiskID is the grammar of a managed disk's resource id (a disk name: 1-80 letters, digits,
// '_', '-' or '.').
var managedDiskID = regexp.MustCompile(`^/subscriptions/([A-Za-z0-9-]{1,64})/resourceGroups/([-\w._()]{1,90})/providers/Microsoft\.Compute/disks/([A-Za-z0-9_][A-Za-z0-9_.-]{0,79})$`)

// ResourceGroupOfDisk is the resource group of a managed disk's id ("" for anything else).
func ResourceGroupOfDisk(id string) string {
	if m := managedDiskID.FindStringSubmatch(id); m != nil {
		return m[2]
	}
	return ""
}

// resourceGroupName is Azure's resource-group grammar: 1-90 letters, digits, underscores, hyphens,
// periods and parentheses, not ending in a period.
var resourceGroupName = regexp.MustCompile(`^[-\w._()]{0,89}[-\w_()]$`)

// ValidResourceGroupName reports whether name follows Azure's resource-group grammar.
func ValidResourceGroupName(name string) bool { return resourceGroupName.MatchString(name) }

// ResourceGroupName is where the group's failed-over VMs come up: the spec's, else the group's name
// with "-asr", as Site Recovery names the recovery resource group.
func (t TargetSpec) ResourceGroupName(group string) string {
	if t.ResourceGroup != "" {
		return t.ResourceGroup
	}
	return group + "-asr"
}

func (t TargetSpec) validateResourceGroup() error {
	if t.ResourceGroup != "" && !resourceGroupName.MatchString(t.ResourceGroup) {
		return fmt.Errorf("target.resourceGroup: %q is not a resource group name (1-90 letters, digits, _ - . ( ), not ending in .)", t.ResourceGroup)
	}
	return nil
}
