package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// DrillsTable holds one report per drill: partition the group, row the drill's job id. A report is
// begun by the drill's first step, written as it goes (each check's result as it ends) and completed
// by its last, so an auditor reads what happened even of a drill that stopped midway. Reports outlive
// their jobs (JobRetention); they go with the group.
const DrillsTable = replication.DrillsTable

// DrillReport is what a drill did and found.
type DrillReport struct {
	replication.Keys
	// Slot is the schedule's slot the drill ran for (zero: started on request).
	Slot    time.Time `json:"Slot"`
	Started time.Time `json:"Started"`
	Ended   time.Time `json:"Ended"`
	// The point the VMs came up from, and its age when the drill started.
	PointID         string    `json:"PointID,omitempty"`
	PointTime       time.Time `json:"PointTime"`
	PointAgeSeconds float64   `json:"PointAgeSeconds"`
	// RTOSeconds is from the drill's start to every VM healthy (0: they never were).
	RTOSeconds float64       `json:"RTOSeconds"`
	VMs        []DrillVM     `json:"VMs"`
	Checks     []CheckResult `json:"Checks"`
	// Cleanup says how the test resources went; Result is Succeeded or Failed (with Error), or ""
	// while the drill runs.
	Cleanup string `json:"Cleanup,omitempty"`
	Result  string `json:"Result,omitempty"`
	Error   string `json:"Error,omitempty"`
}

// Job is the drill's job id.
func (d *DrillReport) Job() string { return d.RowKey }

// DrillVM is one VM of a drill and the evidence it booted.
type DrillVM struct {
	Name     string `json:"Name"`
	Evidence string `json:"Evidence,omitempty"`
}

// CheckResult is how one check of a drill ended.
type CheckResult struct {
	Name      string    `json:"Name"`
	VM        string    `json:"VM"`
	Kind      string    `json:"Kind"` // command or http
	Passed    bool      `json:"Passed"`
	ExitCode  int       `json:"ExitCode"`
	TimedOut  bool      `json:"TimedOut,omitempty"`
	Status    int       `json:"Status,omitempty"` // an HTTP probe's status
	Output    string    `json:"Output,omitempty"` // the end of the output, redacted
	Truncated bool      `json:"Truncated,omitempty"`
	Reason    string    `json:"Reason,omitempty"` // why it failed
	Started   time.Time `json:"Started"`
	Ended     time.Time `json:"Ended"`
}

// LoadDrill reads one drill's report (ErrNotFound: no such drill of the group).
func LoadDrill(ctx context.Context, store replication.StateStore, group, job string) (DrillReport, error) {
	var d DrillReport
	if !ValidJobID(job) {
		return d, fmt.Errorf("%w: %q is not a drill's id (32 hex digits)", replication.ErrInvalid, job)
	}
	if _, err := store.Get(ctx, DrillsTable, group, job, &d); err != nil {
		return d, fmt.Errorf("drill %s of group %s: %w", job, group, err)
	}
	return d, nil
}

// ListDrills lists a group's drill reports, newest first.
func ListDrills(ctx context.Context, store replication.StateStore, group string) ([]DrillReport, error) {
	drills, _, err := replication.QueryAll[DrillReport](ctx, store, DrillsTable, group)
	slices.SortFunc(drills, func(a, b DrillReport) int { return b.Started.Compare(a.Started) })
	return drills, err
}

// drillPartition is where a drill's report is kept: its group's partition, or a plan's ("plan~<plan>":
// no group name has a '~').
func drillPartition(j *Job) string {
	if j.Plan != "" {
		return PlanDrillPartition(j.Plan)
	}
	return j.Group
}

// PlanDrillPartition is the partition of a plan's drill reports.
func PlanDrillPartition(plan string) string { return "plan~" + plan }

// beginDrill begins the drill's report.
func beginDrill(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if err := r.beginReport(ctx, j); err != nil {
		return "", 0, err
	}
	how := "on request"
	if slot := j.Work.DrillSlot(); !slot.IsZero() {
		how = "for the schedule's slot " + slot.Format(time.RFC3339)
	}
	return fmt.Sprintf("drill begun %s: %d checks", how, len(g.Spec.Drill.Checks)), 0, nil
}

// beginReport writes a drill's report as it begins (once).
func (r *JobRunner) beginReport(ctx context.Context, j *Job) error {
	_, err := replication.Mutate(ctx, r.State, DrillsTable, drillPartition(j), j.ID(), func(d *DrillReport, found bool) error {
		if found {
			return replication.ErrUnchanged
		}
		d.begin(j)
		return nil
	})
	return err
}

// begin gives a new report its keys, the schedule's slot and the start: the job's.
func (d *DrillReport) begin(j *Job) {
	d.Keys = replication.Keys{PartitionKey: drillPartition(j), RowKey: j.ID()}
	d.Slot, d.Started = j.Work.DrillSlot(), j.CreatedAt
}

// DrillStatus is a drill's report with its job (nil once the job was pruned).
type DrillStatus struct {
	Report DrillReport
	Job    *Job
}

// DrillOwner is what a drill is of: a group (Group) or a plan (Plan).
type DrillOwner struct{ Group, Plan string }

// partition is where the owner's drill reports are, once it is known to exist.
func (a *Admission) partition(ctx context.Context, o DrillOwner) (string, error) {
	if a.State == nil {
		return "", fmt.Errorf("%w: the state store (set StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	if o.Plan != "" {
		_, err := Plans{State: a.State, Now: a.Now}.Get(ctx, o.Plan)
		return PlanDrillPartition(o.Plan), err
	}
	return o.Group, replication.CheckGroupName(o.Group)
}

// StartDrill starts a drill of the group or plan now, at the point asked (the drill spec's by default).
func (a *Admission) StartDrill(ctx context.Context, o DrillOwner, point string) (Job, error) {
	if o.Plan != "" {
		return a.StartPlan(ctx, PlanRequest{Plan: o.Plan, Type: "drill", RecoveryPoint: point})
	}
	return a.Start(ctx, Request{Group: o.Group, Type: JobDrill, RecoveryPoint: point})
}

// DrillsOf lists the group's or plan's drills, newest first, at most limit.
func (a *Admission) DrillsOf(ctx context.Context, o DrillOwner, limit int) ([]DrillStatus, error) {
	partition, err := a.partition(ctx, o)
	if err != nil {
		return nil, err
	}
	return a.drillsIn(ctx, partition, limit)
}

// DrillOf is one drill of the group or plan.
func (a *Admission) DrillOf(ctx context.Context, o DrillOwner, id string) (DrillStatus, error) {
	partition, err := a.partition(ctx, o)
	if err != nil {
		return DrillStatus{}, err
	}
	d, err := LoadDrill(ctx, a.State, partition, id)
	if err != nil {
		return DrillStatus{}, err
	}
	return a.drillStatus(ctx, d)
}

// drillsIn lists the drills of a partition (a group's, a plan's), newest first, at most limit.
func (a *Admission) drillsIn(ctx context.Context, partition string, limit int) ([]DrillStatus, error) {
	if limit < 1 || limit > MaxJobList {
		return nil, fmt.Errorf("%w: limit %d: want 1 to %d", replication.ErrInvalid, limit, MaxJobList)
	}
	reports, err := ListDrills(ctx, a.State, partition)
	if err != nil {
		return nil, err
	}
	out := []DrillStatus{}
	for _, d := range reports[:min(limit, len(reports))] {
		st, err := a.drillStatus(ctx, d)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (a *Admission) drillStatus(ctx context.Context, d DrillReport) (DrillStatus, error) {
	j, err := LoadJob(ctx, a.State, d.Job())
	if errors.Is(err, replication.ErrNotFound) {
		return DrillStatus{Report: d}, nil
	}
	if err != nil {
		return DrillStatus{}, err
	}
	return DrillStatus{Report: d, Job: &j}, nil
}

// recordCheck adds a check's result to the drill's report (replacing the same check's from an earlier
// try of the step).
func (r *JobRunner) recordCheck(ctx context.Context, j *Job, res CheckResult) error {
	_, err := replication.Mutate(ctx, r.State, DrillsTable, drillPartition(j), j.ID(), func(d *DrillReport, found bool) error {
		if !found {
			d.begin(j)
		}
		d.Checks = slices.DeleteFunc(d.Checks, func(c CheckResult) bool { return c.Name == res.Name })
		d.Checks = append(d.Checks, res)
		return nil
	})
	return err
}

// finishReport completes the drill's report from its job: the point, the VMs (vms, in order) and
// their boot evidence, the RTO (to the last VM step done), the cleanup and the result.
func (r *JobRunner) finishReport(ctx context.Context, j *Job, vms []string, now time.Time) (DrillReport, error) {
	return replication.Mutate(ctx, r.State, DrillsTable, drillPartition(j), j.ID(), func(d *DrillReport, found bool) error {
		d.begin(j) // the same keys, slot and start as when it began (or now, if it never did)
		d.Ended = now
		d.PointID, d.PointTime = j.PointID, j.PointTime
		if !j.PointTime.IsZero() {
			d.PointAgeSeconds = j.CreatedAt.Sub(j.PointTime).Seconds()
		}
		d.VMs = nil
		for _, vm := range vms {
			d.VMs = append(d.VMs, DrillVM{Name: vm, Evidence: j.Result["vm:"+vm]})
		}
		d.RTOSeconds = 0
		for _, s := range j.Steps { // the group's wait-vms, a plan's last bgN-wait
			if (s.Name == "wait-vms" || strings.HasSuffix(s.Name, "-wait")) && s.State == "done" {
				d.RTOSeconds = s.Ended.Sub(j.CreatedAt).Seconds()
			}
		}
		var cleanup []string
		for _, s := range j.Steps {
			if s.Always && s.Name != "end-drill" {
				cleanup = append(cleanup, s.Name+": "+s.Outcome)
			}
		}
		d.Cleanup = strings.Join(cleanup, "; ")
		d.Result, d.Error = JobSucceeded, ""
		if j.Error != "" {
			d.Result, d.Error = JobFailed, j.Error
		}
		return nil
	})
}
