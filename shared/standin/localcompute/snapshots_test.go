package localcompute_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// The stand-in's diff lists exactly the pages whose content changed between two snapshots (writes and
// clears, not a page rewritten with the same bytes), and it keeps the Compute provider's limits.
func TestManagedDiskSnapshots(t *testing.T) {
	ctx := context.Background()
	pages := memstore.NewPages()
	c := &localcompute.Compute{Dir: t.TempDir(), Pages: pages, Log: slog.New(slog.DiscardHandler)}
	disk, err := c.CreateDisk(ctx, "src-rg", "db-data", 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDisk(ctx, "src-rg", "db-data", 8<<20); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("creating the disk again: %v, want ErrConflict", err)
	}
	ref, _ := localcompute.ManagedDiskBlob(disk)
	fill := func(off, n int64, b byte) {
		if err := pages.WritePages(ctx, ref, off, bytes.Repeat([]byte{b}, int(n))); err != nil {
			t.Fatal(err)
		}
	}
	fill(0, 1<<20, 1)
	fill(4<<20, 64<<10, 2)
	s1, err := c.SnapshotDisk(ctx, disk, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.SnapshotDisk(ctx, disk, "s1"); err != nil || again != s1 {
		t.Fatalf("retried snapshot: %s, %v", again, err)
	}
	all, err := c.ChangedRanges(ctx, s1, "")
	if want := []replication.PageRange{{Offset: 0, Length: 1 << 20}, {Offset: 4 << 20, Length: 64 << 10}}; err != nil || fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("allocated ranges %v (%v), want %v", all, err, want)
	}
	fill(512, 1024, 9)                           // two pages changed
	fill(4<<20, 4096, 2)                         // rewritten with the same bytes: not a change
	pages.ClearPages(ctx, ref, 4<<20+8192, 8192) // cleared: a change
	fill(7<<20, 512, 3)                          // a page never written before
	s2, err := c.SnapshotDisk(ctx, disk, "s2")
	if err != nil {
		t.Fatal(err)
	}
	fill(512, 512, 7) // after s2: not in its diff
	got, err := c.ChangedRanges(ctx, s2, s1)
	want := []replication.PageRange{{Offset: 512, Length: 1024}, {Offset: 4<<20 + 8192, Length: 8192}, {Offset: 7 << 20, Length: 512}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("diff %v (%v), want %v", got, err, want)
	}
	if _, err := c.ChangedRanges(ctx, s1, s2); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("diff against a newer snapshot: %v, want ErrInvalid", err)
	}
	if data, err := c.ReadSnapshot(ctx, s2, 512, 512); err != nil || data[0] != 9 {
		t.Fatalf("reading s2: %v %v", data[:1], err)
	}
	// Read access to at most five snapshots of the disk at once.
	for i := 3; i <= 5; i++ {
		if _, err := c.SnapshotDisk(ctx, disk, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SnapshotDisk(ctx, disk, "s6"); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("a sixth readable snapshot: %v, want ErrConflict", err)
	}
	for _, s := range []string{s1, s2} {
		if err := c.DeleteSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteSnapshot(ctx, s1); err != nil {
		t.Fatalf("deleting a deleted snapshot: %v", err)
	}
	if _, err := c.ReadSnapshot(ctx, s1, 0, 512); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("reading a deleted snapshot: %v, want ErrNotFound", err)
	}
	// Seven per disk in five minutes: s1..s5 and two more, then a refusal that takes nothing.
	for _, name := range []string{"s6", "s7"} {
		if _, err := c.SnapshotDisk(ctx, disk, name); err != nil {
			t.Fatal(err)
		}
		id, _ := replication.SnapshotIDOf(replication.ResourceName{Subscription: "local", ResourceGroup: "src-rg"}, name)
		c.DeleteSnapshot(ctx, id)
	}
	if _, err := c.SnapshotDisk(ctx, disk, "s8"); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("an eighth snapshot within five minutes: %v, want ErrConflict", err)
	}
	id8, _ := replication.SnapshotIDOf(replication.ResourceName{Subscription: "local", ResourceGroup: "src-rg"}, "s8")
	if _, err := c.ReadSnapshot(ctx, id8, 0, 512); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the refused snapshot exists: %v", err)
	}
	for _, bad := range []string{"/subscriptions/local/resourceGroups/src-rg/providers/Microsoft.Compute/disks/../x", "db-data", ""} {
		if _, err := c.SnapshotDisk(ctx, bad, "s9"); !errors.Is(err, replication.ErrInvalid) {
			t.Fatalf("snapshot of %q: %v, want ErrInvalid", bad, err)
		}
	}
}
