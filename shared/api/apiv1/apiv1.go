// Package apiv1 holds the wire types of Standby's REST API (/api/v1): what the api function answers and
// accepts, and what the operator CLI, the agent and the peer site send and read. Errors travel as RFC
// 7807 problem+json documents.
package apiv1

import (
	"errors"
	"time"
)

// ErrBadRequest is what a client's error wraps for a 400: a request the API will never take as it is
// (retrying it changes nothing).
var ErrBadRequest = errors.New("bad request")

// DependencyHealth is one dependency's line in the health report.
type DependencyHealth struct {
	// The dependency: storage, tables, the change hub, the job queue, the compute.
	Name string `json:"name"`
	// Whether it answered.
	Reachable bool `json:"reachable"`
	// How long the check took, in milliseconds.
	LatencyMs int64 `json:"latencyMs"`
	// Why it is unreachable (redacted).
	Error string `json:"error,omitempty"`
}

// AgentKeyHeader carries an agent's key on the agent routes (/api/agent/v1/...).
const AgentKeyHeader = "x-standby-agent-key"

// AgentKeyView is a group's new agent key, shown once (POST /groups/{g}/agent-key).
type AgentKeyView struct {
	// The group's new agent key: shown this once (only its hash is kept).
	AgentKey string `json:"agentKey"`
}

// StreamKeyView is the group's change-stream key, for its agents (base64; "" for a group without one).
type StreamKeyView struct {
	// The group's change-stream key, base64 (agents only).
	StreamKey string `json:"streamKey"`
}

// GroupView is a group as the API shows it.
type GroupView struct {
	// The group's name.
	Group string `json:"group"`
	// The group's state in its life cycle.
	State State `json:"state"`
	// Why the group is in its state, when there is a why.
	Reason string `json:"reason,omitempty"`
	// Replicating: the state is one of replication's (initial, protected, resync); RPO means nothing
	// otherwise (failed over, disabled).
	Replicating bool `json:"replicating"`
	// The group's VMs and their disks.
	VMs []VMSpec `json:"vms"`
	// Capture says, per disk, how its writes are captured and whether its points are crash-consistent.
	Capture []Capture `json:"capture"`
	// Where the replicas and the failed-over VMs go.
	Target TargetSpec `json:"target"`
	// The replication policy.
	Policy Policy `json:"policy"`
	// The network mapping.
	Network NetworkSpec `json:"network"`
	// TargetResources are the target region's resources made on enable (none without a compute).
	TargetResources *TargetResources `json:"targetResources,omitempty"`
	// The last sequence applied to the target.
	Watermark int64 `json:"watermark"`
	// The last sequence the agent reported published.
	AgentSeq int64 `json:"agentSeq"`
	// Batches the agent published that apply has not applied.
	PendingBatches int64 `json:"pendingBatches"`
	// How far the target lags the source, in seconds (0 when not replicating).
	RPOSeconds float64 `json:"rpoSeconds"`
	// The source time of the newest write on the target.
	LastSourceTime time.Time `json:"lastSourceTime"`
	// When apply last wrote to the target.
	LastAppliedAt time.Time `json:"lastAppliedAt"`
	// AgentSeenAt is the agent's last heartbeat (none yet: absent).
	AgentSeenAt *time.Time `json:"agentSeenAt,omitempty"`
	// The rate of the last write set applied, bytes per second.
	ApplyBytesPerSec float64 `json:"applyBytesPerSecond"`
	// Bytes applied so far.
	BytesApplied int64 `json:"bytesApplied"`
	// Batches applied so far.
	BatchesApplied int64 `json:"batchesApplied"`
	// Health is rated only while the group replicates this way (absent when failed over or disabled);
	// HealthErrors say each cause and what to do about it.
	Health string `json:"health,omitempty" enum:"health"`
	// The health errors' messages, joined.
	HealthReason string `json:"healthReason,omitempty"`
	// Each cause of a health other than Healthy, with what to do.
	HealthErrors []HealthErrorView `json:"healthErrors"`
	// ReplicationState is where replication stands: stopped, initialSync, rescan, disconnected (the
	// agent is silent), stalled (apply takes nothing), backlog or continuous.
	ReplicationState string `json:"replicationState" enum:"replicationState"`
	// The newest recovery point's source time.
	LastPointTime *time.Time `json:"lastRecoveryPoint,omitempty"`
	// The newest app-consistent point's source time.
	LastAppPointTime *time.Time `json:"lastAppConsistentPoint,omitempty"`
	// What the retention keeps now.
	Retention *RetentionView `json:"retentionWindow,omitempty"`
	// The initial replication's or resync's progress, while one runs.
	InitialReplication *BaselineView `json:"initialReplication,omitempty"`
	// The newest marker apply has applied.
	LastMarker *MarkerView `json:"lastMarker,omitempty"`
	// The group's drill spec.
	Drill DrillSpec `json:"drill"`
	// Whether the group is ready to fail over: its drills.
	Readiness ReadinessView `json:"readiness"`
	// Scrub is how the scrub's passes stand, per disk it covers (absent: none scrubbed yet).
	Scrub []ScrubView `json:"scrub,omitempty"`
	// AllowedOperations are the job types the group's state admits now (POST .../failover's types,
	// drills, cleanup-test-failover, change-recovery-point, commit, reprotect, failback); NotAllowed
	// says why each other one is not.
	AllowedOperations []string `json:"allowedOperations" enum:"operation"`
	// The operations the state does not admit now, each with why.
	NotAllowed []OperationRefusal `json:"notAllowed"`
	// When replication was enabled.
	CreatedAt time.Time `json:"createdAt"`
}

// HealthErrorView is one thing wrong with a group's replication.
type HealthErrorView struct {
	// A stable code for the cause.
	Code string `json:"code" enum:"healthError"`
	// How bad: Warning or Critical.
	Severity string `json:"severity" enum:"health"`
	// What is wrong, with its figures.
	Message string `json:"message"`
	// What the operator does about it.
	RecommendedAction string `json:"recommendedAction"`
}

// OperationRefusal is an operation the group's state does not admit now, and why.
type OperationRefusal struct {
	// The operation.
	Operation string `json:"operation" enum:"operation"`
	// Why the group's state does not admit it now.
	Reason string `json:"reason"`
}

// RetentionView is what the group's retention keeps: the policy and the points it holds now.
type RetentionView struct {
	// The policy's retention.
	Hours int `json:"hours"`
	// How many points it keeps now.
	Points int `json:"points"`
	// The oldest point's source time.
	OldestPoint *time.Time `json:"oldestPoint,omitempty"`
	// The newest point's source time.
	NewestPoint *time.Time `json:"newestPoint,omitempty"`
}

// BaselineView is initial replication (or resync) progress as the agent reports it.
type BaselineView struct {
	// Bytes read so far.
	DoneBytes int64 `json:"doneBytes"`
	// Bytes it reads in all.
	TotalBytes int64 `json:"totalBytes"`
	// How far it is, 0 to 100.
	Percent float64 `json:"percent"`
	// Its rate, bytes per second.
	RateBps float64 `json:"rateBytesPerSecond"`
	// Seconds left at the current rate (absent: no rate yet).
	ETASeconds float64 `json:"etaSeconds"`
	// BlocksCompared and BlocksSent: a checksum sync sends only the blocks that differ.
	BlocksCompared int64 `json:"blocksCompared"`
	// Of the blocks compared, those found different and sent.
	BlocksSent int64 `json:"blocksSent"`
}

// MarkerView is the last marker applied.
type MarkerView struct {
	// The marker's sequence.
	Seq int64 `json:"seq"`
	// crash or app.
	Consistency string `json:"consistency"`
	// When the agent put it in the stream.
	SourceTime time.Time `json:"sourceTime"`
}

// EventReport is an event the agent reports (a failed app-consistency hook).
type EventReport struct {
	// What happened, in one word (app-consistency, journal-conflict, …).
	Kind string `json:"kind" input:"required"`
	// What happened, in the agent's words.
	Message string `json:"message" input:"required"`
}

// EventView is one entry of a group's history.
type EventView struct {
	// When.
	Time time.Time `json:"time"`
	// The event's kind: state, alert, agent's, …
	Kind string `json:"kind"`
	// What happened.
	Message string `json:"message"`
}

// PointView is a recovery point as the API shows it.
type PointView struct {
	// The point's id, rp-<sequence>.
	ID string `json:"id"`
	// crash or app.
	Kind string `json:"kind" enum:"pointKind"`
	// The source time the point captures.
	SourceTime time.Time `json:"sourceTime"`
	// The marker's sequence.
	Seq int64 `json:"seq"`
	// Every disk's snapshot at the point.
	Disks []PointDiskView `json:"disks"`
	// When cutpoints promoted it.
	CreatedAt time.Time `json:"createdAt"`
	// Suspect says why the point may hold damage a scrub found later (absent: none found).
	Suspect string `json:"suspect,omitempty"`
}

// PointDiskView is one disk of a point.
type PointDiskView struct {
	// The disk, as vm/disk.
	Disk string `json:"disk"`
	// The target blob's snapshot that holds it.
	Snapshot string `json:"snapshot"`
	// Its size at the point.
	SizeBytes int64 `json:"sizeBytes"`
}

// PointsPage is GET /groups/{group}/recovery-points.
type PointsPage struct {
	// The group.
	Group string `json:"group"`
	// The points, newest first.
	Points []PointView `json:"points"`
	// Next continues the listing (pass it as ?after=).
	Next string `json:"next,omitempty"`
	// Window is what can be restored: from the oldest point to the newest applied write; JournalCovers
	// says whether the journal holds every batch in between (any point in time, not only the points).
	Window RestorableWindow `json:"restorableWindow"`
}

// RestorableWindow is what a group's points and journal can restore.
type RestorableWindow struct {
	// The oldest point's source time.
	From *time.Time `json:"from,omitempty"`
	// The newest applied write's source time.
	To *time.Time `json:"to,omitempty"`
	// The journal holds every batch from the oldest point on: any time in the window can be restored.
	JournalCovers bool `json:"journalCovers"`
	// Why the journal does not cover the window.
	Reason string `json:"reason,omitempty"`
}

// HealthView is GET /health: "healthy" (200) or "degraded" (503), and each dependency.
type HealthView struct {
	// healthy, or degraded when a dependency is unreachable.
	Status string `json:"status"`
	// Each dependency's reachability.
	Dependencies []DependencyHealth `json:"dependencies"`
}

// GroupList is GET /groups.
type GroupList struct {
	// Every group.
	Groups []GroupView `json:"groups"`
}

// ScrubView is one disk's scrub: how far the current pass is, the last full pass and what it found.
type ScrubView struct {
	// The disk, as vm/disk.
	Disk string `json:"disk"`
	// How far the current pass is, 0 to 100.
	PassPercent float64 `json:"passPercent"`
	// When the last full pass ended.
	LastFullPass *time.Time `json:"lastFullPass,omitempty"`
	// The last full pass found no damage.
	LastPassClean bool `json:"lastPassClean"`
	// Blocks compared in the current pass.
	BlocksChecked int64 `json:"blocksChecked"`
	// Blocks found differing so far.
	Mismatches int64 `json:"mismatches"`
	// When it was found.
	LastMismatchAt *time.Time `json:"lastMismatchAt,omitempty"`
	// The last damage found, where.
	LastMismatch string `json:"lastMismatch,omitempty"`
	// The sequence the damage was found at.
	LastMismatchSeq int64 `json:"lastMismatchSeq,omitempty"`
}

// ResyncView is POST /groups/{group}/resync's answer: the group's state once the resync is asked for.
type ResyncView struct {
	// The group.
	Group string `json:"group"`
	// The group's state once the resync is asked for.
	State State `json:"state"`
	// Why.
	Reason string `json:"reason,omitempty"`
}

// EventsPage is GET /groups/{group}/events.
type EventsPage struct {
	// The group.
	Group string `json:"group"`
	// The events, newest first.
	Events []EventView `json:"events"`
	// Next continues the listing (pass it as ?after=).
	Next string `json:"next,omitempty"`
}

// Problem is an error's RFC 7807 problem+json document.
type Problem struct {
	// about:blank.
	Type string `json:"type"`
	// The kind of problem.
	Title string `json:"title"`
	// The HTTP status.
	Status int `json:"status"`
	// What is wrong with the request, precisely.
	Detail string `json:"detail"`
	// The request's path.
	Instance string `json:"instance"`
}

// RPOHistoryView is GET /groups/{group}/rpo-history: the group's RPO as the timer rated it, a sample a
// minute, oldest first.
type RPOHistoryView struct {
	// The group.
	Group string `json:"group"`
	// The samples, oldest first.
	Samples []RPOSampleView `json:"samples"`
}

// RPOSampleView is one minute's RPO and health.
type RPOSampleView struct {
	// The minute.
	Time time.Time `json:"time"`
	// The RPO then, in seconds.
	RPOSeconds float64 `json:"rpoSeconds"`
	// The group's health then.
	Health string `json:"health" enum:"health"`
}
