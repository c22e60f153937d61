// Package cutpoints is the timer-triggered function that keeps each group's recovery points: markers
// asked for, snapshotted markers promoted, points pruned by retention, RPO health rated, the journal
// pruned (replication.Upkeep does the work).
package cutpoints

import (
	"context"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/replication"
)

// Binding is the trigger's name in function.json.
const Binding = "timer"

// Function is the cutpoints function.
type Function struct {
	Upkeep *replication.Upkeep
}

// Invoke handles one timer tick. Each step is idempotent: a crash midway is finished by the next tick.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	timer, err := funcproto.DecodeTimer(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	run := replication.TimerRun{IsPastDue: timer.IsPastDue}
	if timer.ScheduleStatus != nil {
		run.Last, run.Next = timer.ScheduleStatus.Last, timer.ScheduleStatus.Next
	}
	logs, err := f.Upkeep.Run(ctx, run)
	return &funcproto.InvokeResponse{Logs: logs}, err
}
