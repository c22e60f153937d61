package recovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// TargetSite makes a group's target resources on the Compute port, as Site Recovery does on enable:
// the recovery resource group, the subnets of the network mapping and the isolated test subnets, and the
// availability sets (Aligned). What exists is used as it is — an existing virtual network is never
// redeployed, since a PUT would replace its subnets — and what is missing goes into one deployment whose
// name is a digest of its content, so that enabling again deploys nothing twice.
type TargetSite struct{ Compute Compute }

var _ replication.TargetProvisioner = TargetSite{}

// newSubnet is a subnet to create: where the spec asks for it, its virtual network and its prefix.
type newSubnet struct {
	field, vnet, name string
	prefix            netip.Prefix
}

// Provision finds or makes the group's target resources.
func (t TargetSite) Provision(ctx context.Context, group string, spec replication.GroupSpec) (replication.TargetResources, error) {
	rg := spec.Target.ResourceGroupName(group)
	if err := t.checkAccess(ctx, rg); err != nil {
		return replication.TargetResources{}, err
	}
	rgID, err := t.Compute.EnsureResourceGroup(ctx, rg)
	if err != nil {
		return replication.TargetResources{}, fmt.Errorf("target.resourceGroup %s: %w", rg, err)
	}
	res := replication.TargetResources{ResourceGroup: rg, ResourceGroupID: rgID, Subnets: map[string]string{}}
	var missing []newSubnet
	for i, m := range spec.Network.Mappings {
		for _, s := range []struct{ field, subnet, prefix string }{{"target", m.Target, m.TargetPrefix}, {"test", m.Test, m.TestPrefix}} {
			if s.subnet == "" {
				continue
			}
			at := fmt.Sprintf("network.mappings[%d].%s", i, s.field)
			id, create, err := t.subnet(ctx, rgID, at, s.subnet, s.prefix)
			if err != nil {
				return res, err
			}
			res.Subnets[s.subnet] = id
			if create != nil {
				missing = append(missing, *create)
			}
		}
	}
	var sets []string
	for _, vm := range spec.VMs {
		if vm.AvailabilitySet != "" && !slices.Contains(sets, vm.AvailabilitySet) {
			sets = append(sets, vm.AvailabilitySet)
			res.AvailabilitySets = append(res.AvailabilitySets, rgID+"/providers/Microsoft.Compute/availabilitySets/"+vm.AvailabilitySet)
		}
	}
	req, created, err := t.targetDeployment(ctx, rgID, missing, sets)
	if err != nil || len(created) == 0 {
		res.State = replication.TargetsSucceeded
		return res, err
	}
	doc, _ := json.Marshal(req)
	sum := sha256.Sum256(doc)
	res.Deployment, res.Created = "standby-target-"+hex.EncodeToString(sum[:8]), created
	if err := t.Compute.Deploy(ctx, rg, res.Deployment, req); err != nil {
		return res, fmt.Errorf("the target resources' deployment: %w", err)
	}
	return t.Refresh(ctx, res)
}

// Refresh reads the deployment's state.
func (t TargetSite) Refresh(ctx context.Context, res replication.TargetResources) (replication.TargetResources, error) {
	if res.Deployment == "" {
		return res, nil
	}
	d, err := t.Compute.Deployment(ctx, res.ResourceGroup, res.Deployment)
	if err != nil {
		return res, err
	}
	res.State, res.Error = d.State, d.Error
	return res, nil
}

// subnet resolves one mapping subnet to its id: a full id must exist; "vnet/subnet" of the recovery
// resource group is used when it exists, else made from its prefix.
func (t TargetSite) subnet(ctx context.Context, rgID, at, subnet, prefix string) (string, *newSubnet, error) {
	if replication.IsSubnetID(subnet) {
		ok, err := t.Compute.Exists(ctx, subnet)
		if err == nil && !ok {
			err = fmt.Errorf("%w: %s: subnet %s does not exist", replication.ErrInvalid, at, subnet)
		}
		return subnet, nil, err
	}
	vnet, name, _ := strings.Cut(subnet, "/")
	id := rgID + "/providers/Microsoft.Network/virtualNetworks/" + vnet + "/subnets/" + name
	ok, err := t.Compute.Exists(ctx, id)
	if err != nil || ok {
		return id, nil, err
	}
	if prefix == "" {
		return id, nil, fmt.Errorf("%w: %sPrefix: subnet %s does not exist in the recovery resource group: give its address prefix to have it created", replication.ErrInvalid, at, subnet)
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return id, nil, fmt.Errorf("%w: %sPrefix: %v", replication.ErrInvalid, at, err)
	}
	return id, &newSubnet{field: at, vnet: vnet, name: name, prefix: p.Masked()}, nil
}

// targetDeployment is the template of what is missing, built as data (names and prefixes are
// parameters): a virtual network that does not exist comes whole, with its new subnets and an address
// space of their prefixes; a new subnet of an existing one comes as a child resource.
func (t TargetSite) targetDeployment(ctx context.Context, rgID string, missing []newSubnet, sets []string) (DeploymentRequest, []string, error) {
	tpl := Template{Schema: schemaARM, ContentVersion: "1.0.0.0", Parameters: map[string]map[string]any{}}
	values := map[string]any{}
	param := func(value any) string {
		name := fmt.Sprintf("p%d", len(values))
		values[name], tpl.Parameters[name] = value, map[string]any{"type": "string"}
		return "[parameters('" + name + "')]"
	}
	var created []string
	byVNet := map[string][]newSubnet{}
	var order []string
	for _, s := range missing {
		if byVNet[s.vnet] == nil {
			order = append(order, s.vnet)
		}
		byVNet[s.vnet] = append(byVNet[s.vnet], s)
	}
	for _, vnet := range order {
		vnetID := rgID + "/providers/Microsoft.Network/virtualNetworks/" + vnet
		exists, err := t.Compute.Exists(ctx, vnetID)
		if err != nil {
			return DeploymentRequest{}, nil, err
		}
		var inline, space []any
		previous := "" // the subnet made before this one in the same network
		for _, s := range byVNet[vnet] {
			created = append(created, vnetID+"/subnets/"+s.name)
			props := map[string]any{"addressPrefix": param(s.prefix.String())}
			if exists {
				subnet := map[string]any{"type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": apiNetwork,
					"name": param(vnet + "/" + s.name), "properties": props} // a child's name is "parent/child"
				// One after another: the Network RP refuses a second change of a network while one runs
				// (AnotherOperationInProgress), and ARM deploys resources without dependsOn in parallel.
				if previous != "" {
					subnet["dependsOn"] = []any{previous}
				}
				previous = "[resourceId('Microsoft.Network/virtualNetworks/subnets', " + strings.TrimSuffix(strings.TrimPrefix(param(vnet), "["), "]") +
					", " + strings.TrimSuffix(strings.TrimPrefix(param(s.name), "["), "]") + ")]"
				tpl.Resources = append(tpl.Resources, subnet)
				continue
			}
			inline = append(inline, map[string]any{"name": param(s.name), "properties": props})
			space = append(space, props["addressPrefix"])
		}
		if !exists {
			created = append(created, vnetID)
			tpl.Resources = append(tpl.Resources, map[string]any{"type": "Microsoft.Network/virtualNetworks", "apiVersion": apiNetwork,
				"name": param(vnet), "location": exprRGPlace,
				"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": space}, "subnets": inline}})
		}
	}
	for _, set := range sets {
		id := rgID + "/providers/Microsoft.Compute/availabilitySets/" + set
		if exists, err := t.Compute.Exists(ctx, id); err != nil || exists {
			if err != nil {
				return DeploymentRequest{}, nil, err
			}
			continue
		}
		created = append(created, id)
		tpl.Resources = append(tpl.Resources, availabilitySet(param(set)))
	}
	var req DeploymentRequest
	req.Properties.Mode, req.Properties.Template, req.Properties.Parameters = "Incremental", tpl, map[string]map[string]any{}
	for k, v := range values {
		req.Properties.Parameters[k] = map[string]any{"value": v}
	}
	return req, created, nil
}

// availabilitySet is an Aligned set ("Use 'Aligned' for virtual machines with managed disks",
// microsoft.compute_2025-04-01.md:12).
func availabilitySet(name string) map[string]any {
	return map[string]any{"type": "Microsoft.Compute/availabilitySets", "apiVersion": apiCompute, "name": name, "location": exprRGPlace,
		"sku": map[string]any{"name": "Aligned"}, "properties": map[string]any{"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}}
}

// recoveryActions are what failovers do in the recovery resource group: deploy the VMs' templates, which
// make managed disks, NICs and VMs, and delete them again (cleanup, change of point). The template
// grants them with Contributor on the group it makes (infra/modules/recovery-roles.bicep).
var recoveryActions = []string{
	"Microsoft.Resources/deployments/write",
	"Microsoft.Compute/disks/write",
	"Microsoft.Compute/virtualMachines/write",
	"Microsoft.Network/networkInterfaces/write",
	"Microsoft.Compute/virtualMachines/delete",
	"Microsoft.Compute/disks/delete",
}

// checkAccess refuses, before anything is made, a recovery resource group in which the app may not do
// what failovers do. A group that does not exist yet is left to EnsureResourceGroup.
func (t TargetSite) checkAccess(ctx context.Context, rg string) error {
	missing, err := t.Compute.MissingActions(ctx, rg, recoveryActions)
	if errors.Is(err, replication.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("target.resourceGroup %s: %w", rg, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: target.resourceGroup: the app's identity may not %s in resource group %s: give it Contributor there, or name the recovery resource group the deployment made (StandbyRecoveryResourceGroup)",
			replication.ErrInvalid, strings.Join(missing, ", "), rg)
	}
	return nil
}
