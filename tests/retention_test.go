package tests

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// Retention on real storage: points older than the policy lose their snapshots and rows; a point a
// running job holds keeps both.
func TestRetentionPrunesSnapshotsAndRowsButNotHeldPoints(t *testing.T) {
	ctx := context.Background()
	pages, state := pageblobs.New(testenv.BlobService(t, "target")), tables.New(testenv.TableService(t, "target"))
	journal := (&stack{cache: testenv.Storage(t, "source"), journalName: testenv.Unique("retj")}).journal(t)
	group := testenv.Unique("ret")
	now := time.Now().UTC()
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
		Policy: replication.Policy{RetentionHours: 24}}
	spec.Normalize(group)
	pages.EnsureContainer(ctx, spec.Target.Container)
	g, err := replication.CreateGroup(ctx, state, group, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	pages.Create(ctx, g.TargetDisk("vm/d"), 1<<20)
	replication.UpdateGroup(ctx, state, group, replication.AllRows, func(r *replication.GroupRecord) error { r.State = replication.StateProtected; return nil })
	applier := &replication.Applier{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 2}
	var descs []replication.Descriptor
	for i, age := range []time.Duration{50 * time.Hour, 40 * time.Hour, time.Hour} {
		b := &replication.Batch{Group: group, Seq: int64(i + 1), Kind: replication.KindMarker, Consistency: "crash", SourceTime: now.Add(-age)}
		payload, d, _ := replication.SignBatch(g.StreamKey(), b, false)
		journal.Put(ctx, group, b.Seq, payload)
		descs = append(descs, d)
	}
	if _, err := applier.Apply(ctx, descs); err != nil {
		t.Fatal(err)
	}
	g, _ = replication.LoadGroup(ctx, state, group)
	if _, err := replication.Promote(ctx, state, g, now); err != nil {
		t.Fatal(err)
	}
	points, _ := replication.ListPoints(ctx, state, group)
	snaps := map[string]string{}
	for _, p := range points {
		snaps[p.ID] = p.Snapshots["vm/d"]
	}
	state.Upsert(ctx, replication.HoldsTable, replication.PointHold{Keys: replication.Keys{PartitionKey: group, RowKey: "rp-2"}, HeldByJob: "job-1"})
	pruned, err := replication.PrunePoints(ctx, state, pages, g, now)
	if err != nil || len(pruned) != 1 || pruned[0] != "rp-1" {
		t.Fatalf("pruned %v, %v; want [rp-1] (rp-2 is held, rp-3 inside retention)", pruned, err)
	}
	if _, err := pages.ReadRange(ctx, g.TargetDisk("vm/d"), snaps["rp-1"], 0, 512); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the pruned point's snapshot: err = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"rp-2", "rp-3"} {
		if _, err := pages.ReadRange(ctx, g.TargetDisk("vm/d"), snaps[id], 0, 512); err != nil {
			t.Fatalf("snapshot of %s: %v", id, err)
		}
	}
	points, _ = replication.ListPoints(ctx, state, group)
	if len(points) != 2 || points[0].ID != "rp-3" || points[1].ID != "rp-2" {
		t.Fatalf("points left: %+v", points)
	}
	var m replication.MarkerRecord
	if _, err := state.Get(ctx, replication.MarkersTable, group, replication.SeqKey(1), &m); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the pruned point's marker row: %v", err)
	}
}
