package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/agent"
	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// Agentless tracking on Azurite: another process (this test) writes a managed disk's page blob in the
// source region; the agent, with nothing in the guest, takes incremental snapshots through the local
// compute and reads only the pages each diff lists. After a planned failover the failed-over disk equals
// the managed disk byte for byte, and the bytes the agent read are the baseline's allocated blocks plus
// exactly the bytes changed, which the test finds by comparing the disk before and after each round.
func TestManagedDiskTrackedAgentless(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, "*/1 * * * * *")
	group, dir := testenv.Unique("agentless"), t.TempDir()
	source := pageblobs.New(testenv.BlobService(t, "source"))
	compute := &localcompute.Compute{Dir: filepath.Join(dir, "compute"), Pages: source, Log: slog.New(slog.DiscardHandler)}
	const size = 16 << 20
	disk, err := compute.CreateDisk(ctx, group+"-rg", "data", size)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := localcompute.ManagedDiskBlob(disk)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for _, mib := range []int64{0, 5, 11} { // the baseline reads these three blocks and nothing else
		data := make([]byte, 1<<20)
		rng.Read(data)
		if err := source.WritePages(ctx, ref, mib<<20, data); err != nil {
			t.Fatal(err)
		}
	}
	spec := filepath.Join(dir, "spec.json")
	writeJSON(t, spec, map[string]any{"vms": []any{map[string]any{"name": "vm0", "disks": []any{
		map[string]any{"name": "data", "sizeBytes": size, "source": "managed:" + disk}}}}})
	// A scan every 15 s keeps the run's snapshots within Azure's seven per five minutes.
	p := startAgentWith(t, s, []string{"StandbySourceCompute=UseLocalCompute=true;Dir=" + compute.Dir},
		"-group", group, "-spec", spec, "-state", filepath.Join(dir, "agent"), "-scan-interval", "15s", "-marker-interval", "1s", "-duration", "5m")
	awaitGroupState(t, s, group, "Protected", 90*time.Second)
	changed, used := int64(0), map[int64]bool{}
	for round := 1; round <= 2; round++ {
		before, err := source.ReadRange(ctx, ref, "", 0, size)
		if err != nil {
			t.Fatal(err)
		}
		// Each round changes pages no earlier round touched, so every change is in exactly one
		// snapshot diff however the scans fall.
		for i := 0; i < 24; i++ {
			off, n := freeRange(rng, used, size)
			if rng.Intn(5) == 0 {
				err = source.ClearPages(ctx, ref, off, n)
			} else {
				data := make([]byte, n)
				rng.Read(data)
				err = source.WritePages(ctx, ref, off, data)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		after, _ := source.ReadRange(ctx, ref, "", 0, size)
		for off := 0; off < size; off += replication.PageSize {
			if !bytes.Equal(before[off:off+replication.PageSize], after[off:off+replication.PageSize]) {
				changed += replication.PageSize
			}
		}
		waitFor(t, 60*time.Second, "a scan", func() bool { return strings.Count(p.out.String(), "changes found by scanning") >= round })
	}
	job := s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 7*time.Minute)
	p.wait(t, 30*time.Second)
	want, _ := source.ReadRange(ctx, ref, "", 0, size)
	got, err := pageblobs.New(testenv.BlobService(t, "target")).ReadRange(ctx, replication.DiskIn(group+"-failover", "vm0/data"), "", 0, size)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the failed-over disk differs from the managed disk (%v)", err)
	}
	var sum agent.Summary
	for _, line := range strings.Split(p.out.String(), "\n") {
		if strings.HasPrefix(line, `{"batches"`) {
			json.Unmarshal([]byte(line), &sum)
		}
	}
	if sum.SnapshotBytesRead != 3<<20+changed {
		t.Fatalf("the agent read %d bytes of snapshots, want the baseline's 3 MiB and the %d bytes changed", sum.SnapshotBytesRead, changed)
	}
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"mode": "managed"`) || !strings.Contains(body, `"crashConsistent": false`) {
		t.Fatalf("the group's view does not show the agentless capture: %s", body)
	}
	t.Logf("point %s: %d bytes changed over 2 rounds, %d read from snapshots (3 MiB of them the baseline); the failed-over disk equals the managed disk",
		job.Point, changed, sum.SnapshotBytesRead)
}

// freeRange picks 1-128 pages at a random page no earlier pick touched, and marks them used.
func freeRange(rng *rand.Rand, used map[int64]bool, size int64) (int64, int64) {
	for {
		pages := int64(1 + rng.Intn(128))
		first := rng.Int63n(size/replication.PageSize - pages)
		free := true
		for p := first; p < first+pages && free; p++ {
			free = !used[p]
		}
		if !free {
			continue
		}
		for p := first; p < first+pages; p++ {
			used[p] = true
		}
		return first * replication.PageSize, pages * replication.PageSize
	}
}
