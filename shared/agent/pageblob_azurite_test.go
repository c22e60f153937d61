package agent

import (
	"context"
	"log/slog"
	"math/rand"
	"testing"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// Azurite's Get Page Ranges diff reports every allocated range, changed or not, and no cleared range:
// the agent must still stream exactly the blocks whose content changed, trims included, and the target
// must end equal to the blob.
func TestPageBlobSourceOnAzurite(t *testing.T) {
	source := pageblobs.New(testenv.BlobService(t, "source"))
	ctx := context.Background()
	rng := rand.New(rand.NewSource(11))
	container := testenv.Unique("sources")
	source.EnsureContainer(ctx, container)
	ref := replication.DiskRef{Container: container, Name: "vm0-disk0"}
	if err := source.Create(ctx, ref, 4<<20); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1 << 20, 2 << 20} { // three allocated blocks
		data := make([]byte, 1<<20)
		rng.Read(data)
		source.WritePages(ctx, ref, off, data)
	}
	p := newPipeline(t, 1, 1, 4<<20)
	p.spec.VMs[0].Disks[0].Source = "pageblob:http://127.0.0.1:10000/devstoreaccount1/" + container + "/vm0-disk0"
	a, _, err := Open(ctx, Config{Group: p.group, Disks: p.spec.Disks(), Journal: p.journal, Publisher: p.pub, SourcePages: source, StreamKey: p.key,
		StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	scanner := a.NewScanner()
	scanner.Pass(ctx)
	if _, sent, err := a.Sync(ctx, nil, false); err != nil || sent != 3<<20 {
		t.Fatalf("baseline sent %d (%v), want 3 MiB", sent, err)
	}
	small := make([]byte, 8192)
	rng.Read(small)
	source.WritePages(ctx, ref, 2<<20+65536, small)
	source.ClearPages(ctx, ref, 0, 1<<20) // a trim, which Azurite's diff does not report
	sent, err := scanner.Pass(ctx)
	if err != nil || sent != 2*BlockSize {
		t.Fatalf("scan sent %d bytes (%v), want only the two changed blocks", sent, err)
	}
	p.finishAgainst(a, source, ref, 4<<20, rng)
}
