//go:build linux

package agent

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hasCap reports whether the process holds the capability (its bit in /proc/self/status's CapEff).
func hasCap(t *testing.T, bit uint) bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			n, _ := strconv.ParseUint(v, 16, 64)
			return n&(1<<bit) != 0
		}
	}
	return false
}

// The process serving its VM's disk is marked an I/O flusher, its memory locked and the OOM killer told
// to spare it (in a child process: the settings are the whole process's). Where the process lacks the
// capability a setting needs (a container without CAP_SYS_RESOURCE), the setting must have been tried
// and refused for that reason alone.
func TestIOPathProtections(t *testing.T) {
	if os.Getenv("STANDBY_IOPATH_CHILD") == "1" {
		errs := protectIOPath()
		flusher, _ := unix.PrctlRetInt(unix.PR_GET_IO_FLUSHER, 0, 0, 0, 0)
		status, _ := os.ReadFile("/proc/self/status")
		adj, _ := os.ReadFile("/proc/self/oom_score_adj")
		locked := strings.Contains(string(status), "VmLck:") && !strings.Contains(string(status), "VmLck:\t       0 kB")
		sysResource, ipcLock := hasCap(t, unix.CAP_SYS_RESOURCE), hasCap(t, unix.CAP_IPC_LOCK)
		for _, err := range errs {
			refused := errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission)
			if !refused || (strings.HasPrefix(err.Error(), "mlockall") && ipcLock) || (!strings.HasPrefix(err.Error(), "mlockall") && sysResource) {
				t.Errorf("a protection failed for another reason than a missing capability: %v", err)
			}
		}
		if sysResource && (flusher != 1 || strings.TrimSpace(string(adj)) != "-900") {
			t.Errorf("io flusher %d, oom_score_adj %q", flusher, adj)
		}
		if ipcLock && !locked {
			t.Error("the memory is not locked")
		}
		t.Logf("CAP_SYS_RESOURCE %v: io flusher %d, oom_score_adj %s; CAP_IPC_LOCK %v: locked %v; refused %v", sysResource, flusher, strings.TrimSpace(string(adj)), ipcLock, locked, errs)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestIOPathProtections$", "-test.v")
	cmd.Env = append(os.Environ(), "STANDBY_IOPATH_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Log(string(out))
}
