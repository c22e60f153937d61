package replication_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/protocol/vhd"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

type vhdFixture struct {
	ctx     context.Context
	state   *memstore.State
	pages   *memstore.Pages
	journal *memstore.Journal
	svc     *replication.Groups
	applier *replication.Applier
	now     time.Time
	seq     int64
}

// newVHDFixture enables group g1: vm/os (2 MiB) and vm/data (1 MiB).
func newVHDFixture(t *testing.T) *vhdFixture {
	f := &vhdFixture{ctx: context.Background(), state: memstore.NewState(), pages: memstore.NewPages(), journal: memstore.NewJournal(),
		now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	clock := func() time.Time { return f.now }
	f.svc = &replication.Groups{Deps: replication.Deps{State: f.state, Pages: f.pages, Journal: f.journal, Log: slog.New(slog.DiscardHandler), Now: clock}}
	f.applier = &replication.Applier{State: f.state, Pages: f.pages, Journal: f.journal, Log: slog.New(slog.DiscardHandler), Now: clock, Parallelism: 2}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{
		{Name: "os", SizeBytes: 2 << 20, Source: "agent"}, {Name: "data", SizeBytes: 1 << 20, Source: "agent"}}}}}
	if _, _, err := f.svc.Enable(f.ctx, "g1", spec); err != nil {
		t.Fatal(err)
	}
	return f
}

// apply journals and applies one batch; it returns what the apply said.
func (f *vhdFixture) apply(t *testing.T, b *replication.Batch) replication.ApplyResult {
	t.Helper()
	f.seq++
	b.Group, b.Seq, b.SourceTime = "g1", f.seq, f.now
	g, _ := replication.LoadGroup(f.ctx, f.state, "g1")
	payload, d, err := replication.SignBatch(g.StreamKey(), b, false)
	if err != nil {
		t.Fatal(err)
	}
	f.journal.Put(f.ctx, "g1", b.Seq, payload)
	res, err := f.applier.Apply(f.ctx, []replication.Descriptor{d})
	if err != nil || len(res) != 1 {
		t.Fatalf("apply %d: %v", b.Seq, err)
	}
	return res[0]
}

func (f *vhdFixture) footer(t *testing.T, ref replication.DiskRef, size int64) vhd.Footer {
	t.Helper()
	if err := replication.CheckFixedVHD(f.ctx, f.pages, ref, size); err != nil {
		t.Fatal(err)
	}
	footer, err := replication.ReadFooter(f.ctx, f.pages, ref, "", size)
	if err != nil {
		t.Fatal(err)
	}
	return footer
}

// Enable makes each replica a fixed VHD named <vm>/<disk>.vhd: the disk's size, then a footer with
// its own unique id and the time of creation.
func TestReplicasAreFixedVHDs(t *testing.T) {
	f := newVHDFixture(t)
	osRef := replication.DiskRef{Container: "g1-asr", Name: "vm/os.vhd"}
	if size, err := f.pages.Size(f.ctx, osRef); err != nil || size != 2<<20+512 {
		t.Fatalf("vm/os replica: %d bytes, %v", size, err)
	}
	osFooter := f.footer(t, osRef, 2<<20)
	dataFooter := f.footer(t, replication.DiskRef{Container: "g1-asr", Name: "vm/data.vhd"}, 1<<20)
	if osFooter.UniqueID == dataFooter.UniqueID || osFooter.Time() != f.now || osFooter.Geometry != vhd.Geometry(2<<20) {
		t.Fatalf("footers %+v and %+v", osFooter, dataFooter)
	}
	// Enable again after the group's rows were lost (its disks' ownership kept) finds them and leaves
	// them as they are.
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{
		{Name: "os", SizeBytes: 2 << 20, Source: "agent"}, {Name: "data", SizeBytes: 1 << 20, Source: "agent"}}}}}
	f.now = f.now.Add(time.Hour)
	replication.DeleteGroupRows(f.ctx, f.state, "g1")
	if _, _, err := f.svc.Enable(f.ctx, "g1", spec); err != nil {
		t.Fatalf("enable again over the replicas: %v", err)
	}
	if again := f.footer(t, osRef, 2<<20); again != osFooter {
		t.Fatalf("a retry rewrote the footer: %+v", again)
	}
}

// A retry after a crash between creating a replica and writing its footer writes the footer; a blob
// of the group's of another size or with another disk's footer is a conflict naming it, and stays; a
// blob no group owns, or another group's, is never taken.
func TestEnableFinishesOrRefusesExistingBlobs(t *testing.T) {
	ctx, pages, state := context.Background(), memstore.NewPages(), memstore.NewState()
	svc := &replication.Groups{Deps: replication.Deps{State: state, Pages: pages, Log: slog.New(slog.DiscardHandler), Now: time.Now}}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	ref := replication.DiskRef{Container: "g1-asr", Name: "vm/d.vhd"}
	pages.EnsureContainer(ctx, "g1-asr")
	pages.Create(ctx, ref, 1<<20+512)
	if _, _, err := svc.Enable(ctx, "g1", spec); !errors.Is(err, replication.ErrConflict) || !strings.Contains(err.Error(), "g1-asr/vm/d.vhd is no group's") {
		t.Fatalf("a blob no group owns: %v", err)
	}
	if _, err := pages.Size(ctx, ref); err != nil {
		t.Fatalf("the refused enable removed a blob it did not make: %v", err)
	}
	pages.Delete(ctx, ref)
	if _, _, err := svc.Enable(ctx, "g1", spec); err != nil { // g1 owns its replica now
		t.Fatal(err)
	}
	if _, _, err := svc.Enable(ctx, "g2", replication.GroupSpec{VMs: spec.VMs, Target: replication.TargetSpec{Container: "g1-asr"}}); !errors.Is(err, replication.ErrConflict) ||
		!strings.Contains(err.Error(), "g1-asr/vm/d.vhd belongs to group g1") {
		t.Fatalf("another group's replica: %v", err)
	}
	for _, c := range []struct {
		name string
		make func()
		want string
	}{
		{"another size", func() { pages.Create(ctx, ref, 2<<20) }, "g1-asr/vm/d.vhd has 2097152 bytes, a fixed VHD of the disk's 1048576 bytes has 1049088"},
		{"another disk's footer", func() {
			pages.Create(ctx, ref, 1<<20+512)
			footer, _ := vhd.NewFixed(2<<20, vhd.NewID(), time.Now())
			b := footer.Bytes()
			pages.WritePages(ctx, ref, 1<<20, b[:])
		}, "the VHD footer of g1-asr/vm/d.vhd says 2097152 bytes, the disk has 1048576"},
		{"not a footer", func() {
			pages.Create(ctx, ref, 1<<20+512)
			pages.WritePages(ctx, ref, 1<<20, bytes.Repeat([]byte{1}, 512))
		}, "g1-asr/vm/d.vhd has no fixed VHD footer after its 1048576 bytes"},
	} {
		replication.DeleteGroupRows(ctx, state, "g1") // the rows lost, the replica's ownership kept
		pages.Delete(ctx, ref)
		c.make()
		_, _, err := svc.Enable(ctx, "g1", spec)
		if !errors.Is(err, replication.ErrConflict) || !strings.Contains(err.Error(), "target disk exists: "+c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	replication.DeleteGroupRows(ctx, state, "g1")
	pages.Delete(ctx, ref)
	pages.Create(ctx, ref, 1<<20+512) // made, then a crash before the footer
	if _, _, err := svc.Enable(ctx, "g1", spec); err != nil {
		t.Fatal(err)
	}
	if err := replication.CheckFixedVHD(ctx, pages, ref, 1<<20); err != nil {
		t.Fatal(err)
	}
}

// Apply writes the virtual disk up to its last byte and never the footer; a batch past a disk's end
// (or of a disk the group lacks) is corrupt: quarantined, the group stopped, the footer intact.
func TestApplyNeverTouchesTheFooter(t *testing.T) {
	for _, bad := range []replication.Extent{
		{Disk: "vm/data", Offset: 1 << 20, Length: 512, Data: bytes.Repeat([]byte{1}, 512)},
		{Disk: "vm/data", Offset: 1<<20 - 512, Length: 1024, Zero: true},
		{Disk: "vm/other", Offset: 0, Length: 512, Zero: true},
	} {
		f := newVHDFixture(t)
		ref := replication.DiskIn("g1-asr", "vm/data")
		before := f.footer(t, ref, 1<<20)
		last := bytes.Repeat([]byte{3}, 4096)
		f.apply(t, &replication.Batch{Kind: replication.KindBatch, Extents: []replication.Extent{{Disk: "vm/data", Offset: 1<<20 - 4096, Length: 4096, Data: last}}})
		res := f.apply(t, &replication.Batch{Kind: replication.KindBatch, Extents: []replication.Extent{bad}})
		if !strings.Contains(res.Stopped, "corrupt") {
			t.Errorf("extent %s [%d, +%d): apply %+v, want the group stopped", bad.Disk, bad.Offset, bad.Length, res)
		}
		got, _ := f.pages.ReadRange(f.ctx, ref, "", 1<<20-4096, 4096)
		if after := f.footer(t, ref, 1<<20); after != before || !bytes.Equal(got, last) {
			t.Errorf("extent %s [%d, +%d): the disk's end or its footer changed", bad.Disk, bad.Offset, bad.Length)
		}
	}
}

// A point's server-side copies keep the footer: a materialized disk (a recovery point, or a point in
// time with the journal replayed on it) is an importable fixed VHD of the disk's size.
func TestMaterializedDisksAreFixedVHDs(t *testing.T) {
	f := newVHDFixture(t)
	write := func(off int64, v byte) replication.Extent {
		return replication.Extent{Disk: "vm/os", Offset: off, Length: 4096, Data: bytes.Repeat([]byte{v}, 4096)}
	}
	f.apply(t, &replication.Batch{Kind: replication.KindBatch, Extents: []replication.Extent{write(0, 1), write(2<<20-4096, 2)}})
	f.apply(t, &replication.Batch{Kind: replication.KindMarker, Consistency: "crash", Baseline: true})
	g, _ := replication.LoadGroup(f.ctx, f.state, "g1")
	if _, err := replication.Promote(f.ctx, f.state, g, f.now); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	f.apply(t, &replication.Batch{Kind: replication.KindBatch, Extents: []replication.Extent{write(2<<20-4096, 4)}})
	restorer := &replication.Restorer{State: f.state, Pages: f.pages, Journal: f.journal, CopyPoll: time.Millisecond, Parallelism: 2}
	for _, c := range []struct {
		req  replication.RestoreRequest
		last byte
	}{
		{replication.RestoreRequest{Group: "g1", PointID: "rp-2", Container: "g1-point"}, 2},
		{replication.RestoreRequest{Group: "g1", Time: f.now, Container: "g1-time"}, 4},
	} {
		res, err := restorer.Restore(f.ctx, c.req)
		if err != nil {
			t.Fatal(err)
		}
		ref := res.Disks["vm/os"]
		if ref != replication.DiskIn(c.req.Container, "vm/os") || ref.Name != "vm/os.vhd" {
			t.Fatalf("materialized as %s", ref)
		}
		footer := f.footer(t, ref, 2<<20)
		tail, _ := f.pages.ReadRange(f.ctx, ref, "", 2<<20-512, 1024)
		parsed, err := vhd.Parse(tail[512:])
		if err != nil || parsed != footer || footer.CurrentSize != 2<<20 || tail[0] != c.last {
			t.Fatalf("%s: the copy's last 512 bytes: %+v, %v; the disk's last byte %d, want %d", c.req.Container, parsed, err, tail[0], c.last)
		}
	}
}
