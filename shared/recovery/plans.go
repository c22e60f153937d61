package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// A recovery plan fails over an application, not a VM: its consistency groups fail over together, and
// their VMs come up boot group by boot group (database, then app servers, then web), with actions
// before and after each boot group — a webhook, or a manual step an operator acknowledges. Plans are
// rows of PlansTable; their jobs run on the job engine like any other (planjobs.go).

// PlansTable holds the plans (partition = plan name, row = PlanRow).
const (
	PlansTable    = "plans"
	PlanRow       = "plan"
	MaxBootGroups = 7 // Site Recovery's limit
	maxActions    = 10
)

// Action kinds.
const (
	ActionWebhook = "webhook"
	ActionManual  = "manual"
	ActionCommand = "command"
)

// PlanSpec is what the operator PUTs.
type PlanSpec struct {
	Groups     []string    `json:"groups"`
	BootGroups []BootGroup `json:"bootGroups"`
	// Drill is the plan's drill, as a group's (replication.DrillSpec), its checks naming VMs
	// "group/vm": the plan's test failover, every boot group up in order, the checks, the cleanup.
	Drill replication.DrillSpec `json:"drill"`
}

// BootGroup is a set of VMs ("group/vm") that come up together, after the boot groups before it, with
// actions before (pre) and after (post) they come up.
type BootGroup struct {
	Name string   `json:"name"`
	VMs  []string `json:"vms"`
	Pre  []Action `json:"pre,omitempty"`
	Post []Action `json:"post,omitempty"`
}

// Action is a step between boot groups. A webhook POSTs a JSON body signed with HMAC-SHA256 (the app's
// StandbyWebhookSecret) to URL and expects ExpectStatus within TimeoutSeconds; a manual action waits
// until an operator acknowledges it through the API, Instructions telling them what to check.
type Action struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	URL            string `json:"url,omitempty"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`
	ExpectStatus   int    `json:"expectStatus,omitempty"`
	Instructions   string `json:"instructions,omitempty"`
	// A command action runs Command as root in VM ("group/vm", one already up: of an earlier boot group
	// for a pre action, of this one or an earlier for a post action) through the Compute port, and
	// expects ExpectExitCode.
	VM             string `json:"vm,omitempty"`
	Command        string `json:"command,omitempty"`
	ExpectExitCode int    `json:"expectExitCode,omitempty"`
}

// PlanRecord is a plan's row: its spec, and the plan job running (one at a time).
type PlanRecord struct {
	replication.Keys
	Spec      PlanSpec  `json:"Spec"`
	ActiveJob string    `json:"ActiveJob,omitempty"`
	UpdatedAt time.Time `json:"UpdatedAt"`
	// The plan's last drill and its schedule's last slot taken, as a group keeps them.
	LastDrillJob         string    `json:"LastDrillJob,omitempty"`
	LastDrillAt          time.Time `json:"LastDrillAt"`
	LastDrillResult      string    `json:"LastDrillResult,omitempty"`
	LastDrillSucceededAt time.Time `json:"LastDrillSucceededAt"`
	LastDrillSlot        time.Time `json:"LastDrillSlot"`
	// The plan's last test failover or drill to end.
	LastTest replication.LastTest `json:"LastTest"`
}

var (
	bootGroupName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	actionName    = bootGroupName
)

// Normalize fills the actions' and the drill's defaults.
func (p *PlanSpec) Normalize() {
	p.Drill.Normalize()
	for i := range p.BootGroups {
		for _, actions := range [][]Action{p.BootGroups[i].Pre, p.BootGroups[i].Post} {
			for j := range actions {
				switch a := &actions[j]; a.Type {
				case ActionWebhook:
					a.TimeoutSeconds = cmpOr(a.TimeoutSeconds, 30)
					a.ExpectStatus = cmpOr(a.ExpectStatus, 200)
				case ActionCommand:
					a.TimeoutSeconds = cmpOr(a.TimeoutSeconds, 60)
				}
			}
		}
	}
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Validate checks the plan against the groups it names (vms: each group's VM names): every VM of every
// group in exactly one boot group, at most seven boot groups, actions well formed and named once.
func (p *PlanSpec) Validate(vms map[string][]string) error {
	if len(p.Groups) == 0 || len(p.Groups) > 64 {
		return fmt.Errorf("groups: %d, want 1 to 64", len(p.Groups))
	}
	for i, g := range p.Groups {
		if _, ok := vms[g]; !ok || slices.Index(p.Groups, g) != i {
			return fmt.Errorf("groups[%d]: %q is not a group, or is named twice", i, g)
		}
	}
	if len(p.BootGroups) == 0 || len(p.BootGroups) > MaxBootGroups {
		return fmt.Errorf("bootGroups: %d, want 1 to %d", len(p.BootGroups), MaxBootGroups)
	}
	placed, names, actions := map[string]string{}, map[string]bool{}, map[string]bool{}
	for i, b := range p.BootGroups {
		at := fmt.Sprintf("bootGroups[%d]", i)
		if !bootGroupName.MatchString(b.Name) || names[b.Name] {
			return fmt.Errorf("%s.name: %q must be 1-32 lowercase letters, digits or hyphens, and unique", at, b.Name)
		}
		names[b.Name] = true
		if len(b.VMs) == 0 {
			return fmt.Errorf("%s.vms: a boot group brings up at least one VM", at)
		}
		for j, vm := range b.VMs {
			group, name, _ := strings.Cut(vm, "/")
			if !slices.Contains(vms[group], name) || !slices.Contains(p.Groups, group) {
				return fmt.Errorf("%s.vms[%d]: %q is not a VM (group/vm) of the plan's groups", at, j, vm)
			}
			if other, ok := placed[vm]; ok {
				return fmt.Errorf("%s.vms[%d]: %s is in boot group %s already: a VM is in exactly one", at, j, vm, other)
			}
			placed[vm] = b.Name
		}
		for _, list := range []struct {
			field   string
			actions []Action
		}{{"pre", b.Pre}, {"post", b.Post}} {
			if len(list.actions) > maxActions {
				return fmt.Errorf("%s.%s: %d actions, at most %d", at, list.field, len(list.actions), maxActions)
			}
			up := func(vm string) bool { // a pre action's VM came up in an earlier boot group
				where, ok := placed[vm]
				return ok && (list.field == "post" || where != b.Name)
			}
			for k, a := range list.actions {
				if err := a.validate(actions, up); err != nil {
					return fmt.Errorf("%s.%s[%d].%v", at, list.field, k, err)
				}
			}
		}
	}
	if err := p.Drill.Validate(func(vm string) bool { _, ok := placed[vm]; return ok }); err != nil {
		return err
	}
	for _, g := range p.Groups {
		for _, vm := range vms[g] {
			if _, ok := placed[g+"/"+vm]; !ok {
				return fmt.Errorf("bootGroups: %s/%s is in no boot group: every VM of the plan's groups is in exactly one", g, vm)
			}
		}
	}
	return nil
}

func (a Action) validate(seen map[string]bool, up func(vm string) bool) error {
	if !actionName.MatchString(a.Name) || seen[a.Name] {
		return fmt.Errorf("name: %q must be 1-32 lowercase letters, digits or hyphens, unique in the plan", a.Name)
	}
	seen[a.Name] = true
	switch a.Type {
	case ActionWebhook:
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(a.URL) > 2048 {
			return fmt.Errorf("url: %q is not an http(s) URL without credentials", a.URL)
		}
		if a.TimeoutSeconds < 1 || a.TimeoutSeconds > 300 {
			return fmt.Errorf("timeoutSeconds: %d, want 1 to 300", a.TimeoutSeconds)
		}
		if a.ExpectStatus < 200 || a.ExpectStatus > 299 {
			return fmt.Errorf("expectStatus: %d, want a 2xx status", a.ExpectStatus)
		}
	case ActionManual:
		if len(a.Instructions) > 1024 {
			return fmt.Errorf("instructions: %d characters, at most 1024", len(a.Instructions))
		}
	case ActionCommand:
		if !up(a.VM) {
			return fmt.Errorf("vm: %q is not a VM (group/vm) already up when the action runs", a.VM)
		}
		if strings.TrimSpace(a.Command) == "" || len(a.Command) > replication.MaxCheckCommandBytes {
			return fmt.Errorf("command: 1 to %d bytes", replication.MaxCheckCommandBytes)
		}
		if a.TimeoutSeconds < 1 || a.TimeoutSeconds > 300 {
			return fmt.Errorf("timeoutSeconds: %d, want 1 to 300", a.TimeoutSeconds)
		}
		if a.ExpectExitCode < 0 || a.ExpectExitCode > 255 {
			return fmt.Errorf("expectExitCode: %d, want 0 to 255", a.ExpectExitCode)
		}
	default:
		return fmt.Errorf("type: %q, want %s, %s or %s", a.Type, ActionWebhook, ActionManual, ActionCommand)
	}
	return nil
}

// Plans keeps the plans.
type Plans struct {
	State replication.StateStore
	Now   func() time.Time
}

// Put stores a plan after checking it against its groups; an invalid plan is refused (ErrInvalid
// naming the field) and nothing is stored. A plan whose job runs cannot change (ErrState).
func (ps Plans) Put(ctx context.Context, name string, spec PlanSpec) (PlanRecord, error) {
	if err := replication.CheckGroupName(name); err != nil {
		return PlanRecord{}, fmt.Errorf("plan name: %w", err)
	}
	spec.Normalize()
	vms := map[string][]string{}
	for _, g := range spec.Groups {
		grp, err := replication.LoadGroup(ctx, ps.State, g)
		if errors.Is(err, replication.ErrNoGroup) || replication.ValidGroupName(g) != nil {
			continue // Validate names it
		}
		if err != nil {
			return PlanRecord{}, err
		}
		for _, vm := range grp.Spec.VMs {
			vms[g] = append(vms[g], vm.Name)
		}
	}
	if err := spec.Validate(vms); err != nil {
		return PlanRecord{}, fmt.Errorf("%w: invalid plan: %v", replication.ErrInvalid, err)
	}
	return replication.Mutate(ctx, ps.State, PlansTable, name, PlanRow, func(r *PlanRecord, found bool) error {
		if _, running := runningPlanJob(ctx, ps.State, *r); found && running {
			return fmt.Errorf("%w: plan job %s is running: the plan changes once it ends", replication.ErrState, r.ActiveJob)
		}
		r.Keys, r.Spec, r.UpdatedAt = replication.Keys{PartitionKey: name, RowKey: PlanRow}, spec, ps.Now().UTC()
		return nil
	})
}

// runningPlanJob is the plan's job while it runs (false when there is none, or it ended).
func runningPlanJob(ctx context.Context, store replication.StateStore, r PlanRecord) (Job, bool) {
	if r.ActiveJob == "" {
		return Job{}, false
	}
	j, err := LoadJob(ctx, store, r.ActiveJob)
	return j, err == nil && !j.Terminal()
}

// Get reads a plan (ErrNotFound when there is none).
func (ps Plans) Get(ctx context.Context, name string) (PlanRecord, error) {
	if err := replication.CheckGroupName(name); err != nil {
		return PlanRecord{}, fmt.Errorf("plan name: %w", err)
	}
	var r PlanRecord
	if _, err := ps.State.Get(ctx, PlansTable, name, PlanRow, &r); err != nil {
		return r, fmt.Errorf("plan %s: %w", name, err)
	}
	return r, nil
}

// List reads every plan.
func (ps Plans) List(ctx context.Context) ([]PlanRecord, error) {
	var out []PlanRecord
	err := ps.State.ListRows(ctx, PlansTable, PlanRow, func(decode func(any) error, _ replication.ETag) error {
		var r PlanRecord
		if err := decode(&r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if errors.Is(err, replication.ErrNotFound) {
		return nil, nil
	}
	return out, err
}

// Delete removes a plan (its groups are untouched); a plan whose job runs stays.
func (ps Plans) Delete(ctx context.Context, name string) error {
	r, err := ps.Get(ctx, name)
	if err != nil {
		return err
	}
	if _, running := runningPlanJob(ctx, ps.State, r); running {
		return fmt.Errorf("%w: plan job %s is running", replication.ErrState, r.ActiveJob)
	}
	return ps.State.Delete(ctx, PlansTable, name, PlanRow, "")
}

// PlanRequest asks for a plan job: Type is test, planned, unplanned, cleanup-test-failover or commit;
// RecoveryPoint is one choice for every group (latestProcessed, latestAppConsistent, latest, or a time —
// each group's point at or before it).
type PlanRequest struct {
	Plan, Type, RecoveryPoint string
	// JobID makes the request idempotent (a scheduled drill's slot); DrillSlot is that slot.
	JobID     string
	DrillSlot time.Time
}

// StartPlan admits and queues a plan job: one at a time per plan, and only when every group of the plan
// admits its part now (a group that cannot refuses the plan, named). Nothing is started otherwise.
func (a *Admission) StartPlan(ctx context.Context, req PlanRequest) (Job, error) {
	jobType := "plan-" + req.Type
	childType, ok := planChildType[jobType]
	if !ok {
		return Job{}, fmt.Errorf("%w: type: %q, want test, planned, unplanned, drill, %s or %s", replication.ErrInvalid, req.Type, JobCleanupTest, JobCommit)
	}
	if req.JobID != "" && !ValidJobID(req.JobID) {
		return Job{}, fmt.Errorf("%w: jobId %q is not 32 lowercase hex digits", replication.ErrInvalid, req.JobID)
	}
	child := Request{Type: childType, RecoveryPoint: req.RecoveryPoint, Group: "plan"}
	if err := child.normalize(); err != nil {
		return Job{}, err
	}
	if (childType == JobCleanupTest || childType == JobCommit) && req.RecoveryPoint != "" {
		return Job{}, fmt.Errorf("%w: recoveryPoint: a %s takes none", replication.ErrInvalid, childType)
	}
	if err := checkPointGrammar(req.RecoveryPoint); err != nil {
		return Job{}, err
	}
	if a.Jobs == nil {
		return Job{}, fmt.Errorf("%w: the job queue (set StandbyServiceBus)", replication.ErrNotConfigured)
	}
	plans := Plans{State: a.State, Now: a.Now}
	rec, err := plans.Get(ctx, req.Plan)
	if err != nil {
		return Job{}, err
	}
	if req.JobID != "" { // a request again (a scheduled slot another instance started): its job
		if j, err := LoadJob(ctx, a.State, req.JobID); err == nil {
			if j.Plan != req.Plan || j.Type != jobType {
				return Job{}, fmt.Errorf("%w: job id in use: job %s is a %s job", replication.ErrConflict, j.ID(), j.Type)
			}
			return j, nil
		}
	}
	if jobType == JobPlanDrill && req.RecoveryPoint == "" && rec.Spec.Drill.Point != "" {
		child.RecoveryPoint = rec.Spec.Drill.Point
	}
	if err := a.planAdmits(ctx, rec, childType); err != nil {
		return Job{}, err
	}
	job, err := NewPlanJob(req.Plan, rec.Spec, jobType, child.RecoveryPoint, a.Now().UTC())
	if err != nil {
		return Job{}, fmt.Errorf("%w: %v", replication.ErrInvalid, err)
	}
	if req.JobID != "" {
		job.PartitionKey = req.JobID
	}
	if !req.DrillSlot.IsZero() {
		job.Work.SetDrillSlot(req.DrillSlot)
	}
	if _, err := a.State.Insert(ctx, JobsTable, job); err != nil {
		return Job{}, err
	}
	if _, err := replication.Mutate(ctx, a.State, PlansTable, req.Plan, PlanRow, func(r *PlanRecord, found bool) error {
		if !found {
			return fmt.Errorf("plan %s: %w", req.Plan, replication.ErrNotFound)
		}
		if running, ok := runningPlanJob(ctx, a.State, *r); ok {
			return fmt.Errorf("%w: plan job %s (%s) is running: one plan job at a time", replication.ErrState, running.ID(), running.Type)
		}
		r.ActiveJob = job.ID()
		if slot := job.Work.DrillSlot(); slot.After(r.LastDrillSlot) {
			r.LastDrillSlot = slot
		}
		return nil
	}); err != nil {
		a.State.Delete(ctx, JobsTable, job.ID(), JobRow, "") // never queued
		return Job{}, err
	}
	if err := QueueJob(ctx, a.Jobs, job); err != nil {
		return Job{}, err
	}
	a.Log.Info("plan job queued", "job", job.ID(), "plan", req.Plan, "type", jobType)
	return job, nil
}

// planAdmits checks that every group of the plan admits its part now, and that webhooks can be signed.
func (a *Admission) planAdmits(ctx context.Context, rec PlanRecord, childType string) error {
	for _, b := range rec.Spec.BootGroups {
		for _, act := range append(append([]Action{}, b.Pre...), b.Post...) {
			if act.Type == ActionWebhook && !a.WebhooksConfigured && childType != JobCleanupTest && childType != JobCommit {
				return fmt.Errorf("%w: action %s is a webhook: set StandbyWebhookSecret (its HMAC key)", replication.ErrNotConfigured, act.Name)
			}
		}
	}
	for _, group := range rec.Spec.Groups {
		g, err := replication.LoadGroup(ctx, a.State, group)
		if err != nil {
			return fmt.Errorf("group %s of the plan: %w", group, err)
		}
		if err := admits(&g.Record, childType); err != nil {
			return fmt.Errorf("group %s of the plan: %w", group, err)
		}
		if childType == JobTestFailover {
			if err := g.Spec.CheckTestNetwork(); err != nil {
				return fmt.Errorf("%w: group %s of the plan: %v", replication.ErrState, group, err)
			}
		}
		if busy := g.Record.FailoverJob; busy != "" && (childType == JobPlannedFailover || childType == JobUnplannedFailover) {
			if j, err := LoadJob(ctx, a.State, busy); err == nil && !j.Terminal() {
				return fmt.Errorf("%w: group %s of the plan is busy: its failover job %s is running", replication.ErrState, group, busy)
			}
		}
	}
	return nil
}
