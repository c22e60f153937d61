package recovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// A plan job runs on the job engine like a group's. It starts one job per consistency group — the same
// failover, cleanup or commit job a group runs alone, with an id derived from the plan job's (so a
// redelivered step finds them) and without bringing VMs up — and waits for them: every group's point is
// resolved and its disks made first. Then the VMs come up boot group by boot group: pre actions, the
// deployments, every VM healthy, post actions; the next boot group starts only when this one is done.
// Step names carry the boot group's number ("bg2-deploy"), so the steps are the plan's.

// Plan job types and the group job each starts.
const (
	JobPlanTest      = "plan-test"
	JobPlanPlanned   = "plan-planned"
	JobPlanUnplanned = "plan-unplanned"
	JobPlanCleanup   = "plan-cleanup-test-failover"
	JobPlanCommit    = "plan-commit"
	JobPlanDrill     = "plan-drill"
)

var planChildType = map[string]string{JobPlanTest: JobTestFailover, JobPlanPlanned: JobPlannedFailover,
	JobPlanUnplanned: JobUnplannedFailover, JobPlanCleanup: JobCleanupTest, JobPlanCommit: JobCommit, JobPlanDrill: JobTestFailover}

// bootPhases are each boot group's steps, in order.
var bootPhases = []string{"pre", "deploy", "wait", "post"}

// NewPlanJob makes a queued plan job with the plan's steps.
func NewPlanJob(plan string, spec PlanSpec, jobType, point string, now time.Time) (Job, error) {
	if _, ok := planChildType[jobType]; !ok {
		return Job{}, fmt.Errorf("plan job type %q is not supported", jobType)
	}
	j := Job{Keys: replication.Keys{PartitionKey: NewJobID(), RowKey: JobRow}, Plan: plan, Type: jobType, RecoveryPoint: point,
		State: JobQueued, CreatedAt: now, UpdatedAt: now, Work: JobWork{}}
	names := []string{"start-groups", "wait-groups"}
	if bringsUp(jobType) {
		for i := range spec.BootGroups {
			for _, phase := range bootPhases {
				names = append(names, fmt.Sprintf("bg%d-%s", i+1, phase))
			}
		}
	}
	for _, n := range names {
		j.Steps = append(j.Steps, JobStep{Name: n, State: "pending"})
	}
	if jobType == JobPlanDrill { // the checks, then a cleanup that always runs (plan_drill.go)
		j.Steps = append(j.Steps, JobStep{Name: "plan-checks", State: "pending"})
		for _, n := range planDrillCleanup {
			j.Steps = append(j.Steps, JobStep{Name: n, State: "pending", Always: true})
		}
	}
	return j, nil
}

func bringsUp(jobType string) bool {
	return jobType == JobPlanTest || jobType == JobPlanPlanned || jobType == JobPlanUnplanned || jobType == JobPlanDrill
}

// planStep is the step a plan job's step name stands for.
func planStep(name string) (stepDef, error) {
	switch name {
	case "start-groups":
		return stepDef{name, startGroups}, nil
	case "wait-groups":
		return stepDef{name, waitGroups}, nil
	case "plan-checks":
		return stepDef{name, runPlanChecks}, nil
	case "cleanup-groups":
		return stepDef{name, startPlanCleanup}, nil
	case "wait-cleanup":
		return stepDef{name, waitPlanCleanup}, nil
	case "end-drill":
		return stepDef{name, endPlanDrill}, nil
	}
	n, phase, ok := strings.Cut(strings.TrimPrefix(name, "bg"), "-")
	i, err := strconv.Atoi(n)
	if !ok || err != nil || i < 1 || i > MaxBootGroups || !slices.Contains(bootPhases, phase) {
		return stepDef{}, fmt.Errorf("plan job step %q is not supported", name)
	}
	run := func(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
		rec, err := Plans{State: r.State, Now: r.Now}.Get(ctx, j.Plan)
		if err != nil {
			return "", 0, err
		}
		if i > len(rec.Spec.BootGroups) {
			return "", 0, permanentError{fmt.Errorf("the plan has %d boot groups now, the job was made for more", len(rec.Spec.BootGroups))}
		}
		b := rec.Spec.BootGroups[i-1]
		var outcome string
		var wait time.Duration
		switch phase {
		case "pre":
			outcome, wait, err = r.runActions(ctx, j, b, "pre", b.Pre)
		case "deploy":
			outcome, wait, err = r.deployBootGroup(ctx, j, b)
		case "wait":
			outcome, wait, err = r.waitBootGroup(ctx, j, b)
		default:
			outcome, wait, err = r.runActions(ctx, j, b, "post", b.Post)
		}
		var perm permanentError
		if errors.As(err, &perm) { // a failed plan job says what it leaves running (its cleanup removes it)
			err = permanentError{fmt.Errorf("%w; %s", err, upSoFar(j))}
		}
		return outcome, wait, err
	}
	return stepDef{name, run}, nil
}

// childJobID is the id of the job the plan job starts on a group: derived, so that a step done twice
// finds the job it started the first time.
func childJobID(planJob, group string) string {
	sum := sha256.Sum256([]byte(planJob + "/" + group))
	return hex.EncodeToString(sum[:16])
}

func startGroups(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
	rec, err := Plans{State: r.State, Now: r.Now}.Get(ctx, j.Plan)
	if err != nil {
		return "", 0, err
	}
	adm := &Admission{State: r.State, Pages: r.Pages, Jobs: r.Jobs, PeerConfigured: r.Peer != nil, Log: r.Log, Now: r.Now}
	for _, group := range rec.Spec.Groups {
		req := Request{Group: group, Type: planChildType[j.Type], RecoveryPoint: j.RecoveryPoint, JobID: childJobID(j.ID(), group), Parent: j.ID()}
		if req.Type == JobCleanupTest || req.Type == JobCommit {
			req.RecoveryPoint = ""
		}
		if _, err := adm.Start(ctx, req); err != nil {
			return "", 0, permanentError{fmt.Errorf("group %s: %w", group, err)}
		}
		j.Work.SetChild(group, req.JobID)
	}
	return fmt.Sprintf("%d %s jobs started: %s", len(rec.Spec.Groups), planChildType[j.Type], strings.Join(rec.Spec.Groups, ", ")), 0, nil
}

// children are the group jobs the plan job started, by group.
func (r *JobRunner) children(ctx context.Context, j *Job) (map[string]Job, error) {
	out := map[string]Job{}
	for group, id := range j.Work.Children() {
		child, err := LoadJob(ctx, r.State, id)
		if err != nil {
			return nil, fmt.Errorf("group %s's job %s: %w", group, id, err)
		}
		out[group] = child
	}
	return out, nil
}

func waitGroups(ctx context.Context, r *JobRunner, j *Job, _ *replication.Group) (string, time.Duration, error) {
	children, err := r.children(ctx, j)
	if err != nil {
		return "", 0, err
	}
	var waiting, points []string
	for group, c := range children {
		switch c.State {
		case JobFailed:
			return "", 0, permanentError{fmt.Errorf("group %s's %s job %s failed: %s", group, c.Type, c.ID(), c.Error)}
		case JobSucceeded:
			if c.PointID != "" {
				points = append(points, group+" at "+c.PointID)
				j.Result = withResult(j.Result, "point:"+group, c.PointID+" "+c.PointTime.Format(time.RFC3339Nano))
			}
		default:
			waiting = append(waiting, group+" ("+c.State+")")
		}
	}
	if len(waiting) > 0 {
		sort.Strings(waiting)
		return "waiting for " + strings.Join(waiting, ", "), r.poll(j, time.Second), nil
	}
	sort.Strings(points)
	if len(points) == 0 {
		return fmt.Sprintf("%d group jobs done", len(children)), 0, nil
	}
	return "every group's disks are made: " + strings.Join(points, ", "), 0, nil
}

func withResult(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// bootGroupVM is one VM of a boot group with its group and the group's job.
type bootGroupVM struct {
	key   string // group/vm
	group *replication.Group
	job   Job
	vm    replication.VMSpec
}

func (r *JobRunner) bootGroupVMs(ctx context.Context, j *Job, b BootGroup) ([]bootGroupVM, error) {
	children, err := r.children(ctx, j)
	if err != nil {
		return nil, err
	}
	var out []bootGroupVM
	for _, key := range b.VMs {
		group, name, _ := strings.Cut(key, "/")
		g, err := replication.LoadGroup(ctx, r.State, group)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(g.Spec.VMs, func(v replication.VMSpec) bool { return v.Name == name })
		child, ok := children[group]
		if i < 0 || !ok {
			return nil, permanentError{fmt.Errorf("boot group %s: %s is no longer a VM of the plan's groups", b.Name, key)}
		}
		out = append(out, bootGroupVM{key: key, group: g, job: child, vm: g.Spec.VMs[i]})
	}
	return out, nil
}

func (r *JobRunner) deployBootGroup(ctx context.Context, j *Job, b BootGroup) (string, time.Duration, error) {
	if r.Compute == nil {
		return "no compute configured: the machine definitions next to each group's disks are for automation to deploy", 0, nil
	}
	vms, err := r.bootGroupVMs(ctx, j, b)
	if err != nil {
		return "", 0, err
	}
	for _, v := range vms {
		if wait, err := r.targetsReady(ctx, &v.job, v.group); wait != "" || err != nil {
			return wait, r.poll(j, 2*time.Second), err
		}
		if err := r.deployVM(ctx, &v.job, v.group, v.vm); err != nil {
			return "", 0, fmt.Errorf("boot group %s: %w", b.Name, err)
		}
	}
	return fmt.Sprintf("boot group %s: %d deployments started", b.Name, len(vms)), 0, nil
}

func (r *JobRunner) waitBootGroup(ctx context.Context, j *Job, b BootGroup) (string, time.Duration, error) {
	if r.Compute == nil {
		return "no compute configured", 0, nil
	}
	vms, err := r.bootGroupVMs(ctx, j, b)
	if err != nil {
		return "", 0, err
	}
	var waiting []string
	for _, v := range vms {
		up, note, err := r.vmUp(ctx, &v.job, v.group, v.vm, j.Steps[j.Next].Started)
		if err != nil {
			return "", 0, fmt.Errorf("boot group %s: %w", b.Name, err)
		}
		if note != "" {
			waiting = append(waiting, v.key+" ("+note+")")
			continue
		}
		j.Result = withResult(j.Result, "vm:"+v.key, up)
	}
	if len(waiting) > 0 {
		return fmt.Sprintf("boot group %s: waiting for %s", b.Name, strings.Join(waiting, ", ")), r.poll(j, time.Second), nil
	}
	return fmt.Sprintf("boot group %s: %d VMs running and healthy", b.Name, len(vms)), 0, nil
}

// upSoFar lists the VMs the plan job brought up, for a failure's message.
func upSoFar(j *Job) string {
	var up []string
	for k := range j.Result {
		if vm, ok := strings.CutPrefix(k, "vm:"); ok {
			up = append(up, vm)
		}
	}
	sort.Strings(up)
	if len(up) == 0 {
		return "no VM had come up"
	}
	return "up and left running: " + strings.Join(up, ", ")
}
