package recovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// The timer's housekeeping bounds what the deployment keeps beyond its groups: timer runs past a week,
// quarantined stream events past the retention or beyond the per-partition cap, and finished jobs past
// the retention — but never a job a group, a point hold or a plan still names, nor a running one. It
// runs once an hour.
func TestHousekeepingBoundsRunsQuarantineAndJobs(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	old := now.Add(-recovery.JobRetention - time.Hour)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	if _, err := replication.CreateGroup(ctx, state, "g1", spec, now); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]string{}
	for _, name := range []string{"stale", "failover", "hold", "recent", "running"} {
		jobs[name] = recovery.NewJobID()
		j := recovery.Job{Keys: replication.Keys{PartitionKey: jobs[name], RowKey: recovery.JobRow}, Group: "g1", Type: recovery.JobTestFailover,
			State: recovery.JobSucceeded, UpdatedAt: old}
		switch name {
		case "recent":
			j.UpdatedAt = now.Add(-24 * time.Hour)
		case "running":
			j.State = recovery.JobRunning
		}
		state.Upsert(ctx, recovery.JobsTable, j)
	}
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.FailoverJob = jobs["failover"]; return nil })
	state.Upsert(ctx, replication.HoldsTable, replication.PointHold{Keys: replication.Keys{PartitionKey: "g1", RowKey: "rp-1"}, HeldByJob: jobs["hold"]})
	for i, at := range []time.Time{now.Add(-8 * 24 * time.Hour), now.Add(-24 * time.Hour)} {
		state.Upsert(ctx, replication.RunsTable, replication.TimerRun{Keys: replication.Keys{PartitionKey: "cutpoints", RowKey: fmt.Sprint(i)}, RanAt: at})
	}
	// Partition 0 quarantines a flood of forged events, partition 1 one old event.
	quarantine := func(partition string, at time.Time, n int) {
		a := &replication.Applier{State: state, Pages: memstore.NewPages(), Journal: memstore.NewJournal(), Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return at }}
		var events []replication.StreamEvent
		for i := range n {
			events = append(events, replication.StreamEvent{SequenceNumber: int64(i), Body: []byte("forged")})
		}
		if _, err := a.ApplyEvents(ctx, partition, events); err != nil {
			t.Fatal(err)
		}
	}
	quarantine("0", now, replication.MaxQuarantinedPerPartition+5)
	quarantine("1", old, 1)

	svc := &replication.Upkeep{Deps: replication.Deps{State: state, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}, Housekeepers: []replication.Housekeeper{recovery.PruneJobs(state)}}
	logs, err := svc.Run(ctx, replication.TimerRun{})
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range jobs {
		_, err := state.Get(ctx, recovery.JobsTable, id, recovery.JobRow, &recovery.Job{})
		if kept := err == nil; kept != (name != "stale") {
			t.Errorf("job %q kept: %v (logs %v)", name, kept, logs)
		}
	}
	count := func(table, partition string) int {
		rows, _, _ := replication.QueryAll[replication.Keys](ctx, state, table, partition)
		return len(rows)
	}
	if n := count(replication.RunsTable, "cutpoints"); n != 2 { // the day-old run and this one
		t.Errorf("timer runs kept: %d, want 2", n)
	}
	if n := count(replication.QuarantineTable, "partition-0"); n != replication.MaxQuarantinedPerPartition {
		t.Errorf("partition 0's quarantine: %d events, want the newest %d", n, replication.MaxQuarantinedPerPartition)
	}
	if n := count(replication.QuarantineTable, "partition-1"); n != 0 {
		t.Errorf("partition 1's quarantine: %d events, want none past the retention", n)
	}
	// Within the hour nothing is pruned again.
	quarantine("1", old, 1)
	if _, err := svc.Run(ctx, replication.TimerRun{}); err != nil {
		t.Fatal(err)
	}
	if n := count(replication.QuarantineTable, "partition-1"); n != 1 {
		t.Errorf("housekeeping ran again within the hour: partition 1 has %d events", n)
	}
}
