// Package agent is the source side of replication, the equivalent of the Mobility service: it turns the
// writes to a group's disks into the group's ordered change stream. Every write takes one lock, so its
// place in the stream is its completion order; writes are gathered into batches (up to MaxBatchBytes or
// MaxBatchDelay), each stored in the journal before its descriptor is published, so no descriptor ever
// points at a payload that is not durable. Sequence numbers rise by one per group and survive restarts.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Config configures an agent for one consistency group.
type Config struct {
	Group     string
	Disks     []replication.DiskRefSpec
	Journal   replication.JournalStore
	Publisher replication.ChangePublisher
	// SourcePages is the source account's page store, for pageblob: disks.
	SourcePages replication.PageStore
	// DiskSnapshots takes and reads the source region's managed disk snapshots, for managed: disks.
	DiskSnapshots replication.DiskSnapshots
	// StateDir keeps the agent's sequence state (and the source files of "agent" disks).
	StateDir string
	// StreamKey authenticates the group's stream (replication.SealPayload, DescriptorMAC); nil for a
	// group without one.
	StreamKey []byte
	// SeqFloor is the highest sequence the group is known to have (its watermark, the agent sequence the
	// API last saw). A state behind it was lost or restored from an old copy: the agent numbers on from
	// the floor (apply would skip lower numbers as duplicates) and reports itself dirty, so that a
	// checksum resync recovers the writes that may be missing.
	SeqFloor      int64
	MaxBatchBytes int
	MaxBatchDelay time.Duration
	Compress      bool
	Log           *slog.Logger
	Now           func() time.Time
	// OnMarker runs under the write lock when a marker enters the stream, with the disks exactly as the
	// marker sees them (the workload records its ground truth here).
	OnMarker func(seq int64, consistency string, disks map[string]*os.File)
}

// Agent captures writes for one group.
type Agent struct {
	cfg   Config
	files map[string]*os.File
	sizes map[string]int64
	snaps map[string]*tracked // pageblob: and managed: disks, seen through their snapshots

	baseMu sync.Mutex
	bases  map[string]string // snapshot disk → snapshot the next change scan diffs against
	// diffMu is held shared while a snapshot's changes are streamed, exclusively by a marker.
	diffMu sync.RWMutex

	mu      sync.Mutex // the stream's order: whoever holds it appends next
	cur     *replication.Batch
	curSize int
	nextSeq int64
	queue   chan *replication.Batch
	// renumberedTo, once Renumber ran, is the first sequence of the new numbering: the queue is in
	// order, so the sender drops every batch until that one reaches it (0: none to drop).
	renumberedTo atomic.Int64
	// conflict is the last sequence the journal held another signed batch at (0: none since asked).
	conflict atomic.Int64
	// lastError is the last error the agent met and its time, as its reports carry it.
	lastError atomic.Pointer[string]

	stats   Stats
	statsMu sync.Mutex
	sendErr chan error
	done    chan struct{}
	closed  bool
}

// Stats are the agent's counters.
type Stats struct {
	Writes        int64
	BytesWritten  int64
	Batches       int64
	Markers       int64
	LastPublished int64
	BaselineDone  int64
	BaselineTotal int64
	BaselineRate  float64
	// BaselineBlocks are the blocks the running (or last) sync has compared, BaselineBlocksSent those it
	// found different and streamed.
	BaselineBlocks     int64
	BaselineBlocksSent int64
	PublishedBytes     int64
	// SnapshotBytesRead is what the agent read of snapshot disks' snapshots.
	SnapshotBytesRead int64
	syncStart         time.Time
}

// Bounds that keep every stored batch under replication.MaxPayloadBytes: a batch is sealed once it
// holds MaxBatchBytes, and one write may add at most MaxWriteBytes to it.
const (
	MaxBatchBytes = 16 << 20
	MaxWriteBytes = 16 << 20
)

// maxStoredAhead bounds how far past what the group is known to have (the agent's last published
// sequence, the API's watermark and agent sequence) a batch the agent stored may lie: those not yet
// published at a crash (a few uploads in flight) or not yet reported (about a heartbeat's worth, far
// less than this at any rate the agent reaches).
const maxStoredAhead = 1 << 12

// Open opens the source disks and resumes the stream where the last run left it: descriptors of
// payloads stored but not published are published again (apply skips duplicates). It reports whether
// the last run stopped uncleanly, in which case the caller should resync.
func Open(ctx context.Context, cfg Config) (*Agent, bool, error) {
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = 4 << 20
	}
	if cfg.MaxBatchBytes < 0 || cfg.MaxBatchBytes > MaxBatchBytes {
		return nil, false, fmt.Errorf("batch size %d: want at most %d bytes (apply refuses larger payloads)", cfg.MaxBatchBytes, MaxBatchBytes)
	}
	if cfg.MaxBatchDelay == 0 {
		cfg.MaxBatchDelay = 50 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Log = cfg.Log.With("group", cfg.Group)
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, false, err
	}
	a := &Agent{cfg: cfg, files: map[string]*os.File{}, sizes: map[string]int64{}, snaps: map[string]*tracked{},
		bases: map[string]string{}, queue: make(chan *replication.Batch, 32), sendErr: make(chan error, 1), done: make(chan struct{})}
	if err := a.openDisks(ctx); err != nil {
		a.closeFiles()
		return nil, false, err
	}
	st, fresh, err := a.loadState()
	if err != nil {
		return nil, false, err
	}
	// Whatever the journal holds past what was published gets its descriptor (again).
	next, damaged, err := a.resumeStored(ctx, &st)
	if err != nil {
		return nil, false, err
	}
	dirty := (!fresh && !st.Clean) || damaged
	if next > cfg.SeqFloor+replication.MaxSeqAhead { // the API would refuse every report
		cfg.Log.Warn("the agent's state numbers far past the group's sequence: it is not this group's state; numbering on from the group's and resyncing",
			"group", cfg.Group, "seq", next, "groupSeq", cfg.SeqFloor)
		next, dirty, st.Published = cfg.SeqFloor+1, true, cfg.SeqFloor
	}
	if next <= cfg.SeqFloor {
		cfg.Log.Warn("the agent's state is behind the group's sequence: it was lost or is an old copy; numbering on from the group's and resyncing",
			"group", cfg.Group, "seq", next, "groupSeq", cfg.SeqFloor)
		next, dirty = cfg.SeqFloor+1, true
		st.Published = max(st.Published, cfg.SeqFloor)
	}
	a.nextSeq = next
	a.stats.LastPublished = st.Published
	if err := a.saveState(state{NextSeq: next, Published: st.Published, Clean: false}); err != nil {
		return nil, false, err
	}
	go a.sender(ctx)
	go a.ticker(ctx)
	return a, dirty, nil
}

// openDisks opens the source disks: files, or disks seen through snapshots with the snapshot each
// one's next change scan starts from. On an error the caller closes what was opened.
func (a *Agent) openDisks(ctx context.Context) error {
	for _, d := range a.cfg.Disks {
		c, src, err := captureOf(d)
		if err != nil {
			return err
		}
		if err := c.open(ctx, a, d, src); err != nil {
			return err
		}
	}
	return nil
}

// openFileSource opens an existing disk image or block device as it is: never created, never extended —
// a disk smaller than the spec says is refused, not padded.
func openFileSource(d replication.DiskRefSpec, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", d.Key, err)
	}
	size, err := f.Seek(0, io.SeekEnd) // a block device's size too
	info, serr := f.Stat()
	switch {
	case err != nil || serr != nil:
		err = errors.Join(err, serr)
	case info.IsDir() || !(info.Mode().IsRegular() || info.Mode()&os.ModeDevice != 0):
		err = fmt.Errorf("disk %s: %s is not a disk image or a block device", d.Key, path)
	case size < d.Spec.SizeBytes:
		err = fmt.Errorf("disk %s: %s has %d bytes, the group says %d", d.Key, path, size, d.Spec.SizeBytes)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Write writes data at offset of a disk and journals it, in completion order.
func (a *Agent) Write(disk string, offset int64, data []byte) error {
	_, err := a.WriteSeq(disk, offset, data)
	return err
}

// WriteSeq is Write that also returns the sequence number of the batch the write joined.
func (a *Agent) WriteSeq(disk string, offset int64, data []byte) (int64, error) {
	if len(data) > MaxWriteBytes {
		return 0, fmt.Errorf("write of %d bytes: at most %d at once", len(data), MaxWriteBytes)
	}
	f, err := a.writable(disk, offset, int64(len(data)))
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, errors.New("agent closed")
	}
	if _, err := f.WriteAt(data, offset); err != nil {
		return 0, err
	}
	seq := a.appendLocked(replication.Extent{Disk: disk, Offset: offset, Length: int64(len(data)), Data: append([]byte(nil), data...)})
	a.statsMu.Lock()
	a.stats.Writes++
	a.stats.BytesWritten += int64(len(data))
	a.statsMu.Unlock()
	return seq, nil
}

// writable is the file of a disk the agent takes writes for, when [offset, offset+length) is a
// 512-byte aligned, non-empty range inside it.
func (a *Agent) writable(disk string, offset, length int64) (*os.File, error) {
	f, ok := a.files[disk]
	if !ok {
		if _, snapshotted := a.snaps[disk]; snapshotted {
			return nil, fmt.Errorf("disk %s is written by others: the agent reads its snapshots, it takes no writes", disk)
		}
		return nil, fmt.Errorf("no disk %q in group %s", disk, a.cfg.Group)
	}
	if offset < 0 || offset%replication.PageSize != 0 || length <= 0 || length%replication.PageSize != 0 || offset > a.sizes[disk]-length {
		return nil, fmt.Errorf("write of %d bytes at %d of %s: not 512-byte aligned or past the end", length, offset, disk)
	}
	return f, nil
}

// appendLocked adds an extent to the open batch (a zero extent when the data is all zeros) and returns
// the batch's sequence number, given when the batch opens.
func (a *Agent) appendLocked(e replication.Extent) int64 {
	if !e.Zero && replication.IsZero(e.Data) {
		e.Zero, e.Data = true, nil
	}
	if a.cur == nil {
		a.cur = &replication.Batch{Group: a.cfg.Group, Kind: replication.KindBatch, Seq: a.nextSeq}
		a.nextSeq++
	}
	seq := a.cur.Seq
	a.cur.Extents = append(a.cur.Extents, e)
	a.curSize += len(e.Data) + 64
	if a.curSize >= a.cfg.MaxBatchBytes {
		a.sealLocked()
	}
	return seq
}

// sealLocked closes the open batch: it gets its source time and joins the send queue (which blocks when
// full: a slow pipeline throttles writers, it never drops writes).
func (a *Agent) sealLocked() {
	if a.cur == nil {
		return
	}
	b := a.cur
	a.cur, a.curSize = nil, 0
	b.SourceTime = a.cfg.Now().UTC()
	a.queue <- b
}

// Flush seals the open batch.
func (a *Agent) Flush() {
	a.mu.Lock()
	a.sealLocked()
	a.mu.Unlock()
}

// Marker puts a marker into the stream after every write so far and returns its sequence number
// (0 once the agent is closed).
func (a *Agent) Marker(consistency string, baseline bool) int64 {
	a.diffMu.Lock() // a snapshot's diff enters the stream whole: a point never holds half of one
	defer a.diffMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0
	}
	a.sealLocked()
	m := &replication.Batch{Group: a.cfg.Group, Kind: replication.KindMarker, Consistency: consistency, Baseline: baseline,
		Seq: a.nextSeq, SourceTime: a.cfg.Now().UTC()}
	a.nextSeq++
	if a.cfg.OnMarker != nil {
		a.cfg.OnMarker(m.Seq, consistency, a.files)
	}
	a.queue <- m
	a.statsMu.Lock()
	a.stats.Markers++
	a.statsMu.Unlock()
	return m.Seq
}

func (a *Agent) ticker(ctx context.Context) {
	t := time.NewTicker(a.cfg.MaxBatchDelay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.done:
			return
		case <-t.C:
			a.Flush()
		}
	}
}

// Close seals what is open, waits until everything is published and records a clean stop.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.sealLocked()
	a.closed = true
	close(a.queue)
	a.mu.Unlock()
	select {
	case <-a.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-a.sendErr:
		return err
	default:
	}
	a.statsMu.Lock()
	published := a.stats.LastPublished
	a.statsMu.Unlock()
	err := a.saveState(state{NextSeq: a.nextSeq, Published: published, Clean: true})
	a.closeFiles()
	return err
}

func (a *Agent) closeFiles() {
	for _, f := range a.files {
		f.Close()
	}
}

// Stats returns the counters.
func (a *Agent) Stats() Stats {
	a.statsMu.Lock()
	defer a.statsMu.Unlock()
	return a.stats
}

// NextSeq is the sequence number the next batch will get.
func (a *Agent) NextSeq() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nextSeq
}
