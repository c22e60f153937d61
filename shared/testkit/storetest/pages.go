package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// diskSize is the size of the disk the page store's subtests share.
const diskSize = 16 << 20

// pageFixture is what the page store's subtests share; they run in order, each on what the previous left.
type pageFixture struct {
	ctx       context.Context
	store     replication.PageStore
	container string
	disk      replication.DiskRef
	a, b      []byte // written at 0 and at 8 MiB
	snap      string // taken by SnapshotIsImmutable
}

// RunPageStore checks a page store; container must be unused.
func RunPageStore(t *testing.T, store replication.PageStore, container string) {
	ctx := context.Background()
	if err := store.EnsureContainer(ctx, container); err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureContainer(ctx, container); err != nil {
		t.Fatalf("EnsureContainer is not idempotent: %v", err)
	}
	f := &pageFixture{ctx: ctx, store: store, container: container,
		disk: replication.DiskRef{Container: container, Name: "vm1-disk0"}, a: randomBytes(4 << 20), b: randomBytes(8192)}
	t.Run("CreateAndSize", f.createAndSize)
	t.Run("WriteReadRanges", f.writeReadRanges)
	t.Run("RejectsBadWrites", f.rejectsBadWrites)
	t.Run("SnapshotIsImmutable", f.snapshotIsImmutable)
	t.Run("ChangedRangesCoverEveryChange", f.changedRangesCoverEveryChange)
	t.Run("CopyFromSnapshot", f.copyFromSnapshot)
	t.Run("CopyFromURL", f.copyFromURL)
	t.Run("DocumentsNextToTheDisks", f.documentsNextToTheDisks)
	t.Run("LeasesFenceWriters", f.leasesFenceWriters)
	t.Run("DeleteSnapshotAndDisk", f.deleteSnapshotAndDisk)
}

func (f *pageFixture) createAndSize(t *testing.T) {
	if err := f.store.Create(f.ctx, f.disk, diskSize); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, f.disk, diskSize); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("creating an existing disk: err = %v, want ErrConflict", err)
	}
	if got, err := f.store.Size(f.ctx, f.disk); err != nil || got != diskSize {
		t.Fatalf("size = %d, %v; want %d", got, err, diskSize)
	}
	if err := f.store.Create(f.ctx, replication.DiskRef{Container: f.container, Name: "odd"}, 1000); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("creating a disk of 1000 bytes: err = %v, want ErrInvalid", err)
	}
	if _, err := f.store.Size(f.ctx, replication.DiskRef{Container: f.container, Name: "missing"}); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("size of a missing disk: err = %v, want ErrNotFound", err)
	}
}

func (f *pageFixture) writeReadRanges(t *testing.T) {
	if err := f.store.WritePages(f.ctx, f.disk, 0, f.a); err != nil {
		t.Fatal(err)
	}
	if err := f.store.WritePages(f.ctx, f.disk, 8<<20, f.b); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.ReadRange(f.ctx, f.disk, "", 0, int64(len(f.a)))
	if err != nil || !bytes.Equal(got, f.a) {
		t.Fatalf("read back of 4 MiB differs (err %v)", err)
	}
	zeros, err := f.store.ReadRange(f.ctx, f.disk, "", 5<<20, 4096)
	if err != nil || !bytes.Equal(zeros, make([]byte, 4096)) {
		t.Fatalf("unwritten range is not zeros (err %v)", err)
	}
	ranges, err := f.store.AllocatedRanges(f.ctx, f.disk, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []replication.PageRange{{Offset: 0, Length: 4 << 20}, {Offset: 8 << 20, Length: 8192}}
	if !equalRanges(ranges, want) {
		t.Fatalf("allocated ranges = %v, want %v", ranges, want)
	}
}

func (f *pageFixture) rejectsBadWrites(t *testing.T) {
	if err := f.store.WritePages(f.ctx, f.disk, 100, make([]byte, 512)); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("misaligned write: err = %v, want ErrInvalid", err)
	}
	if err := f.store.WritePages(f.ctx, f.disk, 0, make([]byte, 4<<20+512)); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("write over 4 MiB: err = %v, want ErrInvalid", err)
	}
	if got, _ := f.store.ReadRange(f.ctx, f.disk, "", 0, 512); !bytes.Equal(got, f.a[:512]) {
		t.Fatal("a refused write changed the disk")
	}
}

func (f *pageFixture) snapshotIsImmutable(t *testing.T) {
	var err error
	if f.snap, err = f.store.Snapshot(f.ctx, f.disk, ""); err != nil || f.snap == "" {
		t.Fatalf("snapshot = %q, %v", f.snap, err)
	}
	if err := f.store.ClearPages(f.ctx, f.disk, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.store.WritePages(f.ctx, f.disk, 8<<20, make([]byte, 8192)); err != nil {
		t.Fatal(err)
	}
	cleared, _ := f.store.ReadRange(f.ctx, f.disk, "", 0, 1<<20)
	if !bytes.Equal(cleared, make([]byte, 1<<20)) {
		t.Fatal("cleared range does not read as zeros")
	}
	old, err := f.store.ReadRange(f.ctx, f.disk, f.snap, 0, int64(len(f.a)))
	if err != nil || !bytes.Equal(old, f.a) {
		t.Fatalf("snapshot changed after the base was written (err %v)", err)
	}
	oldB, _ := f.store.ReadRange(f.ctx, f.disk, f.snap, 8<<20, 8192)
	if !bytes.Equal(oldB, f.b) {
		t.Fatal("snapshot changed after the base was overwritten")
	}
	ranges, err := f.store.AllocatedRanges(f.ctx, f.disk, f.snap)
	if err != nil || len(ranges) == 0 || ranges[0].Offset != 0 {
		t.Fatalf("snapshot ranges = %v, %v", ranges, err)
	}
}

func (f *pageFixture) changedRangesCoverEveryChange(t *testing.T) {
	tagged, err := f.store.Snapshot(f.ctx, f.disk, "g1/17/42")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.store.TaggedSnapshots(f.ctx, f.disk, "g1/17/42"); err != nil || len(got) != 1 || got[0] != tagged {
		t.Fatalf("snapshots tagged g1/17/42: %v, %v; want [%s]", got, err, tagged)
	}
	if got, err := f.store.TaggedSnapshots(f.ctx, f.disk, "g1/17/4"); err != nil || len(got) != 0 {
		t.Fatalf("snapshots tagged g1/17/4: %v, %v; want none", got, err)
	}
	if err := f.store.DeleteSnapshot(f.ctx, f.disk, tagged); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.TaggedSnapshots(f.ctx, f.disk, "g1/17/42"); len(got) != 0 {
		t.Fatalf("a deleted tagged snapshot is still listed: %v", got)
	}
	later, err := f.store.Snapshot(f.ctx, f.disk, "")
	if err != nil {
		t.Fatal(err)
	}
	changed, err := f.store.ChangedRanges(f.ctx, f.disk, later, f.snap)
	if err != nil {
		t.Fatal(err)
	}
	// Between snap and later: [0, 1 MiB) cleared and [8 MiB, +8 KiB) rewritten. Over-reporting is
	// allowed (Azurite reports every allocated range); missing a change is not.
	for _, want := range []replication.PageRange{{Offset: 0, Length: 1 << 20}, {Offset: 8 << 20, Length: 8192}} {
		covered := false
		for _, r := range changed {
			if r.Offset <= want.Offset && r.End() >= want.End() {
				covered = true
			}
		}
		if !covered {
			t.Fatalf("changed ranges %v miss %v", changed, want)
		}
	}
	f.store.DeleteSnapshot(f.ctx, f.disk, later)
}

func (f *pageFixture) copyFromSnapshot(t *testing.T) {
	dst := replication.DiskRef{Container: f.container, Name: "vm1-disk0-copy"}
	if err := f.store.StartCopy(f.ctx, f.disk, f.snap, dst); err != nil {
		t.Fatal(err)
	}
	f.awaitCopy(t, dst)
	got, err := f.store.ReadRange(f.ctx, dst, "", 0, int64(len(f.a)))
	if err != nil || !bytes.Equal(got, f.a) {
		t.Fatalf("copy differs from the snapshot (err %v)", err)
	}
	if got, _ := f.store.Size(f.ctx, dst); got != diskSize {
		t.Fatalf("copy size %d, want %d", got, diskSize)
	}
	// Writing the copy leaves its source snapshot alone (Azurite's server-side copy shares page
	// ranges with the source; the adapter must not let that show).
	if err := f.store.WritePages(f.ctx, dst, 4096, bytes.Repeat([]byte{9}, 4096)); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.store.ReadRange(f.ctx, f.disk, f.snap, 0, int64(len(f.a))); !bytes.Equal(again, f.a) {
		t.Fatal("writing a copy changed the snapshot it was copied from")
	}
}

// copyFromURL copies a blob named by its address (how a managed disk's export is copied).
func (f *pageFixture) copyFromURL(t *testing.T) {
	src := f.disk
	want, err := f.store.ReadRange(f.ctx, src, "", 0, diskSize)
	if err != nil {
		t.Fatal(err)
	}
	dst := replication.DiskRef{Container: f.container, Name: "vm1-disk0-from-url"}
	if err := f.store.StartCopyFromURL(f.ctx, f.store.URL(src), dst); err != nil {
		t.Fatal(err)
	}
	f.awaitCopy(t, dst)
	if got, err := f.store.ReadRange(f.ctx, dst, "", 0, diskSize); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the copy from the URL differs from its source (err %v)", err)
	}
}

// awaitCopy polls a copy until it succeeded.
func (f *pageFixture) awaitCopy(t *testing.T, dst replication.DiskRef) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := f.store.CopyStatus(f.ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == "success" {
			break
		}
		if st.Status != "pending" || time.Now().After(deadline) {
			t.Fatalf("copy status %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *pageFixture) documentsNextToTheDisks(t *testing.T) {
	doc := replication.DiskRef{Container: f.container, Name: "vm1.template.json"}
	if _, err := f.store.GetBlob(f.ctx, doc); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("reading a missing document: err = %v, want ErrNotFound", err)
	}
	for _, body := range []string{`{"v":1}`, `{"v":2,"longer":true}`} {
		if err := f.store.PutBlob(f.ctx, doc, []byte(body), "application/json"); err != nil {
			t.Fatal(err)
		}
		if got, err := f.store.GetBlob(f.ctx, doc); err != nil || string(got) != body {
			t.Fatalf("document = %q, %v; want %q", got, err, body)
		}
	}
	if u := f.store.URL(f.disk); !strings.HasSuffix(u, "/"+f.container+"/vm1-disk0") {
		t.Fatalf("URL of %s = %q", f.disk, u)
	}
	if err := f.store.Delete(f.ctx, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.GetBlob(f.ctx, doc); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("reading a deleted document: err = %v, want ErrNotFound", err)
	}
}

func (f *pageFixture) leasesFenceWriters(t *testing.T) {
	d := replication.DiskRef{Container: f.container, Name: "leased-disk"}
	if err := f.store.Create(f.ctx, d, 1<<20); err != nil {
		t.Fatal(err)
	}
	page := bytes.Repeat([]byte{3}, 512)
	a, b := replication.NewLeaseID(), replication.NewLeaseID()
	withA, withB := replication.WithLease(f.ctx, a), replication.WithLease(f.ctx, b)
	if err := f.store.WritePages(withA, d, 0, page); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("a write carrying a lease the disk has not got: %v, want ErrConflict", err)
	}
	if err := f.store.AcquireLease(f.ctx, d, a); err != nil {
		t.Fatal(err)
	}
	if err := f.store.WritePages(f.ctx, d, 0, page); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("a write without the lease: %v, want ErrConflict", err)
	}
	if err := f.store.WritePages(withA, d, 0, page); err != nil {
		t.Fatalf("the lease holder's write: %v", err)
	}
	if err := f.store.AcquireLease(f.ctx, d, a); err != nil {
		t.Fatalf("renewing: %v", err)
	}
	snap, err := f.store.Snapshot(f.ctx, d, "")
	if err != nil {
		t.Fatalf("a snapshot of a leased disk: %v", err)
	}
	if err := f.store.AcquireLease(f.ctx, d, b); err != nil { // b takes over
		t.Fatalf("taking the lease over: %v", err)
	}
	if err := f.store.ClearPages(withA, d, 0, 512); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("a write of the writer taken over: %v, want ErrConflict (fenced)", err)
	}
	if err := f.store.ClearPages(withB, d, 0, 512); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	if err := f.store.DeleteSnapshot(f.ctx, d, snap); err != nil {
		t.Fatalf("deleting a snapshot of a leased disk: %v", err)
	}
	if err := f.store.Delete(f.ctx, d); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("deleting a leased disk without its lease: %v, want ErrConflict", err)
	}
	if err := f.store.BreakLease(f.ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := f.store.BreakLease(f.ctx, d); err != nil {
		t.Fatalf("breaking no lease: %v", err)
	}
	if err := f.store.WritePages(f.ctx, d, 0, page); err != nil {
		t.Fatalf("a write after the break: %v", err)
	}
	if err := f.store.Delete(f.ctx, d); err != nil {
		t.Fatal(err)
	}
}

func (f *pageFixture) deleteSnapshotAndDisk(t *testing.T) {
	if err := f.store.DeleteSnapshot(f.ctx, f.disk, f.snap); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteSnapshot(f.ctx, f.disk, f.snap); err != nil {
		t.Fatalf("deleting a snapshot twice: %v", err)
	}
	if _, err := f.store.ReadRange(f.ctx, f.disk, f.snap, 0, 512); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("reading a deleted snapshot: err = %v, want ErrNotFound", err)
	}
	if err := f.store.Delete(f.ctx, f.disk); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(f.ctx, f.disk); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

func equalRanges(a, b []replication.PageRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
