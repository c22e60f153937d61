package apiserver

import (
	"net/http"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// The domain's values as the API shows them.

// NewJobView is a job as the API shows it.
func NewJobView(j recovery.Job) apiv1.JobView {
	return apiv1.JobView{ID: j.ID(), Group: j.Group, Plan: j.Plan, Parent: j.Parent, Type: j.Type, RecoveryPoint: j.RecoveryPoint, State: j.State, Steps: apiv1.Convert[[]apiv1.JobStep](j.Steps),
		Point: j.PointID, Result: j.Result, Error: j.Error, CancelRequested: j.CancelRequested, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
}

// NewGroupView is a group as the API shows it (without its retention window).
func NewGroupView(g *replication.Group, now time.Time) apiv1.GroupView {
	r := g.Record
	v := apiv1.GroupView{Group: r.Group(), State: apiv1.State(r.State), Reason: r.Reason, VMs: apiv1.Convert[[]apiv1.VMSpec](g.Spec.VMs),
		Target: apiv1.Convert[apiv1.TargetSpec](r.Target), Policy: apiv1.Convert[apiv1.Policy](r.Policy), Network: apiv1.Convert[apiv1.NetworkSpec](r.Network),
		Watermark: r.Watermark, AgentSeq: r.AgentSeq, LastSourceTime: r.LastSourceTime, LastAppliedAt: r.LastAppliedAt,
		ApplyBytesPerSec: r.ApplyBytesPerSecond, BytesApplied: r.BytesApplied, BatchesApplied: r.BatchesApplied, CreatedAt: r.CreatedAt}
	v.PendingBatches, v.Capture, v.Replicating = r.Pending(), apiv1.Convert[[]apiv1.Capture](g.Spec.Captures()), !r.ReplicationStopped()
	if r.Resources.ResourceGroupID != "" {
		resources := apiv1.Convert[apiv1.TargetResources](r.Resources)
		v.TargetResources = &resources
	}
	if v.Replicating { // after a failover the RPO is no more the target's lag
		v.RPOSeconds = r.RPO(now).Seconds()
	}
	level, errs := replication.RateGroup(&r, now) // live: what the state says now, not at the last tick
	v.Health, v.HealthReason, v.ReplicationState = level, replication.HealthReason(errs), replication.ReplicationState(&r, now)
	v.HealthErrors = []apiv1.HealthErrorView{}
	for _, e := range errs {
		v.HealthErrors = append(v.HealthErrors, apiv1.HealthErrorView{Code: e.Code, Severity: e.Severity, Message: e.Message, RecommendedAction: e.Action})
	}
	if !r.LastPointTime.IsZero() {
		v.LastPointTime = &r.LastPointTime
	}
	if !r.AgentSeenAt.IsZero() {
		v.AgentSeenAt = &r.AgentSeenAt
	}
	if !r.LastAppPointTime.IsZero() {
		v.LastAppPointTime = &r.LastAppPointTime
	}
	if r.BaselineTotal > 0 {
		b := &apiv1.BaselineView{DoneBytes: r.BaselineDone, TotalBytes: r.BaselineTotal, RateBps: r.BaselineRateBps,
			Percent: 100 * float64(r.BaselineDone) / float64(r.BaselineTotal), BlocksCompared: r.BaselineBlocks, BlocksSent: r.BaselineBlocksSent}
		if r.BaselineRateBps > 0 {
			b.ETASeconds = float64(r.BaselineTotal-r.BaselineDone) / r.BaselineRateBps
		}
		v.InitialReplication = b
	}
	if r.LastMarkerSeq > 0 {
		v.LastMarker = &apiv1.MarkerView{Seq: r.LastMarkerSeq, Consistency: r.LastMarkerKind, SourceTime: r.LastMarkerTime}
	}
	v.Drill = apiv1.Convert[apiv1.DrillSpec](g.Spec.Drill)
	v.Readiness = newReadinessView(g, now)
	v.AllowedOperations, v.NotAllowed = []string{}, []apiv1.OperationRefusal{}
	for _, op := range recovery.Operations(&r) {
		if op.Allowed {
			v.AllowedOperations = append(v.AllowedOperations, op.Name)
		} else {
			v.NotAllowed = append(v.NotAllowed, apiv1.OperationRefusal{Operation: op.Name, Reason: op.Why})
		}
	}
	return v
}

// newReadinessView is the group's failover readiness.
func newReadinessView(g *replication.Group, now time.Time) apiv1.ReadinessView {
	r, rd := g.Record, g.Readiness(now)
	v := apiv1.ReadinessView{LastDrill: r.LastDrillJob, LastDrillResult: r.LastDrillResult, WindowDays: int(rd.Window.Hours() / 24), Ready: rd.Ready,
		LastSuccessAgeDays: rd.Age.Hours() / 24}
	if !r.LastDrillAt.IsZero() {
		v.LastDrillAt = &r.LastDrillAt
	}
	if !r.LastDrillSucceededAt.IsZero() {
		v.LastSuccessAt = &r.LastDrillSucceededAt
	}
	if !rd.NextDrill.IsZero() {
		v.NextDrill = &rd.NextDrill
	}
	if r.ActiveTestFailover != "" {
		v.DrillActive = r.ActiveTestFailover
	}
	v.LastTestFailover = lastTestView(r.LastTest)
	return v
}

// lastTestView is a last test failover or drill as the API shows it (nil: none yet).
func lastTestView(t replication.LastTest) *apiv1.LastTestView {
	if t.Job == "" {
		return nil
	}
	v := &apiv1.LastTestView{Job: t.Job, Type: t.Type, Started: t.At, Point: t.Point, Result: t.Result, RTOSeconds: t.RTOSeconds}
	if !t.PointTime.IsZero() {
		v.PointTime = &t.PointTime
	}
	return v
}

// NewHealthView is the app's health from its dependencies' probes: degraded (503) when one is
// unreachable.
func NewHealthView(results []replication.ProbeResult) (apiv1.HealthView, int) {
	v, code := apiv1.HealthView{Status: "healthy", Dependencies: []apiv1.DependencyHealth{}}, http.StatusOK
	for _, p := range results {
		v.Dependencies = append(v.Dependencies, apiv1.DependencyHealth{Name: p.Name, Reachable: p.Err == "", LatencyMs: p.Latency.Milliseconds(), Error: p.Err})
		if p.Err != "" {
			v.Status, code = "degraded", http.StatusServiceUnavailable
		}
	}
	return v, code
}

// NewGroupList is groups as GET /groups answers them.
func NewGroupList(groups []*replication.Group, now time.Time) apiv1.GroupList {
	out := apiv1.GroupList{Groups: []apiv1.GroupView{}}
	for _, g := range groups {
		out.Groups = append(out.Groups, NewGroupView(g, now))
	}
	return out
}

// NewPlanList is plans as GET /plans answers them.
func NewPlanList(plans []recovery.PlanRecord, now time.Time) apiv1.PlanList {
	out := apiv1.PlanList{Plans: []apiv1.PlanView{}}
	for _, p := range plans {
		out.Plans = append(out.Plans, NewPlanView(p, now))
	}
	return out
}

// NewDeadLetterList is the job queue's dead letters as GET /jobs/dead-letters answers them.
func NewDeadLetterList(dls []apiv1.DeadLetterView) apiv1.DeadLetterList {
	if dls == nil {
		dls = []apiv1.DeadLetterView{}
	}
	return apiv1.DeadLetterList{DeadLetters: dls}
}

// NewJobList is jobs as GET /jobs answers them.
func NewJobList(jobs []recovery.Job) apiv1.JobList {
	out := apiv1.JobList{Jobs: []apiv1.JobView{}}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, NewJobView(j))
	}
	return out
}

// NewDrillList is drills as GET .../drills answers them.
func NewDrillList(drills []recovery.DrillStatus) apiv1.DrillList {
	out := apiv1.DrillList{Drills: []apiv1.DrillView{}}
	for _, d := range drills {
		out.Drills = append(out.Drills, NewDrillView(d))
	}
	return out
}

// NewDrillView is a drill's report with its job's state and steps.
func NewDrillView(st recovery.DrillStatus) apiv1.DrillView {
	d := st.Report
	v := apiv1.DrillView{ID: d.Job(), Group: d.PartitionKey, State: d.Result, Started: d.Started, Point: d.PointID,
		PointAgeSeconds: d.PointAgeSeconds, RTOSeconds: d.RTOSeconds, VMs: apiv1.Convert[[]apiv1.DrillVM](d.VMs),
		Checks: apiv1.Convert[[]apiv1.CheckResult](d.Checks), Steps: []apiv1.JobStep{}, Cleanup: d.Cleanup, Error: d.Error}
	if plan, ok := strings.CutPrefix(d.PartitionKey, recovery.PlanDrillPartition("")); ok {
		v.Group, v.Plan = "", plan
	}
	if v.VMs == nil {
		v.VMs = []apiv1.DrillVM{}
	}
	if v.Checks == nil {
		v.Checks = []apiv1.CheckResult{}
	}
	if !d.Slot.IsZero() {
		v.Slot = &d.Slot
	}
	if !d.Ended.IsZero() {
		v.Ended = &d.Ended
	}
	if !d.PointTime.IsZero() {
		v.PointTime = &d.PointTime
	}
	if j := st.Job; j != nil {
		v.State, v.Steps = j.State, apiv1.Convert[[]apiv1.JobStep](j.Steps)
		if v.Point == "" {
			v.Point = j.PointID
		}
		if v.Error == "" {
			v.Error = j.Error
		}
	}
	return v
}

// NewStatusView is a group with its retention window.
func NewStatusView(st replication.GroupStatus, now time.Time) apiv1.GroupView {
	v := NewGroupView(st.Group, now)
	for _, sc := range st.Scrubs {
		sv := apiv1.ScrubView{Disk: sc.Disk, LastPassClean: sc.LastPassClean, BlocksChecked: sc.BlocksChecked, Mismatches: sc.Mismatches,
			LastMismatch: sc.LastMismatchWhat, LastMismatchSeq: sc.LastMismatchSeq}
		if d, ok := st.Spec.Disk(sc.Disk); ok && d.SizeBytes > 0 {
			sv.PassPercent = 100 * float64(min(sc.NextBlock*replication.BlockSize, d.SizeBytes)) / float64(d.SizeBytes)
		}
		if !sc.LastPassEnded.IsZero() {
			sv.LastFullPass = &sc.LastPassEnded
		}
		if !sc.LastMismatchAt.IsZero() {
			sv.LastMismatchAt = &sc.LastMismatchAt
		}
		v.Scrub = append(v.Scrub, sv)
	}
	v.Retention = &apiv1.RetentionView{Hours: st.Record.Policy.RetentionHours, Points: st.Points}
	if st.Points > 0 {
		v.Retention.NewestPoint, v.Retention.OldestPoint = &st.NewestPoint, &st.OldestPoint
	}
	return v
}

// NewPointsPage is a page of recovery points with the restorable window.
func NewPointsPage(l replication.PointListing) apiv1.PointsPage {
	g := l.Group
	page := apiv1.PointsPage{Group: g.Record.Group(), Points: []apiv1.PointView{}, Next: l.Next}
	for _, p := range l.Points {
		v := apiv1.PointView{ID: p.ID, Kind: p.Kind, SourceTime: p.SourceTime, Seq: p.Seq, CreatedAt: p.CreatedAt, Suspect: p.Suspect}
		for _, d := range g.Spec.Disks() {
			v.Disks = append(v.Disks, apiv1.PointDiskView{Disk: d.Key, Snapshot: p.Snapshots[d.Key], SizeBytes: p.Sizes[d.Key]})
		}
		page.Points = append(page.Points, v)
	}
	if w := l.Window; !w.From.IsZero() {
		page.Window.From, page.Window.To = &w.From, &w.To
		page.Window.JournalCovers, page.Window.Reason = w.JournalCovers, w.Reason
	}
	return page
}

// NewEventViews is a group's history.
func NewEventViews(events []replication.Event) []apiv1.EventView {
	out := []apiv1.EventView{}
	for _, e := range events {
		out = append(out, apiv1.EventView{Time: e.Time, Kind: e.Kind, Message: e.Message})
	}
	return out
}

// NewPlanView is a plan's row as the API shows it.
func NewPlanView(r recovery.PlanRecord, now time.Time) apiv1.PlanView {
	v := apiv1.PlanView{Plan: r.PartitionKey, Spec: apiv1.Convert[apiv1.PlanSpec](r.Spec), ActiveJob: r.ActiveJob, UpdatedAt: r.UpdatedAt}
	rd := r.Readiness(now)
	v.Readiness = apiv1.ReadinessView{LastDrill: r.LastDrillJob, LastDrillResult: r.LastDrillResult, WindowDays: int(rd.Window.Hours() / 24), Ready: rd.Ready,
		LastSuccessAgeDays: rd.Age.Hours() / 24}
	if !r.LastDrillAt.IsZero() {
		v.Readiness.LastDrillAt = &r.LastDrillAt
	}
	if !r.LastDrillSucceededAt.IsZero() {
		v.Readiness.LastSuccessAt = &r.LastDrillSucceededAt
	}
	if !rd.NextDrill.IsZero() {
		v.Readiness.NextDrill = &rd.NextDrill
	}
	v.Readiness.LastTestFailover = lastTestView(r.LastTest)
	return v
}

// NewRPOHistoryView is the samples as the API shows them.
func NewRPOHistoryView(group string, samples []replication.RPOSample) apiv1.RPOHistoryView {
	v := apiv1.RPOHistoryView{Group: group, Samples: []apiv1.RPOSampleView{}}
	for _, s := range samples {
		v.Samples = append(v.Samples, apiv1.RPOSampleView{Time: s.Time, RPOSeconds: s.RPOSeconds, Health: s.Health})
	}
	return v
}
