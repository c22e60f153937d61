package localcompute_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/memstore"
	"github.com/standby-dr/standby/shared/testkit/snapshottest"
)

// The local compute keeps the DiskSnapshots contract over its page blobs.
func TestSnapshotsContract(t *testing.T) {
	snapshottest.Run(t, func(t *testing.T) snapshottest.Fixture {
		pages := memstore.NewPages()
		c := &localcompute.Compute{Dir: t.TempDir(), Pages: pages, Log: slog.New(slog.DiscardHandler)}
		return snapshottest.Fixture{Snapshots: c, NewDisk: func(t *testing.T, name string, size int64) snapshottest.Disk {
			ctx := context.Background()
			id, err := c.CreateDisk(ctx, "src-rg", name, size)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := localcompute.ManagedDiskBlob(id)
			return snapshottest.Disk{ID: id, Size: size, Write: func(off int64, data []byte) {
				if err := pages.WritePages(ctx, ref, off, data); err != nil {
					t.Fatal(err)
				}
			}}
		}}
	})
}
