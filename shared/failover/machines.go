package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// machineDefinitions writes, for each VM, an ARM template attaching its materialized disks next to the
// disks (<vm>.template.json) for automation to deploy, and into the job's result while they fit well
// inside a Table storage property (a 16-VM group of 64-disk VMs would not).
func machineDefinitions(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	j.Result = map[string]string{"container": j.Container, "point": j.PointID, "pointTime": j.PointTime.Format(time.RFC3339Nano)}
	if t, ok := j.Work["effectiveTime"]; ok {
		j.Result["effectiveTime"] = t
	}
	disk := func(key string) replication.DiskRef { return replication.DiskIn(j.Container, key) }
	if inPlace(j, g) {
		disk = g.TargetDisk
		j.Result["inPlace"] = "true"
	}
	inline := 0
	for _, vm := range g.Spec.VMs {
		tpl, err := armTemplate(vm, disk, g.Spec.Network, j.Type == JobTestFailover)
		if err != nil {
			return "", 0, permanentError{err}
		}
		ref := TemplateBlob(j.Container, vm.Name)
		if err := r.Pages.PutBlob(ctx, ref, []byte(tpl), "application/json"); err != nil {
			return "", 0, err
		}
		j.Result["templateUrl:"+vm.Name] = r.Pages.URL(ref)
		if inline += len(tpl); inline <= maxInlineTemplates {
			j.Result["template:"+vm.Name] = tpl
		}
	}
	where := "next to the disks and in the result"
	if inline > maxInlineTemplates {
		where = "next to the disks (too large for the result: templateUrl:<vm> names them)"
	}
	return fmt.Sprintf("%d machine definitions %s", len(g.Spec.VMs), where), 0, nil
}

// maxInlineTemplates bounds the templates a job's result carries (a Table property holds 64 KiB).
const maxInlineTemplates = 16 << 10

// TemplateBlob is where a VM's machine definition is written, next to its materialized disks.
func TemplateBlob(container, vm string) replication.DiskRef {
	return replication.DiskRef{Container: container, Name: vm + ".template.json"}
}

// armTemplate is a VM's deployment: a NIC in the mapped target subnet (the isolated test subnet for a
// test failover) keeping the VM's static IP, the VM in its zone, the materialized disks attached.
func armTemplate(vm replication.VMSpec, disk func(key string) replication.DiskRef, network replication.NetworkSpec, test bool) (string, error) {
	subnet := map[string]any{"type": "string"}
	if m, ok := network.MappingFor(vm.Subnet); ok {
		target := m.Target
		if test {
			if m.Test == "" {
				return "", replication.NoTestSubnet(vm)
			}
			target = m.Test
		}
		vnet, sub, _ := strings.Cut(target, "/")
		subnet["defaultValue"] = fmt.Sprintf("[resourceId('Microsoft.Network/virtualNetworks/subnets', '%s', '%s')]", vnet, sub)
	}
	ipConfig := map[string]any{"subnet": map[string]any{"id": "[parameters('subnetId')]"}, "privateIPAllocationMethod": "Dynamic"}
	if vm.StaticIP != "" {
		ipConfig["privateIPAllocationMethod"], ipConfig["privateIPAddress"] = "Static", vm.StaticIP
	}
	var disks []map[string]any
	for i, d := range vm.Disks {
		disks = append(disks, map[string]any{"lun": i, "name": vm.Name + "-" + d.Name, "createOption": "Attach",
			"vhdUri":     fmt.Sprintf("[concat(parameters('storageBlobEndpoint'), '%s')]", disk(replication.DiskKey(vm.Name, d.Name))),
			"diskSizeGB": (d.SizeBytes + 1<<30 - 1) >> 30})
	}
	tpl := map[string]any{
		"$schema":        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
		"contentVersion": "1.0.0.0",
		"parameters": map[string]any{"storageBlobEndpoint": map[string]any{"type": "string"},
			"subnetId": subnet, "vmSize": map[string]any{"type": "string", "defaultValue": "Standard_D2s_v5"}},
		"resources": []any{
			map[string]any{"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-09-01", "name": vm.Name + "-nic",
				"location":   "[resourceGroup().location]",
				"properties": map[string]any{"ipConfigurations": []any{map[string]any{"name": "ipconfig1", "properties": ipConfig}}}},
			vmResource(vm, disks),
		},
	}
	if vm.AvailabilitySet != "" { // every VM's deployment declares the set: deploying it again changes nothing
		tpl["resources"] = append(tpl["resources"].([]any), map[string]any{"type": "Microsoft.Compute/availabilitySets",
			"apiVersion": "2023-09-01", "name": vm.AvailabilitySet, "location": "[resourceGroup().location]",
			"sku":        map[string]any{"name": "Classic"}, // the disks are page blobs (unmanaged)
			"properties": map[string]any{"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}})
	}
	data, err := json.Marshal(tpl)
	return string(data), err
}

func vmResource(vm replication.VMSpec, disks []map[string]any) map[string]any {
	res := map[string]any{"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-09-01", "name": vm.Name,
		"location": "[resourceGroup().location]", "dependsOn": []string{vm.Name + "-nic"},
		"properties": map[string]any{"hardwareProfile": map[string]any{"vmSize": "[parameters('vmSize')]"},
			"storageProfile": map[string]any{"dataDisks": disks},
			"networkProfile": map[string]any{"networkInterfaces": []any{map[string]any{"id": "[resourceId('Microsoft.Network/networkInterfaces', '" + vm.Name + "-nic')]"}}}}}
	if vm.Zone != "" {
		res["zones"] = []string{vm.Zone}
	}
	if vm.AvailabilitySet != "" {
		res["dependsOn"] = []string{vm.Name + "-nic", vm.AvailabilitySet}
		res["properties"].(map[string]any)["availabilitySet"] = map[string]any{
			"id": "[resourceId('Microsoft.Compute/availabilitySets', '" + vm.AvailabilitySet + "')]"}
	}
	return res
}
