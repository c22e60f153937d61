// Package storetest is the contract suite for the storage ports (PageStore, StateStore, JournalStore):
// every implementation runs it, so the domain can rely on the behaviour written in the ports' comments.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
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
	disk := replication.DiskRef{Container: container, Name: "vm1-disk0"}
	const size = 16 << 20
	t.Run("CreateAndSize", func(t *testing.T) {
		if err := store.Create(ctx, disk, size); err != nil {
			t.Fatal(err)
		}
		if err := store.Create(ctx, disk, size); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("creating an existing disk: err = %v, want ErrConflict", err)
		}
		if got, err := store.Size(ctx, disk); err != nil || got != size {
			t.Fatalf("size = %d, %v; want %d", got, err, size)
		}
		if err := store.Create(ctx, replication.DiskRef{Container: container, Name: "odd"}, 1000); !errors.Is(err, replication.ErrInvalid) {
			t.Fatalf("creating a disk of 1000 bytes: err = %v, want ErrInvalid", err)
		}
		if _, err := store.Size(ctx, replication.DiskRef{Container: container, Name: "missing"}); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("size of a missing disk: err = %v, want ErrNotFound", err)
		}
	})
	a := randomBytes(4 << 20)
	b := randomBytes(8192)
	t.Run("WriteReadRanges", func(t *testing.T) {
		if err := store.WritePages(ctx, disk, 0, a); err != nil {
			t.Fatal(err)
		}
		if err := store.WritePages(ctx, disk, 8<<20, b); err != nil {
			t.Fatal(err)
		}
		got, err := store.ReadRange(ctx, disk, "", 0, int64(len(a)))
		if err != nil || !bytes.Equal(got, a) {
			t.Fatalf("read back of 4 MiB differs (err %v)", err)
		}
		zeros, err := store.ReadRange(ctx, disk, "", 5<<20, 4096)
		if err != nil || !bytes.Equal(zeros, make([]byte, 4096)) {
			t.Fatalf("unwritten range is not zeros (err %v)", err)
		}
		ranges, err := store.AllocatedRanges(ctx, disk, "")
		if err != nil {
			t.Fatal(err)
		}
		want := []replication.PageRange{{Offset: 0, Length: 4 << 20}, {Offset: 8 << 20, Length: 8192}}
		if !equalRanges(ranges, want) {
			t.Fatalf("allocated ranges = %v, want %v", ranges, want)
		}
	})
	t.Run("RejectsBadWrites", func(t *testing.T) {
		if err := store.WritePages(ctx, disk, 100, make([]byte, 512)); !errors.Is(err, replication.ErrInvalid) {
			t.Fatalf("misaligned write: err = %v, want ErrInvalid", err)
		}
		if err := store.WritePages(ctx, disk, 0, make([]byte, 4<<20+512)); !errors.Is(err, replication.ErrInvalid) {
			t.Fatalf("write over 4 MiB: err = %v, want ErrInvalid", err)
		}
		if got, _ := store.ReadRange(ctx, disk, "", 0, 512); !bytes.Equal(got, a[:512]) {
			t.Fatal("a refused write changed the disk")
		}
	})
	var snap string
	t.Run("SnapshotIsImmutable", func(t *testing.T) {
		var err error
		if snap, err = store.Snapshot(ctx, disk, ""); err != nil || snap == "" {
			t.Fatalf("snapshot = %q, %v", snap, err)
		}
		if err := store.ClearPages(ctx, disk, 0, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := store.WritePages(ctx, disk, 8<<20, make([]byte, 8192)); err != nil {
			t.Fatal(err)
		}
		cleared, _ := store.ReadRange(ctx, disk, "", 0, 1<<20)
		if !bytes.Equal(cleared, make([]byte, 1<<20)) {
			t.Fatal("cleared range does not read as zeros")
		}
		old, err := store.ReadRange(ctx, disk, snap, 0, int64(len(a)))
		if err != nil || !bytes.Equal(old, a) {
			t.Fatalf("snapshot changed after the base was written (err %v)", err)
		}
		oldB, _ := store.ReadRange(ctx, disk, snap, 8<<20, 8192)
		if !bytes.Equal(oldB, b) {
			t.Fatal("snapshot changed after the base was overwritten")
		}
		ranges, err := store.AllocatedRanges(ctx, disk, snap)
		if err != nil || len(ranges) == 0 || ranges[0].Offset != 0 {
			t.Fatalf("snapshot ranges = %v, %v", ranges, err)
		}
	})
	t.Run("ChangedRangesCoverEveryChange", func(t *testing.T) {
		tagged, err := store.Snapshot(ctx, disk, "g1/17/42")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := store.TaggedSnapshots(ctx, disk, "g1/17/42"); err != nil || len(got) != 1 || got[0] != tagged {
			t.Fatalf("snapshots tagged g1/17/42: %v, %v; want [%s]", got, err, tagged)
		}
		if got, err := store.TaggedSnapshots(ctx, disk, "g1/17/4"); err != nil || len(got) != 0 {
			t.Fatalf("snapshots tagged g1/17/4: %v, %v; want none", got, err)
		}
		if err := store.DeleteSnapshot(ctx, disk, tagged); err != nil {
			t.Fatal(err)
		}
		if got, _ := store.TaggedSnapshots(ctx, disk, "g1/17/42"); len(got) != 0 {
			t.Fatalf("a deleted tagged snapshot is still listed: %v", got)
		}
		later, err := store.Snapshot(ctx, disk, "")
		if err != nil {
			t.Fatal(err)
		}
		changed, err := store.ChangedRanges(ctx, disk, later, snap)
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
		store.DeleteSnapshot(ctx, disk, later)
	})
	t.Run("CopyFromSnapshot", func(t *testing.T) {
		dst := replication.DiskRef{Container: container, Name: "vm1-disk0-copy"}
		if err := store.StartCopy(ctx, disk, snap, dst); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := store.CopyStatus(ctx, dst)
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
		got, err := store.ReadRange(ctx, dst, "", 0, int64(len(a)))
		if err != nil || !bytes.Equal(got, a) {
			t.Fatalf("copy differs from the snapshot (err %v)", err)
		}
		if got, _ := store.Size(ctx, dst); got != size {
			t.Fatalf("copy size %d, want %d", got, size)
		}
		// Writing the copy leaves its source snapshot alone (Azurite's server-side copy shares page
		// ranges with the source; the adapter must not let that show).
		if err := store.WritePages(ctx, dst, 4096, bytes.Repeat([]byte{9}, 4096)); err != nil {
			t.Fatal(err)
		}
		if again, _ := store.ReadRange(ctx, disk, snap, 0, int64(len(a))); !bytes.Equal(again, a) {
			t.Fatal("writing a copy changed the snapshot it was copied from")
		}
	})
	t.Run("DocumentsNextToTheDisks", func(t *testing.T) {
		doc := replication.DiskRef{Container: container, Name: "vm1.template.json"}
		if _, err := store.GetBlob(ctx, doc); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("reading a missing document: err = %v, want ErrNotFound", err)
		}
		for _, body := range []string{`{"v":1}`, `{"v":2,"longer":true}`} {
			if err := store.PutBlob(ctx, doc, []byte(body), "application/json"); err != nil {
				t.Fatal(err)
			}
			if got, err := store.GetBlob(ctx, doc); err != nil || string(got) != body {
				t.Fatalf("document = %q, %v; want %q", got, err, body)
			}
		}
		if u := store.URL(disk); !strings.HasSuffix(u, "/"+container+"/vm1-disk0") {
			t.Fatalf("URL of %s = %q", disk, u)
		}
		if err := store.Delete(ctx, doc); err != nil {
			t.Fatal(err)
		}
		if _, err := store.GetBlob(ctx, doc); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("reading a deleted document: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("LeasesFenceWriters", func(t *testing.T) {
		d := replication.DiskRef{Container: container, Name: "leased-disk"}
		if err := store.Create(ctx, d, 1<<20); err != nil {
			t.Fatal(err)
		}
		page := bytes.Repeat([]byte{3}, 512)
		a, b := replication.NewLeaseID(), replication.NewLeaseID()
		withA, withB := replication.WithLease(ctx, a), replication.WithLease(ctx, b)
		if err := store.WritePages(withA, d, 0, page); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("a write carrying a lease the disk has not got: %v, want ErrConflict", err)
		}
		if err := store.AcquireLease(ctx, d, a); err != nil {
			t.Fatal(err)
		}
		if err := store.WritePages(ctx, d, 0, page); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("a write without the lease: %v, want ErrConflict", err)
		}
		if err := store.WritePages(withA, d, 0, page); err != nil {
			t.Fatalf("the lease holder's write: %v", err)
		}
		if err := store.AcquireLease(ctx, d, a); err != nil {
			t.Fatalf("renewing: %v", err)
		}
		snap, err := store.Snapshot(ctx, d, "")
		if err != nil {
			t.Fatalf("a snapshot of a leased disk: %v", err)
		}
		if err := store.AcquireLease(ctx, d, b); err != nil { // b takes over
			t.Fatalf("taking the lease over: %v", err)
		}
		if err := store.ClearPages(withA, d, 0, 512); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("a write of the writer taken over: %v, want ErrConflict (fenced)", err)
		}
		if err := store.ClearPages(withB, d, 0, 512); err != nil {
			t.Fatalf("the new holder's write: %v", err)
		}
		if err := store.DeleteSnapshot(ctx, d, snap); err != nil {
			t.Fatalf("deleting a snapshot of a leased disk: %v", err)
		}
		if err := store.Delete(ctx, d); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("deleting a leased disk without its lease: %v, want ErrConflict", err)
		}
		if err := store.BreakLease(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := store.BreakLease(ctx, d); err != nil {
			t.Fatalf("breaking no lease: %v", err)
		}
		if err := store.WritePages(ctx, d, 0, page); err != nil {
			t.Fatalf("a write after the break: %v", err)
		}
		if err := store.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("DeleteSnapshotAndDisk", func(t *testing.T) {
		if err := store.DeleteSnapshot(ctx, disk, snap); err != nil {
			t.Fatal(err)
		}
		if err := store.DeleteSnapshot(ctx, disk, snap); err != nil {
			t.Fatalf("deleting a snapshot twice: %v", err)
		}
		if _, err := store.ReadRange(ctx, disk, snap, 0, 512); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("reading a deleted snapshot: err = %v, want ErrNotFound", err)
		}
		if err := store.Delete(ctx, disk); err != nil {
			t.Fatal(err)
		}
		if err := store.Delete(ctx, disk); err != nil {
			t.Fatalf("deleting twice: %v", err)
		}
	})
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

// Watermark is a sample entity with every kind of field the domain stores.
type Watermark struct {
	replication.Keys
	Sequence   int64             `json:"Sequence"`
	Bytes      int64             `json:"Bytes"`
	Applied    time.Time         `json:"Applied"`
	State      string            `json:"State"`
	Healthy    bool              `json:"Healthy"`
	Ratio      float64           `json:"Ratio"`
	Snapshots  map[string]string `json:"Snapshots,omitempty"`
	Recent     []int64           `json:"Recent,omitempty"`
	Optional   *int              `json:"Optional,omitempty"`
	unexported int
}

// RunStateStore checks a state store; table must be unused.
func RunStateStore(t *testing.T, store replication.StateStore, table string) {
	ctx := context.Background()
	if err := store.EnsureTable(ctx, table); err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureTable(ctx, table); err != nil {
		t.Fatalf("EnsureTable is not idempotent: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := Watermark{Keys: replication.Keys{PartitionKey: "group-a", RowKey: "watermark"}, Sequence: 41, Bytes: 1 << 40,
		Applied: now, State: "Protected", Healthy: true, Ratio: 0.5, Snapshots: map[string]string{"vm1/disk0": "2026-01-01T00:00:00Z"},
		Recent: []int64{1, 2, 1 << 35}}
	var etag replication.ETag
	t.Run("InsertGetRoundTrip", func(t *testing.T) {
		var err error
		if etag, err = store.Insert(ctx, table, w); err != nil || etag == "" {
			t.Fatalf("insert: etag %q, %v", etag, err)
		}
		if _, err := store.Insert(ctx, table, w); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("inserting twice: err = %v, want ErrConflict", err)
		}
		var got Watermark
		getTag, err := store.Get(ctx, table, "group-a", "watermark", &got)
		if err != nil || getTag != etag {
			t.Fatalf("get: etag %q (insert gave %q), %v", getTag, etag, err)
		}
		if got.Sequence != 41 || got.Bytes != 1<<40 || !got.Applied.Equal(now) || got.State != "Protected" || !got.Healthy ||
			got.Ratio != 0.5 || got.Snapshots["vm1/disk0"] != "2026-01-01T00:00:00Z" || len(got.Recent) != 3 || got.Recent[2] != 1<<35 ||
			got.Optional != nil || got.PartitionKey != "group-a" || got.RowKey != "watermark" {
			t.Fatalf("round trip changed the entity: %+v", got)
		}
	})
	t.Run("ETagGuardsUpdates", func(t *testing.T) {
		w.Sequence = 42
		newTag, err := store.Update(ctx, table, w, etag)
		if err != nil || newTag == etag {
			t.Fatalf("update with the current etag: %q, %v", newTag, err)
		}
		w.Sequence = 43
		if _, err := store.Update(ctx, table, w, etag); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("update with a stale etag: err = %v, want ErrConflict", err)
		}
		var got Watermark
		store.Get(ctx, table, "group-a", "watermark", &got)
		if got.Sequence != 42 {
			t.Fatalf("a refused update changed the entity: sequence %d", got.Sequence)
		}
		if err := store.Delete(ctx, table, "group-a", "watermark", etag); !errors.Is(err, replication.ErrConflict) {
			t.Fatalf("delete with a stale etag: err = %v, want ErrConflict", err)
		}
		etag = newTag
	})
	t.Run("UpsertQueryDelete", func(t *testing.T) {
		for _, rk := range []string{"b", "a", "c"} {
			if _, err := store.Upsert(ctx, table, Watermark{Keys: replication.Keys{PartitionKey: "group-b", RowKey: rk}, State: rk}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := store.Upsert(ctx, table, Watermark{Keys: replication.Keys{PartitionKey: "group-b", RowKey: "a"}, State: "a2"}); err != nil {
			t.Fatal(err)
		}
		items, etags, err := replication.QueryAll[Watermark](ctx, store, table, "group-b")
		if err != nil || len(items) != 3 || len(etags) != 3 {
			t.Fatalf("query: %d items, %v", len(items), err)
		}
		if items[0].RowKey != "a" || items[0].State != "a2" || items[1].RowKey != "b" || items[2].RowKey != "c" || etags[0] == "" {
			t.Fatalf("query order or content wrong: %+v", items)
		}
		var across []string
		if err := store.ListRows(ctx, table, "watermark", func(decode func(any) error, _ replication.ETag) error {
			var w Watermark
			if err := decode(&w); err != nil {
				return err
			}
			across = append(across, w.PartitionKey)
			return nil
		}); err != nil || len(across) != 1 || across[0] != "group-a" {
			t.Fatalf("ListRows(watermark) = %v, %v; want [group-a]", across, err)
		}
		if err := store.Delete(ctx, table, "group-b", "a", etags[0]); err != nil {
			t.Fatal(err)
		}
		var gone Watermark
		if _, err := store.Get(ctx, table, "group-b", "a", &gone); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("get after delete: err = %v, want ErrNotFound", err)
		}
		if err := store.Delete(ctx, table, "group-b", "a", ""); !errors.Is(err, replication.ErrNotFound) {
			t.Fatalf("delete of a missing entity: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("ConcurrentMutateLosesNothing", func(t *testing.T) {
		const writers, each = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					_, err := replication.Mutate(ctx, store, table, "group-c", "counter", func(e *Watermark, found bool) error {
						if !found {
							e.Keys = replication.Keys{PartitionKey: "group-c", RowKey: "counter"}
						}
						e.Sequence++
						return nil
					})
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var got Watermark
		if _, err := store.Get(ctx, table, "group-c", "counter", &got); err != nil || got.Sequence != writers*each {
			t.Fatalf("counter = %d, %v; want %d (an ETag-guarded update was lost)", got.Sequence, err, writers*each)
		}
	})
	t.Run("RejectsBadEntities", func(t *testing.T) {
		if _, err := store.Insert(ctx, table, struct{ Name string }{"x"}); !errors.Is(err, replication.ErrInvalid) {
			t.Fatalf("entity without keys: err = %v, want ErrInvalid", err)
		}
		bad := Watermark{Keys: replication.Keys{PartitionKey: "a/b", RowKey: "x"}}
		if _, err := store.Insert(ctx, table, bad); !errors.Is(err, replication.ErrInvalid) {
			t.Fatalf("key with '/': err = %v, want ErrInvalid", err)
		}
	})
}

// RunJournalStore checks a journal store; group must be unused.
func RunJournalStore(t *testing.T, store replication.JournalStore, group string) {
	ctx := context.Background()
	payloads := map[int64][]byte{}
	for _, seq := range []int64{3, 1, 2, 10} {
		payloads[seq] = randomBytes(1000 + int(seq))
		if err := store.Put(ctx, group, seq, payloads[seq]); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Put(ctx, group, 3, payloads[3]); err != nil {
		t.Fatalf("putting the same batch again: %v", err)
	}
	for seq, want := range payloads {
		got, err := store.Get(ctx, group, seq)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("batch %d differs (err %v)", seq, err)
		}
	}
	seqs, err := store.List(ctx, group)
	if err != nil || len(seqs) != 4 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 || seqs[3] != 10 {
		t.Fatalf("list = %v, %v; want [1 2 3 10]", seqs, err)
	}
	if err := store.Delete(ctx, group, 2); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, group, 2); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := store.Get(ctx, group, 2); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("get of a deleted batch: err = %v, want ErrNotFound", err)
	}
	if seqs, _ := store.List(ctx, group+"-other"); len(seqs) != 0 {
		t.Fatalf("another group lists %v", seqs)
	}
	// Pruning: nothing is younger than an hour ago; everything through 3 is older than an hour ahead.
	if n, err := store.Prune(ctx, group, 10, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("pruning what is younger than the window: %d, %v", n, err)
	}
	if n, err := store.Prune(ctx, group, 3, time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("pruning through 3: %d, %v; want 2 (1 and 3)", n, err)
	}
	if seqs, _ := store.List(ctx, group); len(seqs) != 1 || seqs[0] != 10 {
		t.Fatalf("after pruning: %v, want [10]", seqs)
	}
}
