package apiv1

import "time"

// DrillRequest is the optional body of POST /groups/{group}/drills: the recovery point to drill (the
// group's drill spec's, else latestProcessed).
type DrillRequest struct {
	// The point the drill fails over to (default: the drill spec's).
	RecoveryPoint string `json:"recoveryPoint,omitempty"`
}

// DrillView is a drill's report: the slot it ran for, the point and its age, the RTO to every VM
// healthy, each VM's boot evidence, each check's result with its output and timing, the steps with
// their times, and the cleanup.
type DrillView struct {
	ID string `json:"id"` // the drill's job
	// The group drilled (absent for a plan's drill).
	Group string `json:"group,omitempty"`
	Plan  string `json:"plan,omitempty"` // a plan's drill
	// State is the job's (Queued, Running, Succeeded, Failed; the report's result once the job was pruned).
	State string     `json:"state" enum:"jobState"`
	Slot  *time.Time `json:"slot,omitempty"` // the schedule's slot (absent: on request)
	// When it started.
	Started time.Time `json:"started"`
	// When it ended.
	Ended *time.Time `json:"ended,omitempty"`
	// The recovery point used.
	Point string `json:"point,omitempty"`
	// The point's source time.
	PointTime *time.Time `json:"pointTime,omitempty"`
	// How old the point was when the drill started.
	PointAgeSeconds float64 `json:"pointAgeSeconds"`
	// Seconds from the drill's start until every VM was healthy.
	RTOSeconds float64 `json:"rtoSeconds"`
	// The VMs and their boot evidence.
	VMs []DrillVM `json:"vms"`
	// Each check's result, output and timing.
	Checks []CheckResult `json:"checks"`
	// The job's steps with their times and outcomes.
	Steps []JobStep `json:"steps"`
	// What the cleanup removed.
	Cleanup string `json:"cleanup,omitempty"`
	// Why it failed.
	Error string `json:"error,omitempty"`
}

// DrillVM is one VM of a drill and the evidence it booted.
type DrillVM struct {
	// The VM.
	Name string `json:"name"`
	// What showed it booted: its health line on the serial console.
	Evidence string `json:"evidence,omitempty"`
}

// CheckResult is how one check of a drill ended.
type CheckResult struct {
	// The check's name.
	Name string `json:"name"`
	// The VM it ran in (or from, for an HTTP check).
	VM   string `json:"vm"`
	Kind string `json:"kind"` // command or http
	// Whether the check passed.
	Passed bool `json:"passed"`
	// A command check's exit code.
	ExitCode int `json:"exitCode"`
	// The check ran out of its time.
	TimedOut bool `json:"timedOut,omitempty"`
	// An HTTP check's answer status.
	Status int `json:"status,omitempty"`
	// The end of the command's output or the HTTP answer's body, redacted.
	Output string `json:"output,omitempty"`
	// Only the output's end is kept.
	Truncated bool `json:"truncated,omitempty"`
	// Why it failed.
	Reason string `json:"reason,omitempty"`
	// When the check started.
	Started time.Time `json:"started"`
	// When the check ended.
	Ended time.Time `json:"ended"`
}

// DrillList is GET /groups/{group}/drills.
type DrillList struct {
	// The drills, newest first.
	Drills []DrillView `json:"drills"`
}

// ReadinessView is a group's failover readiness: its last drill, when a drill last succeeded, and
// whether that is within the drill spec's window.
type ReadinessView struct {
	// The last drill's job.
	LastDrill string `json:"lastDrill,omitempty"`
	// When it started.
	LastDrillAt *time.Time `json:"lastDrillAt,omitempty"`
	// How it ended.
	LastDrillResult string `json:"lastDrillResult,omitempty"`
	// When a drill last succeeded.
	LastSuccessAt *time.Time `json:"lastSuccessfulDrillAt,omitempty"`
	// How many days ago a drill last succeeded.
	LastSuccessAgeDays float64 `json:"lastSuccessAgeDays,omitempty"`
	// How recent a successful drill must be.
	WindowDays int `json:"windowDays"`
	// A drill succeeded within the window.
	Ready     bool       `json:"ready"`
	NextDrill *time.Time `json:"nextDrill,omitempty"` // the schedule's next slot
	// The test failover or drill whose VMs exist now (absent: none).
	DrillActive string `json:"drillActive,omitempty"`
	// LastTestFailover is the last test failover or drill to end (absent: none yet).
	LastTestFailover *LastTestView `json:"lastTestFailover,omitempty"`
}

// LastTestView is how a group's last test failover or drill went.
type LastTestView struct {
	// The job.
	Job string `json:"job"`
	// test or drill (plan-test or plan-drill for a plan).
	Type string `json:"type" enum:"jobType"`
	// When it started.
	Started time.Time `json:"started"`
	// The recovery point it used.
	Point string `json:"point,omitempty"`
	// The point's source time.
	PointTime *time.Time `json:"pointTime,omitempty"`
	// How it ended.
	Result string `json:"result" enum:"jobState"`
	// Seconds from its start until its VMs were up (absent when they never were).
	RTOSeconds float64 `json:"rtoSeconds,omitempty"`
}

// PlanView is a recovery plan as the API shows it.
type PlanView struct {
	// The plan's name.
	Plan string `json:"plan"`
	// The plan.
	Spec PlanSpec `json:"spec"`
	// The plan's job running now.
	ActiveJob string `json:"activeJob,omitempty"`
	// When it last changed.
	UpdatedAt time.Time `json:"updatedAt"`
	// Whether the plan is ready: its drills.
	Readiness ReadinessView `json:"readiness"`
}

// PlanList is GET /plans.
type PlanList struct {
	// Every plan.
	Plans []PlanView `json:"plans"`
}
