package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RestoreRequest says what to materialize: a recovery point by id, or the group as it was at a time
// (the newest point at or before it plus the journal's batches up to it), into a container.
type RestoreRequest struct {
	Group     string
	PointID   string    // or
	Time      time.Time // any point in time
	Container string
}

// RestoreResult says what was materialized.
type RestoreResult struct {
	Point       RecoveryPoint
	Disks       map[string]DiskRef // disk key → the materialized page blob
	Replayed    int64              // journal batches applied on top of the point
	LastSeq     int64              // the stream position the disks now hold
	EffectiveAt time.Time          // source time of that position
	// Cut says why the replay ended before the asked time, when it did: a batch gone from the journal,
	// or one that fails its check (overwritten or damaged after apply), ends it just before.
	Cut string
}

// ErrNotRestorable is returned when nothing restorable exists at the requested point or time.
var ErrNotRestorable = errors.New("not restorable")

// Restorer materializes recovery points and points in time: server-side copies of a point's snapshots
// into new page blobs, then, for a time, the journal's batches after the point up to that time.
type Restorer struct {
	State   StateStore
	Pages   PageStore
	Journal JournalStore
	// CopyPoll is how often copy status is polled (a job step would schedule a message instead).
	CopyPoll    time.Duration
	Parallelism int
}

// ChoosePoint picks the point a request names: by id, or the newest at or before the time.
func ChoosePoint(points []RecoveryPoint, id string, at time.Time) (RecoveryPoint, error) {
	for _, p := range points { // newest first
		if id != "" && p.ID == id {
			return p, nil
		}
		if id == "" && !p.SourceTime.After(at) {
			return p, nil
		}
	}
	if id != "" {
		return RecoveryPoint{}, fmt.Errorf("%w: no recovery point %s", ErrNotRestorable, id)
	}
	return RecoveryPoint{}, fmt.Errorf("%w: no recovery point at or before %s", ErrNotRestorable, at.Format(time.RFC3339Nano))
}

// Restore materializes the request in one call (tests, tools). Failover jobs run the same steps one
// message at a time: StartCopies, CopiesDone (polled), Replay.
func (r *Restorer) Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
	g, err := LoadGroup(ctx, r.State, req.Group)
	if err != nil {
		return RestoreResult{}, err
	}
	points, err := ListPoints(ctx, r.State, req.Group)
	if err != nil {
		return RestoreResult{}, err
	}
	p, err := ChoosePoint(points, req.PointID, req.Time)
	if err != nil {
		return RestoreResult{}, err
	}
	res, err := r.StartCopies(ctx, g, p, req.Container)
	if err != nil {
		return res, err
	}
	for key, dst := range res.Disks {
		if err := r.waitCopy(ctx, dst); err != nil {
			return res, fmt.Errorf("copying %s: %w", key, err)
		}
	}
	if req.PointID != "" || req.Time.IsZero() {
		return res, nil
	}
	return r.Replay(ctx, g, res, req.Time)
}

// StartCopies starts a server-side copy of every disk of the point into the container (redone from
// scratch when called again, so a restarted step is safe).
func (r *Restorer) StartCopies(ctx context.Context, g *Group, p RecoveryPoint, container string) (RestoreResult, error) {
	res := RestoreResult{Point: p, Disks: map[string]DiskRef{}, LastSeq: p.Seq, EffectiveAt: p.SourceTime}
	if err := r.Pages.EnsureContainer(ctx, container); err != nil {
		return res, err
	}
	for _, d := range g.Spec.Disks() {
		dst := DiskIn(container, d.Key)
		if err := r.Pages.Delete(ctx, dst); err != nil { // a half-done earlier attempt
			return res, err
		}
		if err := r.Pages.StartCopy(ctx, g.TargetDisk(d.Key), p.Snapshots[d.Key], dst); err != nil {
			return res, err
		}
		res.Disks[d.Key] = dst
	}
	return res, nil
}

// CopiesDone reports whether every copy has finished; a failed copy is an error.
func (r *Restorer) CopiesDone(ctx context.Context, disks map[string]DiskRef) (bool, error) {
	done := true
	for key, dst := range disks {
		st, err := r.Pages.CopyStatus(ctx, dst)
		if err != nil {
			return false, err
		}
		switch st.Status {
		case "success":
		case "failed", "aborted":
			return false, fmt.Errorf("copying %s: server-side copy %s: %s", key, st.Status, st.Description)
		default:
			done = false
		}
	}
	return done, nil
}

// Replay applies the journal's batches after the point whose source time is not after at, and ends
// where the disks are consistent: never inside a resync. A resync's blocks are the source as it was
// when each block was read, interleaved with live writes; only its baseline marker makes the disks a
// copy of one moment again. So a time inside a resync restores to just before the resync began.
func (r *Restorer) Replay(ctx context.Context, g *Group, res RestoreResult, at time.Time) (RestoreResult, error) {
	through, cut, err := r.consistentEnd(ctx, g, res.Point.Seq, at)
	if err != nil {
		return res, err
	}
	res.Cut = cut
	ws, held := newWriteSet(), int64(0)
	target := func(disk string) DiskRef { return res.Disks[disk] }
	for seq := res.Point.Seq + 1; seq <= through; seq++ {
		b, err := r.batch(ctx, g, seq)
		if err != nil {
			return res, err
		}
		if b.Kind == KindBatch {
			if err := g.CheckExtents(b); err != nil {
				return res, fmt.Errorf("batch %d: %w", seq, err)
			}
			ws.AddBatch(b)
			if held += b.Bytes(); held >= maxWriteSetBytes { // written in order, in pieces: never held whole
				if _, err := ws.Flush(ctx, r.Pages, target, max(r.Parallelism, 1)); err != nil {
					return res, err
				}
				ws, held = newWriteSet(), 0
			}
		}
		res.Replayed++
		res.LastSeq, res.EffectiveAt = seq, b.SourceTime
	}
	if _, err := ws.Flush(ctx, r.Pages, target, max(r.Parallelism, 1)); err != nil {
		return res, err
	}
	return res, nil
}

// consistentEnd is the last sequence after from whose source time is not after at and which is not
// inside a resync: a resync started and not ended (by its baseline marker) by then ends the replay just
// before its start. A batch missing from the journal ends it too: what follows a hole (a batch an agent
// killed mid-upload never stored, or one the journal window pruned) is consistent again only after the
// resync the hole causes, which a replay from this point cannot reach. So does a batch that fails its
// MAC or its format: whoever can write the journal may overwrite an applied batch, and a disaster is no
// time to refuse the whole failover for it; cut says which batch ended the replay and why.
func (r *Restorer) consistentEnd(ctx context.Context, g *Group, from int64, at time.Time) (through int64, cut string, err error) {
	through, resyncFrom := from, int64(0)
	for seq := from + 1; seq <= g.Record.Watermark; seq++ {
		b, err := r.batch(ctx, g, seq)
		if errors.Is(err, ErrNotRestorable) || errors.Is(err, ErrCorrupt) {
			cut = err.Error()
			break
		}
		if err != nil {
			return 0, "", err
		}
		if b.SourceTime.After(at) {
			break
		}
		switch {
		case b.Kind == KindResync && resyncFrom == 0:
			resyncFrom = seq
		case b.Kind == KindMarker && b.Baseline:
			resyncFrom = 0
		}
		through = seq
	}
	if resyncFrom != 0 {
		through = resyncFrom - 1
	}
	return through, cut, nil
}

// batch reads, authenticates and decodes one journal batch of the group.
func (r *Restorer) batch(ctx context.Context, g *Group, seq int64) (*Batch, error) {
	payload, err := r.Journal.Get(ctx, g.Record.Group(), seq)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: batch %d has left the journal; restore to a recovery point instead", ErrNotRestorable, seq)
	}
	if err != nil {
		return nil, err
	}
	if payload, err = OpenPayload(g.StreamKeyFor(seq), g.Record.Group(), seq, payload); err != nil {
		return nil, err
	}
	b, err := DecodeBatch(payload)
	if err != nil {
		return nil, fmt.Errorf("batch %d: %w", seq, err)
	}
	return b, nil
}

func (r *Restorer) waitCopy(ctx context.Context, dst DiskRef) error {
	poll := r.CopyPoll
	if poll == 0 {
		poll = 100 * time.Millisecond
	}
	for {
		st, err := r.Pages.CopyStatus(ctx, dst)
		if err != nil {
			return err
		}
		switch st.Status {
		case "success":
			return nil
		case "failed", "aborted":
			return fmt.Errorf("server-side copy %s: %s", st.Status, st.Description)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
