package localcompute

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
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

// allocateAddress gives a NIC without a static address the first free one of its subnet, as Azure's
// dynamic allocation does (from .4: Azure keeps the first four addresses of a subnet and its last); a
// NIC deployed again keeps the address it has.
func (c *Compute) allocateAddress(rg string, r resource) error {
	ipc, _ := dig(r.Body, "properties", "ipConfigurations", 0, "properties").(map[string]any)
	if ipc == nil {
		return nil // refused by checkNIC before this
	}
	if addr, _ := ipc["privateIPAddress"].(string); addr != "" {
		return nil
	}
	_, name := kindAndName(r.ID)
	var existing map[string]any
	if readJSON(c.path(rg, "networkInterfaces", name+".json"), &existing) == nil {
		if addr, _ := dig(existing, "properties", "ipConfigurations", 0, "properties", "privateIPAddress").(string); addr != "" {
			ipc["privateIPAddress"] = addr
			return nil
		}
	}
	subnet, _ := dig(ipc, "subnet", "id").(string)
	prefix, found, err := c.subnetPrefix(subnet, nil)
	if err != nil || !found {
		return fmt.Errorf("properties.ipConfigurations[0].properties.subnet.id: %s: no address prefix to allocate from", subnet)
	}
	used := map[netip.Addr]bool{}
	files, _ := filepath.Glob(c.path(rg, "networkInterfaces", "*.json"))
	for _, f := range files {
		var other map[string]any
		if readJSON(f, &other) != nil || dig(other, "properties", "ipConfigurations", 0, "properties", "subnet", "id") != subnet {
			continue
		}
		if addr, err := netip.ParseAddr(fmt.Sprint(dig(other, "properties", "ipConfigurations", 0, "properties", "privateIPAddress"))); err == nil {
			used[addr] = true
		}
	}
	addr := prefix.Addr()
	for range 4 {
		addr = addr.Next()
	}
	for ; prefix.Contains(addr) && prefix.Contains(addr.Next()); addr = addr.Next() {
		if !used[addr] {
			ipc["privateIPAddress"], ipc["privateIPAllocationMethod"] = addr.String(), "Dynamic"
			return nil
		}
	}
	return fmt.Errorf("subnet %s (%s) has no free address (SubnetIsFull)", subnet, prefix)
}

// testSegment is an isolated NIC's network: an Ethernet segment of its subnet alone (QEMU's multicast
// socket network on the loopback interface, its group and port made from this compute's folder and the
// subnet, so that nothing else shares it) and the NIC's address with the subnet's prefix length.
func (c *Compute) testSegment(rg string, nic map[string]any) (segment, ip string, err error) {
	subnet, _ := dig(nic, "properties", "ipConfigurations", 0, "properties", "subnet", "id").(string)
	prefix, found, err := c.subnetPrefix(subnet, nil)
	if err != nil || !found {
		return "", "", fmt.Errorf("subnet %s: no address prefix", subnet)
	}
	addr, err := netip.ParseAddr(fmt.Sprint(dig(nic, "properties", "ipConfigurations", 0, "properties", "privateIPAddress")))
	if err != nil {
		return "", "", fmt.Errorf("the NIC has no private address")
	}
	dir, _ := filepath.Abs(c.Dir)
	sum := sha256.Sum256([]byte(dir + "\x00" + strings.ToLower(subnet)))
	port := 20000 + int(binary.BigEndian.Uint16(sum[3:5]))%40000
	return fmt.Sprintf("239.%d.%d.%d:%d", sum[0], sum[1], sum[2], port), netip.PrefixFrom(addr, prefix.Bits()).String(), nil
}

// macOf is a VM's MAC address: locally administered, made from its id, so every VM of a segment has
// its own.
func macOf(id string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(id)))
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3])
}
