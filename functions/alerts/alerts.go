// Package alerts is the timer-triggered function that delivers raised alerts to the operator's webhook
// (notify.Webhook does the work), apart from apply and cutpoints so a slow receiver delays neither.
package alerts

import (
	"context"

	"github.com/standby-dr/standby/shared/notify"
	"github.com/standby-dr/standby/shared/protocol/funcproto"
)

// Binding is the trigger's name in function.json.
const Binding = "timer"

// Function is the alerts function.
type Function struct {
	Webhook *notify.Webhook
}

// Invoke handles one timer tick: every due alert is sent, or rescheduled.
func (f *Function) Invoke(ctx context.Context, req *funcproto.InvokeRequest) (*funcproto.InvokeResponse, error) {
	if _, err := funcproto.DecodeTimer(req, Binding); err != nil {
		return nil, &funcproto.BadInput{Reason: err.Error()}
	}
	logs, err := f.Webhook.Deliver(ctx)
	return &funcproto.InvokeResponse{Logs: logs}, err
}
