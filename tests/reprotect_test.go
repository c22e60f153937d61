package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

const (
	reprotectDiskSize = 8 << 20 // 8 blocks of 1 MiB per disk
	reprotectBlocks   = 2 * reprotectDiskSize / replication.BlockSize
)

// writeBlock puts random bytes into part of a 1 MiB block of a page blob (what a running VM does).
func writeBlock(t *testing.T, pages *pageblobs.Store, ref replication.DiskRef, block int) {
	t.Helper()
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := pages.WritePages(context.Background(), ref, int64(block)*replication.BlockSize+128<<10, data); err != nil {
		t.Fatal(err)
	}
}

func readDisk(t *testing.T, pages *pageblobs.Store, ref replication.DiskRef) []byte {
	t.Helper()
	data, err := pages.ReadRange(context.Background(), ref, "", 0, reprotectDiskSize)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	return data
}

// differingBlocks counts the 1 MiB blocks in which two disks differ.
func differingBlocks(a, b []byte) int {
	n := 0
	for off := 0; off < len(a); off += replication.BlockSize {
		if !bytes.Equal(a[off:off+replication.BlockSize], b[off:off+replication.BlockSize]) {
			n++
		}
	}
	return n
}

// killHandlers kill -9s the apps' handlers every 400 ms for a while (devhost restarts them).
func killHandlers(d time.Duration, apps ...*testApp) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(400 * time.Millisecond) {
		for _, app := range apps {
			if pid := handlerPID(app.out.String()); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// The round trip, across both regions' deployments: the original disks are page blobs in the source
// region; a planned failover moves the group to the target region; the failed-over VMs write; reprotect
// replicates back to the original disks sending only the blocks that differ (counted against the disks
// themselves); failback (a planned failover on the peer site) brings the VMs back onto the original
// disks, holding exactly the failed-over disks' content; reprotect again resumes replication the first
// way, again sending only the blocks that differ.
func TestReprotectSendsOnlyDifferingBlocksAndFailbackRestoresTheOriginals(t *testing.T) {
	fwd, rev := newSitePair(t, "*/1 * * * * *")
	ctx := context.Background()
	group, origContainer := testenv.Unique("reprotect"), testenv.Unique("orig")
	source := pageblobs.New(testenv.BlobService(t, "source"))
	target := pageblobs.New(testenv.BlobService(t, "target"))
	if err := source.EnsureContainer(ctx, origContainer); err != nil {
		t.Fatal(err)
	}
	vms := []string{"a", "b"}
	original := func(vm string) replication.DiskRef {
		return replication.DiskRef{Container: origContainer, Name: vm + "-os"}
	}
	failedOver := func(vm string) replication.DiskRef {
		return replication.DiskIn(replication.FailoverContainer(group), vm+"/os")
	}
	type diskJSON struct {
		Name      string `json:"name"`
		SizeBytes int64  `json:"sizeBytes"`
		Source    string `json:"source"`
	}
	var spec struct {
		VMs []struct {
			Name  string     `json:"name"`
			Disks []diskJSON `json:"disks"`
		} `json:"vms"`
	}
	for _, vm := range vms {
		// The original disks are what Azure VMs' unmanaged disks are: fixed VHDs (reprotect writes them).
		if err := replication.CreateFixedVHD(ctx, source, original(vm), reprotectDiskSize, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, b := range []int{0, 3, 5} {
			writeBlock(t, source, original(vm), b)
		}
		spec.VMs = append(spec.VMs, struct {
			Name  string     `json:"name"`
			Disks []diskJSON `json:"disks"`
		}{vm, []diskJSON{{"os", reprotectDiskSize, "pageblob:" + source.URL(original(vm))}}})
	}
	specFile := filepath.Join(t.TempDir(), "spec.json")
	writeJSON(t, specFile, spec)

	// Forward replication; the VMs write more; a planned failover (the agent's last scan finds those).
	stateFwd := t.TempDir()
	agentFwd := startAgent(t, fwd, "-group", group, "-spec", specFile, "-state", stateFwd, "-scan-interval", "300ms", "-marker-interval", "1s")
	waitFor(t, 60*time.Second, "the group to be protected with a point", func() bool {
		_, _, body := fwd.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "Protected"`) && strings.Contains(body, `"lastRecoveryPoint"`)
	})
	writeBlock(t, source, original("a"), 6)
	writeBlock(t, source, original("b"), 1)
	fwd.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 2*time.Minute)
	agentFwd.wait(t, 30*time.Second)
	for _, vm := range vms {
		if !bytes.Equal(readDisk(t, target, failedOver(vm)), readDisk(t, source, original(vm))) {
			t.Fatalf("after the planned failover %s's failed-over disk differs from its original", vm)
		}
	}
	if status, _, body := fwd.app.call(t, "POST", "/api/v1/groups/"+group+"/reprotect", "test-key", ""); status != 409 ||
		!strings.Contains(body, "reprotect needs a committed failover; the group is FailedOver: commit it first") {
		t.Fatalf("reprotect before commit: %d %s", status, body)
	}
	fwd.runJob(t, "/api/v1/groups/"+group+"/commit", "", time.Minute)

	// The failed-over VMs run and write; one original disk took a stray write after the failover.
	writeBlock(t, target, failedOver("a"), 1)
	writeBlock(t, target, failedOver("a"), 3)
	writeBlock(t, target, failedOver("b"), 7)
	writeBlock(t, source, original("b"), 2)
	want := 0
	for _, vm := range vms {
		want += differingBlocks(readDisk(t, target, failedOver(vm)), readDisk(t, source, original(vm)))
	}
	if want != 4 {
		t.Fatalf("the test's own writes make %d differing blocks, want 4", want)
	}

	// Reprotect: the reversed group appears on the peer; the agent on the failed-over VMs replicates.
	reprotect := fwd.postJob(t, "/api/v1/groups/"+group+"/reprotect", "")
	waitFor(t, 30*time.Second, "the reversed group on the peer site", func() bool {
		status, _, _ := rev.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return status == 200
	})
	killHandlers(2*time.Second, fwd.app) // the job's steps resume after each kill
	agentRev := startAgent(t, rev, "-group", group, "-state", t.TempDir(), "-scan-interval", "300ms", "-marker-interval", "1s")
	job := fwd.awaitJob(t, reprotect, 2*time.Minute)
	if got := job.Result["blocksSent"]; got != strconv.Itoa(want) || job.Result["blocksCompared"] != strconv.Itoa(reprotectBlocks) {
		t.Fatalf("reprotect sent %s of %s blocks, want %d of %d", got, job.Result["blocksCompared"], want, reprotectBlocks)
	}
	t.Logf("reprotect: %s", job.Steps[1].Outcome)
	_, _, body := fwd.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"state": "Reprotected"`) {
		t.Fatalf("group after reprotect: %s", body)
	}
	for _, vm := range vms { // the reverse target (the original disk) caught up with the failed-over disk
		waitFor(t, 30*time.Second, vm+"'s original disk to converge", func() bool {
			return bytes.Equal(readDisk(t, target, failedOver(vm)), readDisk(t, source, original(vm)))
		})
	}

	// More writes while replicating back, then failback: the peer's planned failover.
	writeBlock(t, target, failedOver("b"), 4)
	writeBlock(t, target, failedOver("a"), 0)
	failback := fwd.postJob(t, "/api/v1/groups/"+group+"/failback", "")
	killHandlers(2*time.Second, fwd.app, rev.app) // both sites' jobs resume after each kill
	fb := fwd.awaitJob(t, failback, 2*time.Minute)
	agentRev.wait(t, 30*time.Second)
	if fb.Result["inPlace"] != "true" || fb.Result["container"] != origContainer {
		t.Fatalf("failback did not come back onto the original disks: %v", fb.Result)
	}
	for _, vm := range vms {
		if !bytes.Equal(readDisk(t, source, original(vm)), readDisk(t, target, failedOver(vm))) {
			t.Fatalf("after failback %s's original disk differs from the failed-over disk", vm)
		}
		for _, check := range []struct {
			pages *pageblobs.Store
			ref   replication.DiskRef
		}{{source, original(vm)}, {target, failedOver(vm)}} { // both still importable fixed VHDs
			if err := replication.CheckFixedVHD(ctx, check.pages, check.ref, reprotectDiskSize); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, _, body = fwd.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"state": "FailedBack"`) {
		t.Fatalf("group after failback: %s", body)
	}
	_, _, body = rev.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
	if !strings.Contains(body, `"state": "FailedOver"`) {
		t.Fatalf("the reversed group after failback: %s", body)
	}
	if status, _, body := fwd.app.call(t, "POST", "/api/v1/groups/"+group+"/failback", "test-key", ""); status != 409 ||
		!strings.Contains(body, "failback needs a Reprotected group (replicating back); it is FailedBack") {
		t.Fatalf("a second failback: %d %s", status, body)
	}

	// Reprotect again: replication resumes the first way; the agent (its state kept across the round
	// trip) compares the original disks with the replicas, which still hold the failover's point.
	replica := func(vm string) replication.DiskRef {
		return replication.DiskIn(group+"-asr", vm+"/os")
	}
	want = 0
	for _, vm := range vms {
		want += differingBlocks(readDisk(t, target, replica(vm)), readDisk(t, source, original(vm)))
	}
	forward := fwd.postJob(t, "/api/v1/groups/"+group+"/reprotect", "")
	waitFor(t, 30*time.Second, "the group to await a resync", func() bool {
		_, _, body := fwd.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return strings.Contains(body, `"state": "ResyncRequired"`)
	})
	startAgent(t, fwd, "-group", group, "-state", stateFwd, "-scan-interval", "300ms", "-marker-interval", "1s")
	job = fwd.awaitJob(t, forward, 2*time.Minute)
	if job.Result["blocksSent"] != strconv.Itoa(want) || job.Result["blocksCompared"] != strconv.Itoa(reprotectBlocks) {
		t.Fatalf("reprotect after failback sent %s of %s blocks, want %d of %d", job.Result["blocksSent"], job.Result["blocksCompared"], want, reprotectBlocks)
	}
	t.Logf("reprotect after failback: %s", job.Steps[2].Outcome)
	if status, _, body := rev.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", ""); status != 404 {
		t.Fatalf("the reversed group after reprotecting forward: %d %s", status, body)
	}
	writeBlock(t, source, original("b"), 5) // the VMs run at home again
	for _, vm := range vms {
		waitFor(t, 30*time.Second, vm+"'s replica to converge", func() bool {
			return bytes.Equal(readDisk(t, target, replica(vm)), readDisk(t, source, original(vm)))
		})
	}
}
