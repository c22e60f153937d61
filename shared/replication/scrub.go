package replication

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The scrub proves the target against the source, in order. The agent reads a slice of a disk under
// its write lock, hashes each block, and puts the hashes into the ordered stream as a scrub record
// (KindScrub). Apply reaches that record with every write before it on the target and nothing after
// (a scrub is a control item: the write set before it is written first), so the target's blocks there
// must equal the source's: apply hashes them, and a block that differs is damage nothing in the stream
// explains (a storage fault, a write behind apply's back). Apply then raises an alert, marks the
// recovery points that may hold the damage suspect, and stops the group for a checksum resync, which
// compares every block and sends the ones that differ: the repair.

// MaxScrubBytes bounds what one scrub record hashes, all its ranges together. Apply reads every byte
// of it back from the target, 32 KiB for each 32 bytes of hashes, on the hub partition other groups
// share: without a bound, one group's agent could hold that partition for hours with a small record.
// A record hashes about as much as apply writes for one write set's worth of writes.
const MaxScrubBytes = 64 * BlockSize

// checkScrub checks a scrub record's shape: ranges, no consistency, at most MaxScrubBytes in all.
func checkScrub(b *Batch) error {
	if b.Consistency != "" || len(b.Extents) == 0 {
		return fmt.Errorf("scrub %d carries a consistency, or no ranges", b.Seq)
	}
	var total int64
	for _, e := range b.Extents {
		total += e.Length
	}
	if total > MaxScrubBytes {
		return fmt.Errorf("scrub %d hashes %d bytes, more than %d", b.Seq, total, int64(MaxScrubBytes))
	}
	return nil
}

// hashBytes is the size of a scrub extent's hashes for a range of length bytes.
func hashBytes(length int64) int64 { return 32 * ((length + BlockSize - 1) / BlockSize) }

// ScrubsTable holds a row per disk: how far its scrub pass is and what the passes found.
const ScrubsTable = "scrubs"

// AlertScrubMismatch is raised when a scrub finds target blocks that differ from the source.
const AlertScrubMismatch = "scrub-mismatch"

// ScrubRecord is one disk's scrub state.
type ScrubRecord struct {
	Keys
	Disk string `json:"Disk"`
	// NextBlock is where the current pass stands; PassStarted is the source time its first range was
	// hashed at.
	NextBlock   int64     `json:"NextBlock"`
	PassStarted time.Time `json:"PassStarted"`
	// The last full pass: when it ended (source time), and whether it found every block right.
	LastPassEnded time.Time `json:"LastPassEnded"`
	LastPassClean bool      `json:"LastPassClean"`
	// CleanSince is the start of the last full pass that found every block right: each block was right
	// at some time after it, so damage found later happened after it (the points since are suspect).
	CleanSince    time.Time `json:"CleanSince"`
	BlocksChecked int64     `json:"BlocksChecked"`
	// Mismatches counts the blocks found differing; the last finding is kept.
	Mismatches       int64     `json:"Mismatches"`
	LastMismatchSeq  int64     `json:"LastMismatchSeq,omitempty"`
	LastMismatchAt   time.Time `json:"LastMismatchAt"`
	LastMismatchWhat string    `json:"LastMismatchWhat,omitempty"`
	// PassDirty: the current pass found a block differing.
	PassDirty bool `json:"PassDirty,omitempty"`
}

// scrubRow is a disk's row key ("vm/disk" → "vm~disk": '/' is not allowed in a key).
func scrubRow(disk string) string { return strings.ReplaceAll(disk, "/", "~") }

// ListScrubs is a group's scrub state, a record per disk scrubbed so far.
func ListScrubs(ctx context.Context, store StateStore, group string) ([]ScrubRecord, error) {
	rows, _, err := QueryAll[ScrubRecord](ctx, store, ScrubsTable, group)
	return rows, err
}

// maxMismatchList bounds how many differing blocks a finding names.
const maxMismatchList = 16

// scrub checks the target against a scrub record: at this point of the stream every block it hashes
// must equal the source's. A group that is not Protected (a baseline or a resync in progress, or
// stopped) has no complete target to check: the record only moves the watermark.
func (a *Applier) scrub(ctx context.Context, g *Group, b *Batch, res *ApplyResult) error {
	group := g.Record.Group()
	if g.Record.State != StateProtected {
		return a.advancePast(ctx, g, b.Seq, 0, func(*GroupRecord) {})
	}
	var findings []string
	var earliest time.Time // the earliest clean time among the disks with damage
	for _, e := range b.Extents {
		spec, ok := g.Spec.Disk(e.Disk)
		if !ok {
			a.Log.Warn("scrub of a disk the group does not have: skipped", "group", group, "disk", e.Disk, "seq", b.Seq)
			continue
		}
		bad, checked, err := a.compareBlocks(ctx, g.TargetDisk(e.Disk), spec.SizeBytes, e)
		if err != nil {
			return err
		}
		rec, err := a.recordScrub(ctx, g, e, spec.SizeBytes, b, bad, checked)
		if err != nil {
			return err
		}
		if len(bad) > 0 {
			since := rec.CleanSince
			if since.IsZero() {
				since = g.Record.CreatedAt
			}
			if earliest.IsZero() || since.Before(earliest) {
				earliest = since
			}
			findings = append(findings, fmt.Sprintf("disk %s: %s", e.Disk, blockList(bad)))
		}
	}
	if len(findings) == 0 {
		return a.advancePast(ctx, g, b.Seq, 0, func(*GroupRecord) {})
	}
	what := strings.Join(findings, "; ")
	suspect, err := markSuspect(ctx, a.State, group, earliest, fmt.Sprintf("the scrub at seq %d found target blocks differing from the source (%s)", b.Seq, what))
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("the target differs from the source at seq %d where nothing in the stream explains it: %s; %d recovery points since %s are marked suspect; a checksum resync repairs the blocks",
		b.Seq, what, suspect, earliest.UTC().Format(time.RFC3339))
	if err := RaiseAlert(ctx, a.State, a.Log, Alert{ID: fmt.Sprintf("%s-scrub-%d", group, b.Seq), Group: group, Kind: AlertScrubMismatch,
		Status: AlertRaised, Severity: SeverityCritical, Message: msg, Time: a.Now().UTC()}); err != nil {
		return err
	}
	return a.stop(ctx, g, "scrub: "+msg, res)
}

// compareBlocks hashes the target's blocks of a scrub range (clipped to the disk) and returns the
// indexes of those that differ from the record's, and how many were checked.
func (a *Applier) compareBlocks(ctx context.Context, ref DiskRef, size int64, e Extent) ([]int64, int64, error) {
	var bad []int64
	var checked int64
	for i := int64(0); i*32 < int64(len(e.Data)); i++ {
		off := e.Offset + i*BlockSize
		n := min(BlockSize, e.Offset+e.Length-off, size-off)
		if n <= 0 {
			break
		}
		data, err := a.Pages.ReadRange(ctx, ref, "", off, n)
		if err != nil {
			return nil, 0, fmt.Errorf("scrub: reading %s at %d: %w", ref, off, err)
		}
		if !bytes.Equal(BlockDigest(data), e.Data[i*32:i*32+32]) {
			bad = append(bad, off/BlockSize)
		}
		checked++
	}
	return bad, checked, nil
}

// recordScrub keeps a disk's scrub state: the pass's progress, a pass ending, a finding.
func (a *Applier) recordScrub(ctx context.Context, g *Group, e Extent, size int64, b *Batch, bad []int64, checked int64) (ScrubRecord, error) {
	group := g.Record.Group()
	return Mutate(ctx, a.State, ScrubsTable, group, scrubRow(e.Disk), func(r *ScrubRecord, found bool) error {
		if !found {
			r.Keys, r.Disk = Keys{PartitionKey: group, RowKey: scrubRow(e.Disk)}, e.Disk
		}
		if e.Offset == 0 || r.PassStarted.IsZero() {
			r.PassStarted, r.PassDirty = b.SourceTime, false
		}
		r.BlocksChecked += checked
		if len(bad) > 0 {
			r.PassDirty = true
			r.Mismatches += int64(len(bad))
			r.LastMismatchSeq, r.LastMismatchAt, r.LastMismatchWhat = b.Seq, b.SourceTime, blockList(bad)
		}
		r.NextBlock = (e.Offset + e.Length + BlockSize - 1) / BlockSize
		if e.Offset+e.Length >= size { // the pass reached the disk's end
			r.LastPassEnded, r.LastPassClean = b.SourceTime, !r.PassDirty
			if r.LastPassClean {
				r.CleanSince = r.PassStarted
			}
			r.NextBlock, r.PassStarted, r.PassDirty = 0, time.Time{}, false
		}
		return nil
	})
}

// blockList names blocks ("blocks 3, 17 and 40 (1 MiB each)"), at most maxMismatchList of them.
func blockList(blocks []int64) string {
	var parts []string
	for _, b := range blocks[:min(len(blocks), maxMismatchList)] {
		parts = append(parts, fmt.Sprint(b))
	}
	s := "block " + parts[0]
	if len(parts) > 1 {
		s = "blocks " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
	if len(blocks) > maxMismatchList {
		s += fmt.Sprintf(" (and %d more)", len(blocks)-maxMismatchList)
	}
	return s + " (1 MiB each)"
}

// markSuspect marks the group's recovery points taken after since: they may hold the damage.
func markSuspect(ctx context.Context, store StateStore, group string, since time.Time, why string) (int, error) {
	points, err := ListPoints(ctx, store, group)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range points {
		if !p.SourceTime.After(since) {
			continue
		}
		if _, err := Mutate(ctx, store, PointsTable, group, p.RowKey, func(q *RecoveryPoint, found bool) error {
			if !found || q.Suspect != "" {
				return ErrUnchanged
			}
			q.Suspect = why
			return nil
		}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Disk is the spec of the disk with the key ("vm/disk").
func (s *GroupSpec) Disk(key string) (DiskSpec, bool) {
	disks := s.Disks()
	i := slices.IndexFunc(disks, func(d DiskRefSpec) bool { return d.Key == key })
	if i < 0 {
		return DiskSpec{}, false
	}
	return disks[i].Spec, true
}
