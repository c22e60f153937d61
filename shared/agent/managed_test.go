package agent

import (
	"context"
	"log/slog"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// A managed: disk is tracked from incremental snapshots: the baseline reads what is allocated, each
// scan reads exactly the pages the snapshot diff lists (counted), old snapshots go, and the target ends
// equal to the disk.
func TestManagedDiskTrackedFromSnapshots(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(5))
	source := memstore.NewPages()
	compute := &localcompute.Compute{Dir: t.TempDir(), Pages: source, Log: slog.New(slog.DiscardHandler)}
	disk, err := compute.CreateDisk(ctx, "src", "db-data", 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := localcompute.ManagedDiskBlob(disk)
	write := func(off int64, n int) {
		data := make([]byte, n)
		rng.Read(data)
		if err := source.WritePages(ctx, ref, off, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range []int64{0, 1 << 20, 5 << 20} {
		write(off, 1<<20)
	}
	p := newPipeline(t, 1, 1, 8<<20)
	p.spec.VMs[0].Disks[0].Source = "managed:" + disk
	if err := p.spec.Validate(); err != nil {
		t.Fatal(err)
	}
	a, _, err := Open(ctx, Config{Group: p.group, Disks: p.spec.Disks(), Journal: p.journal, Publisher: p.pub, DiskSnapshots: compute,
		StreamKey: p.key, StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	scanner := a.NewScanner()
	if _, err := scanner.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if _, sent, err := a.Sync(ctx, nil, false); err != nil || sent != 3<<20 {
		t.Fatalf("baseline sent %d (%v), want the 3 MiB allocated", sent, err)
	}
	if err := a.Write("vm0/disk0", 0, make([]byte, 512)); err == nil {
		t.Fatal("the agent took a write for a disk others write")
	}
	read := a.Stats().SnapshotBytesRead
	write(4096, 8192)                              // 16 pages
	write(3<<20, 512)                              // a page never written before
	source.ClearPages(ctx, ref, 5<<20+65536, 4096) // a trim: 8 pages
	same, _ := source.ReadRange(ctx, ref, "", 1<<20, 65536)
	source.WritePages(ctx, ref, 1<<20, same) // rewritten with its own bytes: nothing to read
	sent, err := scanner.Pass(ctx)
	changed := int64(8192 + 512 + 4096)
	if err != nil || sent != changed {
		t.Fatalf("scan sent %d bytes (%v), want the %d changed", sent, err, changed)
	}
	if got := a.Stats().SnapshotBytesRead - read; got != changed {
		t.Fatalf("the scan read %d bytes of the snapshot, want the %d changed", got, changed)
	}
	p.finishAgainst(a, source, ref, 8<<20, rng)
	if left, _ := filepath.Glob(filepath.Join(compute.Dir, "src", "snapshots", "*.json")); len(left) != 1 {
		t.Fatalf("%d snapshots left, want only the base of the next scan", len(left))
	}
}
