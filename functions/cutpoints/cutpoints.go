// Package cutpoints is the timer-triggered function that keeps each group's recovery points: it asks for
// a crash-consistent marker when the newest is older than the policy's interval (the agent puts it into
// the ordered stream, which alone can place it), promotes the markers apply has snapshotted into
// recovery points, prunes points by retention (never one a job holds), rates RPO health, records each
// run, and deletes journal batches that are applied and older than the journal window.
package cutpoints

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/standby-dr/standby/shared/funcproto"
	"github.com/standby-dr/standby/shared/replication"
)

// Binding is the trigger's name in function.json.
const Binding = "timer"

// RunsTable holds one row per timer run.
const RunsTable = "timerruns"

// Run records one timer invocation.
type Run struct {
	replication.Keys
	IsPastDue bool      `json:"IsPastDue"`
	Last      time.Time `json:"Last"`
	Next      time.Time `json:"Next"`
	RanAt     time.Time `json:"RanAt"`
}

// Function is the cutpoints function.
type Function struct {
	State   replication.StateStore
	Pages   replication.PageStore    // nil: points are neither promoted nor pruned
	Journal replication.JournalStore // nil: no journal pruning
	Log     *slog.Logger
	Now     func() time.Time
}

// Invoke handles one timer tick.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	timer, err := funcproto.DecodeTimer(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	if f.State == nil {
		return nil, errors.New("cutpoints: target state store is not configured (StandbyTargetStorage)")
	}
	now := f.Now().UTC()
	run := Run{Keys: replication.Keys{PartitionKey: "cutpoints", RowKey: now.Format("20060102T150405.000000000Z")},
		IsPastDue: timer.IsPastDue, RanAt: now}
	if timer.ScheduleStatus != nil {
		run.Last, run.Next = timer.ScheduleStatus.Last, timer.ScheduleStatus.Next
	}
	if _, err := f.State.Upsert(ctx, RunsTable, run); err != nil {
		return nil, fmt.Errorf("recording the timer run: %w", err)
	}
	f.Log.Info("cutpoints tick", "pastDue", timer.IsPastDue, "next", run.Next)
	logs := []string{fmt.Sprintf("tick at %s (past due: %v)", now.Format(time.RFC3339), timer.IsPastDue)}
	groups, err := replication.GroupNames(ctx, f.State)
	if err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	for _, name := range groups {
		lines, err := f.tend(ctx, name, now)
		logs = append(logs, lines...)
		if err != nil {
			return &funcproto.InvokeResponse{Logs: logs}, fmt.Errorf("group %s: %w", name, err)
		}
	}
	return &funcproto.InvokeResponse{Logs: logs}, nil
}

// tend does one group's round. Each step is idempotent: a crash midway is finished by the next tick.
func (f *Function) tend(ctx context.Context, group string, now time.Time) ([]string, error) {
	g, err := replication.LoadGroup(ctx, f.State, group)
	if errors.Is(err, replication.ErrNoGroup) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	if g.Record.ReplicationStopped() {
		return nil, nil // nothing to cut, and no RPO to rate
	}
	var logs []string
	if f.Pages != nil {
		promoted, err := replication.Promote(ctx, f.State, g, now)
		for _, p := range promoted {
			f.Log.Info("recovery point", "group", group, "point", p.ID, "kind", p.Kind, "sourceTime", p.SourceTime)
			logs = append(logs, fmt.Sprintf("group %s: recovery point %s (%s) at %s", group, p.ID, p.Kind, p.SourceTime.Format(time.RFC3339Nano)))
		}
		if err != nil {
			return logs, fmt.Errorf("promoting markers: %w", err)
		}
		pruned, err := replication.PrunePoints(ctx, f.State, f.Pages, g, now)
		if err != nil {
			return logs, fmt.Errorf("pruning points: %w", err)
		}
		if len(pruned) > 0 {
			f.Log.Info("recovery points pruned", "group", group, "points", pruned)
			logs = append(logs, fmt.Sprintf("group %s: %d points pruned by retention", group, len(pruned)))
		}
	}
	interval := time.Duration(g.Record.Policy.CrashConsistentIntervalSeconds) * time.Second
	var changedHealth, reason string
	rec, err := replication.UpdateGroup(ctx, f.State, group, func(r *replication.GroupRecord) error {
		if r.State == replication.StateProtected && now.Sub(r.LastMarkerTime) >= interval && !r.MarkerRequestedAt.After(r.LastMarkerTime) {
			r.MarkerRequestedAt = now
		}
		appEvery := time.Duration(r.Policy.AppConsistentIntervalSeconds) * time.Second
		if appEvery > 0 && r.State == replication.StateProtected && now.Sub(r.LastAppPointTime) >= appEvery &&
			now.Sub(r.AppMarkerRequestedAt) >= appEvery {
			r.AppMarkerRequestedAt = now // again at most once per interval, whether or not the hooks succeed
		}
		level, why := replication.Health(r.RPO(now), r.LastPointTime, now, f.thresholds(r.Policy))
		if r.State == replication.StateInitialReplication {
			level, why = replication.HealthWarning, "initial replication in progress"
		}
		changedHealth, reason = "", why
		if level != r.Health || why != r.HealthReason {
			if level != r.Health {
				changedHealth = level
			}
			r.Health, r.HealthReason = level, why
		}
		return nil
	})
	if err != nil {
		return logs, err
	}
	if changedHealth != "" {
		msg := changedHealth
		if reason != "" {
			msg += ": " + reason
		}
		f.Log.Warn("health changed", "group", group, "health", changedHealth, "reason", reason)
		if err := replication.RecordEvent(ctx, f.State, group, "health", msg, now); err != nil {
			return logs, err
		}
		logs = append(logs, fmt.Sprintf("group %s: health %s", group, msg))
	}
	if rec.MarkerRequestedAt.Equal(now) {
		logs = append(logs, fmt.Sprintf("group %s: crash-consistent marker requested (newest is %s old)", group, now.Sub(rec.LastMarkerTime).Round(time.Second)))
	}
	if f.Journal != nil {
		window := time.Duration(rec.Policy.JournalWindowMinutes) * time.Minute
		n, err := f.Journal.Prune(ctx, group, rec.Watermark, now.Add(-window))
		if err != nil {
			return logs, fmt.Errorf("pruning the journal: %w", err)
		}
		if n > 0 {
			f.Log.Info("journal pruned", "group", group, "batches", n, "throughSeq", rec.Watermark)
			logs = append(logs, fmt.Sprintf("group %s: %d journal batches pruned", group, n))
		}
	}
	return logs, nil
}

// thresholds are the group's policy's, defaults where the policy predates them.
func (f *Function) thresholds(p replication.Policy) replication.HealthThresholds {
	th := p.HealthThresholds()
	if th.Warning == 0 || th.Critical == 0 || th.NoPoint == 0 {
		return replication.DefaultHealth
	}
	return th
}
