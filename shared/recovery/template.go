package recovery

import (
	"fmt"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// A VM's deployment is built as data: every name, address and id the spec gives travels as a template
// parameter, and the template's expressions only read parameters and build resource ids from them
// (parameters(), resourceId(), resourceGroup()) — no user string is ever pasted into an expression.
// The apiVersions are the ones in the published type definitions the template is checked against
// (../shared/reference/azure-types): Compute disks 2025-01-02, VMs and availability sets 2025-04-01,
// Network 2024-05-01.
const (
	apiDisks    = "2025-01-02"
	apiCompute  = "2025-04-01"
	apiNetwork  = "2024-05-01"
	schemaARM   = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
	exprRGPlace = "[resourceGroup().location]"
)

// Template is an ARM deployment template.
type Template struct {
	Schema         string                    `json:"$schema"`
	ContentVersion string                    `json:"contentVersion"`
	Parameters     map[string]map[string]any `json:"parameters"`
	Resources      []map[string]any          `json:"resources"`
}

// MachinePlan is what one VM's deployment needs besides its spec.
type MachinePlan struct {
	VM replication.VMSpec
	// StorageAccountID is the account holding the VHD copies the managed disks import.
	StorageAccountID string
	// DiskURL is each disk's VHD copy, by disk key.
	DiskURL func(key string) string
	// Subnet is the target subnet: "vnet/subnet" of the deployment's resource group, or a full id.
	Subnet string
	// Isolated marks a test failover's VM: its NIC is tagged so, and a network that honours the tag (the
	// local compute's) gives it none; in Azure the isolated test subnet does that.
	Isolated bool
	// DynamicIP gives the NIC a dynamic address instead of the VM's static one (a drill's test subnet
	// that does not hold it).
	DynamicIP bool
	// Suffix makes the resource names of one job's VMs distinct from another's (a test failover's VMs
	// run beside production ones): the job id's first eight digits.
	Suffix string
}

// MachineDeployment is a VM's template and its parameter values: managed disks imported from the VHD
// copies (createOption Import: a fixed VHD becomes a managed disk without a snapshot step), a NIC in
// the subnet keeping the static IP, and the VM attaching its OS disk (with its OS type) and data disks,
// in its zone or its availability set (made on enable with the subnets: TargetSite).
func MachineDeployment(p MachinePlan) (Template, map[string]any) {
	vm := p.VM
	values := map[string]any{"vmName": vm.Name + "-" + p.Suffix, "vmSize": vm.Size, "nicName": vm.Name + "-" + p.Suffix + "-nic",
		"storageAccountId": p.StorageAccountID}
	t := Template{Schema: schemaARM, ContentVersion: "1.0.0.0", Parameters: map[string]map[string]any{}}
	for name := range values {
		t.Parameters[name] = map[string]any{"type": "string"}
	}
	param := func(name string, value any) string {
		values[name], t.Parameters[name] = value, map[string]any{"type": "string"}
		return "[parameters('" + name + "')]"
	}
	var dependsOn []string
	var osDisk map[string]any
	dataDisks := []any{}
	for i, d := range vm.Disks {
		name := fmt.Sprintf("disk%dName", i)
		param(name, fmt.Sprintf("%s-%s-%s", vm.Name, d.Name, p.Suffix))
		t.Resources = append(t.Resources, managedDisk(vm, d, name, param(fmt.Sprintf("disk%dSource", i), p.DiskURL(replication.DiskKey(vm.Name, d.Name)))))
		dependsOn = append(dependsOn, "[resourceId('Microsoft.Compute/disks', parameters('"+name+"'))]")
		attached := map[string]any{"createOption": "Attach", "managedDisk": map[string]any{"id": dependsOn[len(dependsOn)-1]}}
		if d.Role == replication.DiskRoleOS {
			attached["osType"] = d.OSType
			osDisk = attached
			continue
		}
		attached["lun"] = len(dataDisks)
		if d.SKU == "PremiumV2_LRS" {
			attached["caching"] = "None" // Premium SSD v2 has no host caching
		}
		dataDisks = append(dataDisks, attached)
	}
	t.Resources = append(t.Resources, nic(vm, p, param))
	dependsOn = append(dependsOn, "[resourceId('Microsoft.Network/networkInterfaces', parameters('nicName'))]")
	props := map[string]any{
		"hardwareProfile": map[string]any{"vmSize": "[parameters('vmSize')]"},
		"storageProfile":  map[string]any{"osDisk": osDisk, "dataDisks": dataDisks},
		"networkProfile":  map[string]any{"networkInterfaces": []any{map[string]any{"id": dependsOn[len(dependsOn)-1]}}},
		// Managed boot diagnostics (no storageUri): the serial log a VM that never comes up is judged by.
		"diagnosticsProfile": map[string]any{"bootDiagnostics": map[string]any{"enabled": true}},
	}
	if vm.OSDisk().SecurityType == "TrustedLaunch" {
		props["securityProfile"] = map[string]any{"securityType": "TrustedLaunch",
			"uefiSettings": map[string]any{"secureBootEnabled": true, "vTpmEnabled": true}}
	}
	if vm.AvailabilitySet != "" { // made on enable (TargetSite)
		param("availabilitySetName", vm.AvailabilitySet)
		props["availabilitySet"] = map[string]any{"id": "[resourceId('Microsoft.Compute/availabilitySets', parameters('availabilitySetName'))]"}
	}
	machine := map[string]any{"type": "Microsoft.Compute/virtualMachines", "apiVersion": apiCompute, "name": "[parameters('vmName')]",
		"location": exprRGPlace, "dependsOn": dependsOn, "properties": props}
	if vm.Zone != "" {
		machine["zones"] = []any{param("zone", vm.Zone)}
	}
	t.Resources = append(t.Resources, machine)
	return t, values
}

// managedDisk is a managed disk imported from a fixed VHD, in the VM's zone unless zone-redundant.
func managedDisk(vm replication.VMSpec, d replication.DiskSpec, nameParam, source string) map[string]any {
	props := map[string]any{"creationData": map[string]any{"createOption": "Import", "sourceUri": source,
		"storageAccountId": "[parameters('storageAccountId')]"}}
	if d.Role == replication.DiskRoleOS {
		props["osType"], props["hyperVGeneration"] = d.OSType, d.HyperVGeneration
		if d.SecurityType == "TrustedLaunch" {
			props["securityProfile"] = map[string]any{"securityType": "TrustedLaunch"}
		}
	}
	disk := map[string]any{"type": "Microsoft.Compute/disks", "apiVersion": apiDisks, "name": "[parameters('" + nameParam + "')]",
		"location": exprRGPlace, "sku": map[string]any{"name": d.SKU}, "properties": props}
	// A zone-redundant disk has no zone: the Disk RP refuses "a disk with sku 'Premium_ZRS' cannot be
	// created in an availability zone"; a zonal VM attaches it as it is.
	if vm.Zone != "" && !strings.HasSuffix(d.SKU, "_ZRS") {
		disk["zones"] = []any{"[parameters('zone')]"}
	}
	return disk
}

// nic is the VM's network interface in the target subnet, keeping its static IP.
func nic(vm replication.VMSpec, p MachinePlan, param func(string, any) string) map[string]any {
	var subnet string
	if vnet, sub, ok := strings.Cut(p.Subnet, "/"); ok && !strings.HasPrefix(p.Subnet, "/") {
		// A "vnet/subnet" of the deployment's resource group: its id is built from the two names.
		param("vnetName", vnet)
		param("subnetName", sub)
		subnet = "[resourceId('Microsoft.Network/virtualNetworks/subnets', parameters('vnetName'), parameters('subnetName'))]"
	} else {
		subnet = param("subnetId", p.Subnet) // a full resource id
	}
	ip := map[string]any{"subnet": map[string]any{"id": subnet}, "privateIPAllocationMethod": "Dynamic"}
	if vm.StaticIP != "" && !p.DynamicIP {
		ip["privateIPAllocationMethod"], ip["privateIPAddress"] = "Static", param("privateIPAddress", vm.StaticIP)
	}
	res := map[string]any{"type": "Microsoft.Network/networkInterfaces", "apiVersion": apiNetwork, "name": "[parameters('nicName')]",
		"location": exprRGPlace, "properties": map[string]any{"ipConfigurations": []any{map[string]any{"name": "ipconfig1", "properties": ip}}}}
	if p.Isolated {
		res["tags"] = map[string]any{"standby-isolated": "true"}
	}
	return res
}
