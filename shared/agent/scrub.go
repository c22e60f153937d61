package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// The scrub's source side (replication/scrub.go has apply's). It hashes disks whose every write the
// agent itself takes (agent and nbd sources, and file: sources nothing scans), under the lock writes
// take, so the hashes are the disk at exactly that point of the stream; a scanned disk's file runs
// ahead of its stream, so it is not scrubbed.

// DefaultScrubPeriod is how long one full pass over every scrubbed disk takes unless told otherwise.
const DefaultScrubPeriod = 24 * time.Hour

// maxScrubSlice bounds the blocks one scrub record hashes: the writes wait while they are read, and
// apply accepts no more (replication.MaxScrubBytes).
const maxScrubSlice = replication.MaxScrubBytes

// Scrub hashes [offset, offset+length) of a disk (offset on a block) and puts the hashes into the
// stream; it returns the record's sequence.
func (a *Agent) Scrub(disk string, offset, length int64) (int64, error) {
	f, ok := a.files[disk]
	if !ok {
		return 0, fmt.Errorf("no disk %q the agent takes writes for", disk)
	}
	size := a.sizes[disk]
	if offset < 0 || offset%replication.BlockSize != 0 || length <= 0 || offset >= size || length > maxScrubSlice {
		return 0, fmt.Errorf("scrub of %s at %d for %d bytes: not a range of at most %d bytes from a block inside the disk", disk, offset, length, int64(maxScrubSlice))
	}
	length = min(length, size-offset)
	a.diffMu.Lock() // as a marker: a snapshot's diff is in the stream whole or not at all
	defer a.diffMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, fmt.Errorf("agent closed")
	}
	hashes := make([]byte, 0, 32*((length+replication.BlockSize-1)/replication.BlockSize))
	block := make([]byte, replication.BlockSize)
	for off := offset; off < offset+length; off += replication.BlockSize {
		n := min(replication.BlockSize, offset+length-off)
		if _, err := f.ReadAt(block[:n], off); err != nil && err != io.EOF {
			return 0, fmt.Errorf("scrub: reading %s at %d: %w", disk, off, err)
		}
		hashes = append(hashes, replication.BlockDigest(block[:n])...)
	}
	a.sealLocked()
	b := &replication.Batch{Group: a.cfg.Group, Kind: replication.KindScrub, Seq: a.nextSeq, SourceTime: a.cfg.Now().UTC(),
		Extents: []replication.Extent{{Disk: disk, Offset: offset, Length: length, Hashes: true, Data: hashes}}}
	a.nextSeq++
	a.queue <- b
	return b.Seq, nil
}

// Scrubber walks the scrubbed disks one slice at a time, so that every disk is covered once per
// period: each tick hashes the slice the period allots it (at least a block), the disks in turn.
type Scrubber struct {
	disks []string
	sizes map[string]int64
	next  map[string]int64 // where each disk's pass stands
	turn  int
	slice int64
}

// NewScrubber plans passes over disks (with their sizes) in period, a slice every tick.
func NewScrubber(disks []string, sizes map[string]int64, period, tick time.Duration) *Scrubber {
	var total int64
	for _, d := range disks {
		total += sizes[d]
	}
	ticks := max(int64(period/tick), 1)
	slice := (total/ticks + replication.BlockSize - 1) / replication.BlockSize * replication.BlockSize
	return &Scrubber{disks: disks, sizes: sizes, next: map[string]int64{}, slice: min(max(slice, replication.BlockSize), maxScrubSlice)}
}

// Step scrubs the next slice: it returns the disk, the range and the record's sequence.
func (s *Scrubber) Step(a *Agent) (string, int64, int64, int64, error) {
	if len(s.disks) == 0 {
		return "", 0, 0, 0, nil
	}
	disk := s.disks[s.turn%len(s.disks)]
	off := s.next[disk]
	n := min(s.slice, s.sizes[disk]-off)
	seq, err := a.Scrub(disk, off, n)
	if err != nil {
		return disk, off, n, 0, err
	}
	if s.next[disk] = off + n; s.next[disk] >= s.sizes[disk] {
		s.next[disk], s.turn = 0, s.turn+1 // a pass of this disk is done: the next disk's turn
	}
	return disk, off, n, seq, nil
}

// scrubStep runs one scrub step while the group replicates (not during a sync: the target is not yet
// the source's copy, and apply only moves past scrubs then anyway).
func (r *runner) scrubStep(ctx context.Context) {
	if r.scrubs == nil || r.syncing || ctx.Err() != nil {
		return
	}
	disk, off, n, seq, err := r.scrubs.Step(r.a)
	if err != nil {
		r.log.Warn("scrub failed", "disk", disk, "err", err)
		return
	}
	r.log.Debug("scrub", "disk", disk, "offset", off, "bytes", n, "seq", seq)
}
