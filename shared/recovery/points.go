package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// resolvePoint turns the requested recovery point into a concrete one: latest (everything applied: the
// newest point plus the journal up to the last applied write — the lowest RPO), latestProcessed (the
// newest point — the lowest RTO), latestAppConsistent, a point id, or an RFC 3339 time (any point in
// time).
func resolvePoint(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	var p replication.RecoveryPoint
	switch want := j.RecoveryPoint; {
	case want == "latest":
		// Everything apply has: the newest point before the last applied write, plus the journal up to
		// that write.
		if g.Record.LastSourceTime.IsZero() {
			return "", 0, fmt.Errorf("%w: nothing applied yet", replication.ErrNotRestorable)
		}
		at := g.Record.LastSourceTime
		p, err = replication.ChoosePoint(points, "", at)
		j.Work.SetReplayTime(at)
	case want == "latestProcessed" || want == "":
		p, err = replication.ChoosePoint(points, "", time.Now().Add(time.Hour))
	case want == "latestAppConsistent":
		err = fmt.Errorf("%w: no app-consistent recovery point", replication.ErrNotRestorable)
		for _, cand := range points {
			if cand.Kind == "app" {
				p, err = cand, nil
				break
			}
		}
	case strings.HasPrefix(want, "rp-"):
		p, err = replication.ChoosePoint(points, want, time.Time{})
	default:
		at, perr := time.Parse(time.RFC3339Nano, want)
		if perr != nil {
			return "", 0, fmt.Errorf("recovery point %q: want latestProcessed, latestAppConsistent, a point id or an RFC 3339 time", want)
		}
		p, err = replication.ChoosePoint(points, "", at)
		j.Work.SetReplayTime(at)
	}
	if err != nil {
		return "", 0, err
	}
	j.PointID, j.PointTime = p.ID, p.SourceTime
	return fmt.Sprintf("%s (%s, %s)", p.ID, p.Kind, p.SourceTime.Format(time.RFC3339Nano)), 0, nil
}

func holdPoint(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := r.State.Upsert(ctx, replication.HoldsTable, replication.PointHold{Keys: replication.Keys{PartitionKey: j.Group, RowKey: j.PointID}, HeldByJob: j.ID()})
	return "retention will not prune " + j.PointID, 0, err
}

func (r *JobRunner) point(ctx context.Context, j *Job) (replication.RecoveryPoint, error) {
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return replication.RecoveryPoint{}, err
	}
	return replication.ChoosePoint(points, j.PointID, time.Time{})
}

// releaseTestHolds releases the points test failover jobs hold.
func releaseTestHolds(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	released, err := r.releaseHolds(ctx, j.Group, func(h replication.PointHold) bool {
		var holder Job
		_, err := r.State.Get(ctx, JobsTable, h.HeldByJob, JobRow, &holder)
		return err != nil || isolated(holder.Type)
	})
	return fmt.Sprintf("%d holds released", released), 0, err
}

// releaseHolds deletes the group's holds that release says go, and counts them.
func (r *JobRunner) releaseHolds(ctx context.Context, group string, release func(replication.PointHold) bool) (int, error) {
	holds, _, err := replication.QueryAll[replication.PointHold](ctx, r.State, replication.HoldsTable, group)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, h := range holds {
		if !release(h) {
			continue
		}
		if err := r.State.Delete(ctx, replication.HoldsTable, h.PartitionKey, h.RowKey, ""); err != nil && !errors.Is(err, replication.ErrNotFound) {
			return released, err
		}
		released++
	}
	return released, nil
}
