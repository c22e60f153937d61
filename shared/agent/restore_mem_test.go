package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// The same any-point-in-time check as the end-to-end test, on the in-memory stores.
func TestRestoreToAnyPointInTimeInMemory(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	ctx := context.Background()
	p := newPipeline(t, 2, 1, 1<<20)
	a, _ := p.openAgent(t.TempDir())
	a.Marker("crash", true)
	type write struct {
		seq  int64
		disk string
		off  int64
		data []byte
	}
	var writes []write
	for i := 0; i < 400; i++ {
		d := p.spec.Disks()[rng.Intn(2)].Key
		n := int64(1+rng.Intn(16)) * 4096
		off := rng.Int63n((1<<20-n)/4096+1) * 4096
		data := make([]byte, n)
		rng.Read(data)
		seq, _ := a.WriteSeq(d, off, data)
		writes = append(writes, write{seq, d, off, data})
		if i%100 == 99 {
			a.Marker("crash", false)
		}
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		if i%50 == 0 {
			p.drain(rng)
		}
	}
	a.Close(ctx)
	p.drain(rng)
	p.promote()
	times := map[int64]time.Time{}
	var final int64
	seqs, _ := p.journal.List(ctx, p.group)
	for _, s := range seqs {
		sealed, _ := p.journal.Get(ctx, p.group, s)
		payload, _ := replication.OpenPayload(p.key, p.group, s, sealed)
		b, _ := replication.DecodeBatch(payload)
		times[s], final = b.SourceTime, s
	}
	r := &replication.Restorer{State: p.state, Pages: p.pages, Journal: p.journal, Parallelism: 4}
	for i := 0; i < 20; i++ {
		at := times[1].Add(time.Duration(rng.Int63n(int64(times[final].Sub(times[1])) + 1)))
		var through int64
		for s := int64(1); s <= final; s++ {
			if !times[s].After(at) {
				through = s
			}
		}
		want := map[string][]byte{"vm0/disk0": make([]byte, 1<<20), "vm1/disk0": make([]byte, 1<<20)}
		for _, w := range writes {
			if w.seq <= through {
				copy(want[w.disk][w.off:], w.data)
			}
		}
		res, err := r.Restore(ctx, replication.RestoreRequest{Group: p.group, Time: at, Container: "restore"})
		if err != nil || res.LastSeq != through {
			t.Fatalf("restore: %+v %v (want through %d)", res, err, through)
		}
		for key, ref := range res.Disks {
			got, _ := p.pages.ReadRange(ctx, ref, "", 0, 1<<20)
			if !bytes.Equal(got, want[key]) {
				t.Fatalf("restore to through %d (point %s + %d): %s differs", through, res.Point.ID, res.Replayed, key)
			}
		}
	}
}

// A restore to a moment inside a resync ends just before the resync began: its blocks are the source
// as each was read, so only its baseline marker makes the disks one moment's copy again.
func TestRestoreNeverEndsInsideAResync(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t, 1, 1, 1<<20)
	a, _ := p.openAgent(t.TempDir())
	a.Marker("crash", true)
	disk := p.spec.Disks()[0].Key
	a.WriteSeq(disk, 0, bytes.Repeat([]byte{1}, 4096))
	a.Marker("crash", false)
	before, _ := a.WriteSeq(disk, 8192, bytes.Repeat([]byte{2}, 4096))
	a.Flush()
	stale := func(context.Context, string) ([]string, error) { return []string{"not-the-hash"}, nil }
	if _, _, err := a.Sync(ctx, stale, true); err != nil {
		t.Fatal(err)
	}
	a.WriteSeq(disk, 16384, bytes.Repeat([]byte{3}, 4096))
	a.Close(ctx)
	p.drain(rand.New(rand.NewSource(1)))
	p.promote()
	var resyncAt, baselineAt time.Time
	var resyncSeq, baselineSeq int64
	seqs, _ := p.journal.List(ctx, p.group)
	for _, s := range seqs {
		sealed, _ := p.journal.Get(ctx, p.group, s)
		payload, _ := replication.OpenPayload(p.key, p.group, s, sealed)
		b, _ := replication.DecodeBatch(payload)
		switch {
		case b.Kind == replication.KindResync:
			resyncSeq, resyncAt = s, b.SourceTime
		case b.Kind == replication.KindMarker && b.Baseline && resyncSeq > 0:
			baselineSeq, baselineAt = s, b.SourceTime
		}
	}
	if resyncSeq == 0 || baselineSeq == 0 || before >= resyncSeq {
		t.Fatalf("no resync in the journal: start %d, baseline %d, last write before it %d", resyncSeq, baselineSeq, before)
	}
	r := &replication.Restorer{State: p.state, Pages: p.pages, Journal: p.journal, Parallelism: 2}
	for _, c := range []struct {
		at   time.Time
		want int64
	}{{resyncAt, resyncSeq - 1}, {baselineAt.Add(-time.Nanosecond), resyncSeq - 1}, {baselineAt, baselineSeq}} {
		res, err := r.Restore(ctx, replication.RestoreRequest{Group: p.group, Time: c.at, Container: "restore"})
		if err != nil || res.LastSeq != c.want {
			t.Fatalf("restore to %s: sequence %d (%v), want %d (resync %d..%d)", c.at.Format(time.RFC3339Nano), res.LastSeq, err, c.want, resyncSeq, baselineSeq)
		}
	}
}

// An applied batch overwritten with garbage (whoever writes the journal can): a restore to a time past
// it ends just before it, says why, and is the stream up to there; it does not fail.
func TestRestoreEndsBeforeAnOverwrittenBatch(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t, 1, 1, 1<<20)
	a, _ := p.openAgent(t.TempDir())
	a.Marker("crash", true)
	disk := p.spec.Disks()[0].Key
	a.WriteSeq(disk, 0, bytes.Repeat([]byte{1}, 4096))
	good, _ := a.WriteSeq(disk, 4096, bytes.Repeat([]byte{2}, 4096))
	a.Flush()
	overwritten, _ := a.WriteSeq(disk, 8192, bytes.Repeat([]byte{3}, 4096))
	a.Flush()
	a.WriteSeq(disk, 12288, bytes.Repeat([]byte{4}, 4096))
	a.Close(ctx)
	p.drain(rand.New(rand.NewSource(1)))
	p.promote()
	if overwritten <= good {
		t.Fatalf("the writes share batch %d", good)
	}
	// Put refuses it (batches are written once); a holder of the journal's write permission can still
	// write the storage service directly.
	if err := p.journal.Put(ctx, p.group, overwritten, []byte("garbage an attacker wrote")); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("overwriting an applied batch through Put: %v", err)
	}
	p.journal.Overwrite(p.group, overwritten, []byte("garbage an attacker wrote"))
	r := &replication.Restorer{State: p.state, Pages: p.pages, Journal: p.journal, Parallelism: 2}
	res, err := r.Restore(ctx, replication.RestoreRequest{Group: p.group, Time: time.Now(), Container: "restore"})
	if err != nil || res.LastSeq != overwritten-1 || !strings.Contains(res.Cut, fmt.Sprintf("batch %d has no MAC", overwritten)) {
		t.Fatalf("restore past the overwritten batch %d: %+v %v", overwritten, res, err)
	}
	got, _ := p.pages.ReadRange(ctx, res.Disks[disk], "", 0, 16384)
	want := append(append(bytes.Repeat([]byte{1}, 4096), bytes.Repeat([]byte{2}, 4096)...), make([]byte, 8192)...)
	if !bytes.Equal(got, want) {
		t.Fatal("the restored disk is not the stream up to the overwritten batch")
	}
}

// promote makes recovery points of the markers applied so far, as cutpoints does.
func (p *pipeline) promote() {
	p.t.Helper()
	ctx := context.Background()
	g, err := replication.LoadGroup(ctx, p.state, p.group)
	if err == nil {
		_, err = replication.Promote(ctx, p.state, g, time.Now())
	}
	if err != nil {
		p.t.Fatal(err)
	}
}
