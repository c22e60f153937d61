package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Some disks the agent sees only through their snapshots, the way Azure exposes change tracking: a
// snapshot, then the page ranges that differ from the previous one.
//   - pageblob: a page blob in the source account that others write. An emulator may report every
//     allocated range as changed, so the agent compares content block by block and streams only the
//     blocks that really changed.
//   - managed: a managed disk, tracked with nothing in its guest: incremental snapshots, whose diff is
//     exact, so only the changed ranges are read. Azure allows SnapshotsPerWindow per disk in
//     SnapshotWindow: a pass waits rather than take one more.
type snapshotSource interface {
	take(ctx context.Context, name string) (string, error)
	// changed lists the ranges that differ between snap and prev (prev "": every allocated range of
	// snap); exact says it lists nothing unchanged, so content needs no comparing.
	changed(ctx context.Context, snap, prev string) (ranges []replication.PageRange, exact bool, err error)
	read(ctx context.Context, snap string, off, n int64) ([]byte, error)
	drop(ctx context.Context, snap string) error
}

// tracked is a snapshot disk's source and, for a managed disk, when its recent snapshots were taken.
// mu serialises the disk's syncs and scans: each moves the base snapshot the other diffs against.
type tracked struct {
	mu      sync.Mutex
	src     snapshotSource
	limited bool
	taken   []time.Time
}

// trackSnapshots starts tracking a snapshot disk: its source, and the snapshot its next change scan
// starts from, as the last run left it.
func (a *Agent) trackSnapshots(d replication.DiskRefSpec, t *tracked) {
	a.snaps[d.Key] = t
	if snap, err := os.ReadFile(a.snapshotFile(d.Key, "snapshot")); err == nil {
		a.bases[d.Key] = strings.TrimSpace(string(snap))
	}
}

func (a *Agent) snapshotFile(key, what string) string {
	return filepath.Join(a.cfg.StateDir, a.cfg.Group+"."+strings.ReplaceAll(key, "/", "_")+"."+what)
}

// takeSnapshot snapshots a disk. The name is recorded before the snapshot is taken and kept until the
// snapshot is the disk's base, so a run that stopped in between takes the same one again instead of
// leaving it behind. A managed disk's pass waits while Azure's rate would refuse another.
func (a *Agent) takeSnapshot(ctx context.Context, key string) (string, error) {
	t := a.snaps[key]
	if t.limited {
		now := a.cfg.Now()
		for len(t.taken) > 0 && now.Sub(t.taken[0]) >= replication.SnapshotWindow {
			t.taken = t.taken[1:]
		}
		if len(t.taken) >= replication.SnapshotsPerWindow {
			wait := t.taken[0].Add(replication.SnapshotWindow).Sub(now)
			a.cfg.Log.Info("waiting for Azure's snapshot rate", "disk", key, "wait", wait.Round(time.Second))
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(wait):
			}
			t.taken = t.taken[1:]
		}
	}
	pending := a.snapshotFile(key, "pending")
	name, err := os.ReadFile(pending)
	if err != nil {
		name = []byte(replication.TrackingSnapshotName(a.cfg.Group, key, a.cfg.Now().UnixMilli()))
		if err := os.WriteFile(pending, name, 0o644); err != nil {
			return "", err
		}
	}
	snap, err := t.src.take(ctx, strings.TrimSpace(string(name)))
	if err == nil && t.limited {
		t.taken = append(t.taken, a.cfg.Now())
	}
	return snap, err
}

// readSnapshot reads a block of a snapshot, counting what it read.
func (a *Agent) readSnapshot(ctx context.Context, key, snap string, off, n int64) ([]byte, error) {
	data, err := a.snaps[key].src.read(ctx, snap, off, n)
	if err == nil {
		a.statsMu.Lock()
		a.stats.SnapshotBytesRead += n
		a.statsMu.Unlock()
	}
	return data, err
}

// readBlock is block [off, off+n) of a snapshot: nil when nothing in it is allocated (zeros).
func (a *Agent) readBlock(ctx context.Context, key, snap string, ranges []replication.PageRange, off, n int64) ([]byte, error) {
	for _, r := range ranges {
		if r.Offset < off+n && r.End() > off {
			return a.readSnapshot(ctx, key, snap, off, n)
		}
	}
	return nil, nil
}

// syncSnapshotDisk is Sync for one snapshot disk: a snapshot, then every block that differs from the
// target (or, with no target hashes, every non-zero block). The snapshot becomes the base of the next
// change scan.
func (a *Agent) syncSnapshotDisk(ctx context.Context, d replication.DiskRefSpec, hashes []string, compare bool) (int64, error) {
	a.snaps[d.Key].mu.Lock()
	defer a.snaps[d.Key].mu.Unlock()
	snap, err := a.takeSnapshot(ctx, d.Key)
	if err != nil {
		return 0, err
	}
	ranges, _, err := a.snaps[d.Key].src.changed(ctx, snap, "")
	if err != nil {
		return 0, err
	}
	var sent int64
	for off := int64(0); off < d.Spec.SizeBytes; off += BlockSize {
		n := min(int64(BlockSize), d.Spec.SizeBytes-off)
		data, err := a.readBlock(ctx, d.Key, snap, ranges, off, n)
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
	return sent, a.setBase(ctx, d.Key, snap)
}

// setBase makes snap the base of the next change scan and drops the previous base.
func (a *Agent) setBase(ctx context.Context, key, snap string) error {
	a.baseMu.Lock()
	old := a.bases[key]
	a.bases[key] = snap
	a.baseMu.Unlock()
	if err := os.WriteFile(a.snapshotFile(key, "snapshot"), []byte(snap), 0o644); err != nil {
		return err
	}
	os.Remove(a.snapshotFile(key, "pending"))
	if old != "" && old != snap {
		if err := a.snaps[key].src.drop(ctx, old); err != nil && !errors.Is(err, replication.ErrNotFound) {
			a.cfg.Log.Warn("the previous snapshot was not deleted", "disk", key, "err", err)
		}
	}
	return nil
}

func (a *Agent) base(key string) string {
	a.baseMu.Lock()
	defer a.baseMu.Unlock()
	return a.bases[key]
}

// scanSnapshotDisk streams what changed in a snapshot disk since its base snapshot.
func (a *Agent) scanSnapshotDisk(ctx context.Context, d replication.DiskRefSpec) (int64, error) {
	a.snaps[d.Key].mu.Lock()
	defer a.snaps[d.Key].mu.Unlock()
	prev := a.base(d.Key)
	snap, err := a.takeSnapshot(ctx, d.Key)
	if err != nil {
		return 0, err
	}
	if prev == "" || prev == snap { // learning: the next scan diffs against this snapshot
		return 0, a.setBase(ctx, d.Key, snap)
	}
	changed, exact, err := a.snaps[d.Key].src.changed(ctx, snap, prev)
	if err != nil {
		return 0, err
	}
	var sent int64
	a.diffMu.RLock()
	defer a.diffMu.RUnlock()
	if exact {
		sent, err = a.streamRanges(ctx, d, snap, changed)
	} else {
		sent, err = a.streamChangedBlocks(ctx, d, snap, prev, changed)
	}
	if err != nil {
		return sent, err
	}
	return sent, a.setBase(ctx, d.Key, snap)
}

// streamRanges reads exactly the changed ranges of the snapshot and streams them.
func (a *Agent) streamRanges(ctx context.Context, d replication.DiskRefSpec, snap string, changed []replication.PageRange) (int64, error) {
	var sent int64
	for _, r := range changed {
		for off := r.Offset; off < min(r.End(), d.Spec.SizeBytes); {
			n := min(int64(BlockSize)-off%BlockSize, min(r.End(), d.Spec.SizeBytes)-off)
			data, err := a.readSnapshot(ctx, d.Key, snap, off, n)
			if err != nil {
				return sent, err
			}
			if replication.IsZero(data) {
				data = nil
			}
			a.streamBlock(d.Key, off, n, data)
			sent += n
			off += n
		}
	}
	return sent, nil
}

// streamChangedBlocks compares each block a range touches in both snapshots and streams those whose
// content differs.
func (a *Agent) streamChangedBlocks(ctx context.Context, d replication.DiskRefSpec, snap, prev string, changed []replication.PageRange) (int64, error) {
	src := a.snaps[d.Key].src
	nowRanges, _, err := src.changed(ctx, snap, "")
	if err != nil {
		return 0, err
	}
	prevRanges, _, err := src.changed(ctx, prev, "")
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
			now, err := a.readBlock(ctx, d.Key, snap, nowRanges, off, n)
			if err != nil {
				return sent, err
			}
			before, err := a.readBlock(ctx, d.Key, prev, prevRanges, off, n)
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
	return sent, nil
}

// streamBlock puts a snapshot's block into the stream (nil data: the block is unallocated, zeros).
func (a *Agent) streamBlock(disk string, off, n int64, data []byte) {
	e := replication.Extent{Disk: disk, Offset: off, Length: n, Data: data, Zero: data == nil}
	a.mu.Lock()
	a.appendLocked(e)
	a.mu.Unlock()
}
