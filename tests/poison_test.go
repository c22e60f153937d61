package tests

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/azure/tables"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/broker"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// One group's fault stays in that group although groups share a hub partition (issue 29, part 1):
// while a victim group replicates, its partition gets a marker with a 200 KB journal field (unsigned), a
// 200 KB event that is no descriptor at all, an unsigned descriptor for the victim, and a second group
// on the same partition loses its target disk. After each, the victim's watermark moves again within
// seconds; the second group stops with the reason in its view; the victim's disks and marker snapshots
// are byte-identical to the source's.
func TestPoisonOnASharedPartitionStopsOnlyItsGroup(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	ctx := context.Background()
	victim := testenv.Unique("victim")
	partitions := 4 // infra/local/broker.json: the changes hub
	broken := testenv.Unique("broken")
	for broker.PartitionFor(broken, partitions) != broker.PartitionFor(victim, partitions) {
		broken = testenv.Unique("broken")
	}
	state, truth := t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	p := startAgent(t, s, "-group", victim, "-spec", writeSpec(t, 1, 2), "-state", state, "-workload-rate", "2",
		"-duration", "40s", "-marker-interval", "700ms", "-truth", truth)
	q := startAgent(t, s, "-group", broken, "-spec", writeSpec(t, 1, 1), "-state", t.TempDir(), "-workload-rate", "1",
		"-duration", "40s", "-marker-interval", "700ms")
	awaitGroupState(t, s, victim, "Protected", time.Minute)
	awaitGroupState(t, s, broken, "Protected", time.Minute)
	br := s.app.broker(t)
	moves := func(what string) {
		t.Helper()
		_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+victim, "test-key", "")
		before := watermark(body)
		waitFor(t, 10*time.Second, "the victim's watermark to move after "+what, func() bool {
			_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+victim, "test-key", "")
			return watermark(body) > before
		})
	}
	publish := func(body []byte) {
		t.Helper()
		if _, err := br.Publish(ctx, "changes", victim, []broker.Event{{Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("j", 200<<10)
	forged, _ := json.Marshal(map[string]any{"group": victim, "seq": 1 << 40, "kind": "marker", "consistency": "crash",
		"sourceTime": time.Now().UTC(), "journal": long})
	publish(forged)
	moves("a marker with a 200 KB journal field")
	publish([]byte(long))
	moves("a 200 KB event that is no descriptor")
	unsigned, _ := json.Marshal(replication.Descriptor{Group: victim, Seq: 1 << 40, Kind: replication.KindMarker, Consistency: "crash", SourceTime: time.Now().UTC()})
	publish(unsigned)
	moves("an unsigned descriptor for the victim")

	// The second group's target disk is deleted (by hand, by accident): it stops, alone.
	g, err := replication.LoadGroup(ctx, tables.New(testenv.TableService(t, "target")), broken)
	if err != nil {
		t.Fatal(err)
	}
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	if err := pages.BreakLease(ctx, g.TargetDisk("vm0/disk0")); err != nil { // apply's lease: an operator breaks it to delete
		t.Fatal(err)
	}
	if err := pages.Delete(ctx, g.TargetDisk("vm0/disk0")); err != nil {
		t.Fatal(err)
	}
	moves("the second group's target disk was deleted")
	awaitGroupState(t, s, broken, "ResyncRequired", time.Minute)
	if _, _, body := s.app.call(t, "GET", "/api/v1/groups/"+broken, "test-key", ""); !strings.Contains(body, "a target disk of the group is gone") {
		t.Fatalf("the stopped group's view does not say why:\n%s", body)
	}
	moves("the second group stopped")
	p.wait(t, time.Minute)
	q.cmd.Process.Kill()
	verifyGroup(t, s, victim, state, truth)
}
