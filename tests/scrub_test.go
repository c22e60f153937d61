package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// A target block changed behind apply's back (its blob's lease broken, as a storage-level accident
// ignores it) is found by the scrub at its place in the stream: the alert names the block, the points
// that may hold it are marked suspect, the group stops, and the agent's checksum resync repairs it; the
// planned failover after it equals the source. It logs scrub_detect_s, from the damage to the alert,
// with the agent scrubbing both 16 MiB disks every 8 s.
func TestScrubFindsAndRepairsTargetDamage(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group, state := testenv.Unique("scrub"), t.TempDir()
	spec := writeSpec(t, 1, 2)
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", state, "-workload-rate", "1", "-duration", "4m",
		"-scrub-period", "8s", "-scrub-tick", "250ms", "-marker-interval", "2s")
	var view string
	waitFor(t, 60*time.Second, "a clean scrub pass over both disks of the protected group", func() bool {
		_, _, view = s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		g := groupViewOf(view)
		return g.State == "Protected" && len(g.Scrub) == 2 && g.Scrub[0].LastFullPass != nil && g.Scrub[1].LastFullPass != nil &&
			g.Scrub[0].LastPassClean && g.Scrub[1].LastPassClean
	})
	// The damage: one byte of every 4 KiB page of block 3 of disk1 flipped on the target (so a workload
	// write over part of it leaves the rest).
	ctx := context.Background()
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	ref := replication.DiskIn(group+"-asr", "vm0/disk1")
	block, err := pages.ReadRange(ctx, ref, "", 3*replication.BlockSize, replication.BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(block); i += 4096 {
		block[i] ^= 0xA5
	}
	if err := pages.BreakLease(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := pages.WritePages(ctx, ref, 3*replication.BlockSize, block); err != nil {
		t.Fatal(err)
	}
	damaged := time.Now()
	var events string
	waitFor(t, 60*time.Second, "the scrub's alert", func() bool {
		_, _, events = s.app.call(t, "GET", "/api/v1/groups/"+group+"/events", "test-key", "")
		return strings.Contains(events, "scrub-mismatch raised")
	})
	detect := time.Since(damaged)
	if !strings.Contains(events, "disk vm0/disk1: block 3 (1 MiB each)") {
		t.Fatalf("the alert does not name the block:\n%s", events)
	}
	waitFor(t, 90*time.Second, "the resync to repair the group", func() bool {
		_, _, view = s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", "")
		return groupViewOf(view).State == "Protected"
	})
	g := groupViewOf(view)
	if g.Scrub[1].Mismatches == 0 || !strings.Contains(g.Scrub[1].LastMismatch, "block 3") {
		t.Fatalf("the view's scrub: %+v", g.Scrub)
	}
	suspect := 0
	for _, pt := range s.points(t, group).Points {
		if pt.Suspect != "" {
			suspect++
		}
	}
	if suspect == 0 {
		t.Fatal("no recovery point is marked suspect")
	}
	// The planned failover after the repair equals the source.
	if status, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group, "test-key", ""); status != http.StatusOK {
		t.Fatal(body)
	}
	s.runJob(t, "/api/v1/groups/"+group+"/failover", `{"type":"planned"}`, 2*time.Minute)
	p.wait(t, 30*time.Second)
	compareWithSources(t, spec, group+"-failover")
	t.Logf("scrub_detect_s %.1f (a pass over 32 MiB every 8 s); %d points marked suspect", detect.Seconds(), suspect)
}
