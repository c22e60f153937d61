package recovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// The bring-up steps end a failover with the VMs running: each VM's deployment (its managed disks
// imported from the point's VHD copies, its NIC, the VM) goes to the Compute port under a name the job
// fixes, so a redelivered step finds what an earlier delivery started; the next step polls until every
// VM's guest reports healthy. Without a Compute port (not configured) the machine definitions next to
// the disks are the outcome, for automation to deploy.

func deployVMs(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if r.Compute == nil {
		return "no compute configured: the machine definitions next to the disks are for automation to deploy", 0, nil
	}
	if j.Parent != "" {
		return "the VMs come up boot group by boot group with plan job " + j.Parent, 0, nil
	}
	if wait, err := r.targetsReady(ctx, j, g); wait != "" || err != nil {
		return wait, r.poll(j, 2*time.Second), err
	}
	for _, vm := range g.Spec.VMs {
		if err := r.deployVM(ctx, j, g, vm); err != nil {
			return "", 0, err
		}
	}
	return fmt.Sprintf("%d deployments started in resource group %s", len(g.Spec.VMs), resourceGroupOf(g)), 0, nil
}

// deployVM starts one VM's deployment for the job (the group's failover or test job): its disks the
// job's copies (or the group's targets, in place), under the name the job fixes.
func (r *JobRunner) deployVM(ctx context.Context, j *Job, g *replication.Group, vm replication.VMSpec) error {
	if _, mapped := g.Spec.Network.MappingFor(vm.Subnet); !mapped {
		return permanentError{fmt.Errorf("%s has no network mapping for its subnet %q: it has nowhere to attach", vm.Name, vm.Subnet)}
	}
	disk := func(key string) replication.DiskRef { return replication.DiskIn(j.Container, key) }
	if inPlace(j, g) {
		disk = g.TargetDisk
	}
	req, err := r.machineDeployment(j, g, vm, disk)
	if err != nil {
		return permanentError{err}
	}
	err = r.Compute.Deploy(ctx, resourceGroupOf(g), deploymentName(j, vm.Name), req)
	if errors.Is(err, replication.ErrInvalid) {
		return permanentError{fmt.Errorf("the deployment of %s was refused: %w", vm.Name, err)}
	}
	return err
}

// targetsReady sees that the group's target resources are in place before a VM attaches to them: made on
// enable, or made now for a group enabled before there was a compute (or whose deployment failed then).
// It says what it waits for while their deployment runs.
func (r *JobRunner) targetsReady(ctx context.Context, j *Job, g *replication.Group) (string, error) {
	res := g.Record.Resources
	if res.State == replication.TargetsSucceeded {
		return "", nil
	}
	res, err := TargetSite{Compute: r.Compute}.Provision(ctx, j.Group, g.Spec)
	if errors.Is(err, replication.ErrInvalid) {
		return "", permanentError{fmt.Errorf("the target resources: %w", err)}
	}
	if err != nil {
		return "", err
	}
	if _, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		rec.Resources = res
		return nil
	}); err != nil {
		return "", err
	}
	switch res.State {
	case replication.TargetsFailed:
		return "", permanentError{fmt.Errorf("the target resources' deployment %s failed: %s", res.Deployment, res.Error)}
	case replication.TargetsRunning:
		return "waiting for the target resources' deployment " + res.Deployment, nil
	}
	return "", nil
}

func waitVMs(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if r.Compute == nil {
		return "no compute configured", 0, nil
	}
	if j.Parent != "" {
		return "the VMs come up with plan job " + j.Parent, 0, nil
	}
	var waiting []string
	for _, vm := range g.Spec.VMs {
		up, note, err := r.vmUp(ctx, j, g, vm, j.Steps[j.Next].Started)
		if err != nil {
			return "", 0, err
		}
		if note != "" {
			waiting = append(waiting, vm.Name+" ("+note+")")
			continue
		}
		if j.Result == nil {
			j.Result = map[string]string{}
		}
		j.Result["vm:"+vm.Name] = up
	}
	if len(waiting) > 0 {
		return "waiting for " + strings.Join(waiting, ", "), r.poll(j, time.Second), nil
	}
	return fmt.Sprintf("%d VMs running and healthy in %s", len(g.Spec.VMs), resourceGroupOf(g)), 0, nil
}

// vmUp looks at one VM the job deployed: when its guest reports healthy it says so ("<id> running
// healthy"); while it comes up, note says how far; a failed deployment, a VM that stopped, or one not
// healthy within the boot timeout since waiting began is an error naming it.
func (r *JobRunner) vmUp(ctx context.Context, j *Job, g *replication.Group, vm replication.VMSpec, since time.Time) (up, note string, err error) {
	rg := resourceGroupOf(g)
	d, err := r.Compute.Deployment(ctx, rg, deploymentName(j, vm.Name))
	if err != nil {
		return "", "", err
	}
	if d.State == DeploymentFailed {
		return "", "", permanentError{fmt.Errorf("the deployment of %s failed: %s", vm.Name, d.Error)}
	}
	st, err := r.Compute.VM(ctx, rg, vmName(j, vm.Name))
	if d.State == DeploymentRunning || errors.Is(err, replication.ErrNotFound) {
		return "", "deploying", nil
	}
	if err != nil {
		return "", "", err
	}
	if !st.Healthy && st.PowerState == "stopped" {
		return "", "", permanentError{fmt.Errorf("%s stopped before it reported healthy: %s", vm.Name, st.Detail)}
	}
	if !st.Healthy {
		if r.Now().Sub(since) > r.bootTimeout() {
			return "", "", permanentError{fmt.Errorf("%s did not report healthy within %s (%s): %s", vm.Name, r.bootTimeout(), st.PowerState, st.Detail)}
		}
		return "", st.PowerState, nil
	}
	up = st.ID + " " + st.PowerState + " healthy"
	if st.Evidence != "" {
		up += " (" + st.Evidence + ")"
	}
	return up, "", nil
}

func (r *JobRunner) bootTimeout() time.Duration {
	if r.BootTimeout > 0 {
		return r.BootTimeout
	}
	return VMBootTimeout
}

// deleteTestVMs removes what the group's test failovers deployed: each deployment's VM, NIC and disks.
func deleteTestVMs(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if r.Compute == nil {
		return "no compute configured", 0, nil
	}
	holds, _, err := replication.QueryAll[replication.PointHold](ctx, r.State, replication.HoldsTable, j.Group)
	if err != nil {
		return "", 0, err
	}
	var jobs []*Job
	for _, h := range holds {
		var test Job
		if _, err := r.State.Get(ctx, JobsTable, h.HeldByJob, JobRow, &test); err != nil || !isolated(test.Type) {
			continue
		}
		jobs = append(jobs, &test)
	}
	n, pending, err := r.deleteVMsOf(ctx, g, jobs...)
	if pending {
		return fmt.Sprintf("%d test resources being deleted; going on in the next step run", n), r.poll(j, 10*time.Second), nil
	}
	return fmt.Sprintf("%d test resources deleted (VMs, NICs, disks)", n), 0, err
}

// deletePreviousVMs removes the VMs the failover being changed brought up, before the new point's come
// up: a change of recovery point re-creates the VMs, it does not add to them.
func deletePreviousVMs(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if r.Compute == nil || g.Record.FailoverJob == "" || g.Record.FailoverJob == j.ID() {
		return "nothing to remove", 0, nil
	}
	previous, err := LoadJob(ctx, r.State, g.Record.FailoverJob)
	if err != nil {
		return "", 0, err
	}
	n, pending, err := r.deleteVMsOf(ctx, g, &previous)
	if pending {
		return fmt.Sprintf("%d resources of job %s being deleted; going on in the next step run", n, previous.ID()), r.poll(j, 10*time.Second), nil
	}
	return fmt.Sprintf("%d resources of job %s deleted (VMs, NICs, disks)", n, previous.ID()), 0, err
}

// deleteBudget bounds one step run's deletes, well inside host.json's functionTimeout (10 minutes):
// a large group's deletes go on in later runs of the step instead of being cut off with it. (A var
// so that a test can shorten it.)
var deleteBudget = 4 * time.Minute

// deleteVMsOf deletes what the jobs' deployments made, all VMs' resources in one Compute.Delete (which
// deletes each after what holds it, independent ones in parallel on Azure); deployments already gone are
// fine. pending says the budget ran out first: the deletes go on in Azure, and running the step again
// (every delete is idempotent) finishes them.
func (r *JobRunner) deleteVMsOf(ctx context.Context, g *replication.Group, jobs ...*Job) (n int, pending bool, err error) {
	rg := resourceGroupOf(g)
	var ids []string
	for _, job := range jobs {
		for _, vm := range g.Spec.VMs {
			d, err := r.Compute.Deployment(ctx, rg, deploymentName(job, vm.Name))
			if errors.Is(err, replication.ErrNotFound) {
				continue
			}
			if err != nil {
				return 0, false, err
			}
			ids = append(ids, d.Resources...)
		}
	}
	budget, cancel := context.WithTimeout(ctx, deleteBudget)
	defer cancel()
	err = r.Compute.Delete(budget, rg, ids)
	if err != nil && ctx.Err() == nil && budget.Err() != nil {
		r.Log.Info("deletes go on past the step's budget", "group", g.Record.Group(), "resources", len(ids), "budget", deleteBudget)
		return len(ids), true, nil
	}
	return len(ids), false, err
}
