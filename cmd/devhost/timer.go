package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/protocol/funcproto"
	"github.com/standby-dr/standby/shared/protocol/ncrontab"
)

// The timer trigger: an NCRONTAB schedule, runOnStartup, and the schedule monitor (useMonitor) that
// fires once at start when a due time passed while the host was down.

func validateTimer(fn *Function, b *Binding, at string) error {
	if b.Schedule == "" {
		return errField(fn.File, at+".schedule", "missing")
	}
	s, err := ParseSchedule(b.Schedule)
	if err != nil {
		return errField(fn.File, at+".schedule", "%v", err)
	}
	fn.schedule = s
	return nil
}

func (h *Host) describeTimer(fn *Function) string {
	return fmt.Sprintf("schedule %q, next %s", fn.Trigger.Schedule, fn.schedule.Next(time.Now()).Format(time.RFC3339))
}

// The schedule monitor's record is the timer's ScheduleStatus (the real host keeps it in
// AzureWebJobsStorage); devhost keeps it in a file per function under the state directory.
func (h *Host) timerStatusFile(fn *Function) string {
	return filepath.Join(h.StateDir, "timers", fn.Name+".json")
}

func (h *Host) runTimer(ctx context.Context, fn *Function) {
	var status funcproto.ScheduleStatus
	monitor := fn.Trigger.UseMonitor == nil || *fn.Trigger.UseMonitor
	if data, err := os.ReadFile(h.timerStatusFile(fn)); err == nil && monitor {
		json.Unmarshal(data, &status)
	}
	fire := func(scheduled time.Time, pastDue bool) {
		now := time.Now()
		next := fn.schedule.Next(now)
		var sent *funcproto.ScheduleStatus // none without a schedule monitor, as the host sends
		if monitor {
			sent = &funcproto.ScheduleStatus{Last: status.Last, Next: next, LastUpdated: now}
		}
		h.invoke(ctx, fn, timerPayload(fn.Name, fn.Trigger.Name, sent, pastDue, now))
		status = funcproto.ScheduleStatus{Last: scheduled, Next: next, LastUpdated: now}
		if monitor {
			os.MkdirAll(filepath.Dir(h.timerStatusFile(fn)), 0o755)
			data, _ := json.Marshal(status)
			os.WriteFile(h.timerStatusFile(fn), data, 0o644)
		}
	}
	now := time.Now()
	switch {
	case monitor && !status.Next.IsZero() && status.Next.Before(now):
		fire(status.Next, true) // a due time passed while the host was down
	case fn.Trigger.RunOnStartup:
		fire(now, false)
	}
	for {
		next := fn.schedule.Next(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		fire(next, time.Since(next) > 5*time.Second)
	}
}

// timerPayload is the invocation of a timer firing (the wire shape is funcproto's).
func timerPayload(function, binding string, status *funcproto.ScheduleStatus, pastDue bool, now time.Time) *funcproto.InvokeRequest {
	v := funcproto.TimerInfo{IsPastDue: pastDue, ScheduleStatus: status}
	v.Schedule.AdjustForDST = true
	return funcproto.NewTimerRequest(function, binding, v, now)
}

// Schedule is a timer trigger's schedule: a six-field NCRONTAB expression or a TimeSpan interval
// (hh:mm:ss), the two forms the timer trigger accepts.
type Schedule struct {
	cron     *ncrontab.Schedule
	interval time.Duration
}

// ParseSchedule parses a timer schedule.
func ParseSchedule(text string) (*Schedule, error) {
	if strings.Contains(text, ":") {
		d, err := ParseTimeSpan(text)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is neither a six-field NCRONTAB expression nor a positive hh:mm:ss interval", text)
		}
		return &Schedule{interval: d}, nil
	}
	cron, err := ncrontab.ParseWithSeconds(text)
	if err != nil {
		return nil, err
	}
	return &Schedule{cron: cron}, nil
}

// Next returns the first due time strictly after t.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.interval > 0 {
		return t.Add(s.interval)
	}
	return s.cron.Next(t)
}
