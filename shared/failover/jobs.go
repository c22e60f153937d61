package failover

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/replication"
	"log/slog"
	"strings"
	"time"
)

// Jobs are explicit state machines in Table storage (Durable Functions does not serve custom handlers):
// each job queue message names a job and the step to run; the failover function runs that one step,
// records it with an ETag guard, and sends the message of the next step (or schedules a poll). Messages
// are at-least-once and every step is idempotent: a step is redone from scratch when its message comes
// again, and a message for a step already done re-sends the next step's message and is acknowledged.

// JobsTable holds the jobs (partition = job id, row = "job").
const (
	JobsTable = "jobs"
	JobRow    = "job"
)

// Job types and states.
const (
	JobTestFailover      = "test"
	JobPlannedFailover   = "planned"
	JobUnplannedFailover = "unplanned"
	JobCommit            = "commit"
	JobChangePoint       = "change-recovery-point"
	JobCleanupTest       = "cleanup-test-failover"

	JobQueued    = "Queued"
	JobRunning   = "Running"
	JobSucceeded = "Succeeded"
	JobFailed    = "Failed"
)

// JobStep is one step's record.
type JobStep struct {
	Name    string    `json:"name"`
	State   string    `json:"state"` // pending, running, done, failed
	Started time.Time `json:"started,omitempty"`
	Ended   time.Time `json:"ended,omitempty"`
	Outcome string    `json:"outcome,omitempty"`
	Tries   int       `json:"tries,omitempty"`
}

// Job is a job's row.
type Job struct {
	replication.Keys
	Group         string    `json:"Group"`
	Type          string    `json:"Type"`
	RecoveryPoint string    `json:"RecoveryPoint"` // as requested
	State         string    `json:"State"`
	Next          int       `json:"Next"` // index of the step to run
	Steps         []JobStep `json:"Steps"`
	PointID       string    `json:"PointID,omitempty"`
	PointTime     time.Time `json:"PointTime"`
	Container     string    `json:"Container,omitempty"`
	// Work is the steps' shared state between messages (copies started, markers requested).
	Work      map[string]string `json:"Work,omitempty"`
	Result    map[string]string `json:"Result,omitempty"`
	Error     string            `json:"Error,omitempty"`
	CreatedAt time.Time         `json:"CreatedAt"`
	UpdatedAt time.Time         `json:"UpdatedAt"`
}

// ID is the job's id.
func (j *Job) ID() string { return j.PartitionKey }

// Terminal reports whether the job has ended.
func (j *Job) Terminal() bool { return j.State == JobSucceeded || j.State == JobFailed }

// StepMessage is the body of a job queue message.
type StepMessage struct {
	Job  string `json:"job"`
	Step int    `json:"step"`
}

// DecodeStepMessage parses a job queue message; the error names the field.
func DecodeStepMessage(data []byte) (StepMessage, error) {
	var m StepMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("job message is not valid JSON of the job message shape: %w", err)
	}
	if !ValidJobID(m.Job) {
		return m, fmt.Errorf("job message field job: %q is not a job id", m.Job)
	}
	if m.Step < 0 {
		return m, fmt.Errorf("job message field step: %d is negative", m.Step)
	}
	return m, nil
}

// NewJobID returns a fresh job id (32 hex digits).
func NewJobID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stepFunc runs one step. It returns wait > 0 to be called again after wait (a poll), an outcome for
// the step's record, or an error (the message is retried; the last delivery fails the job).
type stepFunc func(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (outcome string, wait time.Duration, err error)

type stepDef struct {
	name string
	run  stepFunc
}

func stepsOf(jobType string) ([]stepDef, error) {
	switch jobType {
	case JobTestFailover:
		return materialize, nil
	case JobCleanupTest:
		return cleanupSteps, nil
	case JobUnplannedFailover:
		return unplannedSteps, nil
	case JobPlannedFailover:
		return plannedSteps, nil
	case JobCommit:
		return commitSteps, nil
	case JobChangePoint:
		return unplannedSteps, nil // the failover disks are made again from the new point
	case JobReprotect:
		return reprotectSteps, nil
	case JobFailback:
		return failbackSteps, nil
	case JobReprotectForward:
		return reprotectForwardSteps, nil
	}
	return nil, fmt.Errorf("job type %q is not supported", jobType)
}

// NewJob makes a queued job with its steps.
func NewJob(group, jobType, point string, now time.Time) (Job, error) {
	defs, err := stepsOf(jobType)
	if err != nil {
		return Job{}, err
	}
	j := Job{Keys: replication.Keys{PartitionKey: NewJobID(), RowKey: JobRow}, Group: group, Type: jobType, RecoveryPoint: point,
		State: JobQueued, CreatedAt: now, UpdatedAt: now, Work: map[string]string{}}
	for _, d := range defs {
		j.Steps = append(j.Steps, JobStep{Name: d.name, State: "pending"})
	}
	return j, nil
}

// StartJob records a new job and sends its first message.
func StartJob(ctx context.Context, store replication.StateStore, jobs replication.JobSender, j Job) error {
	if _, err := store.Insert(ctx, JobsTable, j); err != nil {
		return err
	}
	return QueueJob(ctx, jobs, j)
}

// QueueJob sends a recorded job's first message.
func QueueJob(ctx context.Context, jobs replication.JobSender, j Job) error {
	return sendStep(ctx, jobs, j, 0, time.Time{})
}

func sendStep(ctx context.Context, jobs replication.JobSender, j Job, step int, at time.Time) error {
	body, _ := json.Marshal(StepMessage{Job: j.ID(), Step: step})
	msg := replication.JobMessage{MessageID: fmt.Sprintf("%s-%d", j.ID(), step), SessionID: j.Group, Body: body}
	if at.IsZero() {
		return jobs.Send(ctx, msg)
	}
	msg.MessageID += "-" + at.Format("150405.000")
	_, err := jobs.Schedule(ctx, msg, at)
	return err
}

// JobRunner runs job steps.
type JobRunner struct {
	State    replication.StateStore
	Pages    replication.PageStore
	Journal  replication.JournalStore
	Jobs     replication.JobSender
	Restorer *replication.Restorer
	// Peer is the other region's deployment (reprotect, failback); nil when not configured.
	Peer PeerSite
	Log  *slog.Logger
	Now  func() time.Time
	// MaxDeliveries is the queue's MaxDeliveryCount: a step failing on its last delivery fails the job.
	MaxDeliveries int64
}

// Run runs the step a message names. deliveries is the message's delivery count.
func (r *JobRunner) Run(ctx context.Context, msg StepMessage, deliveries int64) error {
	var j Job
	etag, err := r.State.Get(ctx, JobsTable, msg.Job, JobRow, &j)
	if errors.Is(err, replication.ErrNotFound) {
		r.Log.Warn("message for an unknown job dropped", "job", msg.Job)
		return nil
	}
	if err != nil {
		return err
	}
	if j.Work == nil { // an empty map is not stored
		j.Work = map[string]string{}
	}
	log := r.Log.With("job", j.ID(), "group", j.Group)
	switch {
	case j.Terminal():
		return nil
	case msg.Step < j.Next: // done before a crash lost its successor's message: send it again
		return sendStep(ctx, r.Jobs, j, j.Next, time.Time{})
	case msg.Step > j.Next:
		log.Warn("message for a future step dropped", "step", msg.Step, "next", j.Next)
		return nil
	}
	defs, err := stepsOf(j.Type)
	if err != nil {
		return r.fail(ctx, &j, etag, err.Error())
	}
	def := defs[j.Next]
	g, err := replication.LoadGroup(ctx, r.State, j.Group)
	if err != nil {
		return r.failOrRetry(ctx, &j, etag, def.name, err, deliveries)
	}
	now := r.Now().UTC()
	step := &j.Steps[j.Next]
	if step.Started.IsZero() {
		step.Started = now
	}
	step.State, step.Tries = "running", step.Tries+1
	j.State = JobRunning
	outcome, wait, err := def.run(ctx, r, &j, g)
	var perm permanentError
	if errors.As(err, &perm) {
		log.Warn("job step failed for good", "step", def.name, "err", err)
		return r.fail(ctx, &j, etag, fmt.Sprintf("step %s: %v", def.name, err))
	}
	if err != nil {
		log.Warn("job step failed", "step", def.name, "delivery", deliveries, "err", err)
		return r.failOrRetry(ctx, &j, etag, def.name, err, deliveries)
	}
	step.Outcome = outcome
	j.UpdatedAt = now
	if wait > 0 { // poll again later: the step stays current
		if _, err := r.State.Update(ctx, JobsTable, j, etag); err != nil {
			return err
		}
		return sendStep(ctx, r.Jobs, j, j.Next, now.Add(wait))
	}
	step.State, step.Ended = "done", now
	j.Next++
	if j.Next == len(j.Steps) {
		j.State = JobSucceeded
	}
	if _, err := r.State.Update(ctx, JobsTable, j, etag); err != nil {
		return err // the message comes again and the step is redone
	}
	log.Info("job step done", "step", def.name, "outcome", outcome)
	if j.Terminal() {
		log.Info("job succeeded", "type", j.Type)
		return nil
	}
	return sendStep(ctx, r.Jobs, j, j.Next, time.Time{})
}

// poll is how long a waiting step waits before it looks again: briskly at first (a failover's RTO is
// made of these waits), then backing off towards a minute for waits that last (an agent not started
// yet, a long first sync), so that a job waiting for hours sends few messages.
func (r *JobRunner) poll(j *Job, first time.Duration) time.Duration {
	waited := r.Now().Sub(j.Steps[j.Next].Started)
	return min(max(first, waited/20), time.Minute)
}

// failOrRetry returns the error (the queue redelivers the message) unless this was the last delivery,
// in which case the job ends Failed with the reason (the queue dead-letters the message).
func (r *JobRunner) failOrRetry(ctx context.Context, j *Job, etag replication.ETag, step string, cause error, deliveries int64) error {
	if r.MaxDeliveries > 0 && deliveries >= r.MaxDeliveries {
		if err := r.fail(ctx, j, etag, fmt.Sprintf("step %s failed %d times: %v", step, deliveries, cause)); err != nil {
			return err
		}
	}
	return cause
}

func (r *JobRunner) fail(ctx context.Context, j *Job, etag replication.ETag, reason string) error {
	j.State, j.Error, j.UpdatedAt = JobFailed, reason, r.Now().UTC()
	if j.Next < len(j.Steps) {
		j.Steps[j.Next].State, j.Steps[j.Next].Ended, j.Steps[j.Next].Outcome = "failed", j.UpdatedAt, reason
	}
	_, err := r.State.Update(ctx, JobsTable, *j, etag)
	r.Log.Error("job failed", "job", j.ID(), "group", j.Group, "reason", reason)
	return err
}

// TestContainer is where a group's test failover materializes its disks; FailoverContainer, a real one's.
func TestContainer(group string) string     { return group + "-test" }
func FailoverContainer(group string) string { return group + "-failover" }

// materialize is the part every failover shares: a point chosen and held, its disks copied (and the
// journal replayed for a time), machine definitions written.
var materialize = []stepDef{
	{"resolve-point", resolvePoint},
	{"hold-point", holdPoint},
	{"start-copies", startCopies},
	{"wait-copies", waitCopies},
	{"replay-journal", replayJournal},
	{"machine-definitions", machineDefinitions},
}

// unplannedSteps: the source is gone; nothing here touches it.
var unplannedSteps = append(append([]stepDef{}, materialize...), stepDef{"mark-failed-over", markFailedOver})

// plannedSteps: the agent stops taking writes and flushes, the job waits until apply has everything and
// a point marks the agent's final sequence, then fails over to that point: nothing acknowledged is lost.
var plannedSteps = append(append([]stepDef{{"stop-source", stopSource}, {"wait-source-drained", waitDrained}}, materialize...),
	stepDef{"mark-failed-over", markFailedOver})

var commitSteps = []stepDef{
	{"delete-other-points", deleteOtherPoints},
	{"mark-committed", markCommitted},
}

func stopSource(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, func(rec *replication.GroupRecord) error {
		if rec.StopRequested {
			return replication.ErrUnchanged
		}
		rec.StopRequested, rec.AgentStoppedSeq = true, 0
		return nil
	})
	return "the agent is told to stop taking writes and flush", 0, err
}

// waitDrained polls until the agent has stopped, apply has applied its final sequence and a recovery
// point stands at it.
func waitDrained(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	rec := g.Record
	if rec.AgentStoppedSeq == 0 {
		return "waiting for the agent to stop", r.poll(j, 2*time.Second), nil
	}
	if rec.Watermark < rec.AgentStoppedSeq {
		return fmt.Sprintf("applying: watermark %d of %d", rec.Watermark, rec.AgentStoppedSeq), r.poll(j, time.Second), nil
	}
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	if len(points) == 0 || points[0].Seq < rec.AgentStoppedSeq {
		return "waiting for the final recovery point", r.poll(j, time.Second), nil
	}
	j.RecoveryPoint = points[0].ID // fail over to exactly the final point
	return fmt.Sprintf("drained: final sequence %d is point %s", rec.AgentStoppedSeq, points[0].ID), 0, nil
}

func markFailedOver(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, func(rec *replication.GroupRecord) error {
		rec.FailoverJob = j.ID()
		return rec.Move(replication.StateFailedOver, fmt.Sprintf("failed over to %s by job %s", j.PointID, j.ID()), r.Now().UTC())
	})
	if err != nil || !inPlace(j, g) {
		return "group state FailedOver", 0, err
	}
	// Apply has stopped (the group is FailedOver): its leases go, so the VMs can attach their disks.
	for _, d := range g.Spec.Disks() {
		if err := r.Pages.BreakLease(ctx, g.TargetDisk(d.Key)); err != nil {
			return "", 0, err
		}
	}
	return "group state FailedOver; the disks' apply leases are broken for the VMs to attach them", 0, nil
}

// deleteOtherPoints removes every recovery point but the one the failover used (snapshots, then rows).
func deleteOtherPoints(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	var failover Job
	if _, err := r.State.Get(ctx, JobsTable, g.Record.FailoverJob, JobRow, &failover); err != nil {
		return "", 0, fmt.Errorf("the failover job %q: %w", g.Record.FailoverJob, err)
	}
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	deleted := 0
	for _, p := range points {
		if p.ID == failover.PointID {
			continue
		}
		for key, snap := range p.Snapshots {
			if err := r.Pages.DeleteSnapshot(ctx, g.TargetDisk(key), snap); err != nil {
				return "", 0, err
			}
		}
		if err := r.State.Delete(ctx, replication.PointsTable, p.PartitionKey, p.RowKey, ""); err != nil && !errors.Is(err, replication.ErrNotFound) {
			return "", 0, err
		}
		deleted++
	}
	return fmt.Sprintf("%d other points deleted; %s kept", deleted, failover.PointID), 0, nil
}

func markCommitted(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, func(rec *replication.GroupRecord) error {
		return rec.Move(replication.StateCommitted, "failover committed by job "+j.ID(), r.Now().UTC())
	})
	return "group state Committed", 0, err
}

var cleanupSteps = []stepDef{
	{"delete-test-disks", deleteTestDisks},
	{"release-holds", releaseTestHolds},
}

// resolvePoint turns the requested recovery point into a concrete one: latest (everything applied: the
// newest point plus the journal up to the last applied write — the lowest RPO), latestProcessed (the
// newest point — the lowest RTO), latestAppConsistent, a point id, or an RFC 3339 time (any point in
// time).
func resolvePoint(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return "", 0, err
	}
	var p replication.RecoveryPoint
	switch want := j.RecoveryPoint; {
	case want == "latest":
		// Everything apply has: the newest point before the last applied write, plus the journal up to
		// that write.
		if g.Record.LastSourceTime.IsZero() {
			return "", 0, fmt.Errorf("%w: nothing applied yet", replication.ErrNotRestorable)
		}
		at := g.Record.LastSourceTime
		p, err = replication.ChoosePoint(points, "", at)
		j.Work["time"] = at.Format(time.RFC3339Nano)
	case want == "latestProcessed" || want == "":
		p, err = replication.ChoosePoint(points, "", time.Now().Add(time.Hour))
	case want == "latestAppConsistent":
		err = fmt.Errorf("%w: no app-consistent recovery point", replication.ErrNotRestorable)
		for _, cand := range points {
			if cand.Kind == "app" {
				p, err = cand, nil
				break
			}
		}
	case strings.HasPrefix(want, "rp-"):
		p, err = replication.ChoosePoint(points, want, time.Time{})
	default:
		at, perr := time.Parse(time.RFC3339Nano, want)
		if perr != nil {
			return "", 0, fmt.Errorf("recovery point %q: want latestProcessed, latestAppConsistent, a point id or an RFC 3339 time", want)
		}
		p, err = replication.ChoosePoint(points, "", at)
		j.Work["time"] = at.Format(time.RFC3339Nano)
	}
	if err != nil {
		return "", 0, err
	}
	j.PointID, j.PointTime = p.ID, p.SourceTime
	return fmt.Sprintf("%s (%s, %s)", p.ID, p.Kind, p.SourceTime.Format(time.RFC3339Nano)), 0, nil
}

func holdPoint(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := r.State.Upsert(ctx, replication.HoldsTable, replication.PointHold{Keys: replication.Keys{PartitionKey: j.Group, RowKey: j.PointID}, Job: j.ID()})
	return "retention will not prune " + j.PointID, 0, err
}

func (r *JobRunner) point(ctx context.Context, j *Job) (replication.RecoveryPoint, error) {
	points, err := replication.ListPoints(ctx, r.State, j.Group)
	if err != nil {
		return replication.RecoveryPoint{}, err
	}
	return replication.ChoosePoint(points, j.PointID, time.Time{})
}

// inPlace reports whether the job fails over onto the group's target disks themselves: a planned
// failover of a group whose targets were given (a reprotected group's original disks) — failback. The
// drained disks hold the final point exactly, and the VMs come back on their own disks.
func inPlace(j *Job, g *replication.Group) bool {
	return j.Type == JobPlannedFailover && len(g.Spec.Target.Disks) == len(g.Spec.Disks())
}

func startCopies(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	p, err := r.point(ctx, j)
	if err != nil {
		return "", 0, err
	}
	if inPlace(j, g) {
		if g.Record.Watermark != p.Seq {
			return "", 0, permanentError{fmt.Errorf("the target disks are at sequence %d, not at the final point %s (%d): they cannot be failed over in place", g.Record.Watermark, p.ID, p.Seq)}
		}
		j.Container = g.Spec.Target.Container
		return fmt.Sprintf("in place: the original disks hold %s; nothing to copy", p.ID), 0, nil
	}
	j.Container = TestContainer(j.Group)
	if j.Type != JobTestFailover {
		j.Container = FailoverContainer(j.Group)
	}
	res, err := r.Restorer.StartCopies(ctx, g, p, j.Container)
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("%d server-side copies into %s", len(res.Disks), j.Container), 0, nil
}

// materializedDisks are the disks a test failover or a failover makes in container.
func (r *JobRunner) materializedDisks(g *replication.Group, container string) map[string]replication.DiskRef {
	disks := map[string]replication.DiskRef{}
	for _, d := range g.Spec.Disks() {
		disks[d.Key] = replication.DiskRef{Container: container, Name: d.Key}
	}
	return disks
}

func waitCopies(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if inPlace(j, g) {
		return "nothing copied", 0, nil
	}
	done, err := r.Restorer.CopiesDone(ctx, r.materializedDisks(g, j.Container))
	if err != nil {
		return "", 0, err
	}
	if !done {
		return "copies pending", r.poll(j, 2*time.Second), nil
	}
	return "copies complete", 0, nil
}

func replayJournal(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	at, ok := j.Work["time"]
	if !ok {
		return "a recovery point: nothing to replay", 0, nil
	}
	t, _ := time.Parse(time.RFC3339Nano, at)
	p, err := r.point(ctx, j)
	if err != nil {
		return "", 0, err
	}
	res := replication.RestoreResult{Point: p, Disks: r.materializedDisks(g, j.Container), LastSeq: p.Seq, EffectiveAt: p.SourceTime}
	res, err = r.Restorer.Replay(ctx, g, res, t)
	if err != nil {
		return "", 0, err
	}
	j.Work["effectiveSeq"] = fmt.Sprint(res.LastSeq)
	j.Work["effectiveTime"] = res.EffectiveAt.Format(time.RFC3339Nano)
	return fmt.Sprintf("%d journal batches replayed: the disks hold sequence %d (%s)", res.Replayed, res.LastSeq, res.EffectiveAt.Format(time.RFC3339Nano)), 0, nil
}

// machineDefinitions writes, for each VM, an ARM template attaching its materialized disks next to the
// disks (<vm>.template.json) for automation to deploy, and into the job's result while they fit well
// inside a Table storage property (a 16-VM group of 64-disk VMs would not).
func machineDefinitions(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	j.Result = map[string]string{"container": j.Container, "point": j.PointID, "pointTime": j.PointTime.Format(time.RFC3339Nano)}
	if t, ok := j.Work["effectiveTime"]; ok {
		j.Result["effectiveTime"] = t
	}
	disk := func(key string) replication.DiskRef { return replication.DiskRef{Container: j.Container, Name: key} }
	if inPlace(j, g) {
		disk = g.TargetDisk
		j.Result["inPlace"] = "true"
	}
	inline := 0
	for _, vm := range g.Spec.VMs {
		tpl, err := armTemplate(vm, disk, g.Spec.Network, j.Type == JobTestFailover)
		if err != nil {
			return "", 0, permanentError{err}
		}
		ref := TemplateBlob(j.Container, vm.Name)
		if err := r.Pages.PutBlob(ctx, ref, []byte(tpl), "application/json"); err != nil {
			return "", 0, err
		}
		j.Result["templateUrl:"+vm.Name] = r.Pages.URL(ref)
		if inline += len(tpl); inline <= maxInlineTemplates {
			j.Result["template:"+vm.Name] = tpl
		}
	}
	where := "next to the disks and in the result"
	if inline > maxInlineTemplates {
		where = "next to the disks (too large for the result: templateUrl:<vm> names them)"
	}
	return fmt.Sprintf("%d machine definitions %s", len(g.Spec.VMs), where), 0, nil
}

// maxInlineTemplates bounds the templates a job's result carries (a Table property holds 64 KiB).
const maxInlineTemplates = 16 << 10

// TemplateBlob is where a VM's machine definition is written, next to its materialized disks.
func TemplateBlob(container, vm string) replication.DiskRef {
	return replication.DiskRef{Container: container, Name: vm + ".template.json"}
}

// armTemplate is a VM's deployment: a NIC in the mapped target subnet (the isolated test subnet for a
// test failover) keeping the VM's static IP, the VM in its zone, the materialized disks attached.
func armTemplate(vm replication.VMSpec, disk func(key string) replication.DiskRef, network replication.NetworkSpec, test bool) (string, error) {
	subnet := map[string]any{"type": "string"}
	if m, ok := network.MappingFor(vm.Subnet); ok {
		target := m.Target
		if test {
			if m.Test == "" {
				return "", replication.NoTestSubnet(vm)
			}
			target = m.Test
		}
		vnet, sub, _ := strings.Cut(target, "/")
		subnet["defaultValue"] = fmt.Sprintf("[resourceId('Microsoft.Network/virtualNetworks/subnets', '%s', '%s')]", vnet, sub)
	}
	ipConfig := map[string]any{"subnet": map[string]any{"id": "[parameters('subnetId')]"}, "privateIPAllocationMethod": "Dynamic"}
	if vm.StaticIP != "" {
		ipConfig["privateIPAllocationMethod"], ipConfig["privateIPAddress"] = "Static", vm.StaticIP
	}
	var disks []map[string]any
	for i, d := range vm.Disks {
		disks = append(disks, map[string]any{"lun": i, "name": vm.Name + "-" + d.Name, "createOption": "Attach",
			"vhdUri":     fmt.Sprintf("[concat(parameters('storageBlobEndpoint'), '%s')]", disk(replication.DiskKey(vm.Name, d.Name))),
			"diskSizeGB": (d.SizeBytes + 1<<30 - 1) >> 30})
	}
	tpl := map[string]any{
		"$schema":        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
		"contentVersion": "1.0.0.0",
		"parameters": map[string]any{"storageBlobEndpoint": map[string]any{"type": "string"},
			"subnetId": subnet, "vmSize": map[string]any{"type": "string", "defaultValue": "Standard_D2s_v5"}},
		"resources": []any{
			map[string]any{"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-09-01", "name": vm.Name + "-nic",
				"location":   "[resourceGroup().location]",
				"properties": map[string]any{"ipConfigurations": []any{map[string]any{"name": "ipconfig1", "properties": ipConfig}}}},
			vmResource(vm, disks),
		},
	}
	if vm.AvailabilitySet != "" { // every VM's deployment declares the set: deploying it again changes nothing
		tpl["resources"] = append(tpl["resources"].([]any), map[string]any{"type": "Microsoft.Compute/availabilitySets",
			"apiVersion": "2023-09-01", "name": vm.AvailabilitySet, "location": "[resourceGroup().location]",
			"sku":        map[string]any{"name": "Classic"}, // the disks are page blobs (unmanaged)
			"properties": map[string]any{"platformFaultDomainCount": 2, "platformUpdateDomainCount": 5}})
	}
	data, err := json.Marshal(tpl)
	return string(data), err
}

func vmResource(vm replication.VMSpec, disks []map[string]any) map[string]any {
	res := map[string]any{"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2023-09-01", "name": vm.Name,
		"location": "[resourceGroup().location]", "dependsOn": []string{vm.Name + "-nic"},
		"properties": map[string]any{"hardwareProfile": map[string]any{"vmSize": "[parameters('vmSize')]"},
			"storageProfile": map[string]any{"dataDisks": disks},
			"networkProfile": map[string]any{"networkInterfaces": []any{map[string]any{"id": "[resourceId('Microsoft.Network/networkInterfaces', '" + vm.Name + "-nic')]"}}}}}
	if vm.Zone != "" {
		res["zones"] = []string{vm.Zone}
	}
	if vm.AvailabilitySet != "" {
		res["dependsOn"] = []string{vm.Name + "-nic", vm.AvailabilitySet}
		res["properties"].(map[string]any)["availabilitySet"] = map[string]any{
			"id": "[resourceId('Microsoft.Compute/availabilitySets', '" + vm.AvailabilitySet + "')]"}
	}
	return res
}

func deleteTestDisks(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	container := TestContainer(j.Group)
	for _, ref := range r.materializedDisks(g, container) {
		if err := r.Pages.Delete(ctx, ref); err != nil {
			return "", 0, err
		}
	}
	for _, vm := range g.Spec.VMs {
		if err := r.Pages.Delete(ctx, TemplateBlob(container, vm.Name)); err != nil {
			return "", 0, err
		}
	}
	return fmt.Sprintf("test disks in %s deleted", container), 0, nil
}

// releaseTestHolds releases the points test failover jobs hold.
func releaseTestHolds(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	released, err := r.releaseHolds(ctx, j.Group, func(h replication.PointHold) bool {
		var holder Job
		_, err := r.State.Get(ctx, JobsTable, h.Job, JobRow, &holder)
		return err != nil || holder.Type == JobTestFailover
	})
	return fmt.Sprintf("%d holds released", released), 0, err
}

// releaseHolds deletes the group's holds that release says go, and counts them.
func (r *JobRunner) releaseHolds(ctx context.Context, group string, release func(replication.PointHold) bool) (int, error) {
	holds, _, err := replication.QueryAll[replication.PointHold](ctx, r.State, replication.HoldsTable, group)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, h := range holds {
		if !release(h) {
			continue
		}
		if err := r.State.Delete(ctx, replication.HoldsTable, h.PartitionKey, h.RowKey, ""); err != nil && !errors.Is(err, replication.ErrNotFound) {
			return released, err
		}
		released++
	}
	return released, nil
}
