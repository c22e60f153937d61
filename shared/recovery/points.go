package recovery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// resolvePoint turns the requested recovery point into a concrete one (choosePoint). A choice that
// resolves to nothing fails the job at once with the reason: nothing was made yet, so a test
// failover's claim on the group goes too, and a retry would find the same points.
func resolvePoint(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	p, replayAt, err := choosePoint(points, g, j.RecoveryPoint)
	if err != nil {
		if isolated(j.Type) {
			if _, uerr := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
				if rec.ActiveTestFailover != j.ID() {
					return replication.ErrUnchanged
				}
				rec.ActiveTestFailover = ""
				return nil
			}); uerr != nil {
				return "", 0, uerr
			}
		}
		return "", 0, permanentError{err}
	}
	if !replayAt.IsZero() {
		j.Work.SetReplayTime(replayAt)
	}
	j.PointID, j.PointTime = p.ID, p.SourceTime
	return fmt.Sprintf("%s (%s, %s)", p.ID, p.Kind, p.SourceTime.Format(time.RFC3339Nano)), 0, nil
}

// choosePoint is the point a choice names among the group's points (newest first), and the time the
// journal is replayed to after it (zero: none): latest (everything applied: the newest point plus the
// journal up to the last applied write — the lowest RPO), latestProcessed (the newest point — the
// lowest RTO), latestAppConsistent, a point id, or an RFC 3339 time (any point in time). Its errors say
// which choices there are.
func choosePoint(points []replication.RecoveryPoint, g *replication.Group, want string) (replication.RecoveryPoint, time.Time, error) {
	var p replication.RecoveryPoint
	var at time.Time
	var err error
	switch {
	case want == "latest":
		if g.Record.LastSourceTime.IsZero() {
			return p, at, fmt.Errorf("%w: nothing applied yet; %s", replication.ErrNotRestorable, pointChoices(points, g))
		}
		at = g.Record.LastSourceTime
		p, err = replication.ChoosePoint(points, "", at)
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
		t, perr := time.Parse(time.RFC3339Nano, want)
		if perr != nil {
			return p, at, fmt.Errorf("%w: recovery point %q is none of the choices; %s", replication.ErrInvalid, replication.Truncate(want, 64), pointChoices(points, g))
		}
		at = t
		p, err = replication.ChoosePoint(points, "", at)
	}
	if err != nil {
		return p, time.Time{}, fmt.Errorf("%w; %s", err, pointChoices(points, g))
	}
	return p, at, nil
}

// pointChoices says what a group's recovery point choices are now.
func pointChoices(points []replication.RecoveryPoint, g *replication.Group) string {
	if len(points) == 0 {
		return "the group has no recovery point yet"
	}
	newest, oldest := points[0], points[len(points)-1]
	app := "none"
	for _, p := range points {
		if p.Kind == "app" {
			app = p.ID
			break
		}
	}
	latest := "nothing applied yet"
	if !g.Record.LastSourceTime.IsZero() {
		latest = "through " + g.Record.LastSourceTime.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("choose latest (%s), latestProcessed (%s), latestAppConsistent (%s), a point id (%s … %s, %d points) or an RFC 3339 time from %s on",
		latest, newest.ID, app, newest.ID, oldest.ID, len(points), oldest.SourceTime.UTC().Format(time.RFC3339))
}

// checkPointGrammar refuses a choice that is none of the kinds of choices (a plan's groups each have
// their own points: its admission checks only this).
func checkPointGrammar(want string) error {
	switch {
	case want == "" || want == "latest" || want == "latestProcessed" || want == "latestAppConsistent":
		return nil
	case strings.HasPrefix(want, "rp-"):
		if _, err := strconv.ParseInt(strings.TrimPrefix(want, "rp-"), 10, 64); err == nil {
			return nil
		}
	default:
		if _, err := time.Parse(time.RFC3339Nano, want); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: recovery point %q: want latest, latestProcessed, latestAppConsistent, a point id (rp-N) or an RFC 3339 time",
		replication.ErrInvalid, replication.Truncate(want, 64))
}

// CheckPointChoice refuses, at admission, a recovery point choice that does not resolve now, naming
// the choices there are (ErrInvalid): a job would fail on it.
func CheckPointChoice(ctx context.Context, state replication.StateStore, g *replication.Group, want string) error {
	points, err := replication.ListPoints(ctx, state, g.Record.Group())
	if err != nil {
		return err
	}
	if err := checkPointGrammar(want); err != nil {
		return fmt.Errorf("%w; %s", err, pointChoices(points, g))
	}
	if len(points) == 0 {
		return nil // no point at all: the group's state refuses the job (409), not its choice
	}
	if _, _, err := choosePoint(points, g, want); err != nil {
		if errors.Is(err, replication.ErrInvalid) {
			return err
		}
		return fmt.Errorf("%w: recovery point %q: %v", replication.ErrInvalid, replication.Truncate(want, 64), err)
	}
	return nil
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
