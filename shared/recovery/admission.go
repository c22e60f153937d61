package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	// DrillSlot is, for a scheduled drill, the schedule's slot it runs for.
	DrillSlot time.Time
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
	if err := a.checkPoint(ctx, g, req); err != nil {
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
		job.Work.SetSource(key, src)
	}
	if !req.DrillSlot.IsZero() {
		job.Work.SetDrillSlot(req.DrillSlot)
	}
	job.Parent = req.Parent
	if _, err := a.State.Insert(ctx, JobsTable, job); err != nil {
		if req.JobID != "" && errors.Is(err, replication.ErrConflict) {
			return a.existing(ctx, req)
		}
		return Job{}, err
	}
	if _, err := replication.UpdateGroup(ctx, a.State, req.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
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
	kind, err := KindOf(req.Type)
	if err != nil {
		return fmt.Errorf("%w: type: %v", replication.ErrInvalid, err)
	}
	if !req.DrillSlot.IsZero() && kind.Name != JobDrill {
		return fmt.Errorf("%w: a schedule's slot is a drill's", replication.ErrInvalid)
	}
	if len(req.Sources) > 0 && !kind.TakesSources {
		return fmt.Errorf("%w: sources: only a reprotect reads the failed-over VMs' disks", replication.ErrInvalid)
	}
	if len(req.Sources) > replication.MaxVMsPerGroup*replication.MaxDisksPerVM {
		return fmt.Errorf("%w: sources: %d entries, more than a group has disks", replication.ErrInvalid, len(req.Sources))
	}
	if req.JobID != "" && !ValidJobID(req.JobID) {
		return fmt.Errorf("%w: jobId %q is not 32 lowercase hex digits", replication.ErrInvalid, req.JobID)
	}
	if kind.Normalize != nil {
		return kind.Normalize(req)
	}
	return nil
}

// precheck refuses, before anything is recorded, a job that cannot work (the kind's own rule: a drill
// with no isolated test subnet, a way back without a peer site or without original disks it can write).
func (a *Admission) precheck(ctx context.Context, g *replication.Group, req *Request) error {
	kind, err := KindOf(req.Type)
	if err != nil || kind.Precheck == nil {
		return err
	}
	return kind.Precheck(ctx, a, g, req)
}

// checkPoint refuses a point choice that does not resolve now, naming the choices (a planned
// failover's point comes later, and a group without points is refused by its state, 409).
func (a *Admission) checkPoint(ctx context.Context, g *replication.Group, req Request) error {
	kind, err := KindOf(req.Type)
	if err != nil || req.Type == JobPlannedFailover || !slices.ContainsFunc(kind.Steps, func(s stepDef) bool { return s.name == "resolve-point" }) {
		return err
	}
	return CheckPointChoice(ctx, a.State, g, req.RecoveryPoint)
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

// claim decides whether the group's state admits the job and records the group's claim on it (the
// kind's: one failover at a time, one reprotect or failback at a time, one test failover until it is
// cleaned up).
func (a *Admission) claim(ctx context.Context, rec *replication.GroupRecord, job Job) error {
	if err := admits(rec, job.Type); err != nil {
		return err
	}
	if kind, _ := KindOf(job.Type); kind.Claim != nil {
		return kind.Claim(ctx, a, rec, job)
	}
	return nil
}

// admits says why the group's state does not admit a job of the type (nil when it does).
func admits(rec *replication.GroupRecord, jobType string) error {
	kind, err := KindOf(jobType)
	if err != nil {
		return fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	if why := kind.refusal(rec); why != "" {
		return fmt.Errorf("%w: %s", replication.ErrState, why)
	}
	return nil
}

// refusal is why the group's state does not admit a job of the kind ("" when it does).
func (k *Kind) refusal(rec *replication.GroupRecord) string {
	if k.Admits == nil {
		return ""
	}
	return k.Admits(rec)
}

// OperatorKinds are the jobs an operator starts on a group, in the order a console offers them.
var OperatorKinds = []string{JobTestFailover, JobDrill, JobCleanupTest, JobPlannedFailover, JobUnplannedFailover, JobChangePoint,
	JobCommit, JobReprotect, JobFailback}

// Operation is whether a group's state admits an operator's job now, and why not.
type Operation struct {
	Name    string
	Allowed bool
	Why     string
}

// Operations are the operator's jobs with what the group's state says of each: the rule admission
// applies (a job already running can still refuse one that is allowed here).
func Operations(rec *replication.GroupRecord) []Operation {
	var ops []Operation
	for _, name := range OperatorKinds {
		kind, _ := KindOf(name) // every operator kind is registered
		why := kind.refusal(rec)
		ops = append(ops, Operation{Name: name, Allowed: why == "", Why: why})
	}
	return ops
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
	if isFailover(req.Type) {
		return a.Start(ctx, req)
	}
	return Job{}, fmt.Errorf("%w: type %q: want %s", replication.ErrInvalid, req.Type, oneOf(FailoverKinds()))
}

// Job reads a job by id.
func (a *Admission) Job(ctx context.Context, id string) (Job, error) {
	if a.State == nil {
		return Job{}, fmt.Errorf("%w: the state store (set StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	return LoadJob(ctx, a.State, id)
}

// Reaches refuses a job to a caller that reaches only some groups (the peer site: those it made, as
// reaches says): a job of any other group — or of a plan — is, to it, not there.
func (a *Admission) Reaches(ctx context.Context, id string, reaches func(ctx context.Context, group string) error) error {
	j, err := a.Job(ctx, id)
	if err == nil && (j.Group == "" || reaches(ctx, j.Group) != nil) {
		return fmt.Errorf("%w: no job %s", replication.ErrNotFound, id)
	}
	return err
}

// MaxJobList is the most jobs one listing answers.
const MaxJobList = 200

// JobFilter narrows a job listing: a group's jobs (its own and the plan jobs' children), jobs in a
// state, jobs of a type; empty fields take every job.
type JobFilter struct {
	Group, State, Type string
}

// check refuses a filter naming no group, state or type there can be.
func (f JobFilter) check() error {
	if f.Group != "" {
		if err := replication.CheckGroupName(f.Group); err != nil {
			return err
		}
	}
	if f.State != "" && !slices.Contains(JobStates, f.State) {
		return fmt.Errorf("%w: state %q: want %s", replication.ErrInvalid, replication.Truncate(f.State, 64), oneOf(JobStates))
	}
	if types := JobTypes(); f.Type != "" && !slices.Contains(types, f.Type) {
		return fmt.Errorf("%w: type %q: want %s", replication.ErrInvalid, replication.Truncate(f.Type, 64), oneOf(types))
	}
	return nil
}

// JobTypes are every job's type: the kinds', then the plan jobs'.
func JobTypes() []string { return append(KindNames(), slices.Sorted(maps.Keys(planChildType))...) }

// JobStates are the states a job passes through.
var JobStates = []string{JobQueued, JobRunning, JobSucceeded, JobFailed}

func (f JobFilter) takes(j Job) bool {
	return (f.Group == "" || j.Group == f.Group) && (f.State == "" || j.State == f.State) && (f.Type == "" || j.Type == f.Type)
}

// ListJobs lists the recorded jobs the filter takes, newest first, at most limit of them. Finished
// jobs are kept for JobRetention.
func (a *Admission) ListJobs(ctx context.Context, filter JobFilter, limit int) ([]Job, error) {
	if a.State == nil {
		return nil, fmt.Errorf("%w: the state store (set StandbyTargetStorage)", replication.ErrNotConfigured)
	}
	if err := filter.check(); err != nil {
		return nil, err
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
		if filter.takes(j) {
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
