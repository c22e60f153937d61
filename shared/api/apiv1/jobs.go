package apiv1

import "time"

// JobView is a job as the API shows it.
type JobView struct {
	// The job's id: 32 hex digits.
	ID string `json:"id"`
	// The group it runs on (absent for a plan job).
	Group  string `json:"group,omitempty"`
	Plan   string `json:"plan,omitempty"`   // a plan job's plan
	Parent string `json:"parent,omitempty"` // the plan job that started this group's job
	// What the job does.
	Type string `json:"type" enum:"jobType"`
	// The point as requested.
	RecoveryPoint string `json:"recoveryPoint,omitempty"`
	// Queued, Running, Succeeded or Failed.
	State string `json:"state" enum:"jobState"`
	// Its steps in order, the cleanup last.
	Steps []JobStep `json:"steps"`
	// The recovery point it resolved to.
	Point string `json:"point,omitempty"`
	// What it made: containers, machine definitions, VMs, figures.
	Result map[string]string `json:"result,omitempty"`
	// Why it failed.
	Error string `json:"error,omitempty"`
	// CancelRequested: an operator cancelled the job; its cleanup runs next.
	CancelRequested bool `json:"cancelRequested,omitempty"`
	// When the job was asked for.
	CreatedAt time.Time `json:"createdAt"`
	// When it last changed.
	UpdatedAt time.Time `json:"updatedAt"`
}

// JobList is GET /jobs.
type JobList struct {
	// The jobs, newest first.
	Jobs []JobView `json:"jobs"`
}

// DeadLetterView is a dead-lettered job message.
type DeadLetterView struct {
	// The message's id.
	MessageID string `json:"messageId"`
	// Its session: the job it belongs to.
	SessionID string `json:"group"`
	// Why the queue gave up on it (MaxDeliveryCountExceeded, …).
	Reason string `json:"reason"`
	// The queue's description of why it was dead-lettered.
	Description string `json:"description"`
	// How many times it was delivered.
	Deliveries int `json:"deliveries"`
	// The message as it was queued.
	Body string `json:"body"`
}

// DeadLetterList is GET /jobs/dead-letters.
type DeadLetterList struct {
	// The dead-lettered job messages.
	DeadLetters []DeadLetterView `json:"deadLetters"`
}

// AcknowledgeRequest is the body of POST /jobs/{id}/acknowledge: the manual action an operator confirms.
type AcknowledgeRequest struct {
	// The name of the manual action the job waits for.
	Action string `json:"action" input:"required"`
}

// ChangePointRequest is the body of POST /groups/{group}/change-recovery-point.
type ChangePointRequest struct {
	// The point to make the failed-over VMs from: latest, latestProcessed, latestAppConsistent, a point id or an RFC 3339 time.
	RecoveryPoint string `json:"recoveryPoint" input:"required"`
}

// FailoverRequest is the body of POST /groups/{group}/failover.
type FailoverRequest struct {
	// test, planned or unplanned.
	Type string `json:"type" enum:"failoverType" input:"required"`
	// The point: latest, latestProcessed (default), latestAppConsistent, a point id or an RFC 3339 time; a planned failover takes none.
	RecoveryPoint string `json:"recoveryPoint"`
	// JobID, when given (32 hex digits), makes the request idempotent: the job gets this id, and the
	// same request again answers the job it made (a peer site's failback retries with it).
	JobID string `json:"jobId,omitempty"`
}

// ReprotectRequest is the optional body of POST /groups/{group}/reprotect: by disk key ("vm/disk"), the
// source the agent on the failed-over VM reads (file:<device or image>); Azure's device names otherwise.
type ReprotectRequest struct {
	// Where the agent on each failed-over VM reads its disks (vm/disk → file:<device>).
	Sources map[string]string `json:"sources,omitempty"`
}
