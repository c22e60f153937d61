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
// DecodeTimer. Data is the TimerInfo object (Azure/azure-webjobs-sdk-extensions@2e7550f7,
// src/WebJobs.Extensions/Extensions/Timers/TimerInfo.cs:15-48) with the schedule monitor's times, which
// the listener keeps as local times (Listener/TimerListener.cs:336-341: "+00:00" on a UTC instance),
// and a null ScheduleStatus when there is no monitor (l.284-289). Metadata holds sys alone: the
// trigger's only binding-data key, TimerTrigger, ends in "trigger", which the host leaves out
// (ScriptInvocationContextExtensions.cs:32-36).
func NewTimerRequest(function, binding string, timer TimerInfo, now time.Time) *InvokeRequest {
	type status struct{ Last, Next, LastUpdated string }
	wire := struct {
		Schedule       any     `json:"Schedule"`
		ScheduleStatus *status `json:"ScheduleStatus"`
		IsPastDue      bool    `json:"IsPastDue"`
	}{Schedule: timer.Schedule, IsPastDue: timer.IsPastDue}
	if s := timer.ScheduleStatus; s != nil {
		wire.ScheduleStatus = &status{hostTime(s.Last, layoutLocal), hostTime(s.Next, layoutLocal), hostTime(s.LastUpdated, layoutLocal)}
	}
	req := newRequest(function, now)
	req.Data[binding] = rawJSON(wire)
	return req
}
