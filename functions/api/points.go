package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, fmt.Errorf("%s=%q is not an RFC 3339 time", name, v)
	}
	return t, nil
}

func (a *API) getPoints(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" && kind != "crash" && kind != "app" {
		Problem(w, r, http.StatusBadRequest, "invalid query parameter kind", fmt.Sprintf("kind=%q, want crash or app", kind))
		return
	}
	from, err := queryTime(r, "from")
	if err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid query parameter from", err.Error())
		return
	}
	to, err := queryTime(r, "to")
	if err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid query parameter to", err.Error())
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			Problem(w, r, http.StatusBadRequest, "invalid query parameter limit", fmt.Sprintf("limit=%q, want 1 to 1000", v))
			return
		}
	}
	var after int64 = -1
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			Problem(w, r, http.StatusBadRequest, "invalid query parameter after", fmt.Sprintf("after=%q is not a continuation this API gave", v))
			return
		}
	}
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	points, err := replication.ListPoints(ctx, a.State, g.Record.PartitionKey)
	if err != nil {
		a.storeProblem(w, r, err, "recovery points")
		return
	}
	page := apiv1.PointsPage{Group: g.Record.PartitionKey, Points: []apiv1.PointView{}}
	for _, p := range points { // newest first
		if after >= 0 && p.Seq >= after {
			continue
		}
		if (kind != "" && p.Kind != kind) || (!from.IsZero() && p.SourceTime.Before(from)) || (!to.IsZero() && p.SourceTime.After(to)) {
			continue
		}
		if len(page.Points) == limit {
			page.Next = strconv.FormatInt(page.Points[limit-1].Seq, 10)
			break
		}
		v := apiv1.PointView{ID: p.ID, Kind: p.Kind, SourceTime: p.SourceTime, Seq: p.Seq, CreatedAt: p.CreatedAt}
		for _, d := range g.Spec.Disks() {
			v.Disks = append(v.Disks, apiv1.PointDiskView{Disk: d.Key, Snapshot: p.Snapshots[d.Key], SizeBytes: p.Sizes[d.Key]})
		}
		page.Points = append(page.Points, v)
	}
	if n := len(points); n > 0 {
		oldest := points[n-1]
		page.Window.From = &oldest.SourceTime
		last := g.Record.LastSourceTime
		page.Window.To = &last
		page.Window.JournalCovers, page.Window.Reason = a.journalCovers(r, g, oldest.Seq)
	}
	writeJSON(w, http.StatusOK, page)
}

// journalCovers checks that the journal holds every batch after the oldest point up to the watermark.
func (a *API) journalCovers(r *http.Request, g *replication.Group, fromSeq int64) (bool, string) {
	if a.Journal == nil {
		return false, "the journal is not configured (StandbyCacheStorage)"
	}
	seqs, err := a.Journal.List(r.Context(), g.Record.PartitionKey)
	if err != nil {
		return false, err.Error()
	}
	have := map[int64]bool{}
	for _, s := range seqs {
		have[s] = true
	}
	for s := fromSeq + 1; s <= g.Record.Watermark; s++ {
		if !have[s] {
			return false, fmt.Sprintf("batch %d has left the journal (journal window %d minutes): times before it restore to a recovery point only", s, g.Record.Policy.JournalWindowMinutes)
		}
	}
	return true, ""
}
