package replication

import (
	"context"
	"fmt"
	"time"
)

// rPOHistoryTable keeps each group's RPO as the timer rated it, one sample a minute (the console's
// chart), for the group's retention window and at least a day.
const rPOHistoryTable = "rpohistory"

// RPOSample is a group's RPO and health in one minute.
type RPOSample struct {
	Keys
	Time       time.Time `json:"Time"`
	RPOSeconds float64   `json:"RPOSeconds"`
	Health     string    `json:"Health"`
}

// sampleRPO records the group's RPO for the current minute: the row is the minute's, so the timer's
// other ticks in it rewrite the same row with the newest figure.
func sampleRPO(ctx context.Context, store StateStore, rec *GroupRecord, now time.Time) error {
	minute := now.UTC().Truncate(time.Minute)
	_, err := store.Upsert(ctx, rPOHistoryTable, RPOSample{Keys: Keys{PartitionKey: rec.Group(), RowKey: minute.Format("20060102T1504Z")},
		Time: minute, RPOSeconds: rec.RPO(now).Seconds(), Health: rec.Health})
	return err
}

// rpoHistoryKept is how far back a group's RPO history goes.
func rpoHistoryKept(p Policy) time.Duration {
	return max(24*time.Hour, time.Duration(p.RetentionHours)*time.Hour)
}

// RPOHistory is the group's samples from from to to (zero: unbounded), oldest first.
func (s *Points) RPOHistory(ctx context.Context, group string, from, to time.Time) ([]RPOSample, error) {
	if s.State == nil {
		return nil, fmt.Errorf("%w: the target state store (StandbyTargetStorage)", ErrNotConfigured)
	}
	if _, err := LoadGroup(ctx, s.State, group); err != nil {
		return nil, err
	}
	var out []RPOSample
	err := s.State.Query(ctx, rPOHistoryTable, group, func(decode func(any) error, _ ETag) error {
		var r RPOSample
		if err := decode(&r); err != nil {
			return err
		}
		if (from.IsZero() || !r.Time.Before(from)) && (to.IsZero() || !r.Time.After(to)) {
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
