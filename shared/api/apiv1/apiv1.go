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
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	LatencyMs int64  `json:"latencyMs"`
	Error     string `json:"error,omitempty"`
}

// FailoverRequest is the body of POST /groups/{group}/failover.
type FailoverRequest struct {
	Type          string `json:"type" enum:"failoverType" input:"required"`
	RecoveryPoint string `json:"recoveryPoint"`
	// JobID, when given (32 hex digits), makes the request idempotent: the job gets this id, and the
	// same request again answers the job it made (a peer site's failback retries with it).
	JobID string `json:"jobId,omitempty"`
}

// ReprotectRequest is the optional body of POST /groups/{group}/reprotect: by disk key ("vm/disk"), the
// source the agent on the failed-over VM reads (file:<device or image>); Azure's device names otherwise.
type ReprotectRequest struct {
	Sources map[string]string `json:"sources,omitempty"`
}

// PlanView is a recovery plan as the API shows it.
type PlanView struct {
	Plan      string        `json:"plan"`
	Spec      PlanSpec      `json:"spec"`
	ActiveJob string        `json:"activeJob,omitempty"`
	UpdatedAt time.Time     `json:"updatedAt"`
	Readiness ReadinessView `json:"readiness"`
}

// AgentKeyHeader carries an agent's key on the agent routes (/api/agent/v1/...).
const AgentKeyHeader = "x-standby-agent-key"

// AgentKeyView is a group's new agent key, shown once (POST /groups/{g}/agent-key).
type AgentKeyView struct {
	AgentKey string `json:"agentKey"`
}

// StreamKeyView is the group's change-stream key, for its agents (base64; "" for a group without one).
type StreamKeyView struct {
	StreamKey string `json:"streamKey"`
}

// AcknowledgeRequest is the body of POST /jobs/{id}/acknowledge: the manual action an operator confirms.
type AcknowledgeRequest struct {
	Action string `json:"action" input:"required"`
}

// ChangePointRequest is the body of POST /groups/{group}/change-recovery-point.
type ChangePointRequest struct {
	RecoveryPoint string `json:"recoveryPoint" input:"required"`
}

// DeadLetterView is a dead-lettered job message.
type DeadLetterView struct {
	MessageID   string `json:"messageId"`
	SessionID   string `json:"group"`
	Reason      string `json:"reason"`
	Description string `json:"description"`
	Deliveries  int    `json:"deliveries"`
	Body        string `json:"body"`
}

// JobView is a job as the API shows it.
type JobView struct {
	ID            string            `json:"id"`
	Group         string            `json:"group,omitempty"`
	Plan          string            `json:"plan,omitempty"`   // a plan job's plan
	Parent        string            `json:"parent,omitempty"` // the plan job that started this group's job
	Type          string            `json:"type" enum:"jobType"`
	RecoveryPoint string            `json:"recoveryPoint,omitempty"`
	State         string            `json:"state" enum:"jobState"`
	Steps         []JobStep         `json:"steps"`
	Point         string            `json:"point,omitempty"`
	Result        map[string]string `json:"result,omitempty"`
	Error         string            `json:"error,omitempty"`
	// CancelRequested: an operator cancelled the job; its cleanup runs next.
	CancelRequested bool      `json:"cancelRequested,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
}

// GroupView is a group as the API shows it.
type GroupView struct {
	Group  string `json:"group"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Replicating: the state is one of replication's (initial, protected, resync); RPO means nothing
	// otherwise (failed over, disabled).
	Replicating bool     `json:"replicating"`
	VMs         []VMSpec `json:"vms"`
	// Capture says, per disk, how its writes are captured and whether its points are crash-consistent.
	Capture []Capture   `json:"capture"`
	Target  TargetSpec  `json:"target"`
	Policy  Policy      `json:"policy"`
	Network NetworkSpec `json:"network"`
	// TargetResources are the target region's resources made on enable (none without a compute).
	TargetResources *TargetResources `json:"targetResources,omitempty"`
	Watermark       int64            `json:"watermark"`
	AgentSeq        int64            `json:"agentSeq"`
	PendingBatches  int64            `json:"pendingBatches"`
	RPOSeconds      float64          `json:"rpoSeconds"`
	LastSourceTime  time.Time        `json:"lastSourceTime"`
	LastAppliedAt   time.Time        `json:"lastAppliedAt"`
	// AgentSeenAt is the agent's last heartbeat (none yet: absent).
	AgentSeenAt      *time.Time `json:"agentSeenAt,omitempty"`
	ApplyBytesPerSec float64    `json:"applyBytesPerSecond"`
	BytesApplied     int64      `json:"bytesApplied"`
	BatchesApplied   int64      `json:"batchesApplied"`
	// Health is rated only while the group replicates this way (absent when failed over or disabled);
	// HealthErrors say each cause and what to do about it.
	Health       string            `json:"health,omitempty" enum:"health"`
	HealthReason string            `json:"healthReason,omitempty"`
	HealthErrors []HealthErrorView `json:"healthErrors"`
	// ReplicationState is where replication stands: stopped, initialSync, rescan, disconnected (the
	// agent is silent), stalled (apply takes nothing), backlog or continuous.
	ReplicationState   string         `json:"replicationState" enum:"replicationState"`
	LastPointTime      *time.Time     `json:"lastRecoveryPoint,omitempty"`
	LastAppPointTime   *time.Time     `json:"lastAppConsistentPoint,omitempty"`
	Retention          *RetentionView `json:"retentionWindow,omitempty"`
	InitialReplication *BaselineView  `json:"initialReplication,omitempty"`
	LastMarker         *MarkerView    `json:"lastMarker,omitempty"`
	Drill              DrillSpec      `json:"drill"`
	Readiness          ReadinessView  `json:"readiness"`
	// Scrub is how the scrub's passes stand, per disk it covers (absent: none scrubbed yet).
	Scrub []ScrubView `json:"scrub,omitempty"`
	// AllowedOperations are the job types the group's state admits now (POST .../failover's types,
	// drills, cleanup-test-failover, change-recovery-point, commit, reprotect, failback); NotAllowed
	// says why each other one is not.
	AllowedOperations []string           `json:"allowedOperations" enum:"operation"`
	NotAllowed        []OperationRefusal `json:"notAllowed"`
	CreatedAt         time.Time          `json:"createdAt"`
}

// HealthErrorView is one thing wrong with a group's replication.
type HealthErrorView struct {
	Code              string `json:"code" enum:"healthError"`
	Severity          string `json:"severity" enum:"health"`
	Message           string `json:"message"`
	RecommendedAction string `json:"recommendedAction"`
}

// OperationRefusal is an operation the group's state does not admit now, and why.
type OperationRefusal struct {
	Operation string `json:"operation" enum:"operation"`
	Reason    string `json:"reason"`
}

// RetentionView is what the group's retention keeps: the policy and the points it holds now.
type RetentionView struct {
	Hours       int        `json:"hours"`
	Points      int        `json:"points"`
	OldestPoint *time.Time `json:"oldestPoint,omitempty"`
	NewestPoint *time.Time `json:"newestPoint,omitempty"`
}

// BaselineView is initial replication (or resync) progress as the agent reports it.
type BaselineView struct {
	DoneBytes  int64   `json:"doneBytes"`
	TotalBytes int64   `json:"totalBytes"`
	Percent    float64 `json:"percent"`
	RateBps    float64 `json:"rateBytesPerSecond"`
	ETASeconds float64 `json:"etaSeconds"`
	// BlocksCompared and BlocksSent: a checksum sync sends only the blocks that differ.
	BlocksCompared int64 `json:"blocksCompared"`
	BlocksSent     int64 `json:"blocksSent"`
}

// MarkerView is the last marker applied.
type MarkerView struct {
	Seq         int64     `json:"seq"`
	Consistency string    `json:"consistency"`
	SourceTime  time.Time `json:"sourceTime"`
}

// EventReport is an event the agent reports (a failed app-consistency hook).
type EventReport struct {
	Kind    string `json:"kind" input:"required"`
	Message string `json:"message" input:"required"`
}

// EventView is one entry of a group's history.
type EventView struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// PointView is a recovery point as the API shows it.
type PointView struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind" enum:"pointKind"`
	SourceTime time.Time       `json:"sourceTime"`
	Seq        int64           `json:"seq"`
	Disks      []PointDiskView `json:"disks"`
	CreatedAt  time.Time       `json:"createdAt"`
	// Suspect says why the point may hold damage a scrub found later (absent: none found).
	Suspect string `json:"suspect,omitempty"`
}

// PointDiskView is one disk of a point.
type PointDiskView struct {
	Disk      string `json:"disk"`
	Snapshot  string `json:"snapshot"`
	SizeBytes int64  `json:"sizeBytes"`
}

// PointsPage is GET /groups/{group}/recovery-points.
type PointsPage struct {
	Group  string      `json:"group"`
	Points []PointView `json:"points"`
	// Next continues the listing (pass it as ?after=).
	Next string `json:"next,omitempty"`
	// Window is what can be restored: from the oldest point to the newest applied write; JournalCovers
	// says whether the journal holds every batch in between (any point in time, not only the points).
	Window struct {
		From          *time.Time `json:"from,omitempty"`
		To            *time.Time `json:"to,omitempty"`
		JournalCovers bool       `json:"journalCovers"`
		Reason        string     `json:"reason,omitempty"`
	} `json:"restorableWindow"`
}

// HealthView is GET /health: "healthy" (200) or "degraded" (503), and each dependency.
type HealthView struct {
	Status       string             `json:"status"`
	Dependencies []DependencyHealth `json:"dependencies"`
}

// GroupList is GET /groups.
type GroupList struct {
	Groups []GroupView `json:"groups"`
}

// PlanList is GET /plans.
type PlanList struct {
	Plans []PlanView `json:"plans"`
}

// DrillRequest is the optional body of POST /groups/{group}/drills: the recovery point to drill (the
// group's drill spec's, else latestProcessed).
type DrillRequest struct {
	RecoveryPoint string `json:"recoveryPoint,omitempty"`
}

// DrillView is a drill's report: the slot it ran for, the point and its age, the RTO to every VM
// healthy, each VM's boot evidence, each check's result with its output and timing, the steps with
// their times, and the cleanup.
type DrillView struct {
	ID    string `json:"id"` // the drill's job
	Group string `json:"group,omitempty"`
	Plan  string `json:"plan,omitempty"` // a plan's drill
	// State is the job's (Queued, Running, Succeeded, Failed; the report's result once the job was pruned).
	State           string        `json:"state" enum:"jobState"`
	Slot            *time.Time    `json:"slot,omitempty"` // the schedule's slot (absent: on request)
	Started         time.Time     `json:"started"`
	Ended           *time.Time    `json:"ended,omitempty"`
	Point           string        `json:"point,omitempty"`
	PointTime       *time.Time    `json:"pointTime,omitempty"`
	PointAgeSeconds float64       `json:"pointAgeSeconds"`
	RTOSeconds      float64       `json:"rtoSeconds"`
	VMs             []DrillVM     `json:"vms"`
	Checks          []CheckResult `json:"checks"`
	Steps           []JobStep     `json:"steps"`
	Cleanup         string        `json:"cleanup,omitempty"`
	Error           string        `json:"error,omitempty"`
}

// DrillVM is one VM of a drill and the evidence it booted.
type DrillVM struct {
	Name     string `json:"name"`
	Evidence string `json:"evidence,omitempty"`
}

// CheckResult is how one check of a drill ended.
type CheckResult struct {
	Name      string    `json:"name"`
	VM        string    `json:"vm"`
	Kind      string    `json:"kind"` // command or http
	Passed    bool      `json:"passed"`
	ExitCode  int       `json:"exitCode"`
	TimedOut  bool      `json:"timedOut,omitempty"`
	Status    int       `json:"status,omitempty"`
	Output    string    `json:"output,omitempty"`
	Truncated bool      `json:"truncated,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
}

// DrillList is GET /groups/{group}/drills.
type DrillList struct {
	Drills []DrillView `json:"drills"`
}

// ScrubView is one disk's scrub: how far the current pass is, the last full pass and what it found.
type ScrubView struct {
	Disk            string     `json:"disk"`
	PassPercent     float64    `json:"passPercent"`
	LastFullPass    *time.Time `json:"lastFullPass,omitempty"`
	LastPassClean   bool       `json:"lastPassClean"`
	BlocksChecked   int64      `json:"blocksChecked"`
	Mismatches      int64      `json:"mismatches"`
	LastMismatchAt  *time.Time `json:"lastMismatchAt,omitempty"`
	LastMismatch    string     `json:"lastMismatch,omitempty"`
	LastMismatchSeq int64      `json:"lastMismatchSeq,omitempty"`
}

// ReadinessView is a group's failover readiness: its last drill, when a drill last succeeded, and
// whether that is within the drill spec's window.
type ReadinessView struct {
	LastDrill          string     `json:"lastDrill,omitempty"`
	LastDrillAt        *time.Time `json:"lastDrillAt,omitempty"`
	LastDrillResult    string     `json:"lastDrillResult,omitempty"`
	LastSuccessAt      *time.Time `json:"lastSuccessfulDrillAt,omitempty"`
	LastSuccessAgeDays float64    `json:"lastSuccessAgeDays,omitempty"`
	WindowDays         int        `json:"windowDays"`
	Ready              bool       `json:"ready"`
	NextDrill          *time.Time `json:"nextDrill,omitempty"` // the schedule's next slot
	DrillActive        string     `json:"drillActive,omitempty"`
	// LastTestFailover is the last test failover or drill to end (absent: none yet).
	LastTestFailover *LastTestView `json:"lastTestFailover,omitempty"`
}

// LastTestView is how a group's last test failover or drill went.
type LastTestView struct {
	Job        string     `json:"job"`
	Type       string     `json:"type" enum:"jobType"`
	Started    time.Time  `json:"started"`
	Point      string     `json:"point,omitempty"`
	PointTime  *time.Time `json:"pointTime,omitempty"`
	Result     string     `json:"result" enum:"jobState"`
	RTOSeconds float64    `json:"rtoSeconds,omitempty"`
}

// JobList is GET /jobs.
type JobList struct {
	Jobs []JobView `json:"jobs"`
}

// DeadLetterList is GET /jobs/dead-letters.
type DeadLetterList struct {
	DeadLetters []DeadLetterView `json:"deadLetters"`
}

// ResyncView is POST /groups/{group}/resync's answer: the group's state once the resync is asked for.
type ResyncView struct {
	Group  string `json:"group"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// EventsPage is GET /groups/{group}/events.
type EventsPage struct {
	Group  string      `json:"group"`
	Events []EventView `json:"events"`
	// Next continues the listing (pass it as ?after=).
	Next string `json:"next,omitempty"`
}

// Problem is an error's RFC 7807 problem+json document.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// RPOHistoryView is GET /groups/{group}/rpo-history: the group's RPO as the timer rated it, a sample a
// minute, oldest first.
type RPOHistoryView struct {
	Group   string          `json:"group"`
	Samples []RPOSampleView `json:"samples"`
}

// RPOSampleView is one minute's RPO and health.
type RPOSampleView struct {
	Time       time.Time `json:"time"`
	RPOSeconds float64   `json:"rpoSeconds"`
	Health     string    `json:"health" enum:"health"`
}
