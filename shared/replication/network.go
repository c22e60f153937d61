package replication

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// NetworkSpec maps source subnets to target ones.
type NetworkSpec struct {
	Mappings []NetworkMapping `json:"mappings,omitempty"`
}

// NetworkMapping maps a source "vnet/subnet" to the target region's subnet, and to an isolated test
// subnet for test failovers (which must never share the production network). A target or test subnet
// is either "vnet/subnet" in the recovery resource group — created on enable when it is missing, as Site
// Recovery creates its target network, which needs its address prefix (targetPrefix, testPrefix) — or
// the full resource id of an existing subnet, used as it is.
type NetworkMapping struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Test         string `json:"test"`
	TargetPrefix string `json:"targetPrefix,omitempty"`
	TestPrefix   string `json:"testPrefix,omitempty"`
}

// subnetID is the grammar of a full subnet resource id.
var subnetID = regexp.MustCompile(`^/subscriptions/[A-Za-z0-9-]{1,64}/resourceGroups/[-\w._()]{1,90}/providers/Microsoft\.Network/virtualNetworks/[A-Za-z0-9][A-Za-z0-9._-]{0,79}/subnets/[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// IsSubnetID reports whether a mapping's subnet is a full resource id (else "vnet/subnet").
func IsSubnetID(s string) bool { return subnetID.MatchString(s) }

// MappingFor returns the mapping of a source subnet.
func (n NetworkSpec) MappingFor(source string) (NetworkMapping, bool) {
	for _, m := range n.Mappings {
		if m.Source == source {
			return m, true
		}
	}
	return NetworkMapping{}, false
}

// CheckTestNetwork says why a test failover could not place the group's VMs (a mapping without an
// isolated test subnet, as a reprotect's reversed mapping starts), or nil.
func (s *GroupSpec) CheckTestNetwork() error {
	for _, vm := range s.VMs {
		if m, ok := s.Network.MappingFor(vm.Subnet); ok && m.Test == "" {
			return NoTestSubnet(vm)
		}
	}
	return nil
}

// NoTestSubnet says a VM cannot be placed by a test failover.
func NoTestSubnet(vm VMSpec) error {
	return fmt.Errorf("the network mapping of %s names no isolated test subnet: a test failover cannot place %s", vm.Subnet, vm.Name)
}

// validate checks the network mappings: names or ids, prefixes only for subnets Standby may create,
// and no two prefixes of one virtual network overlapping.
func (n NetworkSpec) validate() error {
	seenSource := map[string]bool{}
	inVNet := map[string][]netip.Prefix{}
	for i, m := range n.Mappings {
		at := fmt.Sprintf("network.mappings[%d]", i)
		if !subnetName.MatchString(m.Source) {
			return fmt.Errorf("%s.source: %q, want vnet/subnet", at, m.Source)
		}
		for _, f := range []struct{ field, subnet, prefixField, prefix string }{
			{"target", m.Target, "targetPrefix", m.TargetPrefix}, {"test", m.Test, "testPrefix", m.TestPrefix}} {
			if f.subnet == "" && f.field == "test" {
				if f.prefix != "" {
					return fmt.Errorf("%s.testPrefix: given without a test subnet", at)
				}
				continue
			}
			if !subnetName.MatchString(f.subnet) && !IsSubnetID(f.subnet) {
				return fmt.Errorf("%s.%s: %q, want vnet/subnet (in the recovery resource group) or a subnet's full resource id", at, f.field, f.subnet)
			}
			if f.prefix == "" {
				continue
			}
			if IsSubnetID(f.subnet) {
				return fmt.Errorf("%s.%s: the subnet %s exists (it is given by id): it has its own prefix", at, f.prefixField, f.subnet)
			}
			p, err := netip.ParsePrefix(f.prefix)
			if err != nil || !p.Addr().Is4() || p.Bits() > 29 {
				return fmt.Errorf("%s.%s: %q, want an IPv4 CIDR prefix of at most /29 (Azure's smallest subnet)", at, f.prefixField, f.prefix)
			}
			vnet, _, _ := strings.Cut(f.subnet, "/")
			for _, other := range inVNet[vnet] {
				if other.Overlaps(p.Masked()) {
					return fmt.Errorf("%s.%s: %s overlaps %s in virtual network %s", at, f.prefixField, p, other, vnet)
				}
			}
			inVNet[vnet] = append(inVNet[vnet], p.Masked())
		}
		if m.Test == m.Target {
			return fmt.Errorf("%s.test: %q is the production subnet; a test failover needs an isolated one", at, m.Test)
		}
		if seenSource[m.Source] {
			return fmt.Errorf("%s.source: %q is mapped twice", at, m.Source)
		}
		seenSource[m.Source] = true
	}
	return nil
}

// checkStaticIP: a VM keeps its static IP at failover, so the target subnet must hold it.
func (n NetworkSpec) checkStaticIP(vm VMSpec) error {
	m, ok := n.MappingFor(vm.Subnet)
	if !ok || m.TargetPrefix == "" {
		return nil
	}
	p, err1 := netip.ParsePrefix(m.TargetPrefix)
	ip, err2 := netip.ParseAddr(vm.StaticIP)
	if err1 == nil && err2 == nil && !p.Contains(ip) {
		return fmt.Errorf("%s is not in the target subnet %s (%s): the failed-over VM keeps its address", vm.StaticIP, m.Target, m.TargetPrefix)
	}
	return nil
}

// KeepsIPInTest reports whether a drill's VM keeps its static IP: only when the isolated test subnet's
// prefix is known and holds it (else the NIC takes a dynamic address there).
func (m NetworkMapping) KeepsIPInTest(ip string) bool {
	p, err1 := netip.ParsePrefix(m.TestPrefix)
	a, err2 := netip.ParseAddr(ip)
	return err1 == nil && err2 == nil && p.Contains(a)
}
