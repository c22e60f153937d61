package funcproto

import (
	"fmt"
	"time"
)

// TimerInfo is the timer trigger's value.
type TimerInfo struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus *ScheduleStatus `json:"ScheduleStatus"`
	IsPastDue      bool            `json:"IsPastDue"`
}

// ScheduleStatus is the schedule monitor's record of a timer: the last and next due times.
type ScheduleStatus struct {
	Last        time.Time `json:"Last"`
	Next        time.Time `json:"Next"`
	LastUpdated time.Time `json:"LastUpdated"`
}

// DecodeTimer decodes the trigger named binding of a timer invocation.
func DecodeTimer(req *InvokeRequest, binding string) (*TimerInfo, error) {
	raw, err := data(req, binding)
	if err != nil {
		return nil, err
	}
	var t TimerInfo
	if err := Object(raw, &t); err != nil {
		return nil, fmt.Errorf("Data.%s: %w", binding, err)
	}
	return &t, nil
}

// NewTimerRequest is the request the host sends function for a timer firing, the inverse of
// DecodeTimer: the value (times in UTC) both as Data and as Metadata under the trigger binding's name.
func NewTimerRequest(function, binding string, timer TimerInfo, now time.Time) *InvokeRequest {
	if s := timer.ScheduleStatus; s != nil {
		timer.ScheduleStatus = &ScheduleStatus{Last: s.Last.UTC(), Next: s.Next.UTC(), LastUpdated: s.LastUpdated.UTC()}
	}
	req := newRequest(function, now)
	req.Data[binding] = rawJSON(timer)
	req.Metadata[binding] = req.Data[binding]
	return req
}
