package replication

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// PointQuery selects recovery points, newest first: of a kind (crash, app; empty for both), with
// source times within [From, To] (zero: unbounded), at most Limit, older than the point of sequence
// After (a continuation; negative for none).
type PointQuery struct {
	Kind     string
	From, To time.Time
	Limit    int64
	After    int64
}

// Validate names the parameter that is out of range.
func (q PointQuery) Validate() error {
	if q.Kind != "" && q.Kind != "crash" && q.Kind != "app" {
		return fmt.Errorf("%w: kind=%q, want crash or app", ErrInvalid, q.Kind)
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return fmt.Errorf("%w: limit=%d, want 1 to 1000", ErrInvalid, q.Limit)
	}
	return nil
}

// restoreWindow is what can be restored: from the oldest point to the newest applied write.
// JournalCovers says whether the journal holds every batch in between (any point in time, not only the
// points); Reason says why not.
type restoreWindow struct {
	From, To      time.Time
	JournalCovers bool
	Reason        string
}

// PointListing is one page of a group's recovery points and its restorable window.
type PointListing struct {
	Group  *Group
	Points []RecoveryPoint
	// Next continues the listing (the After of the next query), empty at the end.
	Next   string
	Window restoreWindow
}

// Points lists a group's recovery points by q, with the restorable window.
func (s *Points) List(ctx context.Context, group string, q PointQuery) (PointListing, error) {
	if err := q.Validate(); err != nil {
		return PointListing{}, err
	}
	g, points, err := s.loadWithPoints(ctx, group)
	if err != nil {
		return PointListing{}, err
	}
	out := PointListing{Group: g}
	for _, p := range points { // newest first
		if q.After >= 0 && p.Seq >= q.After {
			continue
		}
		if (q.Kind != "" && p.Kind != q.Kind) || (!q.From.IsZero() && p.SourceTime.Before(q.From)) || (!q.To.IsZero() && p.SourceTime.After(q.To)) {
			continue
		}
		if int64(len(out.Points)) == q.Limit {
			out.Next = strconv.FormatInt(out.Points[q.Limit-1].Seq, 10)
			break
		}
		out.Points = append(out.Points, p)
	}
	if n := len(points); n > 0 {
		oldest := points[n-1]
		out.Window = restoreWindow{From: oldest.SourceTime, To: g.Record.LastSourceTime}
		out.Window.JournalCovers, out.Window.Reason = s.journalCovers(ctx, g, oldest.Seq)
	}
	return out, nil
}

// journalCovers checks that the journal holds every batch after the oldest point up to the watermark.
func (s *Points) journalCovers(ctx context.Context, g *Group, fromSeq int64) (bool, string) {
	if s.Journal == nil {
		return false, "the journal is not configured (StandbyCacheStorage)"
	}
	seqs, err := s.Journal.List(ctx, g.Record.Group())
	if err != nil {
		return false, err.Error()
	}
	have := map[int64]bool{}
	for _, seq := range seqs {
		have[seq] = true
	}
	for seq := fromSeq + 1; seq <= g.Record.Watermark; seq++ {
		if !have[seq] {
			return false, fmt.Sprintf("batch %d has left the journal (journal window %d minutes): times before it restore to a recovery point only", seq, g.Record.Policy.JournalWindowMinutes)
		}
	}
	return true, ""
}
