package recovery

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Compute is where failed-over VMs run: Azure Resource Manager with the Compute and Network resource
// providers, or locally a stand-in that refuses what they would refuse and boots the VMs with QEMU.
//
// Contract: Deploy validates the template first and refuses one the providers would refuse (an error
// wrapping replication.ErrInvalid that names the property), then starts the deployment and returns;
// deploying the same name again with the same request changes nothing (deployments are idempotent
// by name). Deployment and VM report progress (ErrNotFound when there is none of that name); Delete
// removes resources by id and succeeds for ids already gone.
//
// EnsureResourceGroup creates a resource group in the compute's region when it is missing (an existing
// one is used as it is) and returns its id. Exists reports whether a resource, named by its full id,
// exists. ExportDisk grants read access to a managed disk for the given time and returns the address
// its fixed VHD is read or copied from (a SAS URL in Azure); EndExport revokes it (and succeeds when
// there is nothing to revoke).
type Compute interface {
	EnsureResourceGroup(ctx context.Context, name string) (string, error)
	Deploy(ctx context.Context, resourceGroup, name string, req DeploymentRequest) error
	Deployment(ctx context.Context, resourceGroup, name string) (DeploymentStatus, error)
	VM(ctx context.Context, resourceGroup, name string) (VMStatus, error)
	Exists(ctx context.Context, id string) (bool, error)
	// Delete removes the resources of the group, each after whatever holds it (RemovalRank order); one
	// already gone is fine, and an id of another group is refused before anything is deleted.
	Delete(ctx context.Context, resourceGroup string, ids []string) error
	ExportDisk(ctx context.Context, diskID string, valid time.Duration) (string, error)
	EndExport(ctx context.Context, diskID string) error
	// MissingActions are the actions of the list the app's identity may not take in the resource group
	// (ErrNotFound: the group does not exist).
	MissingActions(ctx context.Context, resourceGroup string, actions []string) ([]string, error)
}

// RemovalRank orders deletions so that nothing is deleted while something else still holds it: a VM
// holds its NICs, disks and availability set; a NIC holds its subnet. Resources of equal rank hold
// nothing of each other.
func RemovalRank(id string) int {
	_, path, _ := strings.Cut(strings.ToLower(id), "/providers/")
	parts := strings.Split(path, "/") // namespace, type, name[, child type, child name]
	typ := ""
	if len(parts) >= 2 {
		typ = parts[0] + "/" + parts[1]
	}
	if len(parts) >= 4 {
		typ += "/" + parts[3]
	}
	switch typ {
	case "microsoft.compute/virtualmachines":
		return 0
	case "microsoft.network/networkinterfaces":
		return 1
	case "microsoft.compute/disks":
		return 2
	case "microsoft.compute/availabilitysets":
		return 3
	case "microsoft.network/virtualnetworks/subnets":
		return 4
	}
	return 5
}

// DeploymentStatus is a deployment's provisioning state: Running, Succeeded or Failed (with Error),
// and the ids of the resources it made.
type DeploymentStatus struct {
	State     string
	Error     string
	Resources []string
}

// VMStatus is a VM's state: its resource id, power state ("running", "stopped") and whether its guest
// reports healthy; Detail says why not (for a VM that never comes up, the tail of its boot log).
type VMStatus struct {
	ID         string
	PowerState string
	Healthy    bool
	Detail     string
}

// Deployment states.
const (
	DeploymentRunning   = "Running"
	DeploymentSucceeded = "Succeeded"
	DeploymentFailed    = "Failed"
)

// VMBootTimeout is how long a failed-over VM has to report healthy before its job fails.
const VMBootTimeout = 10 * time.Minute

// deploymentName is a VM's deployment for a job: deterministic, so a redelivered step finds it.
func deploymentName(j *Job, vm string) string { return fmt.Sprintf("standby-%s-%s", j.ID()[:8], vm) }

// vmName is the name the deployment gives the VM (MachineDeployment's vmName).
func vmName(j *Job, vm string) string { return vm + "-" + j.ID()[:8] }

// resourceGroupOf is where a group's VMs come up.
func resourceGroupOf(g *replication.Group) string {
	return g.Spec.Target.ResourceGroupName(g.Record.Group())
}
