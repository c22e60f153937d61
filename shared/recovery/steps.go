package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// materialize is the part every failover shares: a point chosen and held, its disks copied (and the
// journal replayed for a time), machine definitions written, the VMs brought up from them.
var materialize = []stepDef{
	{"resolve-point", resolvePoint},
	{"hold-point", holdPoint},
	{"start-copies", startCopies},
	{"wait-copies", waitCopies},
	{"replay-journal", replayJournal},
	{"machine-definitions", machineDefinitions},
	{"deploy-vms", deployVMs},
	{"wait-vms", waitVMs},
}

func stopSource(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow|replication.AgentRow, func(rec *replication.GroupRecord) error {
		if rec.StopRequested {
			return replication.ErrUnchanged
		}
		rec.StopRequested, rec.AgentStoppedSeq = true, 0
		return nil
	})
	return "the agent is told to stop taking writes and flush", 0, err
}

// waitDrained polls until the agent has stopped, apply has applied its final sequence and a recovery
// point stands at it.
func waitDrained(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	rec := g.Record
	if rec.AgentStoppedSeq == 0 {
		return "waiting for the agent to stop", r.poll(j, 2*time.Second), nil
	}
	if rec.Watermark < rec.AgentStoppedSeq {
		return fmt.Sprintf("applying: watermark %d of %d", rec.Watermark, rec.AgentStoppedSeq), r.poll(j, time.Second), nil
	}
	// The final sequence is the agent's only if neither the journal nor apply holds a batch past it (the
	// heartbeat judged the report against the watermark it read, which apply may have passed since).
	latest := rec.Watermark
	if seqs, err := r.Journal.List(ctx, j.Group); err != nil {
		return "", 0, err
	} else if len(seqs) > 0 {
		latest = max(latest, slices.Max(seqs))
	}
	if latest > rec.AgentStoppedSeq {
		if _, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.AgentRow, func(g *replication.GroupRecord) error {
			// Not the agent's final sequence: wait for its own report. Only the report judged here is
			// dropped: one the heartbeat recorded since is judged at the next poll.
			if g.AgentStoppedSeq != rec.AgentStoppedSeq {
				return replication.ErrUnchanged
			}
			g.AgentStoppedSeq = 0
			return nil
		}); err != nil {
			return "", 0, err
		}
		r.Log.Warn("stop report ignored: later batches exist", "job", j.ID(), "group", j.Group, "seq", rec.AgentStoppedSeq, "latest", latest)
		return fmt.Sprintf("the reported final sequence %d is not the agent's (batch %d exists): waiting for the agent", rec.AgentStoppedSeq, latest), r.poll(j, 2*time.Second), nil
	}
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	if len(points) == 0 || points[0].Seq < rec.AgentStoppedSeq {
		return "waiting for the final recovery point", r.poll(j, time.Second), nil
	}
	j.RecoveryPoint = points[0].ID // fail over to exactly the final point
	return fmt.Sprintf("drained: final sequence %d is point %s", rec.AgentStoppedSeq, points[0].ID), 0, nil
}

func markFailedOver(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		rec.FailoverJob = j.ID()
		return rec.Move(replication.StateFailedOver, fmt.Sprintf("failed over to %s by job %s", j.PointID, j.ID()), r.Now().UTC())
	})
	if err != nil || !inPlace(j, g) {
		return "group state FailedOver", 0, err
	}
	// Apply has stopped (the group is FailedOver): its leases go, so the VMs can attach their disks.
	for _, d := range g.Spec.Disks() {
		if err := r.Pages.BreakLease(ctx, g.TargetDisk(d.Key)); err != nil {
			return "", 0, err
		}
	}
	return "group state FailedOver; the disks' apply leases are broken for the VMs to attach them", 0, nil
}

// deleteOtherPoints removes every recovery point but the one the failover used (snapshots, then rows).
func deleteOtherPoints(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	var failover Job
	if _, err := r.State.Get(ctx, JobsTable, g.Record.FailoverJob, JobRow, &failover); err != nil {
		return "", 0, fmt.Errorf("the failover job %q: %w", g.Record.FailoverJob, err)
	}
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	deleted := 0
	for _, p := range points {
		if p.ID == failover.PointID {
			continue
		}
		for key, snap := range p.Snapshots {
			if err := r.Pages.DeleteSnapshot(ctx, g.TargetDisk(key), snap); err != nil {
				return "", 0, err
			}
		}
		if err := r.State.Delete(ctx, replication.PointsTable, p.PartitionKey, p.RowKey, ""); err != nil && !errors.Is(err, replication.ErrNotFound) {
			return "", 0, err
		}
		deleted++
	}
	return fmt.Sprintf("%d other points deleted; %s kept", deleted, failover.PointID), 0, nil
}

func markCommitted(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		return rec.Move(replication.StateCommitted, "failover committed by job "+j.ID(), r.Now().UTC())
	})
	return "group state Committed", 0, err
}

// inPlace reports whether the job fails over onto the group's target disks themselves: a planned
// failover of a group whose targets were given (a reprotected group's original disks) — failback. The
// drained disks hold the final point exactly, and the VMs come back on their own disks.
func inPlace(j *Job, g *replication.Group) bool {
	return j.Type == JobPlannedFailover && len(g.Spec.Target.Disks) == len(g.Spec.Disks())
}

func startCopies(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	p, err := r.point(ctx, j)
	if err != nil {
		return "", 0, err
	}
	if inPlace(j, g) {
		if g.Record.Watermark != p.Seq {
			return "", 0, permanentError{fmt.Errorf("the target disks are at sequence %d, not at the final point %s (%d): they cannot be failed over in place", g.Record.Watermark, p.ID, p.Seq)}
		}
		j.Container = g.Spec.Target.Container
		return fmt.Sprintf("in place: the original disks hold %s; nothing to copy", p.ID), 0, nil
	}
	j.Container = replication.TestContainer(j.Group)
	if !isolated(j.Type) {
		j.Container = replication.FailoverContainer(j.Group)
	}
	res, err := r.Restorer.StartCopies(ctx, g, p, j.Container)
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("%d server-side copies into %s", len(res.Disks), j.Container), 0, nil
}

// materializedDisks are the disks a test failover or a failover makes in container.
func (r *JobRunner) materializedDisks(g *replication.Group, container string) map[string]replication.DiskRef {
	disks := map[string]replication.DiskRef{}
	for _, d := range g.Spec.Disks() {
		disks[d.Key] = replication.DiskIn(container, d.Key)
	}
	return disks
}

func waitCopies(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if inPlace(j, g) {
		return "nothing copied", 0, nil
	}
	done, err := r.Restorer.CopiesDone(ctx, r.materializedDisks(g, j.Container))
	if err != nil {
		return "", 0, err
	}
	if !done {
		return "copies pending", r.poll(j, 2*time.Second), nil
	}
	return "copies complete", 0, nil
}

func replayJournal(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	t, ok := j.Work.ReplayTime()
	if !ok {
		return "a recovery point: nothing to replay", 0, nil
	}
	p, err := r.point(ctx, j)
	if err != nil {
		return "", 0, err
	}
	res := replication.RestoreResult{Point: p, Disks: r.materializedDisks(g, j.Container), LastSeq: p.Seq, EffectiveAt: p.SourceTime}
	res, err = r.Restorer.Replay(ctx, g, res, t)
	if err != nil {
		return "", 0, err
	}
	j.Work.SetEffective(res.LastSeq, res.EffectiveAt)
	msg := fmt.Sprintf("%d journal batches replayed: the disks hold sequence %d (%s)", res.Replayed, res.LastSeq, res.EffectiveAt.Format(time.RFC3339Nano))
	if res.Cut != "" {
		msg += "; the replay ended there, before the asked time: " + res.Cut
	}
	return msg, 0, nil
}

func deleteTestDisks(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	container := replication.TestContainer(j.Group)
	for _, ref := range r.materializedDisks(g, container) {
		if err := r.Pages.Delete(ctx, ref); err != nil {
			return "", 0, err
		}
	}
	for _, vm := range g.Spec.VMs {
		if err := r.Pages.Delete(ctx, TemplateBlob(container, vm.Name)); err != nil {
			return "", 0, err
		}
	}
	return fmt.Sprintf("test disks in %s deleted", container), 0, nil
}
