package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/azure/pageblobs"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

type pointsPage struct {
	Points []struct {
		ID      string `json:"id"`
		Seq     int64  `json:"seq"`
		Kind    string `json:"kind"`
		Suspect string `json:"suspect"`
		Disks   []struct {
			Disk     string `json:"disk"`
			Snapshot string `json:"snapshot"`
		} `json:"disks"`
	} `json:"points"`
	Window struct {
		JournalCovers bool `json:"journalCovers"`
	} `json:"restorableWindow"`
}

func (s *stack) points(t *testing.T, group string) pointsPage {
	var page pointsPage
	_, _, body := s.app.call(t, "GET", "/api/v1/groups/"+group+"/recovery-points", "test-key", "")
	json.Unmarshal([]byte(body), &page)
	return page
}

// With the timer every 2 s and the workload running, cutpoints asks for a crash-consistent marker when
// the newest is older than the policy's 30 s; the agent puts it into the stream, apply snapshots it,
// cutpoints promotes it: points appear at the interval, and each point's disks are byte-identical to
// the ground truth recorded at its marker.
func TestRecoveryPointsAtTheInterval(t *testing.T) {
	s := newStack(t, "*/2 * * * * *")
	group, state, truth := testenv.Unique("points"), t.TempDir(), filepath.Join(t.TempDir(), "truth.jsonl")
	spec := writeSpec(t, 2, 1)
	data, _ := os.ReadFile(spec)
	os.WriteFile(spec, bytes.Replace(data, []byte(`"crashConsistentIntervalSeconds": 60`), []byte(`"crashConsistentIntervalSeconds": 30`), 1), 0o644)
	p := startAgent(t, s, "-group", group, "-spec", spec, "-state", state, "-workload-rate", "3",
		"-duration", "45s", "-truth", truth, "-batch-bytes", "1048576")
	p.wait(t, 2*time.Minute)
	if !strings.Contains(p.out.String(), "marker requested by cutpoints") {
		t.Fatalf("the agent never got a marker request:\n%s", lastLines(p.out.String(), 20))
	}
	verifyGroup(t, s, group, state, truth)
	var page pointsPage
	waitFor(t, 20*time.Second, "the final marker to be promoted", func() bool {
		page = s.points(t, group)
		return len(page.Points) >= 3 // the baseline, at least one requested at 30 s, the final one
	})
	seqs := []int64{}
	for _, pt := range page.Points {
		if pt.Kind != "crash" || len(pt.Disks) != 2 || pt.Disks[0].Snapshot == "" || pt.ID != replication.PointID(pt.Seq) {
			t.Fatalf("point %+v", pt)
		}
		seqs = append(seqs, pt.Seq)
	}
	if !page.Window.JournalCovers {
		t.Fatal("the journal does not cover the restorable window")
	}
	t.Logf("points at sequences %v", seqs)
}

// A write on VM A, then a write on VM B that depends on it: no recovery point may hold B's write
// without A's (the points are prefixes of one ordered stream across all disks of the group).
func TestPointsAreCrashConsistentAcrossVMs(t *testing.T) {
	s := newStack(t, "*/1 * * * * *")
	group := testenv.Unique("causal")
	a, _ := s.twoVMAgent(t, group)
	rng := rand.New(rand.NewSource(1))
	const records = 2048 // 2048 records of 2 KiB: 4 MiB per disk
	for i := 0; i < records; i++ {
		rec := bytes.Repeat([]byte{byte(i%255 + 1)}, 2048)
		if err := a.Write("a/d", int64(i)*2048, rec); err != nil { // the commit record...
			t.Fatal(err)
		}
		if err := a.Write("b/d", int64(i)*2048, rec); err != nil { // ...then what depends on it
			t.Fatal(err)
		}
		if rng.Intn(100) == 0 {
			a.Marker("crash", false)
		}
	}
	final := a.Marker("crash", false)
	a.Close(context.Background())
	var page pointsPage
	waitFor(t, 60*time.Second, "every marker to become a point", func() bool {
		page = s.points(t, group)
		return len(page.Points) > 0 && page.Points[0].Seq == final
	})
	if len(page.Points) < 10 {
		t.Fatalf("only %d points", len(page.Points))
	}
	pages := pageblobs.New(testenv.BlobService(t, "target"))
	ctx := context.Background()
	for _, pt := range page.Points {
		snaps := map[string]string{}
		for _, d := range pt.Disks {
			snaps[d.Disk] = d.Snapshot
		}
		ad, err := pages.ReadRange(ctx, replication.DiskIn(group+"-asr", "a/d"), snaps["a/d"], 0, 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		bd, err := pages.ReadRange(ctx, replication.DiskIn(group+"-asr", "b/d"), snaps["b/d"], 0, 4<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < records; i++ {
			if bd[i*2048] != 0 && ad[i*2048] == 0 {
				t.Fatalf("point %s holds B's record %d without A's", pt.ID, i)
			}
		}
	}
	t.Logf("%d points checked", len(page.Points))
}
