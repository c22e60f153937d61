package agent

import (
	"context"
	"errors"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// BlockSize and BlockHash are the domain's: the target side computes the same hashes.
const BlockSize = replication.BlockSize

// BlockHash is replication.BlockHash.
func BlockHash(block []byte) string { return replication.BlockHash(block) }

// TargetHashes returns the target's block hashes of a disk (nil: the target is known to be all zeros).
type TargetHashes func(ctx context.Context, disk string) ([]string, error)

// Sync brings the target to the source through the stream: every block whose hash differs from the
// target's goes into the stream as it is on the source now, interleaved with live writes (each block is
// read under the write lock, so a later write always follows it in the stream), then a baseline marker.
// With target nil it is the initial replication (the target starts all zeros); otherwise a resync, which
// starts with a resync batch when resync is set (the group stopped on a gap) and sends only the
// differing blocks, like Site Recovery's checksum-based resync.
func (a *Agent) Sync(ctx context.Context, target TargetHashes, resync bool) (marker int64, sent int64, err error) {
	if resync {
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			return 0, 0, errors.New("agent closed")
		}
		a.sealLocked()
		r := &replication.Batch{Group: a.cfg.Group, Kind: replication.KindResync, Seq: a.nextSeq, SourceTime: a.cfg.Now().UTC()}
		a.nextSeq++
		a.queue <- r
		a.mu.Unlock()
	}
	var total int64
	for _, d := range a.cfg.Disks {
		total += d.Spec.SizeBytes
	}
	a.statsMu.Lock()
	a.stats.BaselineTotal, a.stats.BaselineDone, a.stats.syncStart = total, 0, time.Now()
	a.stats.BaselineBlocks, a.stats.BaselineBlocksSent = 0, 0
	a.statsMu.Unlock()
	block := make([]byte, BlockSize)
	for _, d := range a.cfg.Disks {
		var hashes []string
		if target != nil {
			if hashes, err = target(ctx, d.Key); err != nil {
				return 0, sent, err
			}
		}
		if _, snapshotted := a.snaps[d.Key]; snapshotted {
			n, err := a.syncSnapshotDisk(ctx, d, hashes, target != nil)
			sent += n
			if err != nil {
				return 0, sent, err
			}
			continue
		}
		f := a.files[d.Key]
		for off := int64(0); off < d.Spec.SizeBytes; off += BlockSize {
			if err := ctx.Err(); err != nil {
				return 0, sent, err
			}
			n := min(int64(BlockSize), d.Spec.SizeBytes-off)
			buf := block[:n]
			if _, err := f.ReadAt(buf, off); err != nil {
				return 0, sent, err
			}
			want := ""
			if i := off / BlockSize; int(i) < len(hashes) {
				want = hashes[i]
			}
			differs := BlockHash(buf) != want
			if differs {
				// Read again under the lock: this copy takes its place in the stream.
				a.mu.Lock()
				data := make([]byte, n)
				_, err := f.ReadAt(data, off)
				if err == nil {
					a.appendLocked(replication.Extent{Disk: d.Key, Offset: off, Length: n, Data: data})
				}
				a.mu.Unlock()
				if err != nil {
					return 0, sent, err
				}
				sent += n
			}
			a.progress(n, differs)
		}
	}
	marker = a.Marker("crash", true)
	a.cfg.Log.Info("baseline complete", "seq", marker, "bytesSent", sent, "resync", target != nil)
	return marker, sent, nil
}

// progress counts a sync's block of n bytes, compared and (when sent) streamed.
func (a *Agent) progress(n int64, sent bool) {
	a.statsMu.Lock()
	defer a.statsMu.Unlock()
	a.stats.BaselineDone += n
	a.stats.BaselineBlocks++
	if sent {
		a.stats.BaselineBlocksSent++
	}
	if s := time.Since(a.stats.syncStart).Seconds(); s > 0 {
		a.stats.BaselineRate = float64(a.stats.BaselineDone) / s
	}
}
