// Package failover is the Service Bus-triggered function that runs failover jobs, one step per message,
// one job per group at a time (session id = group): jobs.JobRunner does the work.
package failover

import (
	"context"
	"errors"
	"fmt"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	jobs "github.com/standby-dr/standby/shared/recovery"
)

// Binding is the trigger's name in function.json.
const Binding = "job"

// Function is the failover function.
type Function struct {
	Runner *jobs.JobRunner // nil when storage or the queue is not configured
}

// Invoke runs the step the message names. An error answers 500: the host abandons the message and the
// queue redelivers it (dead-lettering it after MaxDeliveryCount, when the runner has failed the job).
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	msg, err := funcproto.DecodeServiceBusMessage(req, Binding)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	step, err := jobs.DecodeStepMessage(msg.Body)
	if err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	if f.Runner == nil {
		return nil, errors.New("failover: target storage or the job queue is not configured (StandbyTargetStorage, StandbyServiceBus)")
	}
	if err := f.Runner.Run(ctx, step, msg.DeliveryCount); err != nil {
		return nil, err
	}
	return &funcproto.InvokeResponse{Logs: []string{fmt.Sprintf("job %s step %d (delivery %d)", step.Job, step.Step, msg.DeliveryCount)}}, nil
}
