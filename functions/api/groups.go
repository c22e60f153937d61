package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/standby-dr/standby/shared/apiv1"
	"github.com/standby-dr/standby/shared/replication"
)

func (a *API) needState(w http.ResponseWriter, r *http.Request) bool {
	if a.State == nil || a.Pages == nil {
		Problem(w, r, http.StatusServiceUnavailable, "storage not configured", "set StandbyTargetStorage")
		return false
	}
	return true
}

func groupName(w http.ResponseWriter, r *http.Request) (string, bool) {
	group := r.PathValue("group")
	if err := replication.ValidGroupName(group); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid group name", err.Error())
		return "", false
	}
	return group, true
}

func (a *API) putGroup(w http.ResponseWriter, r *http.Request) {
	group, ok := groupName(w, r)
	if !ok || !a.needState(w, r) {
		return
	}
	var spec replication.GroupSpec
	if err := decodeBody(r, &spec); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid body", err.Error())
		return
	}
	spec.Normalize(group)
	if err := spec.Validate(); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid group spec", err.Error())
		return
	}
	ctx := r.Context()
	existing, err := replication.LoadGroup(ctx, a.State, group)
	switch {
	case err == nil:
		conflicts := existing.Spec.Conflicts(&spec)
		if len(conflicts) > 0 && existing.Spec.OnlyPlacementDiffers(&spec) {
			g, err := replication.UpdatePlacement(ctx, a.State, group, spec, a.Now().UTC())
			if err != nil {
				a.storeProblem(w, r, err, "group "+group)
				return
			}
			a.Log.Info("group placement changed", "group", group, "changes", strings.Join(conflicts, "; "))
			writeJSON(w, http.StatusOK, apiv1.NewGroupView(g, a.Now()))
			return
		}
		if len(conflicts) > 0 {
			detail := strings.Join(conflicts, "; ")
			if existing.Record.State == replication.StateFailedBack {
				detail = "the group failed back (its replication this way ended): DELETE it with keepData=false, then enable it again; " + detail
			}
			Problem(w, r, http.StatusConflict, "group exists with a different spec", detail)
			return
		}
		if existing.Record.State == replication.StateDisabled {
			Problem(w, r, http.StatusConflict, "group is disabled", "delete it with keepData=false before enabling it again")
			return
		}
		writeJSON(w, http.StatusOK, apiv1.NewGroupView(existing, a.Now()))
		return
	case !errors.Is(err, replication.ErrNoGroup):
		a.storeProblem(w, r, err, "group "+group)
		return
	}
	// Target disks first (sparse page blobs at the source sizes), then the rows: a group becomes
	// visible only when its disks exist. A retry after a crash finds the disks and goes on.
	if err := a.Pages.EnsureContainer(ctx, spec.Target.Container); err != nil {
		a.storeProblem(w, r, err, "container "+spec.Target.Container)
		return
	}
	for _, d := range spec.Disks() {
		ref := spec.TargetDisk(d.Key)
		if _, given := spec.Target.Disks[d.Key]; given { // an original disk: it must be there, as large
			size, err := a.Pages.Size(ctx, ref)
			if errors.Is(err, replication.ErrNotFound) {
				Problem(w, r, http.StatusConflict, "target disk missing", fmt.Sprintf("target.disks[%s]: %s does not exist", d.Key, ref))
				return
			}
			if err != nil {
				a.storeProblem(w, r, err, "target disk "+ref.String())
				return
			}
			if size != d.Spec.SizeBytes {
				Problem(w, r, http.StatusConflict, "target disk differs", fmt.Sprintf("target.disks[%s]: %s has %d bytes, the spec says %d", d.Key, ref, size, d.Spec.SizeBytes))
				return
			}
			continue
		}
		err := a.Pages.Create(ctx, ref, d.Spec.SizeBytes)
		if errors.Is(err, replication.ErrConflict) {
			size, serr := a.Pages.Size(ctx, ref)
			if serr == nil && size == d.Spec.SizeBytes {
				continue
			}
			Problem(w, r, http.StatusConflict, "target disk exists", fmt.Sprintf("%s exists with %d bytes, the spec says %d", ref, size, d.Spec.SizeBytes))
			return
		}
		if err != nil {
			a.storeProblem(w, r, err, "target disk "+ref.String())
			return
		}
	}
	g, err := replication.CreateGroup(ctx, a.State, group, spec, a.Now().UTC())
	if errors.Is(err, replication.ErrConflict) { // a concurrent PUT won
		a.putGroup(w, r)
		return
	}
	if err != nil {
		a.storeProblem(w, r, err, "group "+group)
		return
	}
	a.Log.Info("group enabled", "group", group, "vms", len(spec.VMs), "disks", len(spec.Disks()))
	writeJSON(w, http.StatusCreated, apiv1.NewGroupView(g, a.Now()))
}

// loadGroup resolves the request's group, answering the problem itself when it cannot.
func (a *API) loadGroup(w http.ResponseWriter, r *http.Request) (*replication.Group, bool) {
	group, ok := groupName(w, r)
	if !ok || !a.needState(w, r) {
		return nil, false
	}
	g, err := replication.LoadGroup(r.Context(), a.State, group)
	if err != nil {
		a.storeProblem(w, r, err, "group "+group)
		return nil, false
	}
	return g, true
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	v := apiv1.NewGroupView(g, a.Now())
	points, err := replication.ListPoints(r.Context(), a.State, g.Record.PartitionKey)
	if err != nil {
		a.storeProblem(w, r, err, "recovery points")
		return
	}
	v.Retention = &apiv1.RetentionView{Hours: g.Record.Policy.RetentionHours, Points: len(points)}
	if n := len(points); n > 0 { // newest first
		v.Retention.NewestPoint, v.Retention.OldestPoint = &points[0].SourceTime, &points[n-1].SourceTime
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	if !a.needState(w, r) {
		return
	}
	names, err := replication.GroupNames(r.Context(), a.State)
	if err != nil {
		a.storeProblem(w, r, err, "groups")
		return
	}
	out := []apiv1.GroupView{}
	for _, name := range names {
		g, err := replication.LoadGroup(r.Context(), a.State, name)
		if errors.Is(err, replication.ErrNoGroup) {
			continue // deleted meanwhile
		}
		if err != nil {
			a.storeProblem(w, r, err, "group "+name)
			return
		}
		out = append(out, apiv1.NewGroupView(g, a.Now()))
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}

// deleteGroup disables replication. keepData=true (the default) keeps the target disks and recovery
// state, the group stays visible as Disabled and apply drops its batches; keepData=false removes the
// target disks with their snapshots and every row of the group.
func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) {
	keep := true
	switch v := r.URL.Query().Get("keepData"); v {
	case "", "true":
	case "false":
		keep = false
	default:
		Problem(w, r, http.StatusBadRequest, "invalid query parameter keepData", fmt.Sprintf("keepData=%q, want true or false", v))
		return
	}
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	if !keep && a.Journal == nil {
		Problem(w, r, http.StatusServiceUnavailable, "cache storage not configured", "removing a group's data removes its journal: set StandbyCacheStorage")
		return
	}
	ctx, group := r.Context(), g.Record.PartitionKey
	rec, err := replication.UpdateGroup(ctx, a.State, group, func(rec *replication.GroupRecord) error {
		rec.State, rec.Reason, rec.UpdatedAt = replication.StateDisabled, "replication disabled by the operator", a.Now().UTC()
		return nil
	})
	if err != nil {
		a.storeProblem(w, r, err, "group "+group)
		return
	}
	g.Record = rec
	if keep {
		a.Log.Info("group disabled, data kept", "group", group)
		writeJSON(w, http.StatusOK, apiv1.NewGroupView(g, a.Now()))
		return
	}
	if err := replication.RemoveGroup(ctx, a.State, a.Pages, a.Journal, g); err != nil {
		a.storeProblem(w, r, err, "removing the data of "+group)
		return
	}
	a.Log.Info("group disabled, data removed", "group", group)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) postAgent(w http.ResponseWriter, r *http.Request) {
	group, ok := groupName(w, r)
	if !ok || !a.needState(w, r) {
		return
	}
	var rep apiv1.AgentReport
	if err := decodeBody(r, &rep); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid body", err.Error())
		return
	}
	if rep.Seq < 0 || rep.BaselineDoneBytes < 0 || rep.BaselineTotalBytes < rep.BaselineDoneBytes || rep.BaselineBlocksSent < 0 || rep.BaselineBlocks < rep.BaselineBlocksSent {
		Problem(w, r, http.StatusBadRequest, "invalid agent report", "seq and counts must be non-negative, done bytes <= total and blocks sent <= blocks compared")
		return
	}
	now := a.Now().UTC()
	rec, err := replication.UpdateGroup(r.Context(), a.State, group, func(g *replication.GroupRecord) error {
		g.AgentSeq = max(g.AgentSeq, rep.Seq)
		g.AgentSeenAt = now
		if rep.Stopped && g.StopRequested {
			g.AgentStoppedSeq = rep.Seq
		}
		g.BaselineDone, g.BaselineTotal, g.BaselineRateBps = rep.BaselineDoneBytes, rep.BaselineTotalBytes, rep.BaselineRateBps
		g.BaselineBlocks, g.BaselineBlocksSent = rep.BaselineBlocks, rep.BaselineBlocksSent
		return nil
	})
	if err != nil {
		a.storeProblem(w, r, err, "group "+group)
		return
	}
	in := apiv1.AgentInstructions{State: rec.State, Reason: rec.Reason, Watermark: rec.Watermark, Resync: rec.State == replication.StateResyncRequired,
		Stop: rec.StopRequested}
	if rec.MarkerRequestedAt.After(rec.LastMarkerTime) {
		in.MarkerRequestedAt = &rec.MarkerRequestedAt
	}
	if rec.AppMarkerRequestedAt.After(rec.LastAppPointTime) {
		in.AppMarkerRequestedAt = &rec.AppMarkerRequestedAt
	}
	writeJSON(w, http.StatusOK, in)
}

func (a *API) postResync(w http.ResponseWriter, r *http.Request) {
	group, ok := groupName(w, r)
	if !ok || !a.needState(w, r) {
		return
	}
	rec, err := replication.UpdateGroup(r.Context(), a.State, group, func(g *replication.GroupRecord) error {
		if g.State == replication.StateDisabled {
			return fmt.Errorf("%w: group is disabled", errState)
		}
		if g.State == replication.StateResyncRequired {
			return replication.ErrUnchanged
		}
		g.State, g.Reason, g.UpdatedAt = replication.StateResyncRequired, "resync requested by the operator", a.Now().UTC()
		return nil
	})
	if errors.Is(err, errState) {
		Problem(w, r, http.StatusConflict, "resync not possible", stateDetail(err))
		return
	}
	if err != nil {
		a.storeProblem(w, r, err, "group "+group)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"group": group, "state": rec.State, "reason": rec.Reason})
}

var errState = errors.New("conflicting state")

// stateDetail is a state conflict's reason without the sentinel's words.
func stateDetail(err error) string { return strings.TrimPrefix(err.Error(), errState.Error()+": ") }

func (a *API) getDiskHashes(w http.ResponseWriter, r *http.Request) {
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	ctx, group := r.Context(), g.Record.PartitionKey
	key := replication.DiskKey(r.PathValue("vm"), r.PathValue("disk"))
	var size int64 = -1
	for _, d := range g.Spec.Disks() {
		if d.Key == key {
			size = d.Spec.SizeBytes
		}
	}
	if size < 0 {
		Problem(w, r, http.StatusNotFound, "not found", fmt.Sprintf("group %s has no disk %s", group, key))
		return
	}
	ref := g.TargetDisk(key)
	ranges, err := a.Pages.AllocatedRanges(ctx, ref, "")
	if err != nil {
		a.storeProblem(w, r, err, "disk "+key)
		return
	}
	bs := int64(replication.BlockSize)
	out := apiv1.DiskHashes{BlockSize: bs, Hashes: make([]string, (size+bs-1)/bs)}
	ri := 0
	for i := range out.Hashes {
		start, end := int64(i)*bs, min(int64(i+1)*bs, size)
		for ri < len(ranges) && ranges[ri].End() <= start {
			ri++
		}
		if ri == len(ranges) || ranges[ri].Offset >= end {
			continue // nothing allocated in the block: it reads as zeros
		}
		data, err := a.Pages.ReadRange(ctx, ref, "", start, end-start)
		if err != nil {
			a.storeProblem(w, r, err, "disk "+key)
			return
		}
		out.Hashes[i] = replication.BlockHash(data)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) postEvent(w http.ResponseWriter, r *http.Request) {
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	var ev apiv1.EventReport
	if err := decodeBody(r, &ev); err != nil {
		Problem(w, r, http.StatusBadRequest, "invalid body", err.Error())
		return
	}
	if ev.Kind == "" || len(ev.Kind) > 64 || ev.Message == "" || len(ev.Message) > 4096 {
		Problem(w, r, http.StatusBadRequest, "invalid event", "kind (1-64 characters) and message (1-4096 characters) are required")
		return
	}
	if err := replication.RecordEvent(r.Context(), a.State, g.Record.PartitionKey, ev.Kind, ev.Message, a.Now().UTC()); err != nil {
		a.storeProblem(w, r, err, "events")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) getEvents(w http.ResponseWriter, r *http.Request) {
	g, ok := a.loadGroup(w, r)
	if !ok {
		return
	}
	events, err := replication.ListEvents(r.Context(), a.State, g.Record.PartitionKey)
	if err != nil {
		a.storeProblem(w, r, err, "events")
		return
	}
	out := []apiv1.EventView{}
	for _, e := range events {
		out = append(out, apiv1.EventView{Time: e.Time, Kind: e.Kind, Message: e.Message})
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": g.Record.PartitionKey, "events": out})
}
