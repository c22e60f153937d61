package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RunsTable holds one row per timer run.
const RunsTable = "timerruns"

// TimerRun records one timer invocation (as the Functions host describes it).
type TimerRun struct {
	Keys
	IsPastDue bool      `json:"IsPastDue"`
	Last      time.Time `json:"Last"`
	Next      time.Time `json:"Next"`
	RanAt     time.Time `json:"RanAt"`
}

// Upkeep is the timer's round over every group: it asks for a crash-consistent marker when the newest
// is older than the policy's interval (the agent puts it into the ordered stream, which alone can place
// it), promotes the markers apply has snapshotted into recovery points, prunes points by retention
// (never one a job holds), rates RPO health, and deletes journal batches that are applied and older
// than the journal window. It records the run and returns what it did, a line per change.
func (s *Upkeep) Run(ctx context.Context, run TimerRun) ([]string, error) {
	if s.State == nil {
		return nil, fmt.Errorf("%w: the target state store (StandbyTargetStorage)", ErrNotConfigured)
	}
	now := s.now()
	run.Keys, run.RanAt = Keys{PartitionKey: "cutpoints", RowKey: now.Format("20060102T150405.000000000Z")}, now
	if _, err := s.State.Upsert(ctx, RunsTable, run); err != nil {
		return nil, fmt.Errorf("recording the timer run: %w", err)
	}
	s.Log.Info("cutpoints tick", "pastDue", run.IsPastDue, "next", run.Next)
	logs := []string{fmt.Sprintf("tick at %s (past due: %v)", now.Format(time.RFC3339), run.IsPastDue)}
	groups, err := GroupNames(ctx, s.State)
	if err != nil {
		return logs, fmt.Errorf("listing groups: %w", err)
	}
	for _, name := range groups {
		lines, err := s.tend(ctx, name, now)
		logs = append(logs, lines...)
		for _, schedule := range s.Schedulers {
			if err != nil {
				break
			}
			lines, err = schedule(ctx, name, now)
			logs = append(logs, lines...)
		}
		if err != nil {
			return logs, fmt.Errorf("group %s: %w", name, err)
		}
	}
	for _, tick := range s.EveryTick {
		lines, err := tick(ctx, now)
		if logs = append(logs, lines...); err != nil {
			return logs, err
		}
	}
	lines, err := s.housekeep(ctx, now)
	return append(logs, lines...), err
}

// tend does one group's round. Each step is idempotent: a crash midway is finished by the next tick.
func (s *Upkeep) tend(ctx context.Context, group string, now time.Time) ([]string, error) {
	g, err := LoadGroup(ctx, s.State, group)
	if errors.Is(err, ErrNoGroup) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	logs, err := s.refreshTargets(ctx, g)
	if err == nil && now.Sub(g.Record.HistoryPrunedAt) >= time.Hour {
		var n int
		if n, err = pruneHistory(ctx, s.State, group, now, rpoHistoryKept(g.Record.Policy)); err == nil {
			_, err = UpdateGroup(ctx, s.State, group, HealthRow, func(r *GroupRecord) error { r.HistoryPrunedAt = now; return nil })
		}
		if n > 0 {
			logs = append(logs, fmt.Sprintf("group %s: %d history entries pruned (events past %s, RPO samples past %s)", group, n, EventRetention, rpoHistoryKept(g.Record.Policy)))
		}
	}
	if err != nil {
		return logs, err
	}
	if g.Record.ReplicationStopped() { // nothing to cut, and no RPO to rate; stopping is an alert
		if g.Record.Health != "" { // a group failed over is not Healthy (nor anything else)
			if _, err := UpdateGroup(ctx, s.State, group, HealthRow, func(r *GroupRecord) error {
				r.Health, r.HealthReason = "", ""
				return nil
			}); err != nil {
				return logs, err
			}
		}
		lines, err := s.raiseGroupAlerts(ctx, g.Record, now)
		return append(logs, lines...), err
	}
	lines, err := s.cutPoints(ctx, g, now)
	logs = append(logs, lines...)
	if err != nil {
		return logs, err
	}
	interval := time.Duration(g.Record.Policy.CrashConsistentIntervalSeconds) * time.Second
	rec, err := UpdateGroup(ctx, s.State, group, HealthRow, func(r *GroupRecord) error {
		if r.State == StateProtected && now.Sub(r.LastMarkerTime) >= interval && !r.MarkerRequestedAt.After(r.LastMarkerTime) {
			r.MarkerRequestedAt = now
		}
		appEvery := time.Duration(r.Policy.AppConsistentIntervalSeconds) * time.Second
		if appEvery > 0 && r.State == StateProtected && now.Sub(r.LastAppPointTime) >= appEvery &&
			now.Sub(r.AppMarkerRequestedAt) >= appEvery {
			r.AppMarkerRequestedAt = now // again at most once per interval, whether or not the hooks succeed
		}
		level, errs := RateGroup(r, now)
		r.Health, r.HealthReason = level, HealthReason(errs)
		return nil
	})
	if err == nil {
		err = sampleRPO(ctx, s.State, &rec, now)
	}
	if err != nil {
		return logs, err
	}
	lines, err = s.raiseGroupAlerts(ctx, rec, now)
	if logs = append(logs, lines...); err != nil {
		return logs, err
	}
	if rec.MarkerRequestedAt.Equal(now) {
		logs = append(logs, fmt.Sprintf("group %s: crash-consistent marker requested (newest is %s old)", group, HumanDuration(now.Sub(rec.LastMarkerTime))))
	}
	lines, err = s.pruneJournal(ctx, rec, now)
	return append(logs, lines...), err
}

// cutPoints promotes the group's snapshotted markers into recovery points and prunes them by retention.
func (s *Upkeep) cutPoints(ctx context.Context, g *Group, now time.Time) ([]string, error) {
	if s.Pages == nil {
		return nil, nil // points are neither promoted nor pruned
	}
	group := g.Record.Group()
	var logs []string
	promoted, err := Promote(ctx, s.State, g, now)
	for _, p := range promoted {
		s.Log.Info("recovery point", "group", group, "point", p.ID, "kind", p.Kind, "sourceTime", p.SourceTime)
		logs = append(logs, fmt.Sprintf("group %s: recovery point %s (%s) at %s", group, p.ID, p.Kind, p.SourceTime.Format(time.RFC3339Nano)))
	}
	if err != nil {
		return logs, fmt.Errorf("promoting markers: %w", err)
	}
	pruned, err := PrunePoints(ctx, s.State, s.Pages, g, now)
	if err != nil {
		return logs, fmt.Errorf("pruning points: %w", err)
	}
	if len(pruned) > 0 {
		s.Log.Info("recovery points pruned", "group", group, "points", pruned)
		logs = append(logs, fmt.Sprintf("group %s: %d points pruned by retention", group, len(pruned)))
	}
	return logs, nil
}

// pruneJournal deletes the group's journal batches that are applied and older than the journal window.
func (s *Upkeep) pruneJournal(ctx context.Context, rec GroupRecord, now time.Time) ([]string, error) {
	if s.Journal == nil {
		return nil, nil
	}
	group := rec.Group()
	window := time.Duration(rec.Policy.JournalWindowMinutes) * time.Minute
	n, err := s.Journal.Prune(ctx, group, rec.Watermark, now.Add(-window))
	if err != nil {
		return nil, fmt.Errorf("pruning the journal: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	s.Log.Info("journal pruned", "group", group, "batches", n, "throughSeq", rec.Watermark)
	return []string{fmt.Sprintf("group %s: %d journal batches pruned", group, n)}, nil
}
