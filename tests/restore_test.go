package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// Any point in time: the group restored to 10 random times inside the restorable window (the newest
// point at or before each time, plus the journal's batches up to it) is byte-identical to the source as
// it was at that time — the state after every write of every batch sealed by then.
func TestRestoreToAnyPointInTime(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group := testenv.Unique("pitr")
	a, disks := s.twoVMAgent(t, group)
	type write struct {
		seq  int64
		disk string
		off  int64
		data []byte
	}
	var writes []write
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := 0; i < 600; i++ {
		d := disks[rng.Intn(2)].Key
		n := int64(1+rng.Intn(16)) * 4096
		off := rng.Int63n((4<<20-n)/4096+1) * 4096
		data := make([]byte, n)
		rng.Read(data)
		seq, err := a.WriteSeq(d, off, data)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, write{seq, d, off, data})
		if i%150 == 149 {
			a.Marker("crash", false)
		}
		if i%10 == 0 {
			time.Sleep(3 * time.Millisecond) // spread the batches' source times
		}
	}
	final := a.Marker("crash", false)
	a.Close(context.Background())
	waitFor(t, 60*time.Second, "the final marker to become a point", func() bool {
		page := s.points(t, group)
		return len(page.Points) > 0 && page.Points[0].Seq == final
	})
	ctx := context.Background()
	j := s.journal(t)
	times := map[int64]time.Time{}
	for seq := int64(1); seq <= final; seq++ {
		sealed, err := j.Get(ctx, group, seq)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := replication.OpenPayload(s.streamKey(t, group), group, seq, sealed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := replication.DecodeBatch(payload)
		if err != nil {
			t.Fatal(err)
		}
		times[seq] = b.SourceTime
	}
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	restorer := &replication.Restorer{State: tables.New(testenv.TableService(t, "target")), Pages: pages, Journal: j, Parallelism: 4}
	from, to := times[1], times[final]
	for i := 0; i < 10; i++ {
		at := from.Add(time.Duration(rng.Int63n(int64(to.Sub(from)) + 1)))
		var through int64
		for seq := int64(1); seq <= final; seq++ {
			if !times[seq].After(at) {
				through = seq
			}
		}
		want := map[string][]byte{"a/d": make([]byte, 4<<20), "b/d": make([]byte, 4<<20)}
		for _, w := range writes {
			if w.seq <= through {
				copy(want[w.disk][w.off:], w.data)
			}
		}
		res, err := restorer.Restore(ctx, replication.RestoreRequest{Group: group, Time: at, Container: fmt.Sprintf("%s-r%d", group, i)})
		if err != nil {
			t.Fatalf("restore to %s: %v", at.Format(time.RFC3339Nano), err)
		}
		if res.LastSeq != through {
			t.Fatalf("restore to %s reached sequence %d, want %d", at.Format(time.RFC3339Nano), res.LastSeq, through)
		}
		for key, ref := range res.Disks {
			got, err := pages.ReadRange(ctx, ref, "", 0, 4<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[key]) {
				t.Fatalf("restore to %s (point %s + %d batches): %s differs from the source at that time", at.Format(time.RFC3339Nano), res.Point.ID, res.Replayed, key)
			}
		}
		t.Logf("restored %s: point %s + %d journal batches = sequence %d", at.Format("15:04:05.000000"), res.Point.ID, res.Replayed, res.LastSeq)
	}
	// A point by id restores exactly that point.
	page := s.points(t, group)
	res, err := restorer.Restore(ctx, replication.RestoreRequest{Group: group, PointID: page.Points[1].ID, Container: group + "-byid"})
	if err != nil || res.LastSeq != page.Points[1].Seq || res.Replayed != 0 {
		t.Fatalf("restore by id: %+v, %v", res, err)
	}
	if _, err := restorer.Restore(ctx, replication.RestoreRequest{Group: group, Time: from.Add(-time.Hour), Container: group + "-early"}); err == nil {
		t.Fatal("a time before the oldest point was restored")
	}
}
