package localcompute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/qemu"
)

// RunCommand runs a script in a running VM through its guest's run channel (shared/standin/qemu's
// RunCommand), as Azure's managed run command runs one through the VM agent.
func (c *Compute) RunCommand(ctx context.Context, rg, name string, cmd recovery.Command) (recovery.CommandResult, error) {
	if err := recovery.CheckRunCommand(rg, name, &cmd); err != nil {
		return recovery.CommandResult{}, err
	}
	var vm vmFile
	if err := readJSON(c.path(rg, "vms", name, "vm.json"), &vm); err != nil {
		return recovery.CommandResult{}, fmt.Errorf("VM %s in %s: %w", name, rg, err)
	}
	switch healthy, _ := c.Launcher.Healthy(vm.Spec.SerialLog); {
	case !c.Launcher.Running(vm.PID):
		return recovery.CommandResult{}, fmt.Errorf("%w: VM %s is not running", replication.ErrState, name)
	case vm.Spec.RunSocket == "":
		return recovery.CommandResult{}, fmt.Errorf("%w: VM %s was started without a run channel (by an earlier version): restart it", replication.ErrState, name)
	case !healthy:
		return recovery.CommandResult{}, fmt.Errorf("%w: VM %s's guest has not said it is up", replication.ErrState, name)
	}
	started := time.Now().UTC()
	res, err := qemu.RunCommand(ctx, vm.Spec.RunSocket, cmd.Script, cmd.Timeout)
	if err != nil {
		return recovery.CommandResult{}, fmt.Errorf("running a command in VM %s: %w", name, err)
	}
	c.Log.Info("command run", "resourceGroup", rg, "vm", name, "exitCode", res.ExitCode, "timedOut", res.TimedOut, "outputBytes", res.OutputBytes)
	return recovery.CommandResult{ExitCode: res.ExitCode, TimedOut: res.TimedOut, Output: string(res.Output),
		Truncated: res.OutputBytes > int64(len(res.Output)), Started: started, Ended: time.Now().UTC()}, nil
}

// runSocketOf is where a VM's run channel listens: a unix socket's path is short (108 bytes), so not
// in the VM's folder but in a folder of this user's alone, named by the VM's folder. Whoever can
// connect to it runs commands as root in the guest: a folder another user made, or that others may
// enter, is refused.
func runSocketOf(vmDir string) (string, error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("standby-run-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return "", err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !st.IsDir() || !ok || int(sys.Uid) != os.Getuid() || st.Mode().Perm() != 0o700 {
		return "", fmt.Errorf("%s is not a folder of this user's alone (mode 0700): refusing to put a VM's run channel there", dir)
	}
	abs, err := filepath.Abs(vmDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, hex.EncodeToString(sum[:12])+".sock"), nil
}
