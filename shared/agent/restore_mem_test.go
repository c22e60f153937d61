package agent

import (
	"bytes"
	"context"
	"math/rand"
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
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	if _, err := replication.Promote(ctx, p.state, g, time.Now()); err != nil {
		t.Fatal(err)
	}
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
