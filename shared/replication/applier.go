package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Applier applies a group's change stream to its target disks, in sequence order.
//
// Delivery is at-least-once and the Functions host checkpoints a batch even when its invocation failed,
// so the Applier never trusts the descriptors it is handed to be complete, ordered or new: it applies
// from the group's watermark + 1 up to the highest sequence it was told of, reading every payload from
// the journal (which holds the whole stream), and skips what the watermark says is done. A crash at any
// point leaves the watermark behind the writes, and replaying a write set writes the same final
// content again. A payload that fails its checksums is quarantined and the group stops at it
// (ResyncRequired); so does a batch gone from the journal.
type Applier struct {
	State       StateStore
	Pages       PageStore
	Journal     JournalStore
	Log         *slog.Logger
	Now         func() time.Time
	Parallelism int

	leaseOnce sync.Once
	leaseID   string // this applier's lease on the target disks it writes
	leaseMu   sync.Mutex
	leased    map[string]time.Time // group → when its disks' leases were last taken or renewed
}

// fence makes this applier the group's only writer. Event Hubs moves a partition between instances
// while its old owner may still be in the middle of a write set; without a fence that owner could land
// an older write on a block after a newer one. Holding the lease of every target disk (taken over from
// any other holder, renewed well before it lapses) makes the other instance's next write fail instead.
// Whatever it wrote before that belongs to the write set being redone, so nothing older survives. The
// returned context carries the lease to the writes.
func (a *Applier) fence(ctx context.Context, g *Group) (context.Context, error) {
	a.leaseOnce.Do(func() { a.leaseID, a.leased = NewLeaseID(), map[string]time.Time{} })
	group := g.Record.PartitionKey
	a.leaseMu.Lock()
	at, held := a.leased[group]
	a.leaseMu.Unlock()
	if !held || time.Since(at) > LeaseDuration/3 {
		start := time.Now()
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(max(1, a.Parallelism))
		for _, d := range g.Spec.Disks() {
			ref := g.TargetDisk(d.Key)
			eg.Go(func() error { return a.Pages.AcquireLease(ectx, ref, a.leaseID) })
		}
		if err := eg.Wait(); err != nil {
			return ctx, err
		}
		a.leaseMu.Lock()
		a.leased[group] = start
		a.leaseMu.Unlock()
		if !held {
			a.Log.Info("leased the target disks", "group", group, "disks", len(g.Spec.Disks()))
		}
	}
	return WithLease(ctx, a.leaseID), nil
}

// unfence forgets the group's leases after a write was refused: another writer took them, or they
// lapsed. The retry takes them again.
func (a *Applier) unfence(group string) {
	a.leaseMu.Lock()
	delete(a.leased, group)
	a.leaseMu.Unlock()
}

// ApplyResult says what one Apply did for one group.
type ApplyResult struct {
	Group    string
	From, To int64 // sequences applied (From > To: nothing new)
	Bytes    int64
	Markers  int
	Stopped  string // why the group stopped, when it did
}

// Apply applies the descriptors' groups up to the highest sequence given for each. An error means
// nothing was lost but the call should be retried (storage unavailable, a concurrent update).
func (a *Applier) Apply(ctx context.Context, descs []Descriptor) ([]ApplyResult, error) {
	byGroup := map[string][]Descriptor{}
	for _, d := range descs {
		byGroup[d.Group] = append(byGroup[d.Group], d)
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var results []ApplyResult
	for _, group := range groups {
		res, err := a.applyGroup(ctx, group, byGroup[group])
		if err != nil {
			return results, fmt.Errorf("group %s: %w", group, err)
		}
		results = append(results, res)
	}
	return results, nil
}

func (a *Applier) applyGroup(ctx context.Context, group string, descs []Descriptor) (ApplyResult, error) {
	log := a.Log.With("group", group)
	res := ApplyResult{Group: group}
	g, err := LoadGroup(ctx, a.State, group)
	if errors.Is(err, ErrNoGroup) {
		log.Warn("descriptors for a group that is not enabled dropped", "count", len(descs))
		res.Stopped = "not enabled"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	sort.Slice(descs, func(i, j int) bool { return descs[i].Seq < descs[j].Seq })
	known := map[int64]Descriptor{}
	for _, d := range descs {
		known[d.Seq] = d
	}
	maxSeq := descs[len(descs)-1].Seq
	if g.Record.ReplicationStopped() {
		res.Stopped = strings.ToLower(string(g.Record.State))
		return res, nil
	}
	switch g.Record.State {
	case StateResyncRequired:
		// Only a resync start gets the group going again: the stream before it no longer matters.
		var start int64
		for _, d := range descs {
			if d.Kind == KindResync && d.Seq > g.Record.Watermark {
				start = d.Seq
			}
		}
		if start == 0 {
			res.Stopped = "resync required: " + g.Record.Reason
			return res, nil
		}
		if _, err := UpdateGroup(ctx, a.State, group, func(r *GroupRecord) error {
			if r.State != StateResyncRequired {
				return ErrUnchanged
			}
			r.Watermark = start
			return r.Move(StateResyncing, "", a.Now().UTC())
		}); err != nil {
			return res, err
		}
		log.Info("resync started", "seq", start)
		g.Record.Watermark = start
	}
	from := g.Record.Watermark + 1
	res.From, res.To = from, g.Record.Watermark
	if maxSeq < from {
		return res, nil // all duplicates
	}
	ws := NewWriteSet()
	var firstSource, lastSource time.Time // of the batches in the write set
	fetch := a.prefetch(ctx, group, from, maxSeq)
	for seq := from; seq <= maxSeq; seq++ {
		payload, err := fetch(seq)
		if errors.Is(err, ErrNotFound) {
			if err := a.commit(ctx, g, ws, seq-1, firstSource, lastSource, &res); err != nil {
				return res, err
			}
			return res, a.stop(ctx, g, fmt.Sprintf("batch %d is missing from the journal: resync needed", seq), &res)
		}
		if err != nil {
			return res, err
		}
		b, err := a.verify(payload, group, seq, known)
		if err != nil {
			log.Error("corrupt batch quarantined", "seq", seq, "err", err)
			if qerr := a.Journal.Quarantine(ctx, group, seq, payload, err.Error()); qerr != nil {
				return res, qerr
			}
			if err := a.commit(ctx, g, ws, seq-1, firstSource, lastSource, &res); err != nil {
				return res, err
			}
			return res, a.stop(ctx, g, fmt.Sprintf("batch %d was corrupt and is quarantined (%v): resync needed", seq, err), &res)
		}
		switch b.Kind {
		case KindBatch:
			ws.AddBatch(b)
			if firstSource.IsZero() {
				firstSource = b.SourceTime
			}
			lastSource = b.SourceTime
			res.Bytes += b.Bytes()
		case KindMarker:
			if err := a.commit(ctx, g, ws, seq-1, firstSource, lastSource, &res); err != nil {
				return res, err
			}
			ws, firstSource = NewWriteSet(), time.Time{}
			if err := a.marker(ctx, g, b); err != nil {
				return res, err
			}
			res.Markers++
			res.To = seq
		case KindResync:
			// A resync the agent started on its own (after an unclean stop): the target is incomplete
			// until its baseline marker, so no marker before it may become a recovery point.
			if err := a.commit(ctx, g, ws, seq-1, firstSource, lastSource, &res); err != nil {
				return res, err
			}
			ws, firstSource = NewWriteSet(), time.Time{}
			if err := a.advancePast(ctx, g, seq, func(r *GroupRecord) {
				if r.State == StateProtected {
					r.Move(StateResyncing, "", a.Now().UTC())
				}
			}); err != nil {
				return res, err
			}
			res.To = seq
		}
	}
	return res, a.commit(ctx, g, ws, maxSeq, firstSource, lastSource, &res)
}

// prefetchDepth is how many journal reads run ahead of the batch being applied.
const prefetchDepth = 8

// prefetch starts reading the payloads from..to from the journal, a few ahead of the one being
// applied, and returns a function that yields them in order.
func (a *Applier) prefetch(ctx context.Context, group string, from, to int64) func(seq int64) ([]byte, error) {
	type result struct {
		payload []byte
		err     error
	}
	ctx, cancel := context.WithCancel(ctx)
	results := map[int64]chan result{}
	next := from
	start := func() {
		for ; next <= to && len(results) < prefetchDepth; next++ {
			ch := make(chan result, 1)
			results[next] = ch
			go func(seq int64) {
				p, err := a.Journal.Get(ctx, group, seq)
				ch <- result{p, err}
			}(next)
		}
	}
	return func(seq int64) ([]byte, error) {
		start()
		ch, ok := results[seq]
		if !ok {
			cancel()
			return nil, fmt.Errorf("prefetch asked for %d out of order", seq)
		}
		r := <-ch
		delete(results, seq)
		if seq == to || r.err != nil {
			defer cancel()
		}
		start()
		return r.payload, r.err
	}
}

// verify checks a payload against its descriptor (when one came) and decodes it.
func (a *Applier) verify(payload []byte, group string, seq int64, known map[int64]Descriptor) (*Batch, error) {
	if d, ok := known[seq]; ok && d.CRC64 != "" {
		if got := fmt.Sprintf("%016x", CRC64(payload)); got != d.CRC64 {
			return nil, fmt.Errorf("%w: payload CRC64 %s, descriptor says %s", ErrCorrupt, got, d.CRC64)
		}
	}
	b, err := DecodeBatch(payload)
	if err != nil {
		return nil, err
	}
	if b.Group != group || b.Seq != seq {
		return nil, fmt.Errorf("%w: the payload stored as %s/%d says %s/%d", ErrCorrupt, group, seq, b.Group, b.Seq)
	}
	return b, nil
}

// commit writes the write set and then moves the watermark to through (ETag-guarded). The order
// matters: a crash between the two replays the same writes, never skips them.
func (a *Applier) commit(ctx context.Context, g *Group, ws *WriteSet, through int64, firstSource, lastSource time.Time, res *ApplyResult) error {
	if through <= g.Record.Watermark {
		return nil
	}
	start := time.Now()
	writeCtx := ctx
	if !ws.Empty() {
		var err error
		if writeCtx, err = a.fence(ctx, g); err != nil {
			return err
		}
	}
	stats, err := ws.Flush(writeCtx, a.Pages, g.TargetDisk, a.Parallelism)
	if errors.Is(err, ErrConflict) {
		a.unfence(g.Record.PartitionKey)
		return fmt.Errorf("a write was refused: another instance may have taken the group over (the retry takes it back): %w", err)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	now := a.Now().UTC()
	rec, err := UpdateGroup(ctx, a.State, g.Record.PartitionKey, func(r *GroupRecord) error {
		if r.Watermark >= through {
			return ErrUnchanged // another instance got here first, with the same content
		}
		r.BatchesApplied += through - r.Watermark
		r.Watermark = through
		if !lastSource.IsZero() {
			r.LastSourceTime = lastSource
		}
		r.LastAppliedAt = now
		r.BytesApplied += stats.BytesWritten + stats.BytesCleared
		if elapsed > 0 && stats.BytesWritten > 0 {
			r.ApplyBytesPerSecond = float64(stats.BytesWritten) / elapsed.Seconds()
		}
		r.UpdatedAt = now
		return nil
	})
	if err != nil {
		return err
	}
	g.Record = rec
	res.To = through
	// rpoMs: how far behind its source the oldest write of this set was when it landed on the target.
	a.Log.Info("applied", "group", g.Record.PartitionKey, "seq", through, "writes", stats.Writes, "clears", stats.Clears,
		"bytes", stats.BytesWritten, "ms", elapsed.Milliseconds(), "rpoMs", rpoMs(firstSource, now))
	return nil
}

func rpoMs(source, now time.Time) int64 {
	if source.IsZero() {
		return 0
	}
	return max(0, now.Sub(source).Milliseconds())
}

// marker snapshots every disk of the group (the state is a prefix of the ordered write stream, so the
// snapshots are crash-consistent across all disks and VMs), records the marker and moves the watermark
// past it. During initial replication or a resync the target is not yet a complete copy, so only the
// baseline marker that ends it is snapshotted; earlier markers just move the watermark.
func (a *Applier) marker(ctx context.Context, g *Group, b *Batch) error {
	group := g.Record.PartitionKey
	incomplete := g.Record.State == StateInitialReplication || g.Record.State == StateResyncing
	if incomplete && !b.Baseline {
		err := a.advancePast(ctx, g, b.Seq, func(r *GroupRecord) { r.LastSourceTime = b.SourceTime })
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
		if !sweep {
			updated, err := UpdateGroup(ctx, a.State, group, func(r *GroupRecord) error {
				r.MarkerPending = b.Seq
				return nil
			})
			if err != nil {
				return err
			}
			g.Record = updated
		}
		// No write is in flight (apply is between write sets), so the snapshots can be taken in
		// parallel and still show one stream position.
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
			return err // the retry finds the marker pending: its sweep deletes what was taken
		}
		rec.AppliedAt = a.Now().UTC()
		_, err := a.State.Insert(ctx, MarkersTable, rec)
		if errors.Is(err, ErrConflict) { // another instance recorded it first: its snapshots stand, the sweep takes these
			if _, err := a.State.Get(ctx, MarkersTable, group, rec.RowKey, &existing); err != nil {
				return err
			}
			rec, sweep = existing, true
		} else if err != nil {
			return err // it may have been written all the same: the retry finds out, and sweeps
		}
	}
	if sweep {
		if err := a.sweepMarker(ctx, g, rec, tag); err != nil {
			return err
		}
	}
	if err := a.advancePast(ctx, g, b.Seq, func(r *GroupRecord) {
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
	return fmt.Sprintf("%s/%d/%d", r.PartitionKey, r.CreatedAt.UnixNano(), seq)
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
		a.Log.Warn("deleted the snapshots an interrupted marker left", "group", g.Record.PartitionKey, "seq", rec.Seq, "snapshots", left)
	}
	return nil
}

// advancePast moves the watermark past one stream item (a marker or a resync start), letting record
// note what the item means; a watermark already past it (another instance got there) changes nothing.
func (a *Applier) advancePast(ctx context.Context, g *Group, seq int64, record func(r *GroupRecord)) error {
	rec, err := UpdateGroup(ctx, a.State, g.Record.PartitionKey, func(r *GroupRecord) error {
		if r.Watermark >= seq {
			return ErrUnchanged
		}
		r.Watermark, r.BatchesApplied, r.UpdatedAt = seq, r.BatchesApplied+1, a.Now().UTC()
		record(r)
		return nil
	})
	if err == nil {
		g.Record = rec
	}
	return err
}

// stop flags the group ResyncRequired with the reason; nothing past the watermark is applied until a
// resync starts.
func (a *Applier) stop(ctx context.Context, g *Group, reason string, res *ApplyResult) error {
	res.Stopped = reason
	_, err := UpdateGroup(ctx, a.State, g.Record.PartitionKey, func(r *GroupRecord) error {
		if r.State == StateResyncRequired || !CanMove(r.State, StateResyncRequired) {
			return ErrUnchanged // already stopped, or failed over or disabled meanwhile
		}
		return r.Move(StateResyncRequired, reason, a.Now().UTC())
	})
	a.Log.Warn("group stopped", "group", g.Record.PartitionKey, "reason", reason)
	return err
}
