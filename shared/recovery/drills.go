package recovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// DrillsTable holds one report per drill: partition the group, row the drill's job id. A report is
// written as the drill goes (each check's result as it ends) and completed by its last step, so an
// auditor reads what happened even of a drill that stopped midway.
const DrillsTable = "drills"

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

// recordCheck adds a check's result to the drill's report (replacing the same check's from an earlier
// try of the step).
func (r *JobRunner) recordCheck(ctx context.Context, j *Job, res CheckResult) error {
	_, err := replication.Mutate(ctx, r.State, DrillsTable, j.Group, j.ID(), func(d *DrillReport, found bool) error {
		if !found {
			d.Keys = replication.Keys{PartitionKey: j.Group, RowKey: j.ID()}
			d.Slot, d.Started = j.Work.DrillSlot(), j.CreatedAt
		}
		d.Checks = slices.DeleteFunc(d.Checks, func(c CheckResult) bool { return c.Name == res.Name })
		d.Checks = append(d.Checks, res)
		return nil
	})
	return err
}

// finishReport completes the drill's report from its job: the point, the VMs and their boot evidence,
// the RTO, the cleanup and the result.
func (r *JobRunner) finishReport(ctx context.Context, j *Job, g *replication.Group, now time.Time) (DrillReport, error) {
	return replication.Mutate(ctx, r.State, DrillsTable, j.Group, j.ID(), func(d *DrillReport, found bool) error {
		if !found {
			d.Keys = replication.Keys{PartitionKey: j.Group, RowKey: j.ID()}
		}
		d.Slot, d.Started, d.Ended = j.Work.DrillSlot(), j.CreatedAt, now
		d.PointID, d.PointTime = j.PointID, j.PointTime
		if !j.PointTime.IsZero() {
			d.PointAgeSeconds = j.CreatedAt.Sub(j.PointTime).Seconds()
		}
		d.VMs = nil
		for _, vm := range g.Spec.VMs {
			d.VMs = append(d.VMs, DrillVM{Name: vm.Name, Evidence: j.Result["vm:"+vm.Name]})
		}
		for _, s := range j.Steps {
			if s.Name == "wait-vms" && s.State == "done" {
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
