package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Admission decides which job may start when, records it and queues its first step. The job row is
// written first, then the group's claim on it (ETag-guarded), then the message: a claim always names a
// recorded job, so a claim naming a missing job is stale (its request failed), and two concurrent
// requests cannot both win.
type Admission struct {
	State replication.StateStore
	Pages replication.PageStore
	Jobs  replication.JobSender // nil: the job queue is not configured
	// PeerConfigured: the other region's deployment is known (reprotect and failback need it).
	PeerConfigured bool
	// WebhooksConfigured: plan webhook actions can be signed (StandbyWebhookSecret is set).
	WebhooksConfigured bool
	Log                *slog.Logger
	Now                func() time.Time
}

// Request asks for a job on a group. RecoveryPoint is the point choice of failovers and change-point
// jobs. JobID, when given, makes the request idempotent: the job gets this id, and the same request
// again answers the job it made (a peer site's failback retries with it).
type Request struct {
	Group         string
	Type          string
	RecoveryPoint string
	JobID         string
	// Parent is the plan job starting this group's job (which then leaves the VMs to it).
	Parent string
	// Sources says, for a reprotect, where the agent on each failed-over VM reads its disks (by disk
	// key; ReverseSpec's defaults otherwise).
	Sources map[string]string
}

// ValidJobID reports whether id has the form of a job id (32 lowercase hex digits).
func ValidJobID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Start admits and queues the job req asks for. Errors wrap replication.ErrInvalid (a bad request),
// ErrState (the group's state does not allow it), ErrNotFound, ErrNotConfigured or a store error.
func (a *Admission) Start(ctx context.Context, req Request) (Job, error) {
	if err := req.normalize(); err != nil {
		return Job{}, err
	}
	if a.State == nil || a.Pages == nil {
		return Job{}, fmt.Errorf("%w: the target storage (set StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	g, err := replication.LoadGroup(ctx, a.State, req.Group)
	if err != nil {
		return Job{}, err
	}
	if err := a.precheck(ctx, g, &req); err != nil {
		return Job{}, err
	}
	if a.Jobs == nil {
		return Job{}, fmt.Errorf("%w: the job queue (set StandbyServiceBus)", replication.ErrNotConfigured)
	}
	job, err := NewJob(req.Group, req.Type, req.RecoveryPoint, a.Now().UTC())
	if err != nil {
		return Job{}, fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	if req.JobID != "" {
		job.PartitionKey = req.JobID
	}
	for key, src := range req.Sources {
		job.Work["source:"+key] = src
	}
	job.Parent = req.Parent
	if _, err := a.State.Insert(ctx, JobsTable, job); err != nil {
		if req.JobID != "" && errors.Is(err, replication.ErrConflict) {
			return a.existing(ctx, req)
		}
		return Job{}, err
	}
	if _, err := replication.UpdateGroup(ctx, a.State, req.Group, func(rec *replication.GroupRecord) error {
		return a.claim(ctx, rec, job)
	}); err != nil {
		a.State.Delete(ctx, JobsTable, job.ID(), JobRow, "") // never queued
		return Job{}, err
	}
	if err := QueueJob(ctx, a.Jobs, job); err != nil {
		return Job{}, err
	}
	a.Log.Info("job queued", "job", job.ID(), "group", job.Group, "type", job.Type)
	return job, nil
}

// normalize checks the request's fields and fills the failover point's default.
func (req *Request) normalize() error {
	if err := replication.CheckGroupName(req.Group); err != nil {
		return err
	}
	if len(req.Sources) > 0 && req.Type != JobReprotect {
		return fmt.Errorf("%w: sources: only a reprotect reads the failed-over VMs' disks", replication.ErrInvalid)
	}
	if len(req.Sources) > replication.MaxVMsPerGroup*replication.MaxDisksPerVM {
		return fmt.Errorf("%w: sources: %d entries, more than a group has disks", replication.ErrInvalid, len(req.Sources))
	}
	if req.JobID != "" && !ValidJobID(req.JobID) {
		return fmt.Errorf("%w: jobId %q is not 32 lowercase hex digits", replication.ErrInvalid, req.JobID)
	}
	switch req.Type {
	case JobTestFailover, JobPlannedFailover, JobUnplannedFailover:
		if req.RecoveryPoint == "" {
			req.RecoveryPoint = "latestProcessed"
		}
		if req.Type == JobPlannedFailover && req.RecoveryPoint != "latestProcessed" {
			return fmt.Errorf("%w: recoveryPoint: a planned failover goes to the point the agent's final writes make; leave recoveryPoint out", replication.ErrInvalid)
		}
	case JobChangePoint:
		if req.RecoveryPoint == "" {
			return fmt.Errorf("%w: recoveryPoint is required", replication.ErrInvalid)
		}
	}
	return nil
}

// precheck refuses, before anything is recorded, a job that cannot work: a drill with no isolated test
// subnet, a way back without a peer site or without original disks it can write. After a failback a
// reprotect resumes replication in the first direction.
func (a *Admission) precheck(ctx context.Context, g *replication.Group, req *Request) error {
	switch req.Type {
	case JobTestFailover:
		if err := g.Spec.CheckTestNetwork(); err != nil {
			return fmt.Errorf("%w: cannot run a test failover: %v", replication.ErrState, err)
		}
	case JobReprotect, JobFailback:
		if !a.PeerConfigured {
			return fmt.Errorf("%w: peer site: reprotect and failback drive the other region's Standby deployment: set StandbyPeerApi (and StandbyPeerApiKey)", replication.ErrNotConfigured)
		}
	}
	if req.Type != JobReprotect {
		return nil
	}
	switch g.Record.State {
	case replication.StateFailedBack:
		req.Type = JobReprotectForward
	case replication.StateCommitted:
		fo, err := LoadJob(ctx, a.State, g.Record.FailoverJob)
		if err != nil {
			return fmt.Errorf("failover job %s: %w", g.Record.FailoverJob, err)
		}
		if _, _, err := ReverseSpec(g.Record.PartitionKey, g.Spec, fo.Container, a.Pages.URL, req.Sources); err != nil {
			return fmt.Errorf("%w: cannot reprotect: %v", replication.ErrState, err)
		}
	}
	return nil
}

// existing answers a retried request with the job recorded under its id, or a conflict when that id is
// another group's or another type's job.
func (a *Admission) existing(ctx context.Context, req Request) (Job, error) {
	job, err := LoadJob(ctx, a.State, req.JobID)
	if err != nil {
		return Job{}, err
	}
	if job.Group != req.Group || job.Type != req.Type {
		return Job{}, fmt.Errorf("%w: job id in use: job %s is a %s job of group %s", replication.ErrConflict, job.ID(), job.Type, job.Group)
	}
	return job, nil
}

// LoadJob reads a job by id (ErrNotFound when there is none).
func LoadJob(ctx context.Context, store replication.StateStore, id string) (Job, error) {
	if !ValidJobID(id) {
		return Job{}, fmt.Errorf("%w: job id %q is not 32 hex digits", replication.ErrInvalid, id)
	}
	var job Job
	_, err := store.Get(ctx, JobsTable, id, JobRow, &job)
	return job, err
}

// claim decides whether the group's state admits the job and records the group's claim on it: one
// failover at a time (only a failed one frees the claim: a group once failed over stays claimed), one
// reprotect or failback at a time, one test failover until it is cleaned up.
func (a *Admission) claim(ctx context.Context, rec *replication.GroupRecord, job Job) error {
	if err := admits(rec, job.Type); err != nil {
		return err
	}
	switch job.Type {
	case JobPlannedFailover, JobUnplannedFailover:
		failed := func(j *Job) bool { return j.State == JobFailed }
		if err := a.busy(ctx, rec.FailoverJob, failed, func(Job) string { return "failover" }); err != nil {
			return err
		}
		rec.FailoverJob = job.ID() // a concurrent request finds this one
	case JobReprotect, JobFailback, JobReprotectForward:
		if err := a.busy(ctx, rec.WayBackJob, (*Job).Terminal, func(j Job) string { return j.Type }); err != nil {
			return err
		}
		rec.WayBackJob = job.ID()
	case JobTestFailover:
		rec.ActiveTestFailover = job.ID()
	case JobCleanupTest:
		rec.ActiveTestFailover = ""
	}
	return nil
}

// admits says why the group's state does not admit a job of the type (nil when it does).
func admits(rec *replication.GroupRecord, jobType string) error {
	why := ""
	switch state := rec.State; jobType {
	case JobPlannedFailover, JobUnplannedFailover:
		switch {
		case rec.FailedOver():
			why = fmt.Sprintf("the group is %s already", state)
		case jobType == JobPlannedFailover && state != replication.StateProtected:
			why = fmt.Sprintf("a planned failover needs a Protected group, it is %s", state)
		case jobType == JobUnplannedFailover && rec.LastPointTime.IsZero():
			why = fmt.Sprintf("the group has no recovery point to fail over to (state %s)", state)
		}
	case JobReprotect:
		if state == replication.StateFailedOver {
			why = "reprotect needs a committed failover; the group is FailedOver: commit it first"
		} else if state != replication.StateCommitted {
			why = fmt.Sprintf("reprotect needs a committed failover; the group is %s", state)
		}
	case JobFailback:
		if state != replication.StateReprotected {
			why = fmt.Sprintf("failback needs a Reprotected group (replicating back); it is %s", state)
		}
	case JobReprotectForward:
		if state != replication.StateFailedBack {
			why = fmt.Sprintf("the group is %s, no longer FailedBack", state)
		}
	case JobCommit:
		if state != replication.StateFailedOver {
			why = fmt.Sprintf("only a FailedOver group can be committed, it is %s", state)
		}
	case JobChangePoint:
		if state != replication.StateFailedOver {
			why = fmt.Sprintf("the recovery point of a failover can change until it is committed; the group is %s", state)
		}
	case JobTestFailover:
		if rec.ActiveTestFailover != "" {
			why = fmt.Sprintf("test failover %s is active: clean it up first", rec.ActiveTestFailover)
		} else if rec.LastPointTime.IsZero() {
			why = fmt.Sprintf("the group has no recovery point yet (state %s)", state)
		}
	case JobCleanupTest:
		if rec.ActiveTestFailover == "" {
			why = "no test failover to clean up"
		}
	}
	if why != "" {
		return fmt.Errorf("%w: %s", replication.ErrState, why)
	}
	return nil
}

// busy refuses while the job a claim names is still running (released says when it no longer holds the
// claim); a claim naming a missing job is stale: its request failed before the job was queued.
func (a *Admission) busy(ctx context.Context, id string, released func(*Job) bool, what func(Job) string) error {
	if id == "" {
		return nil
	}
	job, err := LoadJob(ctx, a.State, id)
	if errors.Is(err, replication.ErrNotFound) {
		return nil
	}
	if err != nil || released(&job) {
		return err
	}
	return fmt.Errorf("%w: %s job %s is %s", replication.ErrState, what(job), job.ID(), job.State)
}

// StartFailover admits a failover of one of the three kinds (test, planned, unplanned).
func (a *Admission) StartFailover(ctx context.Context, req Request) (Job, error) {
	switch req.Type {
	case JobTestFailover, JobPlannedFailover, JobUnplannedFailover:
		return a.Start(ctx, req)
	}
	return Job{}, fmt.Errorf("%w: type %q: want test, planned or unplanned", replication.ErrInvalid, req.Type)
}

// Job reads a job by id.
func (a *Admission) Job(ctx context.Context, id string) (Job, error) {
	if a.State == nil {
		return Job{}, fmt.Errorf("%w: the state store (set StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	return LoadJob(ctx, a.State, id)
}

// MaxJobList is the most jobs one listing answers.
const MaxJobList = 200

// ListJobs lists the recorded jobs, newest first, at most limit of them; only group's (its own and the
// plan jobs' children) when group is not empty. Finished jobs are kept for JobRetention.
func (a *Admission) ListJobs(ctx context.Context, group string, limit int) ([]Job, error) {
	if a.State == nil {
		return nil, fmt.Errorf("%w: the state store (set StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	if group != "" {
		if err := replication.CheckGroupName(group); err != nil {
			return nil, err
		}
	}
	if limit < 1 || limit > MaxJobList {
		return nil, fmt.Errorf("%w: limit %d: want 1 to %d", replication.ErrInvalid, limit, MaxJobList)
	}
	var jobs []Job
	err := a.State.ListRows(ctx, JobsTable, JobRow, func(decode func(any) error, _ replication.ETag) error {
		var j Job
		if err := decode(&j); err != nil {
			return err
		}
		if group == "" || j.Group == group {
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil && !errors.Is(err, replication.ErrNotFound) { // no jobs table yet: no jobs
		return nil, err
	}
	slices.SortFunc(jobs, func(x, y Job) int { return y.CreatedAt.Compare(x.CreatedAt) })
	return jobs[:min(limit, len(jobs))], nil
}
