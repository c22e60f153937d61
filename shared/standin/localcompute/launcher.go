package localcompute

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/standby-dr/standby/shared/standin/qemu"
)

// QEMU boots VMs with shared/standin/qemu's command line, detached: in a session of their own and with the
// serial console going to the VM's log file, so a VM outlives the process that deployed it, as an Azure
// VM outlives the function that created it.
type QEMU struct {
	Images    qemu.Images // the platform's boot files (direct kernel boot; the OS disk is the root)
	MemoryMiB int
}

// Start boots the VM (user-mode networking, or none when isolated) and returns QEMU's pid. A VM that a
// launcher killed midway already started (its pidfile names a live QEMU) is found, not started twice.
func (q QEMU) Start(_ context.Context, vm MachineSpec) (int, error) {
	pidFile := filepath.Join(filepath.Dir(vm.SerialLog), "qemu.pid")
	if data, err := os.ReadFile(pidFile); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); q.Running(pid) {
			return pid, nil
		}
	}
	spec := q.Images.Spec(vm.Name, vm.Disks...)
	spec.MemoryMiB, spec.Network, spec.PIDFile, spec.RunSocket = q.MemoryMiB, qemu.User, pidFile, vm.RunSocket
	spec.RebootOnReset = true // as Azure restarts a VM whose guest resets; bring-up's boot timeout bounds a loop
	if vm.RunSocket != "" {
		os.Remove(vm.RunSocket) // a VM that ended left it; QEMU binds the path anew
	}
	if vm.Isolated {
		spec.Network = qemu.None
		if vm.Segment != "" {
			spec.Network, spec.Segment, spec.MAC = qemu.Segment, vm.Segment, vm.MAC
			spec.Append = "standby.ip=" + vm.IP
		}
	}
	serial, err := os.OpenFile(vm.SerialLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer serial.Close()
	cmd := exec.Command("qemu-system-x86_64", spec.Args()...)
	cmd.Stdout, cmd.Stderr = serial, serial
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { // reaped while this process lives (init reaps it after), and its end noted for the operator
		err := cmd.Wait()
		if log, openErr := os.OpenFile(vm.SerialLog, os.O_APPEND|os.O_WRONLY, 0); openErr == nil {
			fmt.Fprintf(log, "\n[local compute] QEMU (pid %d) ended: %v\n", cmd.Process.Pid, cmd.ProcessState)
			log.Close()
		} else if err != nil {
			slog.Warn("a VM's QEMU ended", "vm", vm.Name, "err", err)
		}
	}()
	return cmd.Process.Pid, nil
}

// Running reports whether pid is a live QEMU process.
func (QEMU) Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte("qemu-system")) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// Stop ends the VM's process.
func (QEMU) Stop(pid int) error {
	err := syscall.Kill(pid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return nil
	}
	return err
}

// Healthy reports whether the guest wrote its health line to the serial log: that line when it did,
// the log's last lines otherwise.
func (QEMU) Healthy(serialLog string) (bool, string) {
	data, _ := os.ReadFile(serialLog)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	health := ""
	for _, l := range lines {
		if _, ok := qemu.ParseHealth(l); ok {
			health = l
		}
	}
	if health != "" {
		return true, health
	}
	return false, strings.Join(lines[max(0, len(lines)-20):], "\n")
}
