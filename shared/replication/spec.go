package replication

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Limits of a consistency group (Azure Site Recovery's): VMs per group and disks per VM.
const (
	MaxVMsPerGroup = 16
	MaxDisksPerVM  = 64
)

// GroupSpec is what the operator asks for when enabling replication of a consistency group.
type GroupSpec struct {
	VMs     []VMSpec    `json:"vms"`
	Target  TargetSpec  `json:"target"`
	Policy  Policy      `json:"policy"`
	Network NetworkSpec `json:"network"`
	Drill   DrillSpec   `json:"drill"`
}

// VMSpec is one protected VM.
type VMSpec struct {
	Name  string     `json:"name"`
	Disks []DiskSpec `json:"disks"`
	// Subnet is the VM's source "vnet/subnet"; a network mapping says where it lands.
	Subnet string `json:"subnet,omitempty"`
	// StaticIP is kept on failover (the target subnet must have it free).
	StaticIP string `json:"staticIP,omitempty"`
	// Zone is the availability zone the failed-over VM is placed in ("1", "2" or "3").
	Zone string `json:"zone,omitempty"`
	// AvailabilitySet places the failed-over VM in this availability set of the target resource group
	// (created by the first VM's deployment that names it); a VM has a zone or a set, not both.
	AvailabilitySet string `json:"availabilitySet,omitempty"`
	// Size is the failed-over VM's Azure size (machine.go: default and grammar).
	Size string `json:"size,omitempty"`
}

// DiskSpec is one protected disk. Source says where the agent reads it: "nbd:<path>" (a disk image or
// block device the agent serves as an NBD export: every write captured in order), "agent" (writes
// arrive through the agent's write API), "file:<path>" (a disk image or block device scanned by
// hashing: not crash-consistent), or "pageblob:<url>" (a page blob in the source account). capture.go
// says what consistency each gives.
type DiskSpec struct {
	Name      string `json:"name"`
	SizeBytes int64  `json:"sizeBytes"`
	Source    string `json:"source"`
	// What the failed-over VM needs of the disk (machine.go): its role (exactly one "os" disk per VM), and
	// for the OS disk the OS type, Hyper-V generation and security type, which must match the source or
	// the VM will not boot; every disk's managed-disk SKU.
	Role             string `json:"role,omitempty"`
	OSType           string `json:"osType,omitempty"`
	HyperVGeneration string `json:"hyperVGeneration,omitempty"`
	SecurityType     string `json:"securityType,omitempty"`
	SKU              string `json:"sku,omitempty"`
	// ManagedDisk is the source VM's managed disk this disk is (its resource id): reprotect exports it
	// to replicate back into it, sending only the blocks that differ.
	ManagedDisk string `json:"managedDisk,omitempty"`
	// Defaulted names the OS disk's properties (osType, hyperVGeneration, securityType) that nothing
	// gave — not the spec, not the agent that saw the source — and that took Standby's defaults: a
	// Gen2 disk brought up as Gen1 does not boot, so the view says which are guesses.
	Defaulted []string `json:"defaulted,omitempty"`
}

// TargetSpec says where the replicas live in the target region's storage account.
type TargetSpec struct {
	// Container holds the group's target disks (created when missing), like ASR's "-asr" resources.
	Container string `json:"container"`
	// Disks names existing page blobs ("container/blob", by disk key "vm/disk") to replicate into instead
	// of new ones in Container — a reprotect's original disks. The first sync then compares block
	// checksums with them and sends only the blocks that differ.
	Disks map[string]string `json:"disks,omitempty"`
	// ResourceGroup is where failed-over VMs come up (machine.go: default and grammar).
	ResourceGroup string `json:"resourceGroup,omitempty"`
}

// TargetDisk is where a disk's replica lives: the existing blob the spec names, else Container/key.vhd
// (BlobName: every replica is a fixed VHD).
func (s *GroupSpec) TargetDisk(key string) DiskRef {
	if at, ok := s.Target.Disks[key]; ok {
		container, name, _ := strings.Cut(at, "/")
		return DiskRef{Container: container, Name: name}
	}
	return DiskIn(s.Target.Container, key)
}

// PageBlobRef turns a pageblob: source URL into the blob's container and name. Path-style URLs of the
// emulator (http://127.0.0.1:10000/<account>/<container>/<blob>) carry the account first.
func PageBlobRef(source string) (DiskRef, error) {
	raw := strings.TrimPrefix(source, "pageblob:")
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return DiskRef{}, fmt.Errorf("source %q is not a page blob URL", source)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	host := u.Hostname()
	if net.ParseIP(host) != nil || host == "localhost" { // path-style: /account/container/blob
		parts = parts[min(1, len(parts)):]
	}
	if len(parts) < 2 || parts[0] == "" {
		return DiskRef{}, fmt.Errorf("source %q names no container and blob", source)
	}
	return DiskRef{Container: parts[0], Name: strings.Join(parts[1:], "/")}, nil
}

// Policy is the replication policy.
type Policy struct {
	CrashConsistentIntervalSeconds int `json:"crashConsistentIntervalSeconds"`
	AppConsistentIntervalSeconds   int `json:"appConsistentIntervalSeconds"`
	RetentionHours                 int `json:"retentionHours"`
	JournalWindowMinutes           int `json:"journalWindowMinutes"`
	// RPO health thresholds: Warning above RPOWarningMinutes, Critical above RPOCriticalMinutes or
	// when no recovery point is younger than NoPointCriticalMinutes.
	RPOWarningMinutes      int `json:"rpoWarningMinutes"`
	RPOCriticalMinutes     int `json:"rpoCriticalMinutes"`
	NoPointCriticalMinutes int `json:"noPointCriticalMinutes"`
}

// healthThresholds are the policy's RPO alert levels.
func (p Policy) HealthThresholds() healthThresholds {
	return healthThresholds{Warning: time.Duration(p.RPOWarningMinutes) * time.Minute,
		Critical: time.Duration(p.RPOCriticalMinutes) * time.Minute, NoPoint: time.Duration(p.NoPointCriticalMinutes) * time.Minute}
}

var (
	subnetName          = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}/[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)
	vmName              = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
	availabilitySetName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?$`)
	containerName       = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$`)
)

// DiskKey names a disk within its group ("vm/disk"); the target blob's name is BlobName(key).
func DiskKey(vm, disk string) string { return vm + "/" + disk }

// CheckDiskKey checks a "vm/disk" key: two names of the VM name grammar.
func CheckDiskKey(key string) error {
	vm, disk, ok := strings.Cut(key, "/")
	if !ok || !vmName.MatchString(vm) || !vmName.MatchString(disk) {
		return fmt.Errorf("%q is not a vm/disk key (lowercase letters, digits and inner hyphens on each side)", key)
	}
	return nil
}

// FailoverContainer and TestContainer hold the disks a group's failover and test failover make (and
// write): no group's replica may live there.
func FailoverContainer(group string) string { return group + "-failover" }
func TestContainer(group string) string     { return group + "-test" }

// isJobContainer says whether a container is some group's failover or test-failover container.
func isJobContainer(container string) bool {
	for _, suffix := range []string{FailoverContainer(""), TestContainer("")} {
		if group, ok := strings.CutSuffix(container, suffix); ok && ValidGroupName(group) == nil {
			return true
		}
	}
	return false
}

// Disks lists the group's disks as keys with their specs, in spec order.
func (s *GroupSpec) Disks() []DiskRefSpec {
	var out []DiskRefSpec
	for _, vm := range s.VMs {
		for _, d := range vm.Disks {
			out = append(out, DiskRefSpec{Key: DiskKey(vm.Name, d.Name), VM: vm.Name, Spec: d})
		}
	}
	return out
}

// Blocks is how many BlockSize blocks the group's disks have (a checksum sync compares each once).
func (s *GroupSpec) Blocks() int64 {
	var n int64
	for _, d := range s.Disks() {
		n += (d.Spec.SizeBytes + BlockSize - 1) / BlockSize
	}
	return n
}

// DiskRefSpec is a disk with its key.
type DiskRefSpec struct {
	Key  string
	VM   string
	Spec DiskSpec
}

// Normalize fills defaults: the target container "<group>-asr", a 5-minute crash-consistent interval,
// app-consistent points off, 24 hours of retention and a 60-minute journal window.
func (s *GroupSpec) Normalize(group string) {
	if s.Target.Container == "" {
		s.Target.Container = group + "-asr"
	}
	for i := range s.VMs {
		s.VMs[i].normalizeMachine()
	}
	s.Drill.Normalize()
	if s.Policy.CrashConsistentIntervalSeconds == 0 {
		s.Policy.CrashConsistentIntervalSeconds = 300
	}
	if s.Policy.RetentionHours == 0 {
		s.Policy.RetentionHours = 24
	}
	if s.Policy.JournalWindowMinutes == 0 {
		s.Policy.JournalWindowMinutes = 60
	}
	d := DefaultHealth
	if s.Policy.RPOWarningMinutes == 0 {
		s.Policy.RPOWarningMinutes = int(d.Warning / time.Minute)
	}
	if s.Policy.RPOCriticalMinutes == 0 {
		s.Policy.RPOCriticalMinutes = int(d.Critical / time.Minute)
	}
	if s.Policy.NoPointCriticalMinutes == 0 {
		s.Policy.NoPointCriticalMinutes = int(d.NoPoint / time.Minute)
	}
}

// Validate checks every field; the error names the field by its JSON path.
func (s *GroupSpec) Validate() error {
	for _, check := range []func() error{s.validateVMs, s.Network.validate, s.validatePlacement, s.validateTarget, s.Target.validateResourceGroup, s.Policy.validate, func() error { return s.Drill.validate(s.VMs) }} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateVMs checks the VMs' names and their disks.
func (s *GroupSpec) validateVMs() error {
	if len(s.VMs) < 1 || len(s.VMs) > MaxVMsPerGroup {
		return fmt.Errorf("vms: a group has 1 to %d VMs, got %d", MaxVMsPerGroup, len(s.VMs))
	}
	seenVM := map[string]bool{}
	for i, vm := range s.VMs {
		at := fmt.Sprintf("vms[%d]", i)
		if !vmName.MatchString(vm.Name) {
			return fmt.Errorf("%s.name: %q must be 1-64 lowercase letters, digits or hyphens", at, vm.Name)
		}
		if seenVM[vm.Name] {
			return fmt.Errorf("%s.name: %q appears twice", at, vm.Name)
		}
		seenVM[vm.Name] = true
		if err := vm.validateDisks(at); err != nil {
			return err
		}
		if err := vm.validateMachine(at); err != nil {
			return err
		}
	}
	return nil
}

// validateDisks checks the disks of the VM at (its JSON path).
func (vm VMSpec) validateDisks(at string) error {
	if len(vm.Disks) < 1 || len(vm.Disks) > MaxDisksPerVM {
		return fmt.Errorf("%s.disks: a VM has 1 to %d disks, got %d", at, MaxDisksPerVM, len(vm.Disks))
	}
	seenDisk := map[string]bool{}
	for j, d := range vm.Disks {
		at := fmt.Sprintf("%s.disks[%d]", at, j)
		if !vmName.MatchString(d.Name) {
			return fmt.Errorf("%s.name: %q must be 1-64 lowercase letters, digits or hyphens", at, d.Name)
		}
		if seenDisk[d.Name] {
			return fmt.Errorf("%s.name: %q appears twice in %s", at, d.Name, vm.Name)
		}
		seenDisk[d.Name] = true
		if d.SizeBytes <= 0 || d.SizeBytes%(1<<20) != 0 || d.SizeBytes > maxVirtualSize {
			return fmt.Errorf("%s.sizeBytes: %d must be a positive whole number of MiB up to 8 TiB less 1 MiB (its replica is a fixed VHD, with a 512-byte footer)", at, d.SizeBytes)
		}
		if _, err := ParseSource(d.Source); err != nil {
			return fmt.Errorf("%s.source: %v", at, err)
		}
	}
	return nil
}

// validatePlacement checks where failovers place each VM: subnet (mapped), static IP, zone or
// availability set.
func (s *GroupSpec) validatePlacement() error {
	for i, vm := range s.VMs {
		at := fmt.Sprintf("vms[%d]", i)
		if vm.Subnet != "" {
			if _, ok := s.Network.MappingFor(vm.Subnet); !ok {
				return fmt.Errorf("%s.subnet: %q has no network mapping", at, vm.Subnet)
			}
		}
		if vm.StaticIP != "" {
			if ip := net.ParseIP(vm.StaticIP); ip == nil || ip.To4() == nil {
				return fmt.Errorf("%s.staticIP: %q is not an IPv4 address", at, vm.StaticIP)
			}
			if vm.Subnet == "" {
				return fmt.Errorf("%s.staticIP: a static IP needs the VM's subnet", at)
			}
			if err := s.Network.checkStaticIP(vm); err != nil {
				return fmt.Errorf("%s.staticIP: %v", at, err)
			}
		}
		if vm.Zone != "" && vm.Zone != "1" && vm.Zone != "2" && vm.Zone != "3" {
			return fmt.Errorf("%s.zone: %q, want 1, 2 or 3", at, vm.Zone)
		}
		if vm.AvailabilitySet != "" && !availabilitySetName.MatchString(vm.AvailabilitySet) {
			return fmt.Errorf("%s.availabilitySet: %q must be 1-80 letters, digits, '.', '-' or '_'", at, vm.AvailabilitySet)
		}
		if vm.AvailabilitySet != "" && vm.Zone != "" {
			return fmt.Errorf("%s.availabilitySet: a VM is placed in a zone or an availability set, not both", at)
		}
	}
	return nil
}

// validateTarget checks the target container and the existing blobs named for the group's disks.
func (s *GroupSpec) validateTarget() error {
	if !containerName.MatchString(s.Target.Container) {
		return fmt.Errorf("target.container: %q must be 3-63 lowercase letters, digits or single hyphens", s.Target.Container)
	}
	keys := map[string]bool{}
	for _, d := range s.Disks() {
		keys[d.Key] = true
	}
	for _, key := range slices.Sorted(maps.Keys(s.Target.Disks)) {
		at := s.Target.Disks[key]
		container, name, _ := strings.Cut(at, "/")
		switch {
		case !keys[key]:
			return fmt.Errorf("target.disks[%s]: no such disk in the group (want vm/disk)", key)
		case !containerName.MatchString(container) || !blobName.MatchString(name):
			return fmt.Errorf("target.disks[%s]: %q, want container/blob (letters, digits, '.', '_', '-', '/')", key, at)
		case isJobContainer(container):
			return fmt.Errorf("target.disks[%s]: %q is in a group's failover or test-failover container, whose disks its jobs write: never a replica", key, at)
		}
	}
	return nil
}

// validate checks the policy's intervals, retention and thresholds.
func (p Policy) validate() error {
	switch {
	case p.CrashConsistentIntervalSeconds < 30 || p.CrashConsistentIntervalSeconds > 86400:
		return fmt.Errorf("policy.crashConsistentIntervalSeconds: %d is outside 30..86400 (a day)", p.CrashConsistentIntervalSeconds)
	case p.AppConsistentIntervalSeconds != 0 && (p.AppConsistentIntervalSeconds < 900 || p.AppConsistentIntervalSeconds > 7*86400):
		return fmt.Errorf("policy.appConsistentIntervalSeconds: %d, want 0 (off) or 900..604800 (a week)", p.AppConsistentIntervalSeconds)
	case p.RetentionHours < 0 || p.RetentionHours > 15*24:
		return fmt.Errorf("policy.retentionHours: %d is outside 0..360 (15 days)", p.RetentionHours)
	case p.JournalWindowMinutes < 1 || p.JournalWindowMinutes > 15*24*60:
		return fmt.Errorf("policy.journalWindowMinutes: %d is outside 1..21600", p.JournalWindowMinutes)
	case p.RPOWarningMinutes < 1 || p.RPOCriticalMinutes <= p.RPOWarningMinutes:
		return fmt.Errorf("policy.rpoCriticalMinutes: %d must exceed rpoWarningMinutes %d (at least 1)", p.RPOCriticalMinutes, p.RPOWarningMinutes)
	case p.RPOCriticalMinutes > 7*24*60:
		return fmt.Errorf("policy.rpoCriticalMinutes: %d is more than a week", p.RPOCriticalMinutes)
	case p.NoPointCriticalMinutes < 1 || p.NoPointCriticalMinutes > 7*24*60:
		return fmt.Errorf("policy.noPointCriticalMinutes: %d is outside 1..10080 (a week)", p.NoPointCriticalMinutes)
	}
	return nil
}

// OnlyPlacementDiffers reports whether two specs differ only in where failovers place the VMs (the
// network mapping, a VM's subnet, static IP, zone or availability set) or in the drill: that changes in
// place.
func (s *GroupSpec) OnlyPlacementDiffers(other *GroupSpec) bool {
	strip := func(spec GroupSpec) GroupSpec {
		spec.Network, spec.Target.ResourceGroup, spec.Drill = NetworkSpec{}, "", DrillSpec{}
		spec.VMs = append([]VMSpec(nil), spec.VMs...)
		for i := range spec.VMs {
			spec.VMs[i] = spec.VMs[i].withoutMachine()
			spec.VMs[i].Subnet, spec.VMs[i].StaticIP, spec.VMs[i].Zone, spec.VMs[i].AvailabilitySet = "", "", "", ""
		}
		return spec
	}
	a, b := strip(*s), strip(*other)
	return len(a.Conflicts(&b)) == 0
}

// Conflicts lists what differs between two normalized specs, field by field ("" when equal).
func (s *GroupSpec) Conflicts(other *GroupSpec) []string {
	var out []string
	diff := func(path string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, fmt.Sprintf("%s: %v, requested %v", path, a, b))
		}
	}
	diff("target.container", s.Target.Container, other.Target.Container)
	diff("target.disks", fmt.Sprint(s.Target.Disks), fmt.Sprint(other.Target.Disks))
	diff("target.resourceGroup", s.Target.ResourceGroup, other.Target.ResourceGroup)
	diff("policy.crashConsistentIntervalSeconds", s.Policy.CrashConsistentIntervalSeconds, other.Policy.CrashConsistentIntervalSeconds)
	diff("policy.appConsistentIntervalSeconds", s.Policy.AppConsistentIntervalSeconds, other.Policy.AppConsistentIntervalSeconds)
	diff("policy.retentionHours", s.Policy.RetentionHours, other.Policy.RetentionHours)
	diff("policy.journalWindowMinutes", s.Policy.JournalWindowMinutes, other.Policy.JournalWindowMinutes)
	diff("policy.rpoWarningMinutes", s.Policy.RPOWarningMinutes, other.Policy.RPOWarningMinutes)
	diff("policy.rpoCriticalMinutes", s.Policy.RPOCriticalMinutes, other.Policy.RPOCriticalMinutes)
	diff("policy.noPointCriticalMinutes", s.Policy.NoPointCriticalMinutes, other.Policy.NoPointCriticalMinutes)
	diff("drill", s.Drill, other.Drill)
	diff("vms (count)", len(s.VMs), len(other.VMs))
	diff("network.mappings (count)", len(s.Network.Mappings), len(other.Network.Mappings))
	for i := 0; i < len(s.Network.Mappings) && i < len(other.Network.Mappings); i++ {
		diff(fmt.Sprintf("network.mappings[%d]", i), s.Network.Mappings[i], other.Network.Mappings[i])
	}
	for i := 0; i < len(s.VMs) && i < len(other.VMs); i++ {
		a, b := s.VMs[i], other.VMs[i]
		diff(fmt.Sprintf("vms[%d].name", i), a.Name, b.Name)
		diff(fmt.Sprintf("vms[%d].disks (count)", i), len(a.Disks), len(b.Disks))
		diff(fmt.Sprintf("vms[%d].subnet", i), a.Subnet, b.Subnet)
		diff(fmt.Sprintf("vms[%d].staticIP", i), a.StaticIP, b.StaticIP)
		diff(fmt.Sprintf("vms[%d].zone", i), a.Zone, b.Zone)
		diff(fmt.Sprintf("vms[%d].availabilitySet", i), a.AvailabilitySet, b.AvailabilitySet)
		machineConflicts(a, b, i, diff)
		for j := 0; j < len(a.Disks) && j < len(b.Disks); j++ {
			diff(fmt.Sprintf("vms[%d].disks[%d].name", i, j), a.Disks[j].Name, b.Disks[j].Name)
			diff(fmt.Sprintf("vms[%d].disks[%d].sizeBytes", i, j), a.Disks[j].SizeBytes, b.Disks[j].SizeBytes)
			diff(fmt.Sprintf("vms[%d].disks[%d].source", i, j), a.Disks[j].Source, b.Disks[j].Source)
		}
	}
	return out
}
