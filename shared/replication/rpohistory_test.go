package replication_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// The timer keeps one RPO sample a minute per group (a second tick in the minute rewrites it with the
// newest figure), the history answers a time range oldest first, and samples older than the retention
// window (at least a day) go with the hourly pruning.
func TestRPOIsSampledEveryMinuteAndPruned(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	start := time.Date(2026, 11, 26, 12, 0, 10, 0, time.UTC)
	now := start
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Policy: replication.Policy{RetentionHours: 2}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, now)
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.LastSourceTime, r.LastPointTime, r.LastMarkerTime = replication.StateProtected, now.Add(-20*time.Minute), now, now
		return nil
	})
	deps := replication.Deps{State: state, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	s, upkeep := &replication.Points{Deps: deps}, &replication.Upkeep{Deps: deps}
	tick := func(at time.Time) {
		now = at
		if _, err := upkeep.Run(ctx, replication.TimerRun{}); err != nil {
			t.Fatal(err)
		}
	}
	tick(start)
	tick(start.Add(30 * time.Second)) // the same minute: rewritten
	tick(start.Add(70 * time.Second)) // the next minute
	got, err := s.RPOHistory(ctx, "g1", time.Time{}, time.Time{})
	if err != nil || len(got) != 2 {
		t.Fatalf("%d samples (%v), want 2", len(got), err)
	}
	if !got[0].Time.Equal(start.Truncate(time.Minute)) || got[0].RPOSeconds != (20*time.Minute+30*time.Second).Seconds() || got[0].Health != replication.HealthWarning {
		t.Fatalf("first sample %+v: want the minute's newest figure, RPO 20m30s, Warning", got[0])
	}
	if one, _ := s.RPOHistory(ctx, "g1", got[1].Time, time.Time{}); len(one) != 1 || !one[0].Time.Equal(got[1].Time) {
		t.Fatalf("from the second minute: %+v", one)
	}
	// 25 hours on (past the day this 2-hour retention is raised to): the hourly pruning removes both.
	tick(start.Add(25 * time.Hour))
	if left, _ := s.RPOHistory(ctx, "g1", time.Time{}, start.Add(2*time.Minute)); len(left) != 0 {
		t.Fatalf("%d samples older than a day left", len(left))
	}
	if _, err := s.RPOHistory(ctx, "nope", time.Time{}, time.Time{}); !errors.Is(err, replication.ErrNoGroup) {
		t.Fatalf("an unknown group: %v", err)
	}
}
