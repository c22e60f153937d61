package recovery

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
	// RunCommand runs a shell script as root in a running VM of the resource group and waits until it
	// ends or its timeout passes. The result's exit code and timing are reported apart from the
	// script's output, so nothing the script prints can stand for them. ErrNotFound: no such VM;
	// ErrState: the VM is not running.
	RunCommand(ctx context.Context, resourceGroup, vm string, cmd Command) (CommandResult, error)
}

// Command is a script to run in a VM.
type Command struct {
	Script  string
	Timeout time.Duration // CommandTimeout if 0
}

// CommandResult is how a command ended: its exit code (meaningless when TimedOut), and the last
// MaxCommandOutput bytes of its output (stdout and stderr together; Truncated if there was more).
type CommandResult struct {
	ExitCode  int
	TimedOut  bool
	Output    string
	Truncated bool
	Started   time.Time
	Ended     time.Time
}

// Bounds of a command.
const (
	CommandTimeout    = 5 * time.Minute
	MaxCommandTimeout = 60 * time.Minute // a run command's own bound is 90 minutes on Azure
	MaxCommandOutput  = 4096             // what a managed run command's instance view keeps of its output
	MaxScriptBytes    = 16 << 10
)

// vmResourceName is Azure's grammar of a Linux VM's name: 1-64 letters, digits, '_', '-' or '.', not
// starting with '_' and not ending in '.' or '-'.
var vmResourceName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?$`)

// CheckVMName checks a VM's resource name (every Compute names a VM by it in a path).
func CheckVMName(name string) error {
	if !vmResourceName.MatchString(name) {
		return fmt.Errorf("%w: VM name %q: 1-64 letters, digits, '_', '-' or '.', not starting with '_' or ending in '.' or '-'", replication.ErrInvalid, name)
	}
	return nil
}

// refusedRun reports whether RunCommand's error is a refusal — no such VM, a VM not running, a command
// out of bounds — which trying again cannot change, rather than a failure of the compute itself.
func refusedRun(err error) bool {
	return errors.Is(err, replication.ErrState) || errors.Is(err, replication.ErrNotFound) || errors.Is(err, replication.ErrInvalid)
}

// CheckRunCommand checks what every Compute checks before running a command: the resource group's and
// the VM's names, and the command's bounds (filling the default timeout).
func CheckRunCommand(rg, vm string, cmd *Command) error {
	if !replication.ValidResourceGroupName(rg) {
		return fmt.Errorf("%w: resource group name %q", replication.ErrInvalid, rg)
	}
	if err := CheckVMName(vm); err != nil {
		return err
	}
	return CheckCommand(cmd)
}

// CheckCommand checks a command's bounds, filling the default timeout.
func CheckCommand(cmd *Command) error {
	switch {
	case strings.TrimSpace(cmd.Script) == "":
		return fmt.Errorf("%w: a command needs a script", replication.ErrInvalid)
	case len(cmd.Script) > MaxScriptBytes:
		return fmt.Errorf("%w: a script is at most %d bytes, not %d", replication.ErrInvalid, MaxScriptBytes, len(cmd.Script))
	case strings.ContainsRune(cmd.Script, 0):
		return fmt.Errorf("%w: a script is text: it has a NUL byte", replication.ErrInvalid)
	case cmd.Timeout < 0 || cmd.Timeout > MaxCommandTimeout:
		return fmt.Errorf("%w: a command's timeout is up to %s, not %s", replication.ErrInvalid, MaxCommandTimeout, cmd.Timeout)
	case cmd.Timeout == 0:
		cmd.Timeout = CommandTimeout
	}
	return nil
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
	// Evidence is, for a healthy VM, what said so: the guest's own line on its console locally, the VM
	// agent's status on Azure (a drill's report keeps it).
	Evidence string
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
