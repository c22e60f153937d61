package recovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// A plan's drill is the plan's test failover — every group's point and disks, the boot groups up in
// order with their actions — then the plan drill's checks ("group/vm"), then a cleanup that always
// runs: each group's test failover cleaned up (a cleanup job per group, as the plan's cleanup starts),
// and the report completed. Its report is kept in the plan's partition of the drills table.

// planDrillCleanup are the plan drill's cleanup steps, which run also after a failure.
var planDrillCleanup = []string{"cleanup-groups", "wait-cleanup", "end-drill"}

// runPlanChecks runs the plan drill's next check in the VM it names (group/vm).
func runPlanChecks(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
	rec, err := Plans{State: r.State, Now: r.Now}.Get(ctx, j.Plan)
	if err != nil {
		return "", 0, err
	}
	if j.Work.ChecksDone() == 0 {
		if err := r.beginReport(ctx, j); err != nil {
			return "", 0, err
		}
	}
	return r.nextCheck(ctx, j, rec.Spec.Drill.Checks, func(vm string) (string, string, error) {
		vms, err := r.bootGroupVMs(ctx, j, BootGroup{Name: "check", VMs: []string{vm}})
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", replication.ErrState, err)
		}
		return resourceGroupOf(vms[0].group), vmName(&vms[0].job, vms[0].vm.Name), nil
	})
}

// cleanupChildID is the id of the cleanup job the plan drill starts on a group.
func cleanupChildID(planJob, group string) string { return childJobID(planJob+"/cleanup", group) }

// startPlanCleanup starts a test failover cleanup on every group whose test failover the drill
// started and that still has it active (a group whose test failover never began has nothing to clean).
func startPlanCleanup(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
	adm := &Admission{State: r.State, Pages: r.Pages, Jobs: r.Jobs, PeerConfigured: r.Peer != nil, Log: r.Log, Now: r.Now}
	var started []string
	for group, child := range j.Work.Children() {
		g, err := replication.LoadGroup(ctx, r.State, group)
		if errors.Is(err, replication.ErrNoGroup) {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		id := cleanupChildID(j.ID(), group)
		if g.Record.ActiveTestFailover != child {
			if _, err := LoadJob(ctx, r.State, id); err != nil {
				continue // not this drill's test failover (it never started, or was cleaned up)
			}
		}
		if _, err := adm.Start(ctx, Request{Group: group, Type: JobCleanupTest, JobID: id, Parent: j.ID()}); err != nil {
			return "", 0, fmt.Errorf("group %s: %w", group, err)
		}
		j.Work.SetCleanup(group, id)
		started = append(started, group)
	}
	sort.Strings(started)
	return fmt.Sprintf("%d test failover cleanups started: %s", len(started), strings.Join(started, ", ")), 0, nil
}

// waitPlanCleanup waits for the cleanups; one that failed fails the drill, naming it.
func waitPlanCleanup(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
	var waiting []string
	for group, id := range j.Work.Cleanups() {
		c, err := LoadJob(ctx, r.State, id)
		if err != nil {
			return "", 0, fmt.Errorf("group %s's cleanup %s: %w", group, id, err)
		}
		switch c.State {
		case JobFailed:
			return "", 0, permanentError{fmt.Errorf("group %s's cleanup job %s failed: %s", group, id, c.Error)}
		case JobSucceeded:
		default:
			waiting = append(waiting, group)
		}
	}
	if len(waiting) > 0 {
		sort.Strings(waiting)
		return "waiting for the cleanup of " + strings.Join(waiting, ", "), r.poll(j, time.Second), nil
	}
	return "every group's test failover is cleaned up", 0, nil
}

// endPlanDrill completes the plan drill's report and records the drill on the plan.
func endPlanDrill(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
	var vms []string
	for k := range j.Result {
		if vm, ok := strings.CutPrefix(k, "vm:"); ok {
			vms = append(vms, vm)
		}
	}
	sort.Strings(vms)
	report, err := r.finishReport(ctx, j, vms, r.Now().UTC())
	if err != nil {
		return "", 0, err
	}
	if _, err := replication.Mutate(ctx, r.State, PlansTable, j.Plan, PlanRow, func(p *PlanRecord, found bool) error {
		if !found || p.LastDrillJob == j.ID() {
			return replication.ErrUnchanged
		}
		p.LastDrillJob, p.LastDrillAt, p.LastDrillResult = j.ID(), report.Started, report.Result
		if report.Result == JobSucceeded {
			p.LastDrillSucceededAt = report.Started
		}
		return nil
	}); err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("plan drill %s: report recorded", strings.ToLower(report.Result)), 0, nil
}

// SchedulePlanDrills starts each plan's drill when its schedule's slot has come, as ScheduleDrills does
// a group's (once per slot: the job id is the plan's and the slot's; a refused or missed slot is
// logged and not retried). The cutpoints timer calls it every tick.
func SchedulePlanDrills(a *Admission) replication.Housekeeper {
	return func(ctx context.Context, now time.Time) ([]string, error) {
		plans, err := Plans{State: a.State, Now: a.Now}.List(ctx)
		if err != nil {
			return nil, err
		}
		var logs []string
		for _, p := range plans {
			schedule := p.Spec.Drill.DrillSchedule()
			if schedule == nil {
				continue
			}
			if line, err := a.planOverdue(ctx, p, now); err != nil {
				return logs, err
			} else if line != "" {
				logs = append(logs, line)
			}
			slot := dueSlot(schedule, p.LastDrillSlot, p.UpdatedAt, now)
			if slot.IsZero() {
				continue
			}
			name := p.PartitionKey
			job, reason, err := startSlot(slot, now, func() (Job, error) {
				return a.StartPlan(ctx, PlanRequest{Plan: name, Type: "drill", JobID: drillJobID(PlanDrillPartition(name), slot), DrillSlot: slot})
			})
			if err != nil {
				return logs, err
			}
			if reason == "" {
				logs = append(logs, fmt.Sprintf("plan %s: drill %s started for the slot %s", name, job.ID(), slot.Format(time.RFC3339)))
				continue
			}
			if _, err := replication.Mutate(ctx, a.State, PlansTable, name, PlanRow, func(r *PlanRecord, found bool) error {
				if !found || !slot.After(r.LastDrillSlot) {
					return replication.ErrUnchanged
				}
				r.LastDrillSlot = slot
				return nil
			}); err != nil {
				return logs, err
			}
			a.Log.Warn("scheduled plan drill skipped", "plan", name, "slot", slot, "reason", reason)
			logs = append(logs, fmt.Sprintf("plan %s: scheduled drill for the slot %s skipped: %s", name, slot.Format(time.RFC3339), reason))
		}
		return logs, nil
	}
}

// planOverdue raises the plan's drill-overdue alert, once per stretch without a successful drill,
// when no drill of the plan succeeded within its window (counted from the plan's last change when none
// ever did).
func (a *Admission) planOverdue(ctx context.Context, p PlanRecord, now time.Time) (string, error) {
	rd := p.Readiness(now)
	if !rd.Overdue {
		return "", nil
	}
	since := rd.Since
	name := p.PartitionKey
	id := fmt.Sprintf("plan-%s-drill-overdue-%d", name, since.Unix())
	var raised replication.AlertRow
	if _, err := a.State.Get(ctx, replication.AlertsTable, replication.AlertPartition, id, &raised); err == nil {
		return "", nil // raised already for this stretch
	} else if !errors.Is(err, replication.ErrNotFound) {
		return "", err
	}
	msg := fmt.Sprintf("plan %s: no drill has succeeded since %s, more than the %d days its drill allows (last drill: %s)",
		name, since.UTC().Format(time.RFC3339), int(rd.Window.Hours()/24), cmp.Or(p.LastDrillResult, "none"))
	err := replication.RaiseAlert(ctx, a.State, a.Log, replication.Alert{ID: id, Kind: replication.AlertDrillOverdue,
		Status: replication.AlertRaised, Severity: replication.SeverityWarning, Message: msg, Time: now.UTC()})
	return msg, err
}

// Readiness is the plan's failover readiness at now.
func (p PlanRecord) Readiness(now time.Time) replication.Readiness {
	return replication.ReadinessOf(p.Spec.Drill, p.LastDrillSucceededAt, p.UpdatedAt, now)
}
