package agent

import (
	"bytes"
	"context"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// A target block changed behind apply's back is found by the scrub that covers it, at its place in the
// stream: an alert names the block, the recovery points taken since the disk was last found clean are
// marked suspect, and the group stops for a checksum resync, which sends exactly that block back. A
// clean pass over both disks finds nothing and records the pass.
func TestScrubFindsTargetDamageAndResyncRepairsIt(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	p := newPipeline(t, 1, 2, 4<<20)
	dir := t.TempDir()
	ctx := context.Background()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rng, p.spec, 30)
	if _, _, err := a.Sync(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, a)
	p.drain(rng)
	// A clean pass over each disk, a slice at a time, with writes in between.
	s := NewScrubber([]string{"vm0/disk0", "vm0/disk1"}, map[string]int64{"vm0/disk0": 4 << 20, "vm0/disk1": 4 << 20}, time.Minute, 10*time.Second)
	if s.slice != 2*BlockSize {
		t.Fatalf("slice %d, want 2 MiB (8 MiB over 6 ticks, rounded up to blocks)", s.slice)
	}
	for range 4 {
		randomWrites(t, a, rng, p.spec, 5)
		if _, _, _, _, err := s.Step(a); err != nil {
			t.Fatal(err)
		}
	}
	a.Marker("crash", false)
	waitPublished(t, a)
	p.drain(rng)
	scrubs, _ := replication.ListScrubs(ctx, p.state, p.group)
	if len(scrubs) != 2 || !scrubs[0].LastPassClean || scrubs[0].LastPassEnded.IsZero() || scrubs[0].BlocksChecked != 4 || scrubs[1].Mismatches != 0 {
		t.Fatalf("after a clean pass: %+v", scrubs)
	}
	// Cut points from the markers so far, then damage block 2 of disk1 on the target.
	up := &replication.Upkeep{Deps: replication.Deps{State: p.state, Pages: p.pages, Log: p.applier.Log, Now: time.Now}}
	if _, err := up.Run(ctx, replication.TimerRun{}); err != nil {
		t.Fatal(err)
	}
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	// (Apply holds the disk's lease: the damage breaks it, as a storage-level accident would ignore it.)
	p.pages.BreakLease(ctx, g.TargetDisk("vm0/disk1"))
	if err := p.pages.WritePages(ctx, g.TargetDisk("vm0/disk1"), 2*BlockSize+8192, bytes.Repeat([]byte{0xEE}, 4096)); err != nil {
		t.Fatal(err)
	}
	old := p.applier // a new apply instance takes the broken lease again
	p.applier = &replication.Applier{State: old.State, Pages: old.Pages, Journal: old.Journal, Log: old.Log, Now: old.Now, Parallelism: old.Parallelism}
	disk0 := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm0", Disks: p.spec.VMs[0].Disks[:1]}}}
	for range 4 { // writes go on, to the other disk: nothing in the stream explains the damage
		randomWrites(t, a, rng, disk0, 5)
		s.Step(a)
	}
	a.Marker("crash", false)
	waitPublished(t, a)
	p.drain(rng)
	g, _ = replication.LoadGroup(ctx, p.state, p.group)
	if g.Record.State != replication.StateResyncRequired || !strings.Contains(g.Record.Reason, "disk vm0/disk1: block 2 (1 MiB each)") {
		t.Fatalf("after the damage: %s %q", g.Record.State, g.Record.Reason)
	}
	alerts, _, _ := replication.QueryAll[replication.AlertRow](ctx, p.state, replication.AlertsTable, replication.AlertPartition)
	found := false
	for _, al := range alerts {
		found = found || (al.Kind == replication.AlertScrubMismatch && al.Severity == replication.SeverityCritical && strings.Contains(al.Message, "block 2"))
	}
	if !found {
		t.Fatalf("no scrub alert: %+v", alerts)
	}
	// Suspect: exactly the points after the start of disk1's last clean pass (every block was right
	// at some moment after it, so the damage came later).
	cleanSince := scrubs[1].CleanSince
	points, _ := replication.ListPoints(ctx, p.state, p.group)
	suspect := 0
	for _, pt := range points {
		if (pt.Suspect != "") != pt.SourceTime.After(cleanSince) {
			t.Fatalf("point %s at %s (clean since %s): suspect %q", pt.ID, pt.SourceTime, cleanSince, pt.Suspect)
		}
		if pt.Suspect != "" {
			suspect++
		}
	}
	if suspect == 0 || suspect == len(points) {
		t.Fatalf("%d of %d points suspect: want the ones after the clean pass only", suspect, len(points))
	}
	// The resync compares every block and sends back the damaged one (and what the stopped group did
	// not apply since).
	_, sent, err := a.Sync(ctx, func(ctx context.Context, disk string) ([]string, error) { return targetHashes(p, disk) }, true)
	if err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	p.drain(rng)
	p.verify(dir)
	g, _ = replication.LoadGroup(ctx, p.state, p.group)
	if g.Record.State != replication.StateProtected || sent < BlockSize {
		t.Fatalf("after the resync: %s %q, %d bytes sent", g.Record.State, g.Record.Reason, sent)
	}
}

// The scrub hashes only a range inside the disk from a block, at most a slice.
func TestScrubRefusesBadRanges(t *testing.T) {
	p := newPipeline(t, 1, 1, 4<<20)
	a, _ := p.openAgent(t.TempDir())
	defer a.Close(context.Background())
	for _, c := range [][2]int64{{4096, BlockSize}, {4 << 20, BlockSize}, {0, 0}, {0, maxScrubSlice + BlockSize}} {
		if _, err := a.Scrub("vm0/disk0", c[0], c[1]); err == nil {
			t.Errorf("Scrub(%d, %d) accepted", c[0], c[1])
		}
	}
	if _, err := a.Scrub("vm0/nope", 0, BlockSize); err == nil {
		t.Error("a scrub of an unknown disk was accepted")
	}
}
