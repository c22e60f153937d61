package azcompute

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// RunCommand runs the script as a managed run command of the VM (Microsoft.Compute/virtualMachines/
// runCommands@2025-04-01; the published type definitions: bicep-types-az, also
// shared/reference/azure-types/microsoft.compute_2025-04-01.md, the resource at line 186 and
// VirtualMachineRunCommandProperties, …InstanceView and …ScriptSource at lines 1584-1618):
//
//   - PUT …/virtualMachines/{vm}/runCommands/{name} {location, properties: {source: {script},
//     asyncExecution: false, timeoutInSeconds, treatFailureAsDeploymentFailure: false}}: with
//     asyncExecution false the provisioning completes when the script does; with
//     treatFailureAsDeploymentFailure false a script's failure is not a provisioning failure, so the
//     exit code is read, not inferred;
//   - GET …/runCommands/{name}?$expand=instanceView: executionState (Succeeded, Failed, TimedOut, …),
//     exitCode, output and error (each the stream's last 4 KiB);
//   - DELETE …/runCommands/{name}: a run command is a resource of the VM until deleted, and a VM keeps
//     at most 25 of them.
//
// The name is fresh per call, so a call never reads another's result.
func (c *Compute) RunCommand(ctx context.Context, rg, vm string, cmd recovery.Command) (recovery.CommandResult, error) {
	if err := recovery.CheckRunCommand(rg, vm, &cmd); err != nil {
		return recovery.CommandResult{}, err
	}
	raw := make([]byte, 6)
	rand.Read(raw)
	name := "standby-" + hex.EncodeToString(raw)
	body := armcompute.VirtualMachineRunCommand{
		Location: to.Ptr(c.Location),
		Properties: &armcompute.VirtualMachineRunCommandProperties{
			Source:                          &armcompute.VirtualMachineRunCommandScriptSource{Script: to.Ptr(cmd.Script)},
			AsyncExecution:                  to.Ptr(false),
			TimeoutInSeconds:                to.Ptr(int32(cmd.Timeout / time.Second)),
			TreatFailureAsDeploymentFailure: to.Ptr(false),
		},
	}
	started := time.Now().UTC()
	poller, err := c.runCommands.BeginCreateOrUpdate(ctx, rg, vm, name, body, nil)
	if err != nil {
		return recovery.CommandResult{}, azarm.Translate(err, "starting a run command on VM "+vm)
	}
	defer c.deleteRunCommand(rg, vm, name)
	if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: c.poll()}); err != nil {
		return recovery.CommandResult{}, azarm.Translate(err, "running a command on VM "+vm)
	}
	res, err := c.runCommands.GetByVirtualMachine(ctx, rg, vm, name, &armcompute.VirtualMachineRunCommandsClientGetByVirtualMachineOptions{Expand: to.Ptr("instanceView")})
	if err != nil {
		return recovery.CommandResult{}, azarm.Translate(err, "reading the run command's result on VM "+vm)
	}
	var view *armcompute.VirtualMachineRunCommandInstanceView
	if res.Properties != nil {
		view = res.Properties.InstanceView
	}
	return runResult(view, started)
}

// runResult reads a finished run command's instance view.
func runResult(v *armcompute.VirtualMachineRunCommandInstanceView, started time.Time) (recovery.CommandResult, error) {
	if v == nil || v.ExecutionState == nil {
		return recovery.CommandResult{}, fmt.Errorf("the run command has no instance view")
	}
	out := recovery.CommandResult{Started: started, Ended: time.Now().UTC()}
	if v.StartTime != nil {
		out.Started = v.StartTime.UTC()
	}
	if v.EndTime != nil {
		out.Ended = v.EndTime.UTC()
	}
	switch *v.ExecutionState {
	case armcompute.ExecutionStateSucceeded, armcompute.ExecutionStateFailed:
		if v.ExitCode == nil {
			return recovery.CommandResult{}, fmt.Errorf("the run command ended %s without an exit code: %s", *v.ExecutionState, replication.Redact(str(v.ExecutionMessage)))
		}
		out.ExitCode = int(*v.ExitCode)
	case armcompute.ExecutionStateTimedOut:
		out.TimedOut = true
	default: // Canceled, Unknown, or still Pending or Running after the provisioning completed
		return recovery.CommandResult{}, fmt.Errorf("the run command ended %s: %s", *v.ExecutionState, replication.Redact(str(v.ExecutionMessage)))
	}
	stdout, stderr := str(v.Output), str(v.Error)
	out.Truncated = len(stdout) >= recovery.MaxCommandOutput || len(stderr) >= recovery.MaxCommandOutput // the service keeps each stream's last 4 KiB
	combined := stdout
	if stderr != "" {
		combined += stderr
	}
	if len(combined) > recovery.MaxCommandOutput {
		combined, out.Truncated = combined[len(combined)-recovery.MaxCommandOutput:], true
	}
	out.Output = combined
	return out, nil
}

// deleteRunCommand removes the run command resource, also when the caller's context has ended (a
// leftover counts against the VM's 25).
func (c *Compute) deleteRunCommand(rg, vm, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	poller, err := c.runCommands.BeginDelete(ctx, rg, vm, name, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: c.poll()})
	}
	if err != nil {
		c.Log.Warn("a run command was left on the VM", "resourceGroup", rg, "vm", vm, "runCommand", name, "err", replication.Redact(err.Error()))
	}
}
