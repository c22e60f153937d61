package localcompute

import (
	"context"
	"fmt"
	"strings"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// resource is one evaluated resource of a deployment.
type resource struct {
	Type, APIVersion, Name, ID string
	Body                       map[string]any
}

// evaluate resolves the deployment's expressions: every template parameter needs a value, every value
// a parameter, and every expression one the local compute understands.
func evaluate(rg string, req recovery.DeploymentRequest) ([]resource, error) {
	values := map[string]any{}
	for name, v := range req.Properties.Parameters {
		if _, ok := req.Properties.Template.Parameters[name]; !ok {
			return nil, fmt.Errorf("%w: parameters.%s: the template declares no such parameter", replication.ErrInvalid, name)
		}
		values[name] = v["value"]
	}
	for name := range req.Properties.Template.Parameters {
		if _, ok := values[name]; !ok {
			return nil, fmt.Errorf("%w: parameters.%s: the template's parameter has no value", replication.ErrInvalid, name)
		}
	}
	e := evaluator{rg: rg, values: values}
	var out []resource
	for i, raw := range req.Properties.Template.Resources {
		v, err := e.value(raw)
		if err != nil {
			return nil, fmt.Errorf("resources[%d].%w", i, err)
		}
		body := v.(map[string]any)
		r := resource{Body: body}
		r.Type, _ = body["type"].(string)
		r.APIVersion, _ = body["apiVersion"].(string)
		r.Name, _ = body["name"].(string)
		if r.ID, err = ResourceID(rg, r.Type, strings.Split(r.Name, "/")...); err != nil { // a child's name is "parent/child"
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// check refuses what the resource providers would refuse: a property the published type definitions
// do not have (or a required one missing), then the rules behind them, each from the definitions' own
// words (../shared/reference/azure-types) or Azure's announcements:
//   - a VM boots from one managed OS disk attached with its OS type (OSDisk.osType: "the type of the OS
//     that is included in the disk if creating a VM from ... a specialized VHD", microsoft.compute_2025-
//     04-01.md:824); unmanaged disks (OSDisk.vhd) are retired since 31 March 2026;
//   - its disks are in its zone;
//   - an availability set of managed-disk VMs is Aligned ("Use 'Aligned' for virtual machines with
//     managed disks", microsoft.compute_2025-04-01.md:12);
//   - an imported disk names its storage account ("Required if createOption is Import",
//     microsoft.compute_2025-01-02.md:154) and is a fixed VHD (provision.go).
func (c *Compute) check(ctx context.Context, rs []resource) error {
	byID := map[string]resource{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	for i, r := range rs {
		at := fmt.Sprintf("resources[%d] (%s '%s')", i, r.Type, r.Name)
		if c.Types != nil {
			if errs := c.Types.Check(r.Type, r.APIVersion, r.Body); len(errs) > 0 {
				return fmt.Errorf("%w: %s: %v", replication.ErrInvalid, at, errs[0])
			}
		}
		var err error
		switch r.Type {
		case "Microsoft.Compute/virtualMachines":
			err = c.checkVM(r, byID)
		case "Microsoft.Compute/availabilitySets":
			if name, _ := dig(r.Body, "sku", "name").(string); name != "Aligned" {
				err = fmt.Errorf("sku.name: %q: VMs with managed disks need an Aligned availability set", name)
			}
		case "Microsoft.Compute/disks":
			err = c.checkImport(ctx, r)
		case "Microsoft.Network/networkInterfaces":
			err = c.checkNIC(r, byID)
		case "Microsoft.Network/virtualNetworks":
			err = checkVNet(r)
		case "Microsoft.Network/virtualNetworks/subnets":
			err = c.checkSubnet(r, byID)
		default:
			err = fmt.Errorf("type: the local compute deploys disks, NICs, virtual networks, subnets, availability sets and VMs, not %s", r.Type)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", replication.ErrInvalid, at, err)
		}
	}
	return nil
}

// checkVM applies the Compute provider's rules of a VM's disks.
func (c *Compute) checkVM(r resource, byID map[string]resource) error {
	os, _ := dig(r.Body, "properties", "storageProfile", "osDisk").(map[string]any)
	if os == nil {
		return fmt.Errorf("properties.storageProfile.osDisk: required (Required parameter 'osDisk' is missing)")
	}
	if dig(os, "vhd") != nil {
		return fmt.Errorf("properties.storageProfile.osDisk.vhd: unmanaged disks were retired on 31 March 2026: attach a managed disk")
	}
	if t, _ := os["osType"].(string); t != "Linux" && t != "Windows" {
		return fmt.Errorf("properties.storageProfile.osDisk.osType: %q: an attached OS disk needs its OS type", t)
	}
	disks := []any{os}
	data, _ := dig(r.Body, "properties", "storageProfile", "dataDisks").([]any)
	disks = append(disks, data...)
	zones := fmt.Sprint(r.Body["zones"])
	for i, d := range disks {
		at := "properties.storageProfile.osDisk"
		if i > 0 {
			at = fmt.Sprintf("properties.storageProfile.dataDisks[%d]", i-1)
		}
		if opt, _ := dig(d, "createOption").(string); opt != "Attach" {
			return fmt.Errorf("%s.createOption: %q: a failed-over VM attaches its imported disks", at, opt)
		}
		id, _ := dig(d, "managedDisk", "id").(string)
		disk, ok := byID[id]
		if !ok {
			return fmt.Errorf("%s.managedDisk.id: %q is not a disk of this deployment", at, id)
		}
		if fmt.Sprint(disk.Body["zones"]) != zones {
			return fmt.Errorf("%s: disk %s is in zones %v, the VM in %v: a disk must be in its VM's zone", at, disk.Name, disk.Body["zones"], r.Body["zones"])
		}
	}
	if set, _ := dig(r.Body, "properties", "availabilitySet", "id").(string); set != "" && r.Body["zones"] != nil {
		return fmt.Errorf("zones: a VM in an availability set has no zone")
	}
	return c.checkReference(r, byID, "properties.availabilitySet.id", dig(r.Body, "properties", "availabilitySet", "id"))
}

// dig walks a decoded JSON value by keys and indexes (nil when a step is missing).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}
