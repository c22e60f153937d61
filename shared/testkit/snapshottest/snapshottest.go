// Package snapshottest is the contract suite of the DiskSnapshots port (replication.DiskSnapshots), run
// over each implementation: the Azure adapter (shared/azure/azsnapshots) against the fake ARM's
// stateful disks, and the local compute (shared/standin/localcompute) over its page blobs — in the style
// of storetest and brokertest.
package snapshottest

import (
	"bytes"
	"context"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
)

// Disk is a managed disk of the implementation under test, with a way to write it as its VM would.
type Disk struct {
	ID    string
	Size  int64
	Write func(off int64, data []byte)
}

// Fixture is one implementation: its snapshots port and a new disk of size bytes (zeros).
type Fixture struct {
	Snapshots replication.DiskSnapshots
	NewDisk   func(t *testing.T, name string, size int64) Disk
}

// Run checks the port's contract (replication/disksnapshots.go).
func Run(t *testing.T, open func(t *testing.T) Fixture) {
	t.Run("DescribeDisk", func(t *testing.T) {
		f := open(t)
		d := f.NewDisk(t, "described", 8<<20)
		info, err := f.Snapshots.DescribeDisk(context.Background(), d.ID)
		if err != nil || info.SizeBytes != d.Size {
			t.Fatalf("%+v, %v; want %d bytes", info, err, d.Size)
		}
	})
	t.Run("SnapshotsDiffAndRead", func(t *testing.T) { snapshotsDiffAndRead(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { deleteSnapshots(t, open(t)) })
}

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// covers says every page of want lies in a range of got.
func covers(got []replication.PageRange, want replication.PageRange) bool {
	for off := want.Offset; off < want.End(); off += replication.PageSize {
		in := false
		for _, r := range got {
			in = in || off >= r.Offset && off+replication.PageSize <= r.End()
		}
		if !in {
			return false
		}
	}
	return true
}

func snapshotsDiffAndRead(t *testing.T, f Fixture) {
	ctx := context.Background()
	d := f.NewDisk(t, "data", 8<<20)
	d.Write(0, fill(1<<20, 1))
	d.Write(4<<20, fill(64<<10, 2))
	s1, err := f.Snapshots.SnapshotDisk(ctx, d.ID, "s1")
	if err != nil {
		t.Fatal(err)
	}
	// A retried call takes no second snapshot.
	if again, err := f.Snapshots.SnapshotDisk(ctx, d.ID, "s1"); err != nil || again != s1 {
		t.Fatalf("retried snapshot: %s, %v (first %s)", again, err, s1)
	}
	all, err := f.Snapshots.ChangedRanges(ctx, s1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []replication.PageRange{{Offset: 0, Length: 1 << 20}, {Offset: 4 << 20, Length: 64 << 10}} {
		if !covers(all, want) {
			t.Errorf("allocated ranges %v miss the written %v", all, want)
		}
	}
	for i, r := range all {
		if r.Offset < 0 || r.End() > d.Size || i > 0 && r.Offset < all[i-1].End() {
			t.Errorf("ranges %v are not merged, ordered and inside the disk", all)
			break
		}
	}
	d.Write(512, fill(1024, 9)) // between s1 and s2
	s2, err := f.Snapshots.SnapshotDisk(ctx, d.ID, "s2")
	if err != nil {
		t.Fatal(err)
	}
	d.Write(0, fill(4096, 7)) // after s2: in neither
	diff, err := f.Snapshots.ChangedRanges(ctx, s2, s1)
	if err != nil {
		t.Fatal(err)
	}
	if !covers(diff, replication.PageRange{Offset: 512, Length: 1024}) {
		t.Errorf("diff %v misses the pages written between the snapshots", diff)
	}
	if covers(diff, replication.PageRange{Offset: 4 << 20, Length: 64 << 10}) {
		t.Errorf("diff %v lists pages unchanged since the older snapshot", diff)
	}
	want := append(fill(512, 1), fill(1024, 9)...)
	want = append(want, fill(4096-1536, 1)...)
	if got, err := f.Snapshots.ReadSnapshot(ctx, s2, 0, 4096); err != nil || !bytes.Equal(got, want) {
		t.Errorf("s2 read: %v; the bytes differ from the disk at s2: %v", err, !bytes.Equal(got, want))
	}
	if got, err := f.Snapshots.ReadSnapshot(ctx, s1, 0, 4096); err != nil || !bytes.Equal(got, fill(4096, 1)) {
		t.Errorf("s1 read: %v; the bytes differ from the disk at s1", err)
	}
	if _, err := f.Snapshots.ReadSnapshot(ctx, s1, 100, 512); err == nil {
		t.Error("a read at an offset that is not page-aligned was served")
	}
	f.Snapshots.DeleteSnapshot(ctx, s1)
	f.Snapshots.DeleteSnapshot(ctx, s2)
}

func deleteSnapshots(t *testing.T, f Fixture) {
	ctx := context.Background()
	d := f.NewDisk(t, "gone", 4<<20)
	d.Write(0, fill(4096, 5))
	s, err := f.Snapshots.SnapshotDisk(ctx, d.ID, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Snapshots.DeleteSnapshot(ctx, s); err != nil {
		t.Fatal(err)
	}
	// One already gone is fine.
	if err := f.Snapshots.DeleteSnapshot(ctx, s); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if _, err := f.Snapshots.ReadSnapshot(ctx, s, 0, 4096); err == nil {
		t.Error("a deleted snapshot was read")
	}
}
