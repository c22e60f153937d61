package replication_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

func TestPromoteAndPrune(t *testing.T) {
	ctx := context.Background()
	state, pages, journal := memstore.NewState(), memstore.NewPages(), memstore.NewJournal()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Policy: replication.Policy{RetentionHours: 24}}
	spec.Normalize("g1")
	pages.EnsureContainer(ctx, spec.Target.Container)
	g, _ := replication.CreateGroup(ctx, state, "g1", spec, now)
	pages.Create(ctx, g.TargetDisk("vm/d"), 1<<20)
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.State = replication.StateProtected; return nil })
	applier := &replication.Applier{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }, Parallelism: 2}
	// Markers at 30 h, 3 h, 2.5 h and 10 min ago (the first an app-consistent one).
	ages := []time.Duration{30 * time.Hour, 3 * time.Hour, 150 * time.Minute, 10 * time.Minute}
	var descs []replication.Descriptor
	for i, age := range ages {
		kind := "crash"
		if i == 0 {
			kind = "app"
		}
		b := &replication.Batch{Group: "g1", Seq: int64(i + 1), Kind: replication.KindMarker, Consistency: kind, SourceTime: now.Add(-age)}
		payload, d, _ := replication.SignBatch(g.StreamKey(), b, false)
		journal.Put(ctx, "g1", b.Seq, payload)
		descs = append(descs, d)
	}
	if _, err := applier.Apply(ctx, descs); err != nil {
		t.Fatal(err)
	}
	g, _ = replication.LoadGroup(ctx, state, "g1")
	promoted, err := replication.Promote(ctx, state, g, now)
	if err != nil || len(promoted) != 4 {
		t.Fatalf("promoted %d points: %v", len(promoted), err)
	}
	if again, _ := replication.Promote(ctx, state, g, now); len(again) != 0 {
		t.Fatalf("promotion is not idempotent: %d more", len(again))
	}
	points, _ := replication.ListPoints(ctx, state, "g1")
	if len(points) != 4 || points[0].ID != "rp-4" || points[3].ID != "rp-1" || points[3].Kind != "app" || points[0].Snapshots["vm/d"] == "" {
		t.Fatalf("points newest first: %+v", points)
	}
	// Retention (24 h): rp-1 is past it (being the only app point does not save it); rp-2 shares its
	// hour slot with the newer rp-3 and would go, but a running job holds it.
	state.Upsert(ctx, replication.HoldsTable, replication.PointHold{Keys: replication.Keys{PartitionKey: "g1", RowKey: "rp-2"}, HeldByJob: "job-1"})
	pruned, err := replication.PrunePoints(ctx, state, pages, g, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pruned, ",") != "rp-1" {
		t.Fatalf("pruned %v, want [rp-1]", pruned)
	}
	if _, err := pages.ReadRange(ctx, g.TargetDisk("vm/d"), points[3].Snapshots["vm/d"], 0, 512); err == nil {
		t.Fatal("the pruned point's snapshot still exists")
	}
	if markers, _ := replication.ListMarkers(ctx, state, "g1"); len(markers) != 3 {
		t.Fatalf("%d markers left, want 3", len(markers))
	}
}

func TestHealth(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	th := replication.DefaultHealth
	cases := []struct {
		rpo       time.Duration
		lastPoint time.Time
		level     string
		reason    string
	}{
		{time.Minute, now.Add(-5 * time.Minute), "Healthy", ""},
		{20 * time.Minute, now.Add(-5 * time.Minute), "Warning", "RPO 20 min exceeds 15 min"},
		{40 * time.Minute, now.Add(-5 * time.Minute), "Critical", "RPO 40 min exceeds 30 min"},
		{time.Minute, now.Add(-61 * time.Minute), "Critical", "no crash-consistent recovery point for 1 h (the newest is 1 h 1 min old)"},
		{20 * time.Minute, time.Time{}, "Critical", "RPO 20 min exceeds 15 min; no crash-consistent recovery point for 1 h (none yet)"},
	}
	for _, c := range cases {
		level, reason := replication.Health(c.rpo, c.lastPoint, now, th)
		if level != c.level || reason != c.reason {
			t.Errorf("Health(%s, %s) = %s %q, want %s %q", c.rpo, c.lastPoint, level, reason, c.level, c.reason)
		}
	}
}
