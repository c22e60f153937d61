// Package cutpoints is the timer-triggered function that maintains each group's recovery state. So far it
// records each run (scheduled time, whether it ran late) and prunes the journal: batches already
// applied and older than the group's journal window are deleted.
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
	Journal replication.JournalStore // nil: no pruning
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
	if f.Journal != nil {
		pruned, err := f.pruneJournals(ctx, now)
		if err != nil {
			return nil, err
		}
		logs = append(logs, pruned...)
	}
	return &funcproto.InvokeResponse{Logs: logs}, nil
}

// pruneJournals deletes, for every group, the journal batches at or below its watermark (applied) that
// are older than its journal window; a batch inside the window stays for any-point-in-time recovery.
func (f *Function) pruneJournals(ctx context.Context, now time.Time) ([]string, error) {
	var groups []replication.GroupRecord
	err := f.State.ListRows(ctx, replication.GroupsTable, "state", func(decode func(any) error, _ replication.ETag) error {
		var g replication.GroupRecord
		if err := decode(&g); err != nil {
			return err
		}
		groups = append(groups, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	var logs []string
	for _, g := range groups {
		window := time.Duration(g.Policy.JournalWindowMinutes) * time.Minute
		n, err := f.Journal.Prune(ctx, g.PartitionKey, g.Watermark, now.Add(-window))
		if err != nil {
			return logs, fmt.Errorf("pruning the journal of %s: %w", g.PartitionKey, err)
		}
		if n > 0 {
			f.Log.Info("journal pruned", "group", g.PartitionKey, "batches", n, "throughSeq", g.Watermark)
			logs = append(logs, fmt.Sprintf("group %s: %d journal batches pruned", g.PartitionKey, n))
		}
	}
	return logs, nil
}
