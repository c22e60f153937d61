package agent

import (
	"context"
	"fmt"

	"github.com/standby-dr/standby/shared/replication"
)

// pageblob: a page blob in the source account that others write, seen through its snapshots. An
// emulator may report every allocated range as changed, so the agent compares content block by block
// and streams only the blocks that really changed.
type pageBlobCapture struct{}

func init() { captures[replication.SourcePageBlob] = pageBlobCapture{} }

func (pageBlobCapture) open(_ context.Context, a *Agent, d replication.DiskRefSpec, src replication.Source) error {
	ref, err := replication.PageBlobRef(src.String())
	if err != nil {
		return fmt.Errorf("disk %s: %w", d.Key, err)
	}
	if a.cfg.SourcePages == nil {
		return fmt.Errorf("disk %s: a pageblob: source needs the source account (StandbySourceStorage)", d.Key)
	}
	a.trackSnapshots(d, &tracked{src: pageBlobSource{a.cfg.SourcePages, ref}})
	return nil
}

func (pageBlobCapture) scan(ctx context.Context, s *Scanner, d replication.DiskRefSpec) (int64, error) {
	return s.a.scanSnapshotDisk(ctx, d)
}

func (pageBlobCapture) exported() bool { return false }

type pageBlobSource struct {
	pages replication.PageStore
	ref   replication.DiskRef
}

func (s pageBlobSource) take(ctx context.Context, _ string) (string, error) {
	return s.pages.Snapshot(ctx, s.ref, "")
}

func (s pageBlobSource) changed(ctx context.Context, snap, prev string) ([]replication.PageRange, bool, error) {
	if prev == "" {
		r, err := s.pages.AllocatedRanges(ctx, s.ref, snap)
		return r, false, err
	}
	r, err := s.pages.ChangedRanges(ctx, s.ref, snap, prev)
	return r, false, err
}

func (s pageBlobSource) read(ctx context.Context, snap string, off, n int64) ([]byte, error) {
	return s.pages.ReadRange(ctx, s.ref, snap, off, n)
}

func (s pageBlobSource) drop(ctx context.Context, snap string) error {
	return s.pages.DeleteSnapshot(ctx, s.ref, snap)
}
