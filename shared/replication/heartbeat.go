package replication

import (
	"context"
	"fmt"
	"time"
)

// AgentReport is the agent's heartbeat.
type AgentReport struct {
	Seq int64 `json:"seq"`
	// Stopped: the agent stopped taking writes as told (planned failover) and Seq is its last.
	Stopped            bool    `json:"stopped"`
	BaselineDoneBytes  int64   `json:"baselineDoneBytes"`
	BaselineTotalBytes int64   `json:"baselineTotalBytes"`
	BaselineRateBps    float64 `json:"baselineRateBytesPerSecond"`
	// The sync's blocks compared so far and those found different and sent.
	BaselineBlocks     int64 `json:"baselineBlocks"`
	BaselineBlocksSent int64 `json:"baselineBlocksSent"`
	// LastError is the last error the agent met, with its time (kept redacted, at most 512 bytes).
	LastError string `json:"lastError,omitempty"`
}

// AgentInstructions is the heartbeat's answer: what the agent must do.
type AgentInstructions struct {
	State     State  `json:"state"`
	Reason    string `json:"reason,omitempty"`
	Watermark int64  `json:"watermark"`
	// Resync asks for a checksum resync starting with a resync batch (the group stopped at a gap).
	Resync bool `json:"resync"`
	// Stop asks the agent to stop taking writes, flush, mark the end and report (planned failover).
	Stop bool `json:"stop"`
	// MarkerRequestedAt, when set, asks for a crash-consistent marker (once per distinct time).
	MarkerRequestedAt *time.Time `json:"markerRequestedAt,omitempty"`
	// AppMarkerRequestedAt asks for an app-consistent marker: hooks, marker, hooks (once per time).
	AppMarkerRequestedAt *time.Time `json:"appMarkerRequestedAt,omitempty"`
}

// DiskHashes is one page of a disk's block checksums on the target (for the agent's checksum resync):
// the blocks From to From+len(Hashes)-1 of Blocks. Next is the first block of the next page (absent on
// the last): a 4 TiB disk has four million blocks, far more than one call may read within Azure's 230 s
// cap on an HTTP-triggered call.
type DiskHashes struct {
	BlockSize int64    `json:"blockSize"`
	Blocks    int64    `json:"blocks"`
	From      int64    `json:"from"`
	Hashes    []string `json:"hashes"`
	Next      *int64   `json:"next,omitempty"`
}

// maxRateBps bounds a reported rate (100 GB/s: far past any disk).
const maxRateBps = 100e9

// MaxSeqAhead bounds how far an agent's reported sequence may run ahead of what was applied (a
// backlog of a million batches is days of writes): a larger one is no agent's.
const MaxSeqAhead = 1 << 20

// MaxHashBlocks bounds one page of block hashes: 1 GiB read from the target, seconds at page-blob speed.
const MaxHashBlocks = 1024

// Heartbeat records an agent's report and answers what the agent must do: the group's state and
// watermark, a resync, a planned failover's stop, and the markers cutpoints asked for.
func (s *Agents) Heartbeat(ctx context.Context, group string, rep AgentReport) (AgentInstructions, error) {
	if rep.Seq < 0 || rep.BaselineDoneBytes < 0 || rep.BaselineTotalBytes < rep.BaselineDoneBytes || rep.BaselineBlocksSent < 0 || rep.BaselineBlocks < rep.BaselineBlocksSent {
		return AgentInstructions{}, fmt.Errorf("%w: invalid agent report: seq and counts must be non-negative, done bytes <= total and blocks sent <= blocks compared", ErrInvalid)
	}
	// Every number stored is one the views can divide by and encode: no NaN, no infinity, no overflow.
	if !(rep.BaselineRateBps >= 0 && rep.BaselineRateBps <= maxRateBps) || rep.BaselineTotalBytes > MaxVMsPerGroup*MaxDisksPerVM*MaxDiskSize {
		return AgentInstructions{}, fmt.Errorf("%w: invalid agent report: baselineRateBps must be 0..%g and baselineTotalBytes at most the group's largest size", ErrInvalid, float64(maxRateBps))
	}
	if rep.BaselineRateBps > 0 && rep.BaselineRateBps < 1 {
		rep.BaselineRateBps = 0 // below a byte a second: no ETA rather than one of millennia
	}
	if err := s.admissible(group); err != nil { // UpdateGroup answers ErrNoGroup for a missing one
		return AgentInstructions{}, err
	}
	now := s.now()
	rec, err := UpdateGroup(ctx, s.State, group, AgentRow, func(g *GroupRecord) error {
		if rep.Seq > g.Watermark+MaxSeqAhead {
			return fmt.Errorf("%w: seq %d is more than %d batches past what was applied (%d)", ErrInvalid, rep.Seq, MaxSeqAhead, g.Watermark)
		}
		// A final sequence below what the agent (or apply) already had is not the agent's: a planned
		// failover believing it would lose the writes in between.
		if rep.Stopped && g.StopRequested && rep.Seq >= g.AgentSeq && rep.Seq >= g.Watermark {
			g.AgentStoppedSeq = rep.Seq
		} else if rep.Stopped && g.StopRequested {
			s.Log.Warn("stop report ignored: its final sequence is below one seen", "group", group, "seq", rep.Seq, "agentSeq", g.AgentSeq, "watermark", g.Watermark)
		}
		g.AgentSeq = max(g.AgentSeq, rep.Seq)
		g.AgentSeenAt = now
		g.BaselineDone, g.BaselineTotal, g.BaselineRateBps = rep.BaselineDoneBytes, rep.BaselineTotalBytes, rep.BaselineRateBps
		g.BaselineBlocks, g.BaselineBlocksSent = rep.BaselineBlocks, rep.BaselineBlocksSent
		g.AgentLastError = Truncate(Redact(rep.LastError), 512)
		return nil
	})
	if err != nil {
		return AgentInstructions{}, err
	}
	in := AgentInstructions{State: rec.State, Reason: rec.Reason, Watermark: rec.Watermark, Resync: rec.State == StateResyncRequired,
		Stop: rec.StopRequested}
	if rec.MarkerRequestedAt.After(rec.LastMarkerTime) {
		in.MarkerRequestedAt = &rec.MarkerRequestedAt
	}
	if rec.AppMarkerRequestedAt.After(rec.LastAppPointTime) {
		in.AppMarkerRequestedAt = &rec.AppMarkerRequestedAt
	}
	return in, nil
}

// BlockHashes are count block checksums of a target disk from block from (for the agent's checksum
// resync); blocks with nothing allocated read as zeros and are left empty.
func (s *Agents) BlockHashes(ctx context.Context, group, vm, disk string, from, count int64) (DiskHashes, error) {
	g, err := s.Load(ctx, group)
	if err != nil {
		return DiskHashes{}, err
	}
	key := DiskKey(vm, disk)
	var size int64 = -1
	for _, d := range g.Spec.Disks() {
		if d.Key == key {
			size = d.Spec.SizeBytes
		}
	}
	if size < 0 {
		return DiskHashes{}, fmt.Errorf("group %s has no disk %s: %w", group, key, ErrNotFound)
	}
	bs := int64(BlockSize)
	blocks := (size + bs - 1) / bs
	if from < 0 || from > blocks || count < 1 || count > MaxHashBlocks {
		return DiskHashes{}, fmt.Errorf("%w: from=%d and count=%d: want 0 <= from <= %d blocks and 1 <= count <= %d", ErrInvalid, from, count, blocks, MaxHashBlocks)
	}
	ref := g.TargetDisk(key)
	ranges, err := s.Pages.AllocatedRanges(ctx, ref, "")
	if err != nil {
		return DiskHashes{}, err
	}
	out := DiskHashes{BlockSize: bs, Blocks: blocks, From: from, Hashes: make([]string, min(count, blocks-from))}
	if next := from + int64(len(out.Hashes)); next < blocks {
		out.Next = &next
	}
	ri := 0
	for i := range out.Hashes {
		block := from + int64(i)
		start, end := block*bs, min((block+1)*bs, size)
		for ri < len(ranges) && ranges[ri].End() <= start {
			ri++
		}
		if ri == len(ranges) || ranges[ri].Offset >= end {
			continue // nothing allocated in the block: it reads as zeros
		}
		data, err := s.Pages.ReadRange(ctx, ref, "", start, end-start)
		if err != nil {
			return DiskHashes{}, err
		}
		out.Hashes[i] = BlockHash(data)
	}
	return out, nil
}

// ReportEvent records an event the agent reports (a failed app-consistency hook) in the group's history.
func (s *Agents) ReportEvent(ctx context.Context, group, kind, message string) error {
	if kind == "" || len(kind) > 64 || message == "" || len(message) > 4096 {
		return fmt.Errorf("%w: invalid event: kind (1-64 characters) and message (1-4096 characters) are required", ErrInvalid)
	}
	if _, err := s.Load(ctx, group); err != nil {
		return err
	}
	return RecordEvent(ctx, s.State, group, kind, message, s.now())
}

// Events is a group's history, newest first.
func (s *Groups) Events(ctx context.Context, group string, limit int, after string) ([]Event, string, error) {
	if _, err := s.Load(ctx, group); err != nil {
		return nil, "", err
	}
	if limit < 1 || limit > maxEventsPage {
		return nil, "", fmt.Errorf("%w: limit: %d, want 1 to %d", ErrInvalid, limit, maxEventsPage)
	}
	return eventsPage(ctx, s.State, group, limit, after)
}
