package apiv1

import (
	"time"

	"github.com/standby-dr/standby/shared/failover"
	"github.com/standby-dr/standby/shared/replication"
)

// The domain's values as the API shows them.

// NewJobView is a job as the API shows it.
func NewJobView(j failover.Job) JobView {
	return JobView{ID: j.ID(), Group: j.Group, Plan: j.Plan, Parent: j.Parent, Type: j.Type, RecoveryPoint: j.RecoveryPoint, State: j.State, Steps: j.Steps,
		Point: j.PointID, Result: j.Result, Error: j.Error, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
}

// NewGroupView is a group as the API shows it (without its retention window).
func NewGroupView(g *replication.Group, now time.Time) GroupView {
	r := g.Record
	v := GroupView{Group: r.PartitionKey, State: r.State, Reason: r.Reason, VMs: g.Spec.VMs, Target: r.Target, Policy: r.Policy, Network: r.Network,
		Watermark: r.Watermark, AgentSeq: r.AgentSeq, LastSourceTime: r.LastSourceTime, LastAppliedAt: r.LastAppliedAt,
		ApplyBytesPerSec: r.ApplyBytesPerSecond, BytesApplied: r.BytesApplied, BatchesApplied: r.BatchesApplied, CreatedAt: r.CreatedAt}
	v.PendingBatches, v.Capture, v.Replicating = r.Pending(), g.Spec.Captures(), !r.ReplicationStopped()
	if r.Resources.ResourceGroupID != "" {
		v.TargetResources = &r.Resources
	}
	v.RPOSeconds = r.RPO(now).Seconds()
	v.Health, v.HealthReason = r.Health, r.HealthReason
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
		b := &BaselineView{DoneBytes: r.BaselineDone, TotalBytes: r.BaselineTotal, RateBps: r.BaselineRateBps,
			Percent: 100 * float64(r.BaselineDone) / float64(r.BaselineTotal), BlocksCompared: r.BaselineBlocks, BlocksSent: r.BaselineBlocksSent}
		if r.BaselineRateBps > 0 {
			b.ETASeconds = float64(r.BaselineTotal-r.BaselineDone) / r.BaselineRateBps
		}
		v.InitialReplication = b
	}
	if r.LastMarkerSeq > 0 {
		v.LastMarker = &MarkerView{Seq: r.LastMarkerSeq, Consistency: r.LastMarkerKind, SourceTime: r.LastMarkerTime}
	}
	return v
}

// NewStatusView is a group with its retention window.
func NewStatusView(st replication.GroupStatus, now time.Time) GroupView {
	v := NewGroupView(st.Group, now)
	v.Retention = &RetentionView{Hours: st.Record.Policy.RetentionHours, Points: st.Points}
	if st.Points > 0 {
		v.Retention.NewestPoint, v.Retention.OldestPoint = &st.NewestPoint, &st.OldestPoint
	}
	return v
}

// NewPointsPage is a page of recovery points with the restorable window.
func NewPointsPage(l replication.PointListing) PointsPage {
	g := l.Group
	page := PointsPage{Group: g.Record.PartitionKey, Points: []PointView{}, Next: l.Next}
	for _, p := range l.Points {
		v := PointView{ID: p.ID, Kind: p.Kind, SourceTime: p.SourceTime, Seq: p.Seq, CreatedAt: p.CreatedAt}
		for _, d := range g.Spec.Disks() {
			v.Disks = append(v.Disks, PointDiskView{Disk: d.Key, Snapshot: p.Snapshots[d.Key], SizeBytes: p.Sizes[d.Key]})
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
func NewEventViews(events []replication.Event) []EventView {
	out := []EventView{}
	for _, e := range events {
		out = append(out, EventView{Time: e.Time, Kind: e.Kind, Message: e.Message})
	}
	return out
}
