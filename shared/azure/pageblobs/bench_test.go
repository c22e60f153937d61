package pageblobs_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// BenchmarkFigure_raw_put_page_mb_per_s: 64 MiB of 4 MiB Put Page calls, one at a time, to the target
// Azurite: the raw storage path the replication benchmarks compare against.
func BenchmarkFigure_raw_put_page_mb_per_s(b *testing.B) {
	store := pageblobs.New(testenv.BlobService(b, "target"))
	ctx := context.Background()
	container := testenv.Unique("bench")
	if err := store.EnsureContainer(ctx, container); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, replication.MaxPageWrite)
	rand.Read(data)
	const total = 64 << 20
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		disk := replication.DiskRef{Container: container, Name: testenv.Unique("disk")}
		if err := store.Create(ctx, disk, total); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for off := int64(0); off < total; off += int64(len(data)) {
			if err := store.WritePages(ctx, disk, off, data); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
		store.Delete(ctx, disk)
	}
	b.ReportMetric(float64(total*b.N)/(1<<20)/elapsed.Seconds(), "MB/s")
}
