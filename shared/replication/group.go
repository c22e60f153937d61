package replication

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Tables of the replication state (target region).
const (
	GroupsTable  = "groups"
	MarkersTable = "markers"
	stateRow     = "state"
	vmRowPrefix  = "vm~"
)

// GroupRecord is a group as its writers left it: one row per writer in the group's partition, as raft
// keeps what different actors write in different stores, so that apply, the agent's heartbeat and the
// timer never contend with each other or with the operator's jobs. Loading a group stays one query.
//   - state (GroupState): life cycle, configuration and the jobs' claims: enable, the API, the jobs;
//   - progress (GroupProgress): apply;
//   - agent (AgentStatus): the agent's heartbeat;
//   - health (GroupHealth): the timer (recovery points, RPO health, alerts).
//
// A change names the rows it writes (UpdateGroup); the others it may read, unguarded.
type GroupRecord struct {
	GroupState
	GroupProgress
	AgentStatus
	GroupHealth
}

// GroupState is the group's state row: what it is, where it replicates to, and where its life cycle
// stands. Every life-cycle move is made here, so a job's claim (FailoverJob, WayBackJob,
// ActiveTestFailover) and the state its admission rule read are guarded by one ETag.
type GroupState struct {
	Keys
	// Claim keys the group's VM rows (CreateGroup); Creating marks a group whose target disks are being
	// made (Enable).
	Claim    string `json:"Claim,omitempty"`
	Creating bool   `json:"Creating,omitempty"`
	// origin is who enabled the group (peers.go).
	Origin origin `json:"Origin,omitempty"`
	// AgentKeyHash is the SHA-256 of the group's agent key (agentkeys.go).
	AgentKeyHash string `json:"AgentKeyHash,omitempty"`
	// StreamKey authenticates the group's change stream (streamauth.go); never shown in a view.
	StreamKey string `json:"StreamKey,omitempty"`
	// PrevStreamKey is the key StreamKey replaced when the agent key was last issued: it still opens the
	// sequences through PrevStreamKeyThrough (stored before the rotation), and nothing after.
	PrevStreamKey        string      `json:"PrevStreamKey,omitempty"`
	PrevStreamKeyThrough int64       `json:"PrevStreamKeyThrough,omitempty"`
	Target               TargetSpec  `json:"Target"`
	Policy               Policy      `json:"Policy"`
	Network              NetworkSpec `json:"Network"`
	Drill                DrillSpec   `json:"Drill"`
	VMNames              []string    `json:"VMNames"`

	// Resources are the target resources made on enable (targets.go).
	Resources TargetResources `json:"Resources"`

	State  State  `json:"State"`
	Reason string `json:"Reason,omitempty"`
	// UpdatedAt is when the state row last changed (a move, a new placement); apply's progress is
	// GroupProgress.LastAppliedAt.
	CreatedAt time.Time `json:"CreatedAt"`
	UpdatedAt time.Time `json:"UpdatedAt"`

	// StopRequested tells the agent to stop taking writes, flush and report its final sequence
	// (planned failover); AgentStatus.AgentStoppedSeq is that sequence once the agent has stopped.
	StopRequested bool `json:"StopRequested"`
	// FailoverJob is the failover the group is in (or was committed from).
	FailoverJob string `json:"FailoverJob,omitempty"`
	// WayBackJob is the last reprotect or failback job: one runs at a time.
	WayBackJob string `json:"WayBackJob,omitempty"`
	// ActiveTestFailover is the test failover job (or drill) whose disks exist until a cleanup.
	ActiveTestFailover string `json:"ActiveTestFailover,omitempty"`
	// The last drill: its job, when it started, how it ended, and when a drill last succeeded (the
	// group's failover readiness).
	LastDrillJob         string    `json:"LastDrillJob,omitempty"`
	LastDrillAt          time.Time `json:"LastDrillAt"`
	LastDrillResult      string    `json:"LastDrillResult,omitempty"`
	LastDrillSucceededAt time.Time `json:"LastDrillSucceededAt"`
	// LastDrillSlot is the newest slot of the drill's schedule taken: started, or skipped with a reason.
	LastDrillSlot time.Time `json:"LastDrillSlot"`
	// The last test failover or drill to end: its job and type, when it started, the point it used,
	// how it ended and its RTO (from its start until its VMs were up; 0 when they never were).
	LastTest LastTest `json:"LastTest"`
}

// LastTest is how a group's last test failover or drill went.
type LastTest struct {
	Job        string    `json:"Job,omitempty"`
	Type       string    `json:"Type,omitempty"`
	At         time.Time `json:"At"`
	Point      string    `json:"Point,omitempty"`
	PointTime  time.Time `json:"PointTime"`
	Result     string    `json:"Result,omitempty"`
	RTOSeconds float64   `json:"RTOSeconds,omitempty"`
}

// GroupProgress is apply's row: where the target disks stand in the group's stream.
type GroupProgress struct {
	// Watermark is the highest sequence applied: every batch up to it is on the target disks.
	Watermark      int64     `json:"Watermark"`
	LastSourceTime time.Time `json:"LastSourceTime"`
	LastAppliedAt  time.Time `json:"LastAppliedAt"`
	BatchesApplied int64     `json:"BatchesApplied"`
	BytesApplied   int64     `json:"BytesApplied"`
	// ApplyBytesPerSecond is the throughput of the last write set.
	ApplyBytesPerSecond float64 `json:"ApplyBytesPerSecond"`

	LastMarkerSeq  int64     `json:"LastMarkerSeq"`
	LastMarkerTime time.Time `json:"LastMarkerTime"`
	LastMarkerKind string    `json:"LastMarkerKind,omitempty"`
	// MarkerPending is the marker whose snapshots are being taken: an attempt that finds it set knows
	// an earlier one may have left snapshots it never recorded (they carry the marker's tag).
	MarkerPending int64 `json:"MarkerPending"`
}

// AgentStatus is the heartbeat's row: what the group's agent last reported.
type AgentStatus struct {
	AgentSeq        int64     `json:"AgentSeq"`
	AgentSeenAt     time.Time `json:"AgentSeenAt"`
	BaselineDone    int64     `json:"BaselineDone"`
	BaselineTotal   int64     `json:"BaselineTotal"`
	BaselineRateBps float64   `json:"BaselineRateBps"`
	// BaselineBlocks were compared by the agent's sync, BaselineBlocksSent differed and were sent.
	BaselineBlocks     int64 `json:"BaselineBlocks"`
	BaselineBlocksSent int64 `json:"BaselineBlocksSent"`
	// AgentLastError is the last error the agent reported meeting (redacted).
	AgentLastError string `json:"AgentLastError,omitempty"`
	// AgentStoppedSeq is the agent's final sequence after a stop (GroupState.StopRequested).
	AgentStoppedSeq int64 `json:"AgentStoppedSeq"`
}

// GroupHealth is the timer's row: recovery points, the markers it asks for, health and alerts.
type GroupHealth struct {
	// HistoryPrunedAt is when the timer last pruned the group's history (hourly).
	HistoryPrunedAt time.Time `json:"HistoryPrunedAt"`

	LastPromotedSeq  int64     `json:"LastPromotedSeq"`
	LastPointTime    time.Time `json:"LastPointTime"`
	LastAppPointTime time.Time `json:"LastAppPointTime"`
	// MarkerRequestedAt asks the agent for a crash-consistent marker (cutpoints, when the newest
	// marker is older than the policy's interval); the heartbeat passes it on.
	MarkerRequestedAt time.Time `json:"MarkerRequestedAt"`
	// AppMarkerRequestedAt asks for an app-consistent marker (the policy's app interval passed).
	AppMarkerRequestedAt time.Time `json:"AppMarkerRequestedAt"`

	Health       string `json:"Health,omitempty"`
	HealthReason string `json:"HealthReason,omitempty"`
	// Alerted is the alert conditions last raised (alerts.go); AlertSeq counts the changes alerted.
	Alerted  string `json:"Alerted,omitempty"`
	AlertSeq int64  `json:"AlertSeq,omitempty"`
}

// Group is the group's name (the row's partition key).
func (r *GroupRecord) Group() string { return r.PartitionKey }

func putVMRows(ctx context.Context, store StateStore, group, claim string, spec GroupSpec) error {
	for _, vm := range spec.VMs {
		rec := vMRecord{Keys: Keys{PartitionKey: group, RowKey: vmRowKey(claim, vm.Name)}, Disks: vm.Disks, Subnet: vm.Subnet, StaticIP: vm.StaticIP, Zone: vm.Zone, AvSet: vm.AvailabilitySet, Size: vm.Size}
		if _, err := store.Upsert(ctx, GroupsTable, rec); err != nil {
			return err
		}
	}
	return nil
}

// updatePlacement changes where failovers place the group's VMs — the network mapping and each VM's
// subnet, static IP, zone or availability set — and its drill, which replication itself never reads. The VM rows
// first, then the state row: a reader sees the new mapping only once every VM's placement matches it.
func updatePlacement(ctx context.Context, store StateStore, group, claim string, spec GroupSpec, res TargetResources, now time.Time) (*Group, error) {
	if err := putVMRows(ctx, store, group, claim, spec); err != nil {
		return nil, err
	}
	if _, err := UpdateGroup(ctx, store, group, StateRow, func(r *GroupRecord) error {
		r.Network, r.Drill, r.UpdatedAt = spec.Network, spec.Drill, now
		if res.ResourceGroupID != "" {
			r.Resources = res
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return LoadGroup(ctx, store, group)
}

// vMRecord holds one VM's disks (a row per VM keeps every row far below Table storage's limits).
type vMRecord struct {
	Keys
	Disks    []DiskSpec `json:"Disks"`
	Subnet   string     `json:"Subnet,omitempty"`
	StaticIP string     `json:"StaticIP,omitempty"`
	Zone     string     `json:"Zone,omitempty"`
	AvSet    string     `json:"AvailabilitySet,omitempty"`
	Size     string     `json:"Size,omitempty"`
}

// MarkerRecord is a marker apply has reached: the snapshot of every disk of the group at that point
// of the stream, a crash-consistent (or app-consistent) image of the whole group.
type MarkerRecord struct {
	Keys
	Seq         int64             `json:"Seq"`
	Consistency string            `json:"Consistency"`
	Baseline    bool              `json:"Baseline"`
	SourceTime  time.Time         `json:"SourceTime"`
	AppliedAt   time.Time         `json:"AppliedAt"`
	Snapshots   map[string]string `json:"Snapshots"`
}

// Group is a group as loaded: its record and its spec.
type Group struct {
	Record GroupRecord
	Spec   GroupSpec
}

// StreamKey is the group's stream key (nil for a group made before keys: unauthenticated).
func (g *Group) StreamKey() []byte { return streamKeyOrNothing(g.Record.StreamKey) }

// StreamKeyFor is the key that authenticates sequence seq: the previous key for what was stored before
// the last rotation, the current one after.
func (g *Group) StreamKeyFor(seq int64) []byte {
	if g.Record.PrevStreamKey != "" && seq <= g.Record.PrevStreamKeyThrough {
		return streamKeyOrNothing(g.Record.PrevStreamKey)
	}
	return g.StreamKey()
}

func streamKeyOrNothing(encoded string) []byte {
	key, err := DecodeStreamKey(encoded)
	if err != nil {
		return make([]byte, streamKeyBytes) // a damaged key authenticates nothing an agent sends
	}
	return key
}

// TargetDisk is where a disk's replica lives.
func (g *Group) TargetDisk(key string) DiskRef {
	return g.Spec.TargetDisk(key)
}

// ErrNoGroup is returned for a group that has not been enabled.
var ErrNoGroup = fmt.Errorf("group not enabled: %w", ErrNotFound)

// LoadGroup reads a group's rows in one query: its record and its VMs.
func LoadGroup(ctx context.Context, store StateStore, group string) (*Group, error) {
	loaded, vms, err := readGroup(ctx, store, group, true)
	if err != nil {
		return nil, err
	}
	g := &Group{Record: loaded.rec}
	g.Spec = GroupSpec{Target: g.Record.Target, Policy: g.Record.Policy, Network: g.Record.Network, Drill: g.Record.Drill}
	for _, name := range g.Record.VMNames {
		vm, ok := vms[vmRowKey(g.Record.Claim, name)]
		if !ok {
			return nil, fmt.Errorf("group %s: the row of VM %s is missing", group, name)
		}
		g.Spec.VMs = append(g.Spec.VMs, VMSpec{Name: name, Disks: vm.Disks, Subnet: vm.Subnet, StaticIP: vm.StaticIP, Zone: vm.Zone, AvailabilitySet: vm.AvSet, Size: vm.Size})
	}
	return g, nil
}

// CreateGroup writes a new group's rows: the VM rows first, the state row last, so a group is visible
// only once complete. The VM rows' keys carry a claim only this attempt knows and the state row records:
// of two concurrent first enables only one state row is inserted, and only its VM rows are ever read
// (the other's are removed, or left unread by a crash).
func CreateGroup(ctx context.Context, store StateStore, group string, spec GroupSpec, now time.Time) (*Group, error) {
	return createGroupFrom(ctx, store, group, spec, originOperator, now)
}

// createGroupFrom is CreateGroup for a group enabled by origin.
func createGroupFrom(ctx context.Context, store StateStore, group string, spec GroupSpec, origin origin, now time.Time) (*Group, error) {
	claim := uuid.NewString()[:8]
	if err := putVMRows(ctx, store, group, claim, spec); err != nil {
		return nil, err
	}
	rec := GroupRecord{GroupState: GroupState{Keys: Keys{PartitionKey: group, RowKey: stateRow}, Claim: claim, Creating: true, Origin: origin, StreamKey: newStreamKey(), Target: spec.Target, Policy: spec.Policy, Network: spec.Network,
		Drill: spec.Drill, State: StateInitialReplication, CreatedAt: now, UpdatedAt: now}}
	for _, vm := range spec.VMs {
		rec.VMNames = append(rec.VMNames, vm.Name)
	}
	if err := store.Transact(ctx, GroupsTable, createRecordOps(&rec)); err != nil {
		for _, vm := range spec.VMs { // lost the race (or failed): this attempt's rows are nobody's
			store.Delete(ctx, GroupsTable, group, vmRowKey(claim, vm.Name), "")
		}
		return nil, err
	}
	return &Group{Record: rec, Spec: spec}, nil
}

// vmRowKey is a VM's row key under the group's claim (groups made before claims have none).
func vmRowKey(claim, vm string) string {
	if claim == "" {
		return vmRowPrefix + vm
	}
	return vmRowPrefix + claim + "." + vm // VM names have no '.'
}

// DeleteGroupRows removes a group's rows (state row first, so a half-deleted group is invisible).
func DeleteGroupRows(ctx context.Context, store StateStore, group string) error {
	var keys []string
	err := store.Query(ctx, GroupsTable, group, func(decode func(any) error, _ ETag) error {
		var k Keys
		if err := decode(&k); err != nil {
			return err
		}
		keys = append(keys, k.RowKey)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] == stateRow })
	for _, rk := range keys {
		if err := store.Delete(ctx, GroupsTable, group, rk, ""); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// GroupNames lists every enabled group.
func GroupNames(ctx context.Context, store StateStore) ([]string, error) {
	var names []string
	err := store.ListRows(ctx, GroupsTable, stateRow, func(decode func(any) error, _ ETag) error {
		var k Keys
		if err := decode(&k); err != nil {
			return err
		}
		names = append(names, k.PartitionKey)
		return nil
	})
	return names, err
}

// ListMarkers returns a group's markers, oldest first.
func ListMarkers(ctx context.Context, store StateStore, group string) ([]MarkerRecord, error) {
	markers, _, err := QueryAll[MarkerRecord](ctx, store, MarkersTable, group)
	return markers, err
}

// Pending is how many batches the agent has published that apply has not applied.
func (r *GroupRecord) Pending() int64 { return max(0, r.AgentSeq-r.Watermark) }

// RPO is how old the newest write on the target is, as far as the pipeline knows: caught up with a
// live agent, the age of the agent's last report; behind, the age of the last applied write.
func (r *GroupRecord) RPO(now time.Time) time.Duration {
	ref := r.LastSourceTime
	if r.Pending() == 0 && r.AgentSeenAt.After(ref) {
		ref = r.AgentSeenAt
	}
	if ref.IsZero() {
		return 0
	}
	return max(0, now.Sub(ref))
}

// RemoveGroup deletes everything a group made: the target disks it created (with their snapshots), the
// snapshots it took of existing disks it was given (target.disks: a reprotect's original disks, which
// stay), its markers, recovery points, holds, history, journal, and last its rows. Each part is
// idempotent, so a removal that stopped halfway is finished by running it again.
func RemoveGroup(ctx context.Context, state StateStore, pages PageStore, journal JournalStore, g *Group) error {
	group := g.Record.Group()
	markers, err := ListMarkers(ctx, state, group)
	if err != nil {
		return err
	}
	points, err := ListPoints(ctx, state, group)
	if err != nil {
		return err
	}
	for _, d := range g.Spec.Disks() {
		ref := g.TargetDisk(d.Key)
		if _, given := g.Spec.Target.Disks[d.Key]; !given {
			owns, err := ownsCreated(ctx, state, g, ref)
			if err != nil {
				return err
			}
			if owns { // never another group's blob, whatever the spec says
				if err := pages.BreakLease(ctx, ref); err != nil { // apply's
					return err
				}
				if err := pages.Delete(ctx, ref); err != nil {
					return err
				}
			}
			if err := releaseBlob(ctx, state, ref, group); err != nil {
				return err
			}
			continue
		}
		if err := releaseBlob(ctx, state, ref, group); err != nil {
			return err
		}
		// A given disk's lease is left to lapse: by now it may be a VM's (attached after a failback).
		var snaps []string
		for _, m := range markers {
			snaps = append(snaps, m.Snapshots[d.Key])
		}
		for _, p := range points {
			snaps = append(snaps, p.Snapshots[d.Key])
		}
		for _, snap := range snaps {
			if snap == "" {
				continue
			}
			if err := pages.DeleteSnapshot(ctx, ref, snap); err != nil {
				return err
			}
		}
	}
	if _, err := journal.Prune(ctx, group, math.MaxInt64, time.Now().Add(24*time.Hour)); err != nil {
		return err
	}
	for _, table := range []string{MarkersTable, PointsTable, HoldsTable, EventsTable, QuarantineTable, DrillsTable, ScrubsTable} {
		partition := group
		if table == QuarantineTable {
			partition = "group-" + group
		}
		rows, _, err := QueryAll[Keys](ctx, state, table, partition)
		if err != nil {
			return err
		}
		for _, k := range rows {
			if err := state.Delete(ctx, table, k.PartitionKey, k.RowKey, ""); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return DeleteGroupRows(ctx, state, group)
}
