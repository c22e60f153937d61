package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc64"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
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
	// Every group is applied whatever another's fate: groups share a hub partition, and a failing one
	// must not hold the others back (its error still makes the batch retried; the others' retry is a
	// no-op at their watermarks).
	var results []ApplyResult
	var errs []error
	for _, group := range groups {
		res, err := a.applyGroup(ctx, group, byGroup[group])
		if err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", group, err))
			continue
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
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
	descs, err = a.authentic(ctx, g, descs)
	if err != nil || len(descs) == 0 {
		res.From, res.To = g.Record.Watermark+1, g.Record.Watermark
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
	if g.Record.State == StateResyncRequired {
		// Only a resync start gets the group going again: the stream before it no longer matters.
		start := resyncStart(descs, g.Record.Watermark)
		if start == 0 {
			res.Stopped = "resync required: " + g.Record.Reason
			return res, nil
		}
		if err := a.startResync(ctx, g, start); err != nil {
			return res, err
		}
		log.Info("resync started", "seq", start)
	}
	from := g.Record.Watermark + 1
	res.From, res.To = from, g.Record.Watermark
	if maxSeq < from {
		return res, nil // all duplicates
	}
	err = a.applyRange(ctx, g, from, maxSeq, known, &res)
	if errors.Is(err, ErrNotFound) {
		// The journal's missing batches are told apart above; what else is not found is the group's
		// own target (a disk blob deleted by hand or by accident): retrying cannot bring it back, and
		// the partition's other groups must not wait on it.
		return res, a.stop(ctx, g, fmt.Sprintf("a target disk of the group is gone (%v): restore it, or disable the group and enable it again", err), &res)
	}
	return res, err
}

// authentic keeps the descriptors that carry the group's MAC; the others — not from the group's agent —
// are quarantined and change nothing: not the group's state, not how far apply reads.
func (a *Applier) authentic(ctx context.Context, g *Group, descs []Descriptor) ([]Descriptor, error) {
	out := descs[:0:0]
	for _, d := range descs {
		if d.Authentic(g.StreamKeyFor(d.Seq)) {
			out = append(out, d)
			continue
		}
		body, _ := json.Marshal(d)
		row := QuarantineRecord{Keys: Keys{PartitionKey: "group-" + d.Group, RowKey: SeqKey(d.Seq) + "-" + NewLeaseID()[:8]},
			Time: a.Now().UTC(), Reason: "descriptor not authenticated: its MAC is not the group's", Body: quarantinedBody(body)}
		a.quarantine(ctx, row, "")
		a.Log.Warn("unauthenticated descriptor quarantined", "group", d.Group, "seq", d.Seq)
	}
	return out, nil
}

// resyncStart is the newest resync batch among descs past the watermark (0: none).
func resyncStart(descs []Descriptor, watermark int64) int64 {
	var start int64
	for _, d := range descs {
		if d.Kind == KindResync && d.Seq > watermark {
			start = d.Seq
		}
	}
	return start
}

// startResync moves a group that waits for a resync to Resyncing, its watermark at the resync batch.
func (a *Applier) startResync(ctx context.Context, g *Group, start int64) error {
	_, err := UpdateGroup(ctx, a.State, g.Record.Group(), StateRow|ProgressRow, func(r *GroupRecord) error {
		if r.State != StateResyncRequired {
			return ErrUnchanged
		}
		r.Watermark = start
		return r.Move(StateResyncing, "", a.Now().UTC())
	})
	if err == nil {
		g.Record.Watermark = start
	}
	return err
}

// pending is the write set being gathered since the last commit, with its batches' source times.
type pending struct {
	ws          *writeSet
	first, last time.Time
	bytes       int64
}

// maxWriteSetBytes bounds the writes apply holds before it writes them: a long stretch of the stream
// without a marker is written in pieces of this size, never held whole.
const maxWriteSetBytes = 128 << 20

func (p *pending) add(b *Batch) {
	p.ws.AddBatch(b)
	p.bytes += b.Bytes()
	if p.first.IsZero() {
		p.first = b.SourceTime
	}
	p.last = b.SourceTime
}

// flush commits the pending write set through sequence through and starts a new one.
func (a *Applier) flush(ctx context.Context, g *Group, p *pending, through int64, res *ApplyResult) error {
	err := a.commit(ctx, g, p.ws, through, p.first, p.last, res)
	*p = pending{ws: newWriteSet()}
	return err
}

// applyRange applies the batches from..to, read from the journal, writing them in write sets between
// markers; a batch missing from the journal or corrupt stops the group at it.
func (a *Applier) applyRange(ctx context.Context, g *Group, from, to int64, known map[int64]Descriptor, res *ApplyResult) error {
	group := g.Record.Group()
	p := &pending{ws: newWriteSet()}
	fetch := a.prefetch(ctx, group, from, to)
	for seq := from; seq <= to; seq++ {
		payload, err := fetch(seq)
		if errors.Is(err, ErrCorrupt) { // too large to be an agent's: refused unread
			if err := a.flush(ctx, g, p, seq-1, res); err != nil {
				return err
			}
			return a.stop(ctx, g, fmt.Sprintf("batch %d is not a batch an agent stores (%v): resync needed", seq, err), res)
		}
		if errors.Is(err, ErrNotFound) {
			if err := a.flush(ctx, g, p, seq-1, res); err != nil {
				return err
			}
			return a.stop(ctx, g, fmt.Sprintf("batch %d is missing from the journal: resync needed", seq), res)
		}
		if err != nil {
			return err
		}
		b, err := a.verify(payload, g, seq, known)
		if err != nil {
			a.Log.Error("corrupt batch quarantined", "group", group, "seq", seq, "err", err)
			if qerr := a.Journal.Quarantine(ctx, group, seq, payload, err.Error()); qerr != nil {
				return qerr
			}
			if err := a.flush(ctx, g, p, seq-1, res); err != nil {
				return err
			}
			return a.stop(ctx, g, fmt.Sprintf("batch %d was corrupt and is quarantined (%v): resync needed", seq, err), res)
		}
		if b.Kind == KindBatch {
			p.add(b)
			res.Bytes += b.Bytes()
			if p.bytes >= maxWriteSetBytes {
				if err := a.flush(ctx, g, p, seq, res); err != nil {
					return err
				}
			}
			continue
		}
		if err := a.flush(ctx, g, p, seq-1, res); err != nil {
			return err
		}
		if err := a.control(ctx, g, b, res); err != nil {
			return err
		}
		if res.Stopped != "" { // the item stopped the group (a scrub's finding): nothing past it is applied
			return nil
		}
		res.To = seq
		if b.Kind == KindMarker {
			res.Markers++
		}
	}
	return a.flush(ctx, g, p, to, res)
}

// control applies a marker, a scrub record or a resync start. A resync the agent started on its own (after an unclean
// stop) leaves the target incomplete until its baseline marker, so no marker before it may become a
// recovery point.
func (a *Applier) control(ctx context.Context, g *Group, b *Batch, res *ApplyResult) error {
	switch b.Kind {
	case KindMarker:
		return a.marker(ctx, g, b)
	case KindScrub:
		return a.scrub(ctx, g, b, res)
	}
	return a.advancePast(ctx, g, b.Seq, StateRow, func(r *GroupRecord) {
		if r.State == StateProtected {
			r.Move(StateResyncing, "", a.Now().UTC())
		}
	})
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

// verify checks a payload against its descriptor (when one came), decodes it and checks that its
// writes fall within the group's disks. In a group with a stream key the payload's MAC is the check:
// its CRCs are not computed again. Without one, the descriptor's CRC64 is combined from the ones
// decoding checks. Only a payload that fails is checksummed whole, to tell damage in storage or
// transit from a foreign MAC or a malformed body.
func (a *Applier) verify(payload []byte, g *Group, seq int64, known map[int64]Descriptor) (*Batch, error) {
	group, key := g.Record.Group(), g.StreamKeyFor(seq)
	d, described := known[seq]
	described = described && d.CRC64 != ""
	mismatch := func(got string) error {
		if described && got != d.CRC64 {
			return fmt.Errorf("%w: payload CRC64 %s, descriptor says %s", ErrCorrupt, got, d.CRC64)
		}
		return nil
	}
	opened, err := OpenPayload(key, group, seq, payload)
	var b *Batch
	var crc uint64
	if err == nil {
		b, crc, err = decodeBatch(opened, key != nil)
	}
	if err != nil {
		if damaged := mismatch(fmt.Sprintf("%016x", crc64Of(payload))); damaged != nil {
			return nil, damaged
		}
		return nil, err
	}
	if key == nil {
		if err := mismatch(fmt.Sprintf("%016x", crc64.Update(crc, crcTable, payload[len(opened):]))); err != nil {
			return nil, err
		}
	}
	if b.Group != group || b.Seq != seq {
		return nil, fmt.Errorf("%w: the payload stored as %s/%d says %s/%d", ErrCorrupt, group, seq, b.Group, b.Seq)
	}
	if b.Kind == KindBatch {
		return b, g.CheckExtents(b)
	}
	return b, nil
}

// commit writes the write set and then moves the watermark to through (ETag-guarded). The order
// matters: a crash between the two replays the same writes, never skips them.
func (a *Applier) commit(ctx context.Context, g *Group, ws *writeSet, through int64, firstSource, lastSource time.Time, res *ApplyResult) error {
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
		a.unfence(g.Record.Group())
		return fmt.Errorf("a write was refused: another instance may have taken the group over (the retry takes it back): %w", err)
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	now := a.Now().UTC()
	rec, err := UpdateGroup(ctx, a.State, g.Record.Group(), ProgressRow, func(r *GroupRecord) error {
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
		return nil
	})
	if err != nil {
		return err
	}
	g.Record = rec
	res.To = through
	// rpoMs: how far behind its source the oldest write of this set was when it landed on the target.
	a.Log.Info("applied", "group", g.Record.Group(), "seq", through, "writes", stats.Writes, "clears", stats.Clears,
		"bytes", stats.BytesWritten, "ms", elapsed.Milliseconds(), "rpoMs", rpoMs(firstSource, now))
	return nil
}

func rpoMs(source, now time.Time) int64 {
	if source.IsZero() {
		return 0
	}
	return max(0, now.Sub(source).Milliseconds())
}

// advancePast moves the watermark past one stream item (a marker or a resync start), letting record
// note what the item means in the rows named besides apply's (a move of the group's state); a
// watermark already past it (another instance got there) changes nothing.
func (a *Applier) advancePast(ctx context.Context, g *Group, seq int64, rows GroupRows, record func(r *GroupRecord)) error {
	rows |= ProgressRow
	rec, err := UpdateGroup(ctx, a.State, g.Record.Group(), rows, func(r *GroupRecord) error {
		if r.Watermark >= seq {
			return ErrUnchanged
		}
		r.Watermark, r.BatchesApplied = seq, r.BatchesApplied+1
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
	_, err := UpdateGroup(ctx, a.State, g.Record.Group(), StateRow, func(r *GroupRecord) error {
		if r.State == StateResyncRequired || !canMove(r.State, StateResyncRequired) {
			return ErrUnchanged // already stopped, or failed over or disabled meanwhile
		}
		return r.Move(StateResyncRequired, reason, a.Now().UTC())
	})
	a.Log.Warn("group stopped", "group", g.Record.Group(), "reason", reason)
	return err
}
