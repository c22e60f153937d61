package apiv1

import "time"

// The group and plan specs and the agent's exchange, as the wire carries them. They are copies of the
// domain's types (shared/replication, shared/recovery), field for field and tag for tag, so that this
// package needs nothing but the standard library — a client links no job engine — and the OpenAPI
// document describes exactly what the server sends: apiserver's TestWireTypesMatchTheDomain compares
// each one's schema with its domain twin's, and the server converts between them (apiserver.Convert).

// AgentInstructions is the heartbeat's answer: what the agent must do.
type AgentInstructions struct {
	// The group's state.
	State State `json:"state"`
	// Why the group is in its state (a resync's cause), when there is one.
	Reason string `json:"reason,omitempty"`
	// The last sequence apply has applied.
	Watermark int64 `json:"watermark"`
	// Resync asks for a checksum resync starting with a resync batch (the group stopped at a gap).
	Resync bool `json:"resync"`
	// Stop asks the agent to stop taking writes, flush, mark the end and report (planned failover).
	Stop bool `json:"stop"`
	// MarkerRequestedAt, when set, asks for a crash-consistent marker (once per distinct time).
	MarkerRequestedAt *time.Time `json:"markerRequestedAt,omitempty"`
	// AppMarkerRequestedAt asks for an app-consistent marker: hooks, marker, hooks (once per time).
	AppMarkerRequestedAt *time.Time `json:"appMarkerRequestedAt,omitempty"`
}

// AgentReport is the agent's heartbeat.
type AgentReport struct {
	// The last sequence the agent published.
	Seq int64 `json:"seq"`
	// Stopped: the agent stopped taking writes as told (planned failover) and Seq is its last.
	Stopped bool `json:"stopped"`
	// Bytes of the initial replication or resync read so far.
	BaselineDoneBytes int64 `json:"baselineDoneBytes"`
	// Bytes the initial replication or resync reads in all.
	BaselineTotalBytes int64 `json:"baselineTotalBytes"`
	// The initial replication's rate, bytes per second.
	BaselineRateBps float64 `json:"baselineRateBytesPerSecond"`
	// The sync's blocks compared so far and those found different and sent.
	BaselineBlocks int64 `json:"baselineBlocks"`
	// Of those, the blocks found different and sent.
	BaselineBlocksSent int64 `json:"baselineBlocksSent"`
	// The last error the agent met (a failed upload or publish, a failed sync), with its time; what the
	// group's health shows if the agent falls silent.
	LastError string `json:"lastError,omitempty"`
}

// Capture is how a disk's writes reach the group's stream, and the consistency that gives its
// recovery points. It is the source's kind: the API shows it on every disk, so that nobody takes a
// point of a scanned disk for a crash-consistent one.
type Capture struct {
	// The disk, as vm/disk.
	Disk string `json:"disk"`
	// How the disk's writes are captured: nbd, agent, file, managed or pageblob.
	Mode string `json:"mode"`
	// CrashConsistent: every point of the group is a prefix of the disk's writes in the order they
	// completed, across all such disks of the group.
	CrashConsistent bool `json:"crashConsistent"`
	// What the mode means for the disk's points (why one is not crash-consistent).
	Note string `json:"note"`
}

// DiskHashes is one page of a disk's block checksums on the target (for the agent's checksum resync):
// the blocks From to From+len(Hashes)-1 of Blocks. Next is the first block of the next page (absent on
// the last): a 4 TiB disk has four million blocks, far more than one call may read within Azure's 230 s
// cap on an HTTP-triggered call.
type DiskHashes struct {
	// The size of a hashed block, in bytes.
	BlockSize int64 `json:"blockSize"`
	// The disk's blocks in all.
	Blocks int64 `json:"blocks"`
	// The first block of this page.
	From int64 `json:"from"`
	// The blocks' hashes from From on (empty: a block with nothing allocated).
	Hashes []string `json:"hashes"`
	// The first block of the next page (absent on the last).
	Next *int64 `json:"next,omitempty"`
}

// DiskSpec is one protected disk. Source says where the agent reads it: "nbd:<path>" (a disk image or
// block device the agent serves as an NBD export: every write captured in order), "agent" (writes
// arrive through the agent's write API), "file:<path>" (a disk image or block device scanned by
// hashing: not crash-consistent), or "pageblob:<url>" (a page blob in the source account). capture.go
// says what consistency each gives.
type DiskSpec struct {
	// The disk's name in its VM.
	Name string `json:"name"`
	// The disk's size in bytes (a multiple of 512).
	SizeBytes int64 `json:"sizeBytes"`
	// Where the agent reads the disk: agent, nbd:<path>, file:<path>, managed:<disk id> or pageblob:<url>.
	Source string `json:"source"`
	// What the failed-over VM needs of the disk (machine.go): its role (exactly one "os" disk per VM), and
	// for the OS disk the OS type, Hyper-V generation and security type, which must match the source or
	// the VM will not boot; every disk's managed-disk SKU.
	Role string `json:"role,omitempty"`
	// The OS disk's operating system, Linux or Windows.
	OSType string `json:"osType,omitempty"`
	// The OS disk's Hyper-V generation (V1 or V2) for the failed-over VM.
	HyperVGeneration string `json:"hyperVGeneration,omitempty"`
	// The failed-over VM's security type (TrustedLaunch, …).
	SecurityType string `json:"securityType,omitempty"`
	// The managed disk SKU of the failed-over disk (default Standard_LRS).
	SKU string `json:"sku,omitempty"`
	// ManagedDisk is the source VM's managed disk this disk is (its resource id): reprotect exports it
	// to replicate back into it, sending only the blocks that differ.
	ManagedDisk string `json:"managedDisk,omitempty"`
	// Defaulted names the OS disk's properties that nothing gave and that took Standby's defaults.
	Defaulted []string `json:"defaulted,omitempty"`
}

// GroupSpec is what the operator asks for when enabling replication of a consistency group.
type GroupSpec struct {
	// The group's VMs and their disks: written in one order, failed over together.
	VMs []VMSpec `json:"vms" input:"required"`
	// Where the replicas and the failed-over VMs go.
	Target TargetSpec `json:"target"`
	// Recovery point intervals, retention and RPO thresholds.
	Policy Policy `json:"policy"`
	// How source subnets map to the target's and the test network's.
	Network NetworkSpec `json:"network"`
	// The group's drill: schedule, point, checks, readiness window.
	Drill DrillSpec `json:"drill"`
}

// DrillSpec is a group's drill: when it runs by itself (a five-field NCRONTAB schedule in UTC), the
// point it fails over to, the checks that prove the workload came back, and within how many days a
// drill must have succeeded (readiness).
type DrillSpec struct {
	// When drills run by themselves: NCRONTAB, UTC (empty: on request only).
	Schedule string `json:"schedule,omitempty"`
	// The point a drill fails over to (default latestProcessed).
	Point string `json:"point,omitempty"`
	// Checks run in the drill's VMs once they are up.
	Checks []DrillCheck `json:"checks,omitempty"`
	// How recent a successful drill must be for the group to be ready (default 180).
	ReadinessDays int `json:"readinessDays,omitempty"`
}

// DrillCheck is a command run in a failed-over VM (its expected exit code, and a pattern its output
// must match), or an HTTP probe of a VM's private address run from vm.
type DrillCheck struct {
	// The check's name.
	Name string `json:"name"`
	// The VM it runs in.
	VM string `json:"vm"`
	// A command check's shell script, run in VM.
	Command string `json:"command,omitempty"`
	// The exit code the command must end with (default 0).
	ExpectExitCode int `json:"expectExitCode,omitempty"`
	// Text the command's output must contain.
	ExpectOutput string `json:"expectOutput,omitempty"`
	// An HTTP check instead of a command.
	HTTP *HTTPProbe `json:"http,omitempty"`
	// How long the check may take.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// HTTPProbe is an HTTP GET of http://<vm's private address>:<port><path>, expecting expectStatus.
type HTTPProbe struct {
	// The VM asked, from the check's VM over the test network.
	VM string `json:"vm"`
	// The port asked.
	Port int `json:"port"`
	// The path asked for (default /).
	Path string `json:"path,omitempty"`
	// The status the answer must have (default 200).
	ExpectStatus int `json:"expectStatus,omitempty"`
}

// NetworkMapping maps a source "vnet/subnet" to the target region's subnet, and to an isolated test
// subnet for test failovers (which must never share the production network). A target or test subnet
// is either "vnet/subnet" in the recovery resource group — created on enable when it is missing, as Site
// Recovery creates its target network, which needs its address prefix (targetPrefix, testPrefix) — or
// the full resource id of an existing subnet, used as it is.
type NetworkMapping struct {
	// The source subnet, as vnet/subnet.
	Source string `json:"source"`
	// The target subnet failed-over VMs join.
	Target string `json:"target"`
	// The isolated test subnet drills' VMs join.
	Test string `json:"test"`
	// The target subnet's address prefix, when the target network is made on enable.
	TargetPrefix string `json:"targetPrefix,omitempty"`
	// The test subnet's address prefix, when it is made on enable.
	TestPrefix string `json:"testPrefix,omitempty"`
}

// NetworkSpec maps source subnets to target ones.
type NetworkSpec struct {
	// One mapping per source subnet.
	Mappings []NetworkMapping `json:"mappings,omitempty"`
}

// Policy is the replication policy.
type Policy struct {
	// How often a crash-consistent point is asked for.
	CrashConsistentIntervalSeconds int `json:"crashConsistentIntervalSeconds"`
	// How often an app-consistent point is asked for, 900 to 604800 s (0: off).
	AppConsistentIntervalSeconds int `json:"appConsistentIntervalSeconds"`
	// How long recovery points are kept.
	RetentionHours int `json:"retentionHours"`
	// How long applied batches stay in the journal for any-point-in-time recovery.
	JournalWindowMinutes int `json:"journalWindowMinutes"`
	// RPO health thresholds: Warning above RPOWarningMinutes, Critical above RPOCriticalMinutes or
	// when no recovery point is younger than NoPointCriticalMinutes.
	RPOWarningMinutes int `json:"rpoWarningMinutes"`
	// Critical when the RPO exceeds this.
	RPOCriticalMinutes int `json:"rpoCriticalMinutes"`
	// Critical when no crash-consistent point is younger than this.
	NoPointCriticalMinutes int `json:"noPointCriticalMinutes"`
}

// SeedDisk is one disk to seed: its key in the group, the managed disk it comes from, its size.
type SeedDisk struct {
	// The disk, as vm/disk.
	Key string `json:"key"`
	// The managed disk to seed from.
	ManagedDisk string `json:"managedDisk"`
	// Its size.
	SizeBytes int64 `json:"sizeBytes"`
}

// SeedProgress is one disk's copy.
type SeedProgress struct {
	// The disk, as vm/disk.
	Key string `json:"key"`
	// The blob it is copied into.
	Blob  string `json:"blob"`
	State string `json:"state"` // copying, done, failed
	// Bytes copied so far.
	Copied int64 `json:"copiedBytes"`
	// Bytes to copy in all.
	Total int64 `json:"totalBytes"`
	// Why the copy failed.
	Error string `json:"error,omitempty"`
}

// SeedRequest asks for disks to be seeded into a container of this site's target storage.
type SeedRequest struct {
	// The container the copies go into.
	Container string `json:"container" input:"required"`
	// The disks to seed.
	Disks []SeedDisk `json:"disks" input:"required"`
}

// SeedStatus is every disk's copy; Done once all are done.
type SeedStatus struct {
	// Every copy is done.
	Done bool `json:"done"`
	// Each disk's copy.
	Disks []SeedProgress `json:"disks"`
}

// State is where a consistency group stands. Every change of a group's state goes through Move, so
// the transitions below are the whole life cycle:
//
//	InitialReplication ─► Protected ◄─► ResyncRequired ─► Resyncing ─► Protected   (replicating this way)
//	any of those ─► FailedOver ─► Committed ─► Reprotected ─► FailedBack ─► ResyncRequired
//	any state ─► Disabled (the operator's DELETE; the group's rows may then be removed) ─► FailedOver
type State string

// TargetResources are what a group fails over into, made on enable as Site Recovery makes them: the
// recovery resource group, the virtual networks and subnets of the network mapping (the isolated test
// subnet included) and the availability sets. They are recorded on the group and shown by the API.
type TargetResources struct {
	ResourceGroup   string `json:"resourceGroup"`   // its name
	ResourceGroupID string `json:"resourceGroupId"` // its id
	// Deployment is the ARM deployment that made what was missing ("" when everything existed).
	Deployment string `json:"deployment,omitempty"`
	State      string `json:"state"` // Running, Succeeded or Failed
	// Why making the target resources failed.
	Error string `json:"error,omitempty"`
	// Subnets maps each mapping's target and test subnet, as the spec names it, to its resource id.
	Subnets map[string]string `json:"subnets,omitempty"`
	// AvailabilitySets are the ids of the sets the VMs are placed in.
	AvailabilitySets []string `json:"availabilitySets,omitempty"`
	// Created lists the ids the deployment made (the rest existed and were used as they are).
	Created []string `json:"created,omitempty"`
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

// VMSpec is one protected VM.
type VMSpec struct {
	// The VM's name.
	Name string `json:"name"`
	// The VM's disks, the OS disk first.
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

// Action is a step between boot groups. A webhook POSTs a JSON body signed with HMAC-SHA256 (the app's
// StandbyWebhookSecret) to URL and expects ExpectStatus within TimeoutSeconds; a manual action waits
// until an operator acknowledges it through the API, Instructions telling them what to check.
type Action struct {
	// The action's name, unique in the plan: what an acknowledgement names.
	Name string `json:"name"`
	// webhook, manual or command.
	Type string `json:"type"`
	// A webhook action's address (https, a public address unless the app allows private ones).
	URL string `json:"url,omitempty"`
	// How long a webhook or command may take, 1 to 300 s (defaults: webhook 30, command 60).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// The HTTP status a webhook must answer with (default 200).
	ExpectStatus int `json:"expectStatus,omitempty"`
	// What the operator checks before acknowledging a manual action.
	Instructions string `json:"instructions,omitempty"`
	// A command action runs command as root in vm ("group/vm", already up) and expects expectExitCode.
	VM string `json:"vm,omitempty"`
	// A command action's shell script, run in VM by the run channel (Azure's run command).
	Command string `json:"command,omitempty"`
	// The exit code a command action must end with (default 0).
	ExpectExitCode int `json:"expectExitCode,omitempty"`
}

// BootGroup is a set of VMs ("group/vm") that come up together, after the boot groups before it, with
// actions before (pre) and after (post) they come up.
type BootGroup struct {
	// The boot group's name.
	Name string `json:"name"`
	// The VMs that boot together, as group/vm.
	VMs []string `json:"vms"`
	// Actions before the group's VMs are deployed.
	Pre []Action `json:"pre,omitempty"`
	// Actions after the group's VMs are up and healthy.
	Post []Action `json:"post,omitempty"`
}

// JobStep is one step's record.
type JobStep struct {
	// The step.
	Name  string `json:"name"`
	State string `json:"state" enum:"stepState"` // pending, running, done, failed, skipped (after a failure, up to the cleanup that always runs)
	// When it first ran (absent while pending).
	Started time.Time `json:"started,omitzero"`
	// When it ended (absent while pending or running).
	Ended time.Time `json:"ended,omitzero"`
	// What it did, or why it failed.
	Outcome string `json:"outcome,omitempty"`
	// How many times it ran (a waiting step runs again and again).
	Tries int `json:"tries,omitempty"`
	// Always: a cleanup step, which runs also after an earlier step failed.
	Always bool `json:"always,omitempty"`
}

// PlanSpec is what the operator PUTs.
type PlanSpec struct {
	// The consistency groups the plan fails over together.
	Groups []string `json:"groups" input:"required"`
	// The order VMs come up in, with actions between.
	BootGroups []BootGroup `json:"bootGroups" input:"required"`
	// Drill is the plan's drill: its checks name VMs "group/vm".
	Drill DrillSpec `json:"drill"`
}
