package agent

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// managed: a managed disk, tracked with nothing in its guest: incremental snapshots, whose diff is
// exact, so only the changed ranges are read. Azure allows SnapshotsPerWindow per disk in
// SnapshotWindow: a pass waits rather than take one more.
type managedCapture struct{}

func init() { captures[replication.SourceManaged] = managedCapture{} }

func (managedCapture) open(ctx context.Context, a *Agent, d replication.DiskRefSpec, src replication.Source) error {
	if a.cfg.DiskSnapshots == nil {
		return fmt.Errorf("disk %s: a managed: source needs the source region's compute (StandbySourceCompute)", d.Key)
	}
	info, err := a.cfg.DiskSnapshots.DescribeDisk(ctx, src.Ref)
	if err != nil {
		return fmt.Errorf("disk %s: %w", d.Key, err)
	}
	if info.SizeBytes != d.Spec.SizeBytes {
		return fmt.Errorf("disk %s: the managed disk holds %d bytes, the spec says %d", d.Key, info.SizeBytes, d.Spec.SizeBytes)
	}
	a.trackSnapshots(d, &tracked{src: managedSource{a.cfg.DiskSnapshots, src.Ref}, limited: true})
	return nil
}

func (managedCapture) scan(ctx context.Context, s *Scanner, d replication.DiskRefSpec) (int64, error) {
	return s.a.scanSnapshotDisk(ctx, d)
}

func (managedCapture) exported() bool { return false }

type managedSource struct {
	snaps replication.DiskSnapshots
	disk  string
}

func (s managedSource) take(ctx context.Context, name string) (string, error) {
	return s.snaps.SnapshotDisk(ctx, s.disk, name)
}

func (s managedSource) changed(ctx context.Context, snap, prev string) ([]replication.PageRange, bool, error) {
	r, err := s.snaps.ChangedRanges(ctx, snap, prev)
	return r, true, err
}

func (s managedSource) read(ctx context.Context, snap string, off, n int64) ([]byte, error) {
	return s.snaps.ReadSnapshot(ctx, snap, off, n)
}

func (s managedSource) drop(ctx context.Context, snap string) error {
	return s.snaps.DeleteSnapshot(ctx, snap)
}
