package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

type pipeline struct {
	t       *testing.T
	group   string
	spec    replication.GroupSpec
	pages   *memstore.Pages
	state   *memstore.State
	journal *memstore.Journal
	pub     *memstore.Hub // the change stream
	applier *replication.Applier
	truth   map[int64]map[string]string // marker seq → disk → sha256
	// seqFloor is what the API would tell an agent about the group's sequence.
	seqFloor int64
	// key is the group's stream key, as the API gives it to the agent.
	key []byte
}

func newPipeline(t *testing.T, vms, disks int, size int64) *pipeline {
	ctx := context.Background()
	p := &pipeline{t: t, group: "g1", pages: memstore.NewPages(), state: memstore.NewState(), journal: memstore.NewJournal(),
		pub: memstore.NewHub(4), truth: map[int64]map[string]string{}}
	for v := 0; v < vms; v++ {
		vm := replication.VMSpec{Name: fmt.Sprintf("vm%d", v)}
		for d := 0; d < disks; d++ {
			vm.Disks = append(vm.Disks, replication.DiskSpec{Name: fmt.Sprintf("disk%d", d), SizeBytes: size, Source: "agent"})
		}
		p.spec.VMs = append(p.spec.VMs, vm)
	}
	p.spec.Normalize(p.group)
	if err := p.spec.Validate(); err != nil {
		t.Fatal(err)
	}
	p.pages.EnsureContainer(ctx, p.spec.Target.Container)
	g, err := replication.CreateGroup(ctx, p.state, p.group, p.spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.key = g.StreamKey()
	for _, d := range p.spec.Disks() {
		if err := p.pages.Create(ctx, g.TargetDisk(d.Key), size); err != nil {
			t.Fatal(err)
		}
	}
	p.applier = &replication.Applier{State: p.state, Pages: p.pages, Journal: p.journal, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 4}
	return p
}

func (p *pipeline) openAgent(dir string) (*Agent, bool) {
	a, dirty, err := Open(context.Background(), Config{Group: p.group, Disks: p.spec.Disks(), Journal: p.journal, Publisher: p.pub,
		StreamKey: p.key, StateDir: dir, SeqFloor: p.seqFloor, MaxBatchBytes: 256 << 10, MaxBatchDelay: 5 * time.Millisecond, Compress: true, Log: slog.New(slog.DiscardHandler),
		OnMarker: func(seq int64, _ string, files map[string]*os.File) {
			sums := map[string]string{}
			for key, f := range files {
				sums[key], _ = HashFile(f, p.spec.Disks()[0].Spec.SizeBytes)
			}
			p.truth[seq] = sums
		}})
	if err != nil {
		p.t.Fatal(err)
	}
	return a, dirty
}

// take returns the descriptors published since the last take (the test's consumer group checkpoints
// what it read).
func (p *pipeline) take() []replication.Descriptor {
	var out []replication.Descriptor
	for part := range p.pub.PartitionCount() {
		after, _ := p.pub.LoadCheckpoint("test", part)
		events, err := p.pub.Read(context.Background(), part, after, math.MaxInt32, 0)
		if err != nil {
			p.t.Fatal(err)
		}
		for _, e := range events {
			d, err := replication.DecodeDescriptor(e.Body)
			if err != nil {
				p.t.Fatal(err)
			}
			out = append(out, d)
			p.pub.Checkpoint("test", part, e.SequenceNumber)
		}
	}
	return out
}

// finishAgainst ends the agent's stream with a marker, applies all of it, and checks that vm0/disk0's
// target holds what the source blob ref of store holds, size bytes of it.
func (p *pipeline) finishAgainst(a *Agent, store replication.PageStore, ref replication.DiskRef, size int64, rng *rand.Rand) {
	p.t.Helper()
	ctx := context.Background()
	a.Marker("crash", false)
	a.Close(ctx)
	p.drain(rng)
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	want, _ := store.ReadRange(ctx, ref, "", 0, size)
	got, _ := p.pages.ReadRange(ctx, g.TargetDisk("vm0/disk0"), "", 0, size)
	if !bytes.Equal(got, want) {
		p.t.Fatal("the target differs from its source blob")
	}
}

// drain applies what was published, delivered the way Event Hubs may deliver it: in small batches,
// with duplicates and out of order within a batch.
func (p *pipeline) drain(rng *rand.Rand) {
	descs := p.take()
	for len(descs) > 0 {
		n := min(len(descs), 1+rng.Intn(8))
		batch := append([]replication.Descriptor(nil), descs[:n]...)
		if rng.Intn(3) == 0 && n > 1 {
			batch = append(batch, batch[rng.Intn(n)]) // a duplicate
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		if _, err := p.applier.Apply(context.Background(), batch); err != nil {
			p.t.Fatal(err)
		}
		descs = descs[n:]
	}
}

// verify compares every target disk with its source file and every marker's snapshots with the truth.
func (p *pipeline) verify(dir string) {
	ctx := context.Background()
	g, err := replication.LoadGroup(ctx, p.state, p.group)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, d := range p.spec.Disks() {
		src, _ := os.ReadFile(fmt.Sprintf("%s/%s/%s/%s.img", dir, p.group, d.VM, d.Spec.Name))
		got, err := p.pages.ReadRange(ctx, g.TargetDisk(d.Key), "", 0, d.Spec.SizeBytes)
		if err != nil || !bytes.Equal(got, src) {
			p.t.Fatalf("disk %s differs from its source (err %v)", d.Key, err)
		}
	}
	markers, _ := replication.ListMarkers(ctx, p.state, p.group)
	checked := 0
	for _, m := range markers {
		want, ok := p.truth[m.Seq]
		if !ok {
			continue
		}
		for key, snap := range m.Snapshots {
			data, err := p.pages.ReadRange(ctx, g.TargetDisk(key), snap, 0, p.spec.Disks()[0].Spec.SizeBytes)
			if err != nil {
				p.t.Fatal(err)
			}
			if sum := sha256hex(data); sum != want[key] {
				p.t.Fatalf("marker %d: snapshot of %s differs from the source at that marker", m.Seq, key)
			}
		}
		checked++
	}
	if checked == 0 {
		p.t.Fatal("no marker was checked")
	}
}

func sha256hex(b []byte) string {
	h := BlockHash(b)
	if h == "" { // all zeros: hash them like HashFile does
		f, _ := os.CreateTemp("", "z")
		defer os.Remove(f.Name())
		f.Write(b)
		h, _ = HashFile(f, int64(len(b)))
		f.Close()
	}
	return h
}

func randomWrites(t *testing.T, a *Agent, rng *rand.Rand, spec replication.GroupSpec, n int) {
	disks := spec.Disks()
	for i := 0; i < n; i++ {
		d := disks[rng.Intn(len(disks))]
		length := int64(1+rng.Intn(64)) * 4096
		off := int64(rng.Intn(int((d.Spec.SizeBytes-length)/4096))) * 4096
		data := make([]byte, length)
		if rng.Intn(5) > 0 {
			rng.Read(data)
		}
		if err := a.Write(d.Key, off, data); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPipelineInOneProcess(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	p := newPipeline(t, 2, 2, 8<<20)
	dir := t.TempDir()
	a, dirty := p.openAgent(dir)
	if dirty {
		t.Fatal("a fresh agent reported an unclean stop")
	}
	ctx := context.Background()
	randomWrites(t, a, rng, p.spec, 50) // writes before replication: initial replication must carry them
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, _, err := a.Sync(ctx, nil, false); err != nil {
			t.Error(err)
		}
	}()
	for round := 0; round < 5; round++ { // live writes interleaved with initial replication
		randomWrites(t, a, rng, p.spec, 40)
		a.Marker("crash", false)
		p.drain(rng)
	}
	wg.Wait()
	randomWrites(t, a, rng, p.spec, 40)
	a.Marker("crash", false)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	p.drain(rng)
	p.verify(dir)
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	if g.Record.State != replication.StateProtected || g.Record.Watermark != a.NextSeq()-1 {
		t.Fatalf("group state %s watermark %d, want Protected at %d", g.Record.State, g.Record.Watermark, a.NextSeq()-1)
	}
}

func TestLostDescriptorsAreRepairedFromTheJournal(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	p := newPipeline(t, 1, 2, 4<<20)
	dir := t.TempDir()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rng, p.spec, 60)
	a.Marker("crash", true) // no initial replication here: the writes are the whole disk
	a.Close(context.Background())
	descs := p.take()
	// The host checkpointed past failed invocations: only the last descriptor arrives.
	if _, err := p.applier.Apply(context.Background(), descs[len(descs)-1:]); err != nil {
		t.Fatal(err)
	}
	p.verify(dir)
}

func TestMissingJournalBatchStopsUntilResync(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	p := newPipeline(t, 1, 2, 4<<20)
	dir := t.TempDir()
	ctx := context.Background()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rng, p.spec, 30)
	if _, _, err := a.Sync(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, a)
	p.drain(rng)
	// One batch of writes to the first block of one disk, lost from the journal before apply reads it.
	for i := 0; i < 4; i++ {
		a.Write("vm0/disk0", int64(i)*8192, bytes.Repeat([]byte{byte(i + 1)}, 8192))
	}
	a.Flush()
	waitPublished(t, a)
	lost := a.Stats().LastPublished
	p.journal.Delete(ctx, p.group, lost)
	a.Write("vm0/disk1", 3<<20, bytes.Repeat([]byte{9}, 4096))
	a.Marker("crash", false)
	waitPublished(t, a)
	p.drain(rng)
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	if g.Record.State != replication.StateResyncRequired || g.Record.Watermark != lost-1 ||
		g.Record.Reason != fmt.Sprintf("batch %d is missing from the journal: resync needed", lost) {
		t.Fatalf("after a lost batch: state %s watermark %d reason %q", g.Record.State, g.Record.Watermark, g.Record.Reason)
	}
	// Resync: compare block hashes with the target, send only the differing blocks: the first block of
	// disk0 (lost) and the last block of disk1 (never applied, the group had stopped).
	_, sent, err := a.Sync(ctx, func(ctx context.Context, disk string) ([]string, error) {
		return targetHashes(p, disk)
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	p.drain(rng)
	p.verify(dir)
	g, _ = replication.LoadGroup(ctx, p.state, p.group)
	if g.Record.State != replication.StateProtected {
		t.Fatalf("after resync: state %s (%s)", g.Record.State, g.Record.Reason)
	}
	if sent != 2*BlockSize {
		t.Fatalf("resync sent %d bytes, want the 2 differing blocks (%d)", sent, 2*BlockSize)
	}
}

func TestCorruptPayloadIsQuarantinedNeverWritten(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	p := newPipeline(t, 1, 1, 4<<20)
	dir := t.TempDir()
	ctx := context.Background()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rng, p.spec, 10)
	a.Flush()
	waitPublished(t, a)
	p.drain(rng)
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	before, _ := p.pages.ReadRange(ctx, g.TargetDisk("vm0/disk0"), "", 0, 4<<20)
	bad := a.Stats().LastPublished + 1 // the first batch of the next writes
	randomWrites(t, a, rng, p.spec, 10)
	a.Close(ctx)
	payload, _ := p.journal.Get(ctx, p.group, bad)
	payload[len(payload)-1] ^= 0xff
	p.journal.Overwrite(p.group, bad, payload) // as a holder of the journal's write permission can
	p.drain(rng)
	g, _ = replication.LoadGroup(ctx, p.state, p.group)
	after, _ := p.pages.ReadRange(ctx, g.TargetDisk("vm0/disk0"), "", 0, 4<<20)
	if g.Record.State != replication.StateResyncRequired || !bytes.Equal(before, after) {
		t.Fatalf("state %s; target changed: %v", g.Record.State, !bytes.Equal(before, after))
	}
	if _, ok := p.journal.Quarantined[fmt.Sprintf("%s/%d", p.group, bad)]; !ok {
		t.Fatal("corrupt payload not quarantined")
	}
}

func TestAgentRestartResendsUnpublishedDescriptors(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	p := newPipeline(t, 1, 1, 4<<20)
	dir := t.TempDir()
	ctx := context.Background()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rng, p.spec, 20)
	a.Marker("crash", true)
	waitPublished(t, a)
	// Simulate a crash after storing payloads but before publishing: forget the descriptors and roll
	// the persisted "published" sequence back.
	p.take()
	st := state{NextSeq: a.NextSeq(), Published: 0}
	data, _ := json.Marshal(st)
	a.Close(ctx)
	os.WriteFile(a.statePath(), data, 0o644)
	a2, dirty := p.openAgent(dir)
	if !dirty {
		t.Fatal("restart after an unclean stop not reported")
	}
	descs := p.take()
	if len(descs) == 0 {
		t.Fatal("no descriptor re-sent")
	}
	a2.Close(ctx)
	// Everything was re-sent, signed as before: apply from the journal via the re-sent descriptors.
	if _, err := p.applier.Apply(ctx, descs); err != nil {
		t.Fatal(err)
	}
	p.verify(dir)
}

// A blob planted in the journal (any identity that writes the journal can): far past what the group
// has, it is ignored — the numbering does not jump to it and nothing is resynced; near it, at the next
// sequence, it is not this agent's (its MAC does not verify): never sent, the numbering stays, and the
// agent resyncs.
func TestPlantedJournalBlobsDoNotMoveTheNumbering(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	p := newPipeline(t, 1, 1, 4<<20)
	dir := t.TempDir()
	ctx := context.Background()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rng, p.spec, 10)
	a.Marker("crash", true)
	waitPublished(t, a)
	next := a.NextSeq()
	a.Close(ctx)
	p.take()
	p.journal.Put(ctx, p.group, 1_000_000_000_000_000, []byte("planted"))
	a, dirty := p.openAgent(dir)
	if a.NextSeq() != next || dirty || len(p.take()) != 0 {
		t.Fatalf("after a blob planted at 10^15: next %d (want %d), dirty %v", a.NextSeq(), next, dirty)
	}
	a.Close(ctx)
	p.journal.Put(ctx, p.group, next, []byte("planted at the next sequence"))
	a, dirty = p.openAgent(dir)
	if a.NextSeq() != next || !dirty || len(p.take()) != 0 {
		t.Fatalf("after a blob planted at the next sequence %d: next %d, dirty %v", next, a.NextSeq(), dirty)
	}
	a.Close(ctx)
}

func waitPublished(t *testing.T, a *Agent) {
	deadline := time.Now().Add(10 * time.Second)
	for a.Stats().LastPublished < a.NextSeq()-1 {
		if time.Now().After(deadline) {
			t.Fatal("agent did not publish")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func targetHashes(p *pipeline, disk string) ([]string, error) {
	ctx := context.Background()
	g, err := replication.LoadGroup(ctx, p.state, p.group)
	if err != nil {
		return nil, err
	}
	size := p.spec.Disks()[0].Spec.SizeBytes
	var out []string
	for off := int64(0); off < size; off += BlockSize {
		data, err := p.pages.ReadRange(ctx, g.TargetDisk(disk), "", off, min(BlockSize, size-off))
		if err != nil {
			return nil, err
		}
		out = append(out, BlockHash(data))
	}
	return out, nil
}

// Writes another process makes to a file-backed disk reach the target through the scanner.
func TestScannerFindsWritesMadeByOthers(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	ctx := context.Background()
	p := newPipeline(t, 1, 1, 4<<20)
	dir := t.TempDir()
	img := dir + "/external.img"
	os.WriteFile(img, make([]byte, 4<<20), 0o644)
	p.spec.VMs[0].Disks[0].Source = "file:" + img
	a, _ := p.openAgent(dir)
	if _, _, err := a.Sync(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	scanner := a.NewScanner()
	if sent, _ := scanner.Pass(ctx); sent != 0 {
		t.Fatalf("the learning pass sent %d bytes", sent)
	}
	// Another process writes the image directly.
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	data := make([]byte, 8192)
	rng.Read(data)
	f.WriteAt(data, 3<<20+4096)
	f.Close()
	sent, err := scanner.Pass(ctx)
	if err != nil || sent != BlockSize {
		t.Fatalf("scan sent %d bytes (%v), want the one changed block", sent, err)
	}
	a.Marker("crash", false)
	a.Close(ctx)
	p.drain(rng)
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	src, _ := os.ReadFile(img)
	got, _ := p.pages.ReadRange(ctx, g.TargetDisk("vm0/disk0"), "", 0, 4<<20)
	if !bytes.Equal(got, src) {
		t.Fatal("target differs from the externally written image")
	}
}

// A page blob that others write: the baseline copies its snapshot, change scans stream only the
// blocks whose content changed between snapshots (the memory store reports changes precisely; the
// Azurite test below checks the over-reporting case), and the target ends equal to the blob.
func TestPageBlobSource(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	ctx := context.Background()
	p := newPipeline(t, 1, 1, 4<<20)
	source := memstore.NewPages()
	source.EnsureContainer(ctx, "sources")
	ref := replication.DiskRef{Container: "sources", Name: "vm0-disk0"}
	source.Create(ctx, ref, 4<<20)
	data := make([]byte, 1<<20)
	rng.Read(data)
	source.WritePages(ctx, ref, 1<<20, data)
	p.spec.VMs[0].Disks[0].Source = "pageblob:https://acct.blob.core.windows.net/sources/vm0-disk0"
	dir := t.TempDir()
	a, _, err := Open(ctx, Config{Group: p.group, Disks: p.spec.Disks(), Journal: p.journal, Publisher: p.pub, SourcePages: source, StreamKey: p.key,
		StateDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	scanner := a.NewScanner()
	scanner.Pass(ctx) // learns: a base snapshot
	if _, sent, err := a.Sync(ctx, nil, false); err != nil || sent != 1<<20 {
		t.Fatalf("baseline sent %d bytes (%v), want the one allocated MiB", sent, err)
	}
	if err := a.Write("vm0/disk0", 0, make([]byte, 512)); err == nil {
		t.Fatal("the write API accepted a write to a page blob disk")
	}
	small := make([]byte, 4096)
	rng.Read(small)
	source.WritePages(ctx, ref, 3<<20, small) // a change in block 3
	source.ClearPages(ctx, ref, 1<<20, 1<<20) // block 1 trimmed
	sent, err := scanner.Pass(ctx)
	if err != nil || sent != 2*BlockSize {
		t.Fatalf("scan sent %d bytes (%v), want the 2 changed blocks", sent, err)
	}
	if sent, _ := scanner.Pass(ctx); sent != 0 {
		t.Fatalf("a scan with no change sent %d bytes", sent)
	}
	p.finishAgainst(a, source, ref, 4<<20, rng)
}

// An agent whose state was lost (a reinstalled VM, an old backup of its directory) must not number from
// 1 again: apply would skip those batches as duplicates. Told the group's sequence, it numbers on from
// there, reports itself dirty, and its checksum resync brings the target to the source.
func TestAgentWithLostStateNumbersOnAndResyncs(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	p := newPipeline(t, 1, 2, 4<<20)
	ctx := context.Background()
	a, _ := p.openAgent(t.TempDir())
	randomWrites(t, a, rng, p.spec, 30)
	if _, _, err := a.Sync(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, a)
	a.Close(ctx)
	p.drain(rng)
	p.journal.Prune(ctx, p.group, a.NextSeq(), time.Now().Add(time.Hour)) // applied batches age out
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	p.seqFloor = g.Record.Watermark

	dir := t.TempDir() // the state is gone (and with it this test's "agent" disks: they start empty)
	b, dirty := p.openAgent(dir)
	if !dirty || b.NextSeq() != p.seqFloor+1 {
		t.Fatalf("an agent without its state: dirty %v, next sequence %d; want dirty and %d", dirty, b.NextSeq(), p.seqFloor+1)
	}
	if _, _, err := b.Sync(ctx, func(ctx context.Context, disk string) ([]string, error) { return targetHashes(p, disk) }, true); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, b)
	b.Close(ctx)
	p.drain(rng)
	p.verify(dir)
	if g, _ := replication.LoadGroup(ctx, p.state, p.group); g.Record.State != replication.StateProtected {
		t.Fatalf("after the resync: %s (%s)", g.Record.State, g.Record.Reason)
	}
}

// When Event Hubs moves a partition, a second apply instance takes the group over: it takes the target
// disks' leases, and the first instance's next write is refused (it cannot land an older write after a
// newer one); its retry takes the leases back. The target ends identical to the source.
func TestApplyInstancesFenceEachOther(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	p := newPipeline(t, 1, 2, 4<<20)
	ctx := context.Background()
	dir := t.TempDir()
	a, _ := p.openAgent(dir)
	if _, _, err := a.Sync(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	randomWrites(t, a, rng, p.spec, 20)
	a.Flush()
	waitPublished(t, a)
	first := p.applier
	p.drain(rng)

	second := &replication.Applier{State: p.state, Pages: p.pages, Journal: p.journal, Log: slog.New(slog.DiscardHandler), Now: time.Now, Parallelism: 4}
	randomWrites(t, a, rng, p.spec, 20)
	a.Flush()
	waitPublished(t, a)
	p.applier = second // the partition moved
	p.drain(rng)

	randomWrites(t, a, rng, p.spec, 20)
	a.Marker("crash", false)
	waitPublished(t, a)
	descs := p.take()
	_, err := first.Apply(ctx, descs) // the old owner, still running
	if err == nil || !strings.Contains(err.Error(), "a write was refused: another instance may have taken the group over") {
		t.Fatalf("the instance taken over wrote on: %v", err)
	}
	if _, err := first.Apply(ctx, descs); err != nil { // its retry takes the group back
		t.Fatalf("the retry: %v", err)
	}
	if _, err := second.Apply(ctx, descs); err != nil { // duplicates: nothing to write, nothing refused
		t.Fatal(err)
	}
	a.Close(ctx)
	p.verify(dir)
}

// flakyMarkers fails the first marker record insert, after or before doing it.
type flakyMarkers struct {
	*memstore.State
	failed, afterWrite bool
}

func (f *flakyMarkers) Insert(ctx context.Context, table string, entity any) (replication.ETag, error) {
	if table != replication.MarkersTable || f.failed {
		return f.State.Insert(ctx, table, entity)
	}
	f.failed = true
	if f.afterWrite {
		f.State.Insert(ctx, table, entity)
	}
	return "", fmt.Errorf("inserting the marker: %w", replication.ErrUnavailable)
}

// A failure between a marker's snapshots and its record (the record not written, or written without
// the answer arriving) leaves no snapshot behind: the retry records one snapshot per disk and deletes
// the rest, and the marker's snapshots are the source at that marker.
func TestInterruptedMarkerLeavesNoSnapshots(t *testing.T) {
	for _, afterWrite := range []bool{false, true} {
		p := newPipeline(t, 1, 2, 4<<20)
		ctx := context.Background()
		flaky := &flakyMarkers{State: p.state, afterWrite: afterWrite}
		p.applier.State = flaky
		dir := t.TempDir()
		a, _ := p.openAgent(dir)
		if _, _, err := a.Sync(ctx, nil, false); err != nil {
			t.Fatal(err)
		}
		waitPublished(t, a)
		descs := p.take()
		if _, err := p.applier.Apply(ctx, descs); !errors.Is(err, replication.ErrUnavailable) {
			t.Fatalf("the first attempt: %v", err)
		}
		if _, err := p.applier.Apply(ctx, descs); err != nil {
			t.Fatalf("the retry: %v", err)
		}
		a.Close(ctx)
		g, _ := replication.LoadGroup(ctx, p.state, p.group)
		markers, _ := replication.ListMarkers(ctx, p.state, p.group)
		if len(markers) != 1 || g.Record.MarkerPending != 0 {
			t.Fatalf("afterWrite %v: %d markers, pending %d", afterWrite, len(markers), g.Record.MarkerPending)
		}
		for _, d := range p.spec.Disks() {
			snaps, _ := p.pages.TaggedSnapshots(ctx, g.TargetDisk(d.Key), replication.MarkerTag(&g.Record, markers[0].Seq))
			if len(snaps) != 1 || snaps[0] != markers[0].Snapshots[d.Key] {
				t.Fatalf("afterWrite %v: %s keeps snapshots %v, the marker names %s", afterWrite, d.Key, snaps, markers[0].Snapshots[d.Key])
			}
		}
		p.verify(dir)
	}
}

// rivalMarkers records each marker first, as another apply instance at the same marker would: its own
// snapshots, with the marker's tag, under the record.
type rivalMarkers struct {
	*memstore.State
	pages *memstore.Pages
	rival map[string]string // disk → the rival's snapshot
}

func (f *rivalMarkers) Insert(ctx context.Context, table string, entity any) (replication.ETag, error) {
	if m, ok := entity.(replication.MarkerRecord); ok && table == replication.MarkersTable && f.rival == nil {
		g, err := replication.LoadGroup(ctx, f.State, m.PartitionKey)
		if err != nil {
			return "", err
		}
		f.rival = map[string]string{}
		for key := range m.Snapshots {
			if f.rival[key], err = f.pages.Snapshot(ctx, g.TargetDisk(key), replication.MarkerTag(&g.Record, m.Seq)); err != nil {
				return "", err
			}
		}
		theirs := m
		theirs.Snapshots = f.rival
		if _, err := f.State.Insert(ctx, table, theirs); err != nil {
			return "", err
		}
	}
	return f.State.Insert(ctx, table, entity)
}

// Two instances at one marker: the first record stands, and the one that lost deletes its own
// snapshots, so each disk keeps exactly the recorded one.
func TestConcurrentMarkerKeepsTheFirstRecord(t *testing.T) {
	p := newPipeline(t, 1, 2, 4<<20)
	ctx := context.Background()
	rival := &rivalMarkers{State: p.state, pages: p.pages}
	p.applier.State = rival
	dir := t.TempDir()
	a, _ := p.openAgent(dir)
	if _, _, err := a.Sync(ctx, nil, false); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, a)
	if _, err := p.applier.Apply(ctx, p.take()); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	g, _ := replication.LoadGroup(ctx, p.state, p.group)
	markers, _ := replication.ListMarkers(ctx, p.state, p.group)
	if len(markers) != 1 || g.Record.MarkerPending != 0 {
		t.Fatalf("%d markers, pending %d", len(markers), g.Record.MarkerPending)
	}
	for _, d := range p.spec.Disks() {
		snaps, _ := p.pages.TaggedSnapshots(ctx, g.TargetDisk(d.Key), replication.MarkerTag(&g.Record, markers[0].Seq))
		if len(snaps) != 1 || snaps[0] != rival.rival[d.Key] || markers[0].Snapshots[d.Key] != rival.rival[d.Key] {
			t.Fatalf("%s keeps snapshots %v; the rival's is %s, the record names %s", d.Key, snaps, rival.rival[d.Key], markers[0].Snapshots[d.Key])
		}
	}
	p.verify(dir)
}

// A batch stored in the journal but not this agent's (no MAC) or damaged does not stop the agent from
// starting: it is not announced, and the agent resyncs.
func TestAStoredBatchNotTheAgentsDoesNotStopIt(t *testing.T) {
	p := newPipeline(t, 1, 1, 1<<20)
	dir := t.TempDir()
	a, _ := p.openAgent(dir)
	randomWrites(t, a, rand.New(rand.NewSource(3)), p.spec, 5)
	waitPublished(t, a)
	next := a.NextSeq()
	a.Close(context.Background())
	p.take()
	p.journal.Put(context.Background(), p.group, next, []byte("not a batch, and no MAC"))
	a2, dirty := p.openAgent(dir)
	defer a2.Close(context.Background())
	if !dirty || len(p.take()) != 0 {
		t.Fatalf("after a foreign stored batch: dirty %v (want true), and it must not be announced", dirty)
	}
}
