package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// marker snapshots every disk of the group (the state is a prefix of the ordered write stream, so the
// snapshots are crash-consistent across all disks and VMs), records the marker and moves the watermark
// past it. During initial replication or a resync the target is not yet a complete copy, so only the
// baseline marker that ends it is snapshotted; earlier markers just move the watermark.
func (a *Applier) marker(ctx context.Context, g *Group, b *Batch) error {
	group := g.Record.Group()
	incomplete := g.Record.State == StateInitialReplication || g.Record.State == StateResyncing
	if incomplete && !b.Baseline {
		err := a.advancePast(ctx, g, b.Seq, 0, func(r *GroupRecord) { r.LastSourceTime = b.SourceTime })
		if err == nil {
			a.Log.Info("marker during a baseline: not a recovery point", "group", group, "seq", b.Seq, "state", g.Record.State)
		}
		return err
	}
	rec := MarkerRecord{Keys: Keys{PartitionKey: group, RowKey: SeqKey(b.Seq)}, Seq: b.Seq, Consistency: b.Consistency,
		Baseline: b.Baseline, SourceTime: b.SourceTime, Snapshots: map[string]string{}}
	// Snapshots carry the marker's tag (this group's, not a namesake's): an attempt that finds the marker
	// pending — a crash came between snapshots and record, or another instance is at it too — deletes
	// the tagged snapshots the record does not name once the record stands. A marker record is written
	// once (Insert), so no snapshot deleted that way can ever be named by one.
	tag := MarkerTag(&g.Record, b.Seq)
	sweep := g.Record.MarkerPending == b.Seq
	var existing MarkerRecord
	_, err := a.State.Get(ctx, MarkersTable, group, rec.RowKey, &existing)
	switch {
	case err == nil:
		rec = existing // snapshotted and recorded before a crash: keep those snapshots
	case !errors.Is(err, ErrNotFound):
		return err
	default:
		if rec, sweep, err = a.snapshotMarker(ctx, g, rec, tag, sweep); err != nil {
			return err
		}
	}
	if sweep {
		if err := a.sweepMarker(ctx, g, rec, tag); err != nil {
			return err
		}
	}
	var moves GroupRows // the baseline marker that ends a baseline moves the group's state too
	if b.Baseline {
		moves = StateRow
	}
	if err := a.advancePast(ctx, g, b.Seq, moves, func(r *GroupRecord) {
		r.MarkerPending = 0
		r.LastMarkerSeq, r.LastMarkerTime, r.LastMarkerKind = b.Seq, b.SourceTime, b.Consistency
		r.LastSourceTime = b.SourceTime
		if b.Baseline && (r.State == StateInitialReplication || r.State == StateResyncing) {
			r.Move(StateProtected, "", a.Now().UTC())
		}
	}); err != nil {
		return err
	}
	a.Log.Info("marker", "group", group, "seq", b.Seq, "consistency", b.Consistency, "baseline", b.Baseline, "disks", len(rec.Snapshots))
	return nil
}

// MarkerTag labels the snapshots of a group's marker: the group's name and creation time (so a namesake
// created later never matches) and the marker's sequence.
func MarkerTag(r *GroupRecord, seq int64) string {
	return fmt.Sprintf("%s/%d/%d", r.Group(), r.CreatedAt.UnixNano(), seq)
}

// sweepMarker deletes the snapshots with the marker's tag that its record does not name: what an
// interrupted or concurrent attempt left. Without it every such crash would leak a snapshot per disk.
func (a *Applier) sweepMarker(ctx context.Context, g *Group, rec MarkerRecord, tag string) error {
	left := 0
	for _, d := range g.Spec.Disks() {
		ref := g.TargetDisk(d.Key)
		snaps, err := a.Pages.TaggedSnapshots(ctx, ref, tag)
		if err != nil {
			return err
		}
		for _, snap := range snaps {
			if snap == rec.Snapshots[d.Key] {
				continue
			}
			if err := a.Pages.DeleteSnapshot(ctx, ref, snap); err != nil {
				return err
			}
			left++
		}
	}
	if left > 0 {
		a.Log.Warn("deleted the snapshots an interrupted marker left", "group", g.Record.Group(), "seq", rec.Seq, "snapshots", left)
	}
	return nil
}

// snapshotMarker snapshots every disk of the group under the marker's tag and records the marker. It
// returns the record that stands and whether a sweep is due (another instance recorded it first).
func (a *Applier) snapshotMarker(ctx context.Context, g *Group, rec MarkerRecord, tag string, sweep bool) (MarkerRecord, bool, error) {
	group := g.Record.Group()
	if !sweep {
		updated, err := UpdateGroup(ctx, a.State, group, ProgressRow, func(r *GroupRecord) error {
			r.MarkerPending = rec.Seq
			return nil
		})
		if err != nil {
			return rec, sweep, err
		}
		g.Record = updated
	}
	// No write is in flight (apply is between write sets), so the snapshots can be taken in parallel
	// and still show one stream position.
	var mu sync.Mutex
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(max(a.Parallelism, 1))
	for _, d := range g.Spec.Disks() {
		eg.Go(func() error {
			snap, err := a.Pages.Snapshot(ectx, g.TargetDisk(d.Key), tag)
			if err != nil {
				return err
			}
			mu.Lock()
			rec.Snapshots[d.Key] = snap
			mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return rec, sweep, err // the retry finds the marker pending: its sweep deletes what was taken
	}
	rec.AppliedAt = a.Now().UTC()
	_, err := a.State.Insert(ctx, MarkersTable, rec)
	if errors.Is(err, ErrConflict) { // another instance recorded it first: its snapshots stand, the sweep takes these
		var existing MarkerRecord
		if _, err := a.State.Get(ctx, MarkersTable, group, rec.RowKey, &existing); err != nil {
			return rec, sweep, err
		}
		return existing, true, nil
	}
	return rec, sweep, err // on an error it may have been written all the same: the retry finds out, and sweeps
}
