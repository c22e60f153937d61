package replication_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// Someone who can send to the change hub or write the cache account, but has not the group's key,
// changes nothing: descriptors without the group's MAC (a huge sequence, a wrong checksum) and payloads
// without it are quarantined; the group's state, watermark and disks stay as its agent made them, and
// the agent's own batches go on being applied.
func TestForgedStreamChangesNothing(t *testing.T) {
	ctx := context.Background()
	state, pages, journal := memstore.NewState(), memstore.NewPages(), memstore.NewJournal()
	svc := &replication.Groups{Deps: replication.Deps{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now}}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	g, _, err := svc.Enable(ctx, "g1", spec)
	if err != nil {
		t.Fatal(err)
	}
	key := g.StreamKey()
	applier := &replication.Applier{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 2}
	event := func(d replication.Descriptor) replication.StreamEvent {
		body, _ := json.Marshal(d)
		return replication.StreamEvent{Body: body}
	}
	genuine := func(seq int64, fill byte) replication.StreamEvent {
		b := &replication.Batch{Group: "g1", Seq: seq, Kind: replication.KindBatch, SourceTime: time.Now(),
			Extents: []replication.Extent{{Disk: "vm/d", Offset: 0, Length: 4096, Data: bytes.Repeat([]byte{fill}, 4096)}}}
		payload, d, err := replication.SignBatch(key, b, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := replication.StoreBatch(ctx, journal, key, "g1", seq, payload); err != nil { // as the agent stores it
			t.Fatal(err)
		}
		return event(d)
	}
	// The forger's: a descriptor far ahead, one with another checksum and a wrong MAC, and a batch of
	// its own for sequence 2 in the journal with a descriptor that has no MAC.
	huge := replication.Descriptor{Group: "g1", Seq: 1_000_000_000_000, Kind: replication.KindResync, SourceTime: time.Now()}
	forged := &replication.Batch{Group: "g1", Seq: 2, Kind: replication.KindBatch, SourceTime: time.Now(),
		Extents: []replication.Extent{{Disk: "vm/d", Offset: 0, Length: 4096, Data: bytes.Repeat([]byte{0xee}, 4096)}}}
	forgedPayload, forgedDesc, _ := replication.SignBatch(nil, forged, false)
	wrongMAC := forgedDesc
	wrongMAC.CRC64, wrongMAC.MAC = "0123456789abcdef", replication.DescriptorMAC(make([]byte, 32), forgedDesc)
	journal.Put(ctx, "g1", 2, forgedPayload)

	if _, err := applier.ApplyEvents(ctx, "0", []replication.StreamEvent{genuine(1, 1), event(huge), event(forgedDesc), event(wrongMAC)}); err != nil {
		t.Fatal(err)
	}
	after, _ := replication.LoadGroup(ctx, state, "g1")
	if after.Record.Watermark != 1 || after.Record.State != replication.StateInitialReplication || after.Record.Reason != "" {
		t.Fatalf("after the forged events: watermark %d, state %s %q", after.Record.Watermark, after.Record.State, after.Record.Reason)
	}
	if rows, _, _ := replication.QueryAll[replication.QuarantineRecord](ctx, state, replication.QuarantineTable, "group-g1"); len(rows) != 3 {
		t.Fatalf("%d descriptors quarantined, want 3", len(rows))
	}
	// The agent's own batch 2 replaces the forger's blob and is applied; a forged payload under a
	// genuine descriptor is refused as corrupt.
	if _, err := applier.ApplyEvents(ctx, "0", []replication.StreamEvent{genuine(2, 2)}); err != nil {
		t.Fatal(err)
	}
	after, _ = replication.LoadGroup(ctx, state, "g1")
	data, _ := pages.ReadRange(ctx, after.TargetDisk("vm/d"), "", 0, 4096)
	if after.Record.Watermark != 2 || !bytes.Equal(data, bytes.Repeat([]byte{2}, 4096)) {
		t.Fatalf("the agent's batch 2: watermark %d, disk starts with %x", after.Record.Watermark, data[:4])
	}
	if _, err := replication.OpenPayload(key, "g1", 2, forgedPayload); err == nil {
		t.Fatal("a payload without the group's MAC was accepted")
	}
}

// The agent's store of a batch: a repeat is fine, a forger's blob planted at the sequence is replaced,
// and the group's own different batch at the sequence (one a recovery may replay) is never replaced.
func TestStoreBatchReplacesOnlyWhatDoesNotVerify(t *testing.T) {
	ctx := context.Background()
	journal := memstore.NewJournal()
	key := bytes.Repeat([]byte{7}, 32)
	seal := func(seq int64, fill byte) []byte {
		b := &replication.Batch{Group: "g1", Seq: seq, Kind: replication.KindBatch, SourceTime: time.Now(),
			Extents: []replication.Extent{{Disk: "vm/d", Offset: 0, Length: 4096, Data: bytes.Repeat([]byte{fill}, 4096)}}}
		payload, _, err := replication.SignBatch(key, b, false)
		if err != nil {
			t.Fatal(err)
		}
		return payload
	}
	first := seal(1, 1)
	if err := replication.StoreBatch(ctx, journal, key, "g1", 1, first); err != nil {
		t.Fatal(err)
	}
	if err := replication.StoreBatch(ctx, journal, key, "g1", 1, first); err != nil {
		t.Fatalf("a repeat: %v", err)
	}
	if err := replication.StoreBatch(ctx, journal, key, "g1", 1, seal(1, 9)); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("another genuine batch at a stored sequence: %v", err)
	}
	journal.Put(ctx, "g1", 2, []byte("planted ahead of the agent"))
	second := seal(2, 2)
	if err := replication.StoreBatch(ctx, journal, key, "g1", 2, second); err != nil {
		t.Fatalf("over a forger's blob: %v", err)
	}
	for seq, want := range map[int64][]byte{1: first, 2: second} {
		if got, _ := journal.Get(ctx, "g1", seq); !bytes.Equal(got, want) {
			t.Fatalf("batch %d is not the agent's", seq)
		}
	}
}

// Issuing a group's agent key again rotates its stream key: a holder of the old agent key (who read the
// old stream key) cannot add a batch after the rotation — its descriptor is quarantined and its blob
// at the next sequence is replaced by the agent's — while what was stored before still opens under the
// old key (a replay across the rotation works).
func TestRotatingTheAgentKeyRotatesTheStreamKey(t *testing.T) {
	ctx := context.Background()
	state, pages, journal := memstore.NewState(), memstore.NewPages(), memstore.NewJournal()
	deps := replication.Deps{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	g, _, err := (&replication.Groups{Deps: deps}).Enable(ctx, "g1", spec)
	if err != nil {
		t.Fatal(err)
	}
	applier := &replication.Applier{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 2}
	send := func(key []byte, seq int64, fill byte, store func([]byte) error) {
		b := &replication.Batch{Group: "g1", Seq: seq, Kind: replication.KindBatch, SourceTime: time.Now(),
			Extents: []replication.Extent{{Disk: "vm/d", Offset: 0, Length: 4096, Data: bytes.Repeat([]byte{fill}, 4096)}}}
		payload, d, err := replication.SignBatch(key, b, false)
		if err == nil {
			err = store(payload)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(d)
		if _, err := applier.ApplyEvents(ctx, "0", []replication.StreamEvent{{Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	old := g.StreamKey()
	send(old, 1, 1, func(p []byte) error { return replication.StoreBatch(ctx, journal, old, "g1", 1, p) })
	if _, err := (&replication.Agents{Deps: deps}).IssueAgentKey(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	g, _ = replication.LoadGroup(ctx, state, "g1")
	current := g.StreamKey()
	if bytes.Equal(current, old) || g.Record.PrevStreamKeyThrough != 1 {
		t.Fatalf("after issuing the agent key: the stream key changed %v, the old one opens through %d", !bytes.Equal(current, old), g.Record.PrevStreamKeyThrough)
	}
	// The revoked holder signs batch 2 with the old key and gets there first.
	send(old, 2, 0xee, func(p []byte) error { return journal.Put(ctx, "g1", 2, p) })
	if g, _ = replication.LoadGroup(ctx, state, "g1"); g.Record.Watermark != 1 {
		t.Fatalf("a batch signed with the rotated key was applied: watermark %d", g.Record.Watermark)
	}
	// The agent, running with the new key, stores and sends its own batch 2: applied.
	send(current, 2, 2, func(p []byte) error { return replication.StoreBatch(ctx, journal, current, "g1", 2, p) })
	g, _ = replication.LoadGroup(ctx, state, "g1")
	data, _ := pages.ReadRange(ctx, g.TargetDisk("vm/d"), "", 0, 4096)
	if g.Record.Watermark != 2 || !bytes.Equal(data, bytes.Repeat([]byte{2}, 4096)) {
		t.Fatalf("the agent's batch 2: watermark %d, disk starts with %x", g.Record.Watermark, data[:4])
	}
	for seq, key := range map[int64][]byte{1: old, 2: current} {
		payload, _ := journal.Get(ctx, "g1", seq)
		if _, err := replication.OpenPayload(g.StreamKeyFor(seq), "g1", seq, payload); err != nil || !bytes.Equal(g.StreamKeyFor(seq), key) {
			t.Fatalf("batch %d does not open with the key for it: %v", seq, err)
		}
	}
}
