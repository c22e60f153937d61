package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/standby-dr/standby/shared/replication"
)

// A pageblob: disk is a page blob in the source account that others write (a managed disk's export,
// an unmanaged VM disk). The agent sees its changes the way Azure's change block tracking exposes them:
// a snapshot, then the page ranges that differ from the previous snapshot. Because an emulator may
// report every allocated range as changed, the agent compares content block by block and streams only
// the blocks that really changed.

func (a *Agent) snapshotFile(key string) string {
	return filepath.Join(a.cfg.StateDir, a.cfg.Group+"."+strings.ReplaceAll(key, "/", "_")+".snapshot")
}

// blockDiffers reports, for block i of a page blob disk, the block's content at snapshot snap (nil when
// the block is unallocated there, i.e. zeros) and whether it differs from want (a BlockHash).
func (a *Agent) readBlobBlock(ctx context.Context, ref replication.DiskRef, snap string, ranges []replication.PageRange, off, n int64) ([]byte, error) {
	for _, r := range ranges {
		if r.Offset < off+n && r.End() > off {
			return a.cfg.SourcePages.ReadRange(ctx, ref, snap, off, n)
		}
	}
	return nil, nil // nothing allocated in the block
}

// syncPageBlob is Sync for one page blob disk: a snapshot, then every block that differs from the
// target (or, with no target hashes, every non-zero block). The snapshot becomes the base of the next
// change scan.
func (a *Agent) syncPageBlob(ctx context.Context, d replication.DiskRefSpec, hashes []string, compare bool) (int64, error) {
	ref := a.blobs[d.Key]
	snap, err := a.cfg.SourcePages.Snapshot(ctx, ref, "")
	if err != nil {
		return 0, err
	}
	ranges, err := a.cfg.SourcePages.AllocatedRanges(ctx, ref, snap)
	if err != nil {
		return 0, err
	}
	var sent int64
	for off := int64(0); off < d.Spec.SizeBytes; off += BlockSize {
		n := min(int64(BlockSize), d.Spec.SizeBytes-off)
		data, err := a.readBlobBlock(ctx, ref, snap, ranges, off, n)
		if err != nil {
			return sent, err
		}
		want := ""
		if i := off / BlockSize; int(i) < len(hashes) {
			want = hashes[i]
		}
		if BlockHash(data) == want || (!compare && data == nil) {
			a.progress(n, false)
			continue
		}
		a.streamBlock(d.Key, off, n, data)
		sent += n
		a.progress(n, true)
	}
	a.setBase(ctx, d.Key, snap)
	return sent, nil
}

// setBase makes snap the base of the next change scan and drops the previous base.
func (a *Agent) setBase(ctx context.Context, key, snap string) {
	a.baseMu.Lock()
	old := a.bases[key]
	a.bases[key] = snap
	a.baseMu.Unlock()
	os.WriteFile(a.snapshotFile(key), []byte(snap), 0o644)
	if old != "" && old != snap {
		a.cfg.SourcePages.DeleteSnapshot(ctx, a.blobs[key], old)
	}
}

func (a *Agent) base(key string) string {
	a.baseMu.Lock()
	defer a.baseMu.Unlock()
	return a.bases[key]
}

// scanPageBlob streams what changed in a page blob disk since its base snapshot.
func (a *Agent) scanPageBlob(ctx context.Context, d replication.DiskRefSpec) (int64, error) {
	ref := a.blobs[d.Key]
	prev := a.base(d.Key)
	snap, err := a.cfg.SourcePages.Snapshot(ctx, ref, "")
	if err != nil {
		return 0, err
	}
	if prev == "" { // learning: the next scan diffs against this snapshot
		a.setBase(ctx, d.Key, snap)
		return 0, nil
	}
	changed, err := a.cfg.SourcePages.ChangedRanges(ctx, ref, snap, prev)
	if err != nil {
		return 0, err
	}
	nowRanges, err := a.cfg.SourcePages.AllocatedRanges(ctx, ref, snap)
	if err != nil {
		return 0, err
	}
	prevRanges, err := a.cfg.SourcePages.AllocatedRanges(ctx, ref, prev)
	if err != nil {
		return 0, err
	}
	var sent int64
	done := map[int64]bool{}
	for _, r := range changed {
		for off := r.Offset / BlockSize * BlockSize; off < r.End(); off += BlockSize {
			if done[off] || off >= d.Spec.SizeBytes {
				continue
			}
			done[off] = true
			n := min(int64(BlockSize), d.Spec.SizeBytes-off)
			now, err := a.readBlobBlock(ctx, ref, snap, nowRanges, off, n)
			if err != nil {
				return sent, err
			}
			before, err := a.readBlobBlock(ctx, ref, prev, prevRanges, off, n)
			if err != nil {
				return sent, err
			}
			if BlockHash(now) == BlockHash(before) {
				continue // reported as changed, but the same content
			}
			a.streamBlock(d.Key, off, n, now)
			sent += n
		}
	}
	a.setBase(ctx, d.Key, snap)
	return sent, nil
}

// streamBlock puts a snapshot's block into the stream (nil data: the block is unallocated, zeros).
func (a *Agent) streamBlock(disk string, off, n int64, data []byte) {
	e := replication.Extent{Disk: disk, Offset: off, Length: n, Data: data, Zero: data == nil}
	a.mu.Lock()
	a.appendLocked(e)
	a.mu.Unlock()
}
