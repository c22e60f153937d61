package replication

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Tables of recovery points and what holds them.
const (
	PointsTable = "recoverypoints"
	HoldsTable  = "pointholds"
	// DrillsTable holds the group's drill reports (shared/recovery writes them; they go with the group).
	DrillsTable = "drills"
)

// RecoveryPoint is a point the operator can fail over to: the snapshots of every disk of the group at a
// marker of the ordered stream.
type RecoveryPoint struct {
	Keys
	ID         string            `json:"ID"`
	Kind       string            `json:"Kind"` // crash or app
	Seq        int64             `json:"Seq"`
	SourceTime time.Time         `json:"SourceTime"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Snapshots  map[string]string `json:"Snapshots"`
	Sizes      map[string]int64  `json:"Sizes"`
	// Suspect says why the point may hold damage a scrub found after it (scrub.go); "" when none.
	Suspect string `json:"Suspect,omitempty"`
}

// PointID names the point of a marker.
func PointID(seq int64) string { return "rp-" + strconv.FormatInt(seq, 10) }

// pointRow orders a group's points newest first (Table storage lists rows in key order).
func pointRow(seq int64) string { return fmt.Sprintf("%020d", math.MaxInt64-seq) }

// PointHold marks a point a running job uses: retention never prunes it.
type PointHold struct {
	Keys
	// HeldByJob is the holding job's id (stored as "Job", as rows written before the name was).
	HeldByJob string `json:"Job"`
}

// ListPoints returns a group's recovery points, newest first.
func ListPoints(ctx context.Context, store StateStore, group string) ([]RecoveryPoint, error) {
	points, _, err := QueryAll[RecoveryPoint](ctx, store, PointsTable, group)
	return points, err
}

// Promote turns the markers apply has snapshotted since the last promotion into recovery points and
// returns the new points. A marker missing a disk's snapshot is not promoted (and says so).
func Promote(ctx context.Context, store StateStore, g *Group, now time.Time) ([]RecoveryPoint, error) {
	markers, err := ListMarkers(ctx, store, g.Record.Group())
	if err != nil {
		return nil, err
	}
	var promoted []RecoveryPoint
	for _, m := range markers {
		if m.Seq <= g.Record.LastPromotedSeq {
			continue
		}
		p := RecoveryPoint{Keys: Keys{PartitionKey: g.Record.Group(), RowKey: pointRow(m.Seq)}, ID: PointID(m.Seq),
			Kind: m.Consistency, Seq: m.Seq, SourceTime: m.SourceTime, CreatedAt: now, Snapshots: map[string]string{}, Sizes: map[string]int64{}}
		for _, d := range g.Spec.Disks() {
			snap, ok := m.Snapshots[d.Key]
			if !ok {
				return promoted, fmt.Errorf("marker %d has no snapshot of %s", m.Seq, d.Key)
			}
			p.Snapshots[d.Key], p.Sizes[d.Key] = snap, d.Spec.SizeBytes
		}
		if _, err := store.Upsert(ctx, PointsTable, p); err != nil {
			return promoted, err
		}
		promoted = append(promoted, p)
	}
	if len(promoted) == 0 {
		return nil, nil
	}
	last := promoted[len(promoted)-1]
	rec, err := UpdateGroup(ctx, store, g.Record.Group(), HealthRow, func(r *GroupRecord) error {
		if r.LastPromotedSeq >= last.Seq {
			return ErrUnchanged
		}
		r.LastPromotedSeq = last.Seq
		for _, p := range promoted {
			if p.Kind == "app" && p.SourceTime.After(r.LastAppPointTime) {
				r.LastAppPointTime = p.SourceTime
			}
			if p.SourceTime.After(r.LastPointTime) {
				r.LastPointTime = p.SourceTime
			}
		}
		return nil
	})
	if err == nil {
		g.Record = rec
	}
	return promoted, err
}

// PrunePoints applies retention to a group's points: pruned points lose their snapshots, then their
// rows (a crash in between leaves a row whose snapshots are gone; the next run finishes it, as
// deleting a missing snapshot succeeds). Points with a hold are kept. It returns the pruned ids.
func PrunePoints(ctx context.Context, store StateStore, pages PageStore, g *Group, now time.Time) ([]string, error) {
	group := g.Record.Group()
	points, err := ListPoints(ctx, store, group)
	if err != nil {
		return nil, err
	}
	holds, _, err := QueryAll[PointHold](ctx, store, HoldsTable, group)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, h := range holds {
		held[h.RowKey] = true
	}
	refs := make([]pointRef, len(points))
	byID := map[string]RecoveryPoint{}
	for i, p := range points {
		refs[i] = pointRef{ID: p.ID, Time: p.SourceTime, Kind: p.Kind}
		byID[p.ID] = p
	}
	_, prune := retain(refs, now, time.Duration(g.Record.Policy.RetentionHours)*time.Hour, held)
	for _, id := range prune {
		p := byID[id]
		for key, snap := range p.Snapshots {
			if err := pages.DeleteSnapshot(ctx, g.TargetDisk(key), snap); err != nil {
				return nil, err
			}
		}
		if err := store.Delete(ctx, PointsTable, group, p.RowKey, ""); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err := store.Delete(ctx, MarkersTable, group, SeqKey(p.Seq), ""); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	return prune, nil
}
