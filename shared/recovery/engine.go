// Package failover is Standby's job engine and its jobs: admission (what may start when), failover,
// test failover and its cleanup, change of recovery point, commit, and the way back (reprotect,
// failback) across the two regions' deployments through the peer-site port. Jobs are explicit state
// machines in Table storage, advanced one idempotent step per job-queue message.
package recovery

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
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

// Job states (the kinds are registered in kind_*.go).
const (
	JobQueued    = "Queued"
	JobRunning   = "Running"
	JobSucceeded = "Succeeded"
	JobFailed    = "Failed"
)

// JobStep is one step's record.
type JobStep struct {
	Name    string    `json:"name"`
	State   string    `json:"state"` // pending, running, done, failed
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	Outcome string    `json:"outcome,omitempty"`
	Tries   int       `json:"tries,omitempty"`
	// Always: the step runs also after an earlier step failed (a cleanup).
	Always bool `json:"always,omitempty"`
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
	Work JobWork `json:"Work,omitempty"`
	// Plan is a plan job's plan (its Group is empty); Parent is, on a group's job a plan job started,
	// that plan job (which brings the VMs up).
	Plan   string            `json:"Plan,omitempty"`
	Parent string            `json:"Parent,omitempty"`
	Result map[string]string `json:"Result,omitempty"`
	Error  string            `json:"Error,omitempty"`
	// CancelRequested: an operator cancelled the job (Admission.Cancel); its cleanup runs next.
	CancelRequested bool      `json:"CancelRequested,omitempty"`
	CreatedAt       time.Time `json:"CreatedAt"`
	UpdatedAt       time.Time `json:"UpdatedAt"`
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
	if err := replication.DecodeJSON(data, &m, "job message", "the job message shape"); err != nil {
		return m, err
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

// stepsOf are a kind's steps, its cleanup last.
func stepsOf(jobType string) ([]stepDef, error) {
	k, err := KindOf(jobType)
	if err != nil {
		return nil, err
	}
	return append(slices.Clone(k.Steps), k.Cleanup...), nil
}

// stepOf is the job's next step: a plan job's from its name (planjobs.go), another's from its type.
func stepOf(j *Job) (stepDef, error) {
	if j.Plan != "" {
		return planStep(j.Steps[j.Next].Name)
	}
	defs, err := stepsOf(j.Type)
	if err != nil {
		return stepDef{}, err
	}
	return defs[j.Next], nil
}

// NewJob makes a queued job with its steps.
func NewJob(group, jobType, point string, now time.Time) (Job, error) {
	k, err := KindOf(jobType)
	if err != nil {
		return Job{}, err
	}
	j := Job{Keys: replication.Keys{PartitionKey: NewJobID(), RowKey: JobRow}, Group: group, Type: jobType, RecoveryPoint: point,
		State: JobQueued, CreatedAt: now, UpdatedAt: now, Work: JobWork{}}
	for _, d := range k.Steps {
		j.Steps = append(j.Steps, JobStep{Name: d.name, State: "pending"})
	}
	for _, d := range k.Cleanup {
		j.Steps = append(j.Steps, JobStep{Name: d.name, State: "pending", Always: true})
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
	return sendStepAs(ctx, jobs, j, step, at, "")
}

// sendStepAs is sendStep with a suffix to the message's id: a message the queue's duplicate detection
// must not take for the step's first.
func sendStepAs(ctx context.Context, jobs replication.JobSender, j Job, step int, at time.Time, suffix string) error {
	body, _ := json.Marshal(StepMessage{Job: j.ID(), Step: step})
	session := j.Group // one group's jobs run one at a time; a plan's too
	if j.Plan != "" {
		session = "plan-" + j.Plan
	}
	msg := replication.JobMessage{MessageID: fmt.Sprintf("%s-%d%s", j.ID(), step, suffix), SessionID: session, Body: body}
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
	// StorageAccountID is the target storage account's resource id: managed disks import its VHDs.
	StorageAccountID string
	// Compute brings the failed-over VMs up (nil: not configured; the machine definitions are the outcome).
	Compute Compute
	// BootTimeout is how long a VM has to report healthy (0: VMBootTimeout).
	BootTimeout time.Duration
	// MaxDeliveries is the queue's MaxDeliveryCount: a step failing on its last delivery fails the job.
	MaxDeliveries int64
	// WebhookSecret signs plan webhook actions (StandbyWebhookSecret; none: they fail saying so); HTTP
	// sends them (nil: http.DefaultClient).
	WebhookSecret []byte
	HTTP          *http.Client
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
		j.Work = JobWork{}
	}
	log := r.Log.With("job", j.ID(), "group", j.Group)
	if j.Plan != "" {
		log = r.Log.With("job", j.ID(), "plan", j.Plan)
	}
	switch {
	case j.State == JobFailed: // a crash may have come between the failure and its alert
		return r.alertFailed(ctx, &j)
	case j.Terminal():
		return nil
	case msg.Step < j.Next: // done before a crash lost its successor's message: send it again
		return sendStep(ctx, r.Jobs, j, j.Next, time.Time{})
	case msg.Step > j.Next:
		log.Warn("message for a future step dropped", "step", msg.Step, "next", j.Next)
		return nil
	}
	def, err := stepOf(&j)
	if err != nil {
		return r.fail(ctx, &j, etag, err.Error())
	}
	if j.CancelRequested && j.Error == "" && !j.Steps[j.Next].Always { // to the cleanup, which runs whole
		log.Warn("job cancelled: its cleanup runs", "step", def.name)
		return r.failStep(ctx, &j, etag, "cancelled by the operator before step "+def.name)
	}
	var g *replication.Group // a plan job's steps read their groups themselves
	if j.Plan == "" {
		if g, err = replication.LoadGroup(ctx, r.State, j.Group); err != nil {
			return r.failOrRetry(ctx, &j, etag, def.name, err, deliveries)
		}
	}
	now := r.Now().UTC()
	step := &j.Steps[j.Next]
	if step.Started.IsZero() {
		step.Started = now
	}
	step.State, step.Tries = "running", step.Tries+1
	j.State = JobRunning
	outcome, wait, err := def.run(ctx, r, &j, g)
	// A permanent error, or the group's life cycle refusing the step's state change (the group was
	// disabled or moved on meanwhile), fails the job at once: redelivery cannot change either.
	var perm permanentError
	if errors.As(err, &perm) || errors.Is(err, replication.ErrState) {
		log.Warn("job step failed for good", "step", def.name, "err", err)
		return r.failStep(ctx, &j, etag, fmt.Sprintf("step %s: %v", def.name, err))
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
	return r.stepDone(ctx, &j, etag, def.name, outcome, log)
}

// stepDone records the current step done and sends the next, or ends the job after its last step:
// Succeeded, or Failed when an earlier step failed (its cleanup has run).
func (r *JobRunner) stepDone(ctx context.Context, j *Job, etag replication.ETag, name, outcome string, log *slog.Logger) error {
	j.Next++
	if j.Next == len(j.Steps) {
		j.State = JobSucceeded
		if j.Error != "" {
			j.State = JobFailed
		}
	}
	if _, err := r.State.Update(ctx, JobsTable, *j, etag); err != nil {
		return err // the message comes again and the step is redone
	}
	log.Info("job step done", "step", name, "outcome", outcome)
	switch j.State {
	case JobSucceeded:
		log.Info("job succeeded", "type", j.Type)
		return r.recordTest(ctx, j)
	case JobFailed:
		log.Error("job failed, its cleanup done", "type", j.Type, "reason", j.Error)
		return r.alertFailed(ctx, j)
	}
	return sendStep(ctx, r.Jobs, *j, j.Next, time.Time{})
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
		if err := r.failStep(ctx, j, etag, fmt.Sprintf("step %s failed %d times: %v", step, deliveries, cause)); err != nil {
			return err
		}
		return cause
	}
	// The step's record says how many tries failed and why, so the job's view matches the reason it
	// ends with (a failure to write it changes nothing: the message comes again either way).
	if j.Next < len(j.Steps) && !j.Steps[j.Next].Started.IsZero() {
		j.Steps[j.Next].Outcome = fmt.Sprintf("try %d failed, to be tried again: %v", j.Steps[j.Next].Tries, replication.Redact(cause.Error()))
		r.State.Update(ctx, JobsTable, *j, etag)
	}
	return cause
}

// failStep records the current step's failure. When steps that always run follow (a cleanup), the job
// goes on with the first of them, the steps in between skipped, and ends Failed once they ran; a step
// failing during that cleanup, or with none to run, ends the job now.
func (r *JobRunner) failStep(ctx context.Context, j *Job, etag replication.ETag, reason string) error {
	next := -1
	for i := j.Next + 1; j.Error == "" && i < len(j.Steps); i++ {
		if j.Steps[i].Always {
			next = i
			break
		}
	}
	if next < 0 {
		if j.Error != "" {
			reason = j.Error + "; then " + reason
		}
		return r.fail(ctx, j, etag, reason)
	}
	now := r.Now().UTC()
	j.Error, j.UpdatedAt = replication.Redact(reason), now
	j.Steps[j.Next].State, j.Steps[j.Next].Ended, j.Steps[j.Next].Outcome = "failed", now, reason
	for i := j.Next + 1; i < next; i++ {
		j.Steps[i].State = "skipped"
	}
	j.Next = next
	if _, err := r.State.Update(ctx, JobsTable, *j, etag); err != nil {
		return err
	}
	r.Log.Warn("job step failed: the job's cleanup runs", "job", j.ID(), "group", j.Group, "reason", reason, "cleanup", j.Steps[next].Name)
	return sendStep(ctx, r.Jobs, *j, j.Next, time.Time{})
}

func (r *JobRunner) fail(ctx context.Context, j *Job, etag replication.ETag, reason string) error {
	j.State, j.Error, j.UpdatedAt = JobFailed, replication.Redact(reason), r.Now().UTC()
	if j.Next < len(j.Steps) {
		j.Steps[j.Next].State, j.Steps[j.Next].Ended, j.Steps[j.Next].Outcome = "failed", j.UpdatedAt, reason
	}
	if _, err := r.State.Update(ctx, JobsTable, *j, etag); err != nil {
		return err
	}
	r.Log.Error("job failed", "job", j.ID(), "group", j.Group, "reason", reason)
	return r.alertFailed(ctx, j)
}

// recordTest keeps an ended test failover's or drill's outcome on its group, or a plan's on the plan
// (their readiness): when it started, the point, the result and the RTO — from its first step until
// its VMs were up (the last of the VM waits, a plan's boot groups' among them).
func (r *JobRunner) recordTest(ctx context.Context, j *Job) error {
	planTest := j.Plan != "" && (j.Type == JobPlanTest || j.Type == JobPlanDrill)
	if !(isolated(j.Type) && j.Group != "" || planTest) || len(j.Steps) == 0 {
		return nil
	}
	t := replication.LastTest{Job: j.ID(), Type: j.Type, At: j.Steps[0].Started, Point: cmp.Or(j.PointID, j.RecoveryPoint), PointTime: j.PointTime, Result: j.State}
	for _, s := range j.Steps {
		if (s.Name == "wait-vms" || strings.HasSuffix(s.Name, "-wait")) && s.State == "done" && !t.At.IsZero() {
			t.RTOSeconds = max(t.RTOSeconds, s.Ended.Sub(t.At).Seconds())
		}
	}
	newer := func(last replication.LastTest) bool { return last != t && !last.At.After(t.At) }
	if planTest {
		_, err := replication.Mutate(ctx, r.State, PlansTable, j.Plan, PlanRow, func(p *PlanRecord, found bool) error {
			if !found || !newer(p.LastTest) {
				return replication.ErrUnchanged
			}
			p.LastTest = t
			return nil
		})
		return err
	}
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		if !newer(rec.LastTest) {
			return replication.ErrUnchanged // recorded already, or a later one is
		}
		rec.LastTest = t
		return nil
	})
	if errors.Is(err, replication.ErrNoGroup) {
		return nil // the group went meanwhile
	}
	return err
}

// alertFailed raises the failed job's alert (once: its id is the job's); a job an operator cancelled
// raises none, unless its cleanup failed.
func (r *JobRunner) alertFailed(ctx context.Context, j *Job) error {
	if err := r.recordTest(ctx, j); err != nil {
		return err
	}
	if j.CancelRequested && !strings.Contains(j.Error, "; then ") {
		return nil
	}
	what := j.Type + " job " + j.ID()
	if j.Plan != "" {
		what = "plan " + j.Plan + " " + what
	}
	return replication.RaiseAlert(ctx, r.State, r.Log, replication.Alert{ID: "job-" + j.ID() + "-failed", Group: j.Group, Kind: replication.AlertJobFailed,
		Status: replication.AlertRaised, Severity: replication.SeverityCritical, Job: j.ID(), Message: what + " failed: " + j.Error, Time: j.UpdatedAt})
}
