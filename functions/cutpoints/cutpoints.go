// Package cutpoints is the timer-triggered function that cuts recovery points. In this foundation it
// records each run (scheduled time, whether it ran late) in Table storage.
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
	State replication.StateStore
	Log   *slog.Logger
	Now   func() time.Time
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
	return &funcproto.InvokeResponse{Logs: []string{fmt.Sprintf("tick at %s (past due: %v)", now.Format(time.RFC3339), timer.IsPastDue)}}, nil
}
