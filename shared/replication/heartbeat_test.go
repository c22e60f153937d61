package replication_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// agentsOfGroup is the agents' service over a fresh store with group g1 enabled: one disk of size bytes.
func agentsOfGroup(t *testing.T, size int64) (*replication.Agents, *memstore.State, *memstore.Pages) {
	t.Helper()
	state, pages := memstore.NewState(), memstore.NewPages()
	deps := replication.Deps{State: state, Pages: pages, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: size, Source: "agent"}}}}}
	if _, _, err := (&replication.Groups{Deps: deps}).Enable(context.Background(), "g1", spec); err != nil {
		t.Fatal(err)
	}
	return &replication.Agents{Deps: deps}, state, pages
}

// Block hashes come in pages, so that no call reads more than a page's blocks whatever the disk's size.
func TestBlockHashesComeInPages(t *testing.T) {
	ctx := context.Background()
	s, _, pages := agentsOfGroup(t, 3<<20)
	g, _ := s.Load(ctx, "g1")
	pages.WritePages(ctx, g.TargetDisk("vm/d"), 2<<20, bytes.Repeat([]byte{9}, 4096))
	first, err := s.BlockHashes(ctx, "g1", "vm", "d", 0, 2)
	if err != nil || first.Blocks != 3 || first.From != 0 || len(first.Hashes) != 2 || first.Next == nil || *first.Next != 2 || first.Hashes[0] != "" {
		t.Fatalf("first page = %+v, %v", first, err)
	}
	last, err := s.BlockHashes(ctx, "g1", "vm", "d", *first.Next, 2)
	block := make([]byte, replication.BlockSize) // the last block, not the VHD footer after it
	copy(block, bytes.Repeat([]byte{9}, 4096))
	if err != nil || len(last.Hashes) != 1 || last.Next != nil || last.Hashes[0] != replication.BlockHash(block) {
		t.Fatalf("last page = %+v, %v", last, err)
	}
	for _, c := range [][2]int64{{0, 0}, {0, replication.MaxHashBlocks + 1}, {-1, 1}, {4, 1}} {
		if _, err := s.BlockHashes(ctx, "g1", "vm", "d", c[0], c[1]); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("from %d count %d: %v", c[0], c[1], err)
		}
	}
}

// A forged heartbeat cannot end a planned failover early: a "stopped" report whose final sequence is
// below what the agent already reported is ignored, and a sequence far past what was applied is refused.
func TestForgedStopReportIsIgnored(t *testing.T) {
	ctx := context.Background()
	s, state, _ := agentsOfGroup(t, 1<<20)
	if _, err := s.Heartbeat(ctx, "g1", replication.AgentReport{Seq: 89}); err != nil {
		t.Fatal(err)
	}
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.StopRequested = true; return nil })
	if _, err := s.Heartbeat(ctx, "g1", replication.AgentReport{Seq: 1, Stopped: true}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Load(ctx, "g1"); g.Record.AgentStoppedSeq != 0 {
		t.Fatalf("a stop at 1 after the agent reported 89 was believed: %d", g.Record.AgentStoppedSeq)
	}
	if _, err := s.Heartbeat(ctx, "g1", replication.AgentReport{Seq: 1 << 62}); !errors.Is(err, replication.ErrInvalid) {
		t.Fatalf("a sequence far past what was applied: %v", err)
	}
	if _, err := s.Heartbeat(ctx, "g1", replication.AgentReport{Seq: 90, Stopped: true}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Load(ctx, "g1"); g.Record.AgentStoppedSeq != 90 || g.Record.AgentSeq != 90 {
		t.Fatalf("the agent's own stop: stopped %d, agent seq %d", g.Record.AgentStoppedSeq, g.Record.AgentSeq)
	}
}

// The agent's last error is kept as its report says it, redacted and bounded.
func TestTheAgentsLastErrorIsKeptRedacted(t *testing.T) {
	ctx := context.Background()
	s, _, _ := agentsOfGroup(t, 1<<20)
	report := "storing batch: PUT https://a.blob.core.windows.net/journal/g1/1.batch?sv=2024&sig=SECRETSIG failed " + strings.Repeat("x", 2000)
	if _, err := s.Heartbeat(ctx, "g1", replication.AgentReport{Seq: 1, LastError: report}); err != nil {
		t.Fatal(err)
	}
	g, _ := s.Load(ctx, "g1")
	if e := g.Record.AgentLastError; strings.Contains(e, "SECRETSIG") || !strings.HasPrefix(e, "storing batch: PUT https://a.blob.core.windows.net/journal/g1/1.batch") || len(e) > 600 {
		t.Fatalf("the last error kept: %q", e)
	}
}
