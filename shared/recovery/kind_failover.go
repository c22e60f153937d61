package recovery

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// The failover family: planned and unplanned failovers bring the VMs up in the target region, a
// change of recovery point makes them again from another point, and commit ends the choice. One
// failover at a time: the group's FailoverJob claim holds unless that job failed (a group once failed
// over stays claimed).

const (
	JobPlannedFailover   = "planned"
	JobUnplannedFailover = "unplanned"
	JobCommit            = "commit"
	JobChangePoint       = "change-recovery-point"
)

// unplannedSteps: the source is gone; nothing here touches it.
var unplannedSteps = append(append([]stepDef{}, materialize...), stepDef{"mark-failed-over", markFailedOver})

// changePointSteps make the failover disks and VMs again from another point: the previous VMs go first.
var changePointSteps = append([]stepDef{{"delete-previous-vms", deletePreviousVMs}}, unplannedSteps...)

// plannedSteps: the agent stops taking writes and flushes, the job waits until apply has everything and
// a point marks the agent's final sequence, then fails over to that point: nothing acknowledged is lost.
var plannedSteps = append(append([]stepDef{{"stop-source", stopSource}, {"wait-source-drained", waitDrained}}, materialize...),
	stepDef{"mark-failed-over", markFailedOver})

var commitSteps = []stepDef{
	{"delete-other-points", deleteOtherPoints},
	{"mark-committed", markCommitted},
}

var _ = register(Kind{
	Name:     JobPlannedFailover,
	Steps:    plannedSteps,
	Failover: true,
	Normalize: func(req *Request) error {
		if req.RecoveryPoint != "" && req.RecoveryPoint != "latestProcessed" {
			return fmt.Errorf("%w: recoveryPoint: a planned failover goes to the point the agent's final writes make; leave recoveryPoint out", replication.ErrInvalid)
		}
		return defaultPoint(req)
	},
	Admits: func(rec *replication.GroupRecord) string {
		if why := notFailedOver(rec); why != "" {
			return why
		}
		if rec.State != replication.StateProtected {
			return fmt.Sprintf("a planned failover needs a Protected group, it is %s", rec.State)
		}
		return ""
	},
	Claim: claimFailover,
})

var _ = register(Kind{
	Name:      JobUnplannedFailover,
	Steps:     unplannedSteps,
	Failover:  true,
	Normalize: defaultPoint,
	Admits: func(rec *replication.GroupRecord) string {
		if why := notFailedOver(rec); why != "" {
			return why
		}
		if rec.LastPointTime.IsZero() {
			return fmt.Sprintf("the group has no recovery point to fail over to (state %s)", rec.State)
		}
		return ""
	},
	Claim: claimFailover,
})

var _ = register(Kind{
	Name:   JobCommit,
	Steps:  commitSteps,
	Admits: inState(replication.StateFailedOver, "only a FailedOver group can be committed, it is %s"),
})

var _ = register(Kind{
	Name:  JobChangePoint,
	Steps: changePointSteps,
	Normalize: func(req *Request) error {
		if req.RecoveryPoint == "" {
			return fmt.Errorf("%w: recoveryPoint is required", replication.ErrInvalid)
		}
		return nil
	},
	Admits: inState(replication.StateFailedOver, "the recovery point of a failover can change until it is committed; the group is %s"),
})

func notFailedOver(rec *replication.GroupRecord) string {
	if rec.FailedOver() {
		return fmt.Sprintf("the group is %s already", rec.State)
	}
	return ""
}

// claimFailover records the group's one failover, refusing while another that has not failed holds it.
func claimFailover(ctx context.Context, a *Admission, rec *replication.GroupRecord, job Job) error {
	failed := func(j *Job) bool { return j.State == JobFailed }
	if err := a.busy(ctx, rec.FailoverJob, failed, func(Job) string { return "failover" }); err != nil {
		return err
	}
	rec.FailoverJob = job.ID() // a concurrent request finds this one
	return nil
}
