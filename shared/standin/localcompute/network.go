package localcompute

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// The Network provider's rules the local compute keeps, in its own error codes: a NIC's subnet and a
// VM's availability set must exist when it is deployed ("InvalidResourceReference"), a static private
// IP must lie in its subnet ("PrivateIPAddressNotInSubnet"), a subnet in its virtual network's address
// space ("NetcfgSubnetRangeOutsideVnet") and apart from its siblings ("NetcfgSubnetRangesOverlap").
// Deploying a virtual network replaces its subnets with the ones it lists, as a PUT does in Azure.

// subnetPrefix is the address prefix of a subnet, from the deployment or from what was deployed before.
func (c *Compute) subnetPrefix(id string, byID map[string]resource) (netip.Prefix, bool, error) {
	rg, path, ok := idParts(id)
	if !ok || len(path) != 4 || path[0] != "virtualNetworks" || path[2] != "subnets" {
		return netip.Prefix{}, false, fmt.Errorf("%q is not a subnet id", id)
	}
	if r, ok := byID[id]; ok {
		p, err := prefixOf(r.Body)
		return p, true, err
	}
	vnetID, _, _ := strings.Cut(id, "/subnets/")
	if r, ok := byID[vnetID]; ok {
		for _, s := range inlineSubnets(r.Body) {
			if dig(s, "name") == path[3] {
				p, err := prefixOf(s)
				return p, true, err
			}
		}
	}
	body, found, err := c.subnet(rg, path[1], path[3])
	if err != nil || !found {
		return netip.Prefix{}, false, err
	}
	p, err := prefixOf(body)
	return p, true, err
}

// subnet reads a deployed subnet's body.
func (c *Compute) subnet(rg, vnet, name string) (map[string]any, bool, error) {
	var body map[string]any
	if err := readJSON(c.path(rg, "virtualNetworks", vnet+".json"), &body); err != nil {
		return nil, false, nil
	}
	for _, s := range inlineSubnets(body) {
		if dig(s, "name") == name {
			m, _ := s.(map[string]any)
			return m, true, nil
		}
	}
	return nil, false, nil
}

func inlineSubnets(vnet map[string]any) []any {
	subnets, _ := dig(vnet, "properties", "subnets").([]any)
	return subnets
}

func prefixOf(subnet any) (netip.Prefix, error) {
	raw, _ := dig(subnet, "properties", "addressPrefix").(string)
	p, err := netip.ParsePrefix(raw)
	if err != nil {
		return p, fmt.Errorf("properties.addressPrefix: %q is not a CIDR prefix", raw)
	}
	return p.Masked(), nil
}

// checkNIC: the subnet exists and holds the static IP.
func (c *Compute) checkNIC(r resource, byID map[string]resource) error {
	const at = "properties.ipConfigurations[0].properties"
	id, _ := dig(r.Body, "properties", "ipConfigurations", 0, "properties", "subnet", "id").(string)
	if id == "" {
		return fmt.Errorf("%s.subnet.id: required", at)
	}
	prefix, found, err := c.subnetPrefix(id, byID)
	if err != nil {
		return fmt.Errorf("%s.subnet.id: %v", at, err)
	}
	if !found {
		return fmt.Errorf("%s.subnet.id: subnet %s was not found (InvalidResourceReference)", at, id)
	}
	if raw, _ := dig(r.Body, "properties", "ipConfigurations", 0, "properties", "privateIPAddress").(string); raw != "" {
		ip, err := netip.ParseAddr(raw)
		if err != nil || !prefix.Contains(ip) {
			return fmt.Errorf("%s.privateIPAddress: %s is not in subnet %s's range %s (PrivateIPAddressNotInSubnet)", at, raw, id, prefix)
		}
	}
	return nil
}

// checkVNet: every subnet inside the address space, none overlapping another.
func checkVNet(r resource) error {
	var space []netip.Prefix
	raw, _ := dig(r.Body, "properties", "addressSpace", "addressPrefixes").([]any)
	for i, v := range raw {
		p, err := netip.ParsePrefix(fmt.Sprint(v))
		if err != nil {
			return fmt.Errorf("properties.addressSpace.addressPrefixes[%d]: %q is not a CIDR prefix", i, v)
		}
		space = append(space, p.Masked())
	}
	var seen []netip.Prefix
	for i, s := range inlineSubnets(r.Body) {
		p, err := prefixOf(s)
		if err != nil {
			return fmt.Errorf("properties.subnets[%d].%v", i, err)
		}
		if err := placeSubnet(p, space, seen); err != nil {
			return fmt.Errorf("properties.subnets[%d] (%v): %v", i, dig(s, "name"), err)
		}
		seen = append(seen, p)
	}
	return nil
}

// checkSubnet: a subnet deployed on its own goes into an existing virtual network's space, apart from
// the subnets it has (other than itself).
func (c *Compute) checkSubnet(r resource, byID map[string]resource) error {
	p, err := prefixOf(r.Body)
	if err != nil {
		return err
	}
	rg, path, _ := idParts(r.ID)
	var vnet map[string]any
	vnetID, _, _ := strings.Cut(r.ID, "/subnets/")
	if v, ok := byID[vnetID]; ok {
		vnet = v.Body
	} else if err := readJSON(c.path(rg, "virtualNetworks", path[1]+".json"), &vnet); err != nil {
		return fmt.Errorf("name: virtual network %s was not found (InvalidResourceReference)", vnetID)
	}
	var space, siblings []netip.Prefix
	raw, _ := dig(vnet, "properties", "addressSpace", "addressPrefixes").([]any)
	for _, v := range raw {
		if sp, err := netip.ParsePrefix(fmt.Sprint(v)); err == nil {
			space = append(space, sp.Masked())
		}
	}
	for _, s := range inlineSubnets(vnet) {
		if sp, err := prefixOf(s); err == nil && dig(s, "name") != path[3] {
			siblings = append(siblings, sp)
		}
	}
	if err := placeSubnet(p, space, siblings); err != nil {
		return fmt.Errorf("properties.addressPrefix: %v", err)
	}
	return nil
}

func placeSubnet(p netip.Prefix, space, siblings []netip.Prefix) error {
	inside := false
	for _, sp := range space {
		inside = inside || (sp.Bits() <= p.Bits() && sp.Contains(p.Addr()))
	}
	if !inside {
		return fmt.Errorf("%s is outside the virtual network's address space %v (NetcfgSubnetRangeOutsideVnet)", p, space)
	}
	for _, s := range siblings {
		if s.Overlaps(p) {
			return fmt.Errorf("%s overlaps subnet %s (NetcfgSubnetRangesOverlap)", p, s)
		}
	}
	return nil
}

// checkReference: a referenced resource is in the deployment or deployed before.
func (c *Compute) checkReference(r resource, byID map[string]resource, at string, ref any) error {
	id, _ := ref.(string)
	if id == "" {
		return nil
	}
	if _, ok := byID[id]; ok {
		return nil
	}
	if found, err := c.Exists(context.Background(), id); err != nil || !found {
		return fmt.Errorf("%s: %s was not found (InvalidResourceReference)", at, id)
	}
	return nil
}

// provisionSubnet adds (or replaces) a subnet in its deployed virtual network.
func (c *Compute) provisionSubnet(r resource) error {
	rg, path, _ := idParts(r.ID)
	file := c.path(rg, "virtualNetworks", path[1]+".json")
	var vnet map[string]any
	if err := readJSON(file, &vnet); err != nil {
		return err
	}
	props, _ := vnet["properties"].(map[string]any)
	subnets := []any{}
	for _, s := range inlineSubnets(vnet) {
		if dig(s, "name") != path[3] {
			subnets = append(subnets, s)
		}
	}
	props["subnets"] = append(subnets, map[string]any{"name": path[3], "properties": r.Body["properties"]})
	return writeJSON(file, vnet)
}
