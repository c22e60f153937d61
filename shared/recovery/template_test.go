package recovery_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

func machine(zone, avset, security string) replication.VMSpec {
	spec := replication.GroupSpec{Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "src/db", Target: "prod-vnet/db", Test: "test-vnet/db"}}},
		VMs: []replication.VMSpec{{Name: "db", Subnet: "src/db", StaticIP: "10.1.0.7", Zone: zone, AvailabilitySet: avset,
			Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 64 << 20, Source: "agent", SecurityType: security, HyperVGeneration: map[bool]string{true: "V2", false: "V1"}[security != ""]},
				{Name: "data", SizeBytes: 32 << 20, Source: "agent", SKU: "Premium_LRS"}}}}}
	spec.Normalize("g1")
	if err := spec.Validate(); err != nil {
		panic(err)
	}
	return spec.VMs[0]
}

// A zone-redundant disk of a zonal VM gets no zone (the Disk RP refuses one), a locally redundant one
// gets the VM's; a Premium SSD v2 data disk is attached without host caching; all of it passes the
// published type definitions.
func TestDiskZonesAndCachingFollowTheSKU(t *testing.T) {
	cat := testenv.PublishedTypes(t)
	vm := machine("2", "", "")
	vm.Disks[0].SKU = "Premium_ZRS"
	vm.Disks = append(vm.Disks, replication.DiskSpec{Name: "logs", SizeBytes: 32 << 20, Source: "agent", Role: "data", SKU: "PremiumV2_LRS"})
	tpl, _ := recovery.MachineDeployment(recovery.MachinePlan{VM: vm, Subnet: "prod-vnet/db", Suffix: "0123abcd",
		StorageAccountID: "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/tgt",
		DiskURL:          func(key string) string { return "https://tgt.blob.core.windows.net/g1-failover/" + key + ".vhd" }})
	zones := map[string]bool{}
	var vmRes map[string]any
	for _, res := range tpl.Resources {
		for _, err := range cat.Check(res["type"].(string), res["apiVersion"].(string), res) {
			t.Error(err)
		}
		switch res["type"] {
		case "Microsoft.Compute/disks":
			_, zonal := res["zones"]
			zones[res["sku"].(map[string]any)["name"].(string)] = zonal
		case "Microsoft.Compute/virtualMachines":
			vmRes = res
		}
	}
	if zones["Premium_ZRS"] || !zones["Premium_LRS"] || !zones["PremiumV2_LRS"] {
		t.Errorf("zonal by SKU: %v", zones)
	}
	data := vmRes["properties"].(map[string]any)["storageProfile"].(map[string]any)["dataDisks"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["caching"] != nil || data[1].(map[string]any)["caching"] != "None" {
		t.Errorf("data disks %v", data)
	}
	if _, zonal := vmRes["zones"]; !zonal {
		t.Error("the VM lost its zone")
	}
}

// Every resource of a VM's deployment passes the published type definitions, and no name the spec gives
// appears in the template itself: they travel as parameter values.
func TestMachineDeploymentPassesTheTypeDefinitions(t *testing.T) {
	cat := testenv.PublishedTypes(t)
	for name, vm := range map[string]replication.VMSpec{"zone": machine("2", "", ""), "availability set": machine("", "db-set", ""),
		"trusted launch": machine("", "", "TrustedLaunch")} {
		tpl, values := recovery.MachineDeployment(recovery.MachinePlan{VM: vm, Subnet: "prod-vnet/db", Suffix: "0123abcd",
			StorageAccountID: "/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/tgt",
			DiskURL:          func(key string) string { return "https://tgt.blob.core.windows.net/g1-failover/" + key + ".vhd" }})
		for _, res := range tpl.Resources {
			typ, api := res["type"].(string), res["apiVersion"].(string)
			for _, err := range cat.Check(typ, api, res) {
				t.Errorf("%s: %v", name, err)
			}
		}
		text, _ := json.Marshal(tpl)
		for _, literal := range []string{"db-set", "prod-vnet", "10.1.0.7", "tgt.blob", "Microsoft.Storage/storageAccounts/tgt", "db-os-0123abcd"} {
			if strings.Contains(string(text), literal) {
				t.Errorf("%s: the template itself holds %q: user strings travel only as parameters", name, literal)
			}
		}
		for p := range tpl.Parameters {
			if _, ok := values[p]; !ok {
				t.Errorf("%s: parameter %s has no value", name, p)
			}
		}
	}
	// The check is not blind: a misspelt property is refused.
	tpl, _ := recovery.MachineDeployment(recovery.MachinePlan{VM: machine("", "", ""), Subnet: "v/s", Suffix: "x", DiskURL: func(string) string { return "u" }})
	vmRes := tpl.Resources[len(tpl.Resources)-1]
	vmRes["properties"].(map[string]any)["hardwarProfile"] = vmRes["properties"].(map[string]any)["hardwareProfile"]
	if errs := cat.Check("Microsoft.Compute/virtualMachines", "2025-04-01", vmRes); len(errs) == 0 {
		t.Fatal("a misspelt property passed the check")
	}
}

// A hostile name — an original disk's blob name built to close the expression and call listKeys —
// reaches the template only as a parameter's value, never as part of an expression.
func TestHostileNamesStayParameters(t *testing.T) {
	hostile := "x')], \"y\": \"[listKeys('acct', '2023-01-01').keys[0].value]"
	vm := replication.VMSpec{Name: "vm", Size: "Standard_D2s_v5", StaticIP: "10.0.0.4", AvailabilitySet: "set",
		Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Role: "os", OSType: "Linux", HyperVGeneration: "V1", SecurityType: "Standard", SKU: "Standard_LRS"}}}
	tpl, values := recovery.MachineDeployment(recovery.MachinePlan{VM: vm, Subnet: "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/subnets/" + hostile,
		StorageAccountID: hostile, Suffix: "01234567", DiskURL: func(string) string { return "https://a.blob.core.windows.net/c/" + hostile }})
	doc, _ := json.Marshal(tpl)
	if strings.Contains(string(doc), "listKeys") {
		t.Fatalf("a hostile string reached the template's expressions:\n%s", doc)
	}
	found := 0
	for _, v := range values {
		if s, ok := v.(string); ok && strings.Contains(s, "listKeys") {
			found++
		}
	}
	if found != 3 {
		t.Fatalf("the hostile strings should travel as 3 parameter values, found %d", found)
	}
}
