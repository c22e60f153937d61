//go:build linux

package agent

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// protectIOPath readies the process to serve the disk its own VM writes through (an nbd: disk behind
// the kernel's NBD client): under memory pressure the kernel reclaims by writing dirty pages — to that
// very disk — so the process that completes those writes must never wait on them. Each setting says
// why; one the process may not make (no CAP_SYS_RESOURCE or CAP_IPC_LOCK) is reported, not fatal.
func protectIOPath() []error {
	var errs []error
	// PR_SET_IO_FLUSHER (prctl(2), Linux 5.6): the process is in the I/O path of a block device, so its
	// own allocations never recurse into file system or block I/O (PF_MEMALLOC_NOIO) and it is not
	// throttled for dirty pages it cannot write itself (PF_LOCAL_THROTTLE) — the loop through the disk it
	// serves that would otherwise deadlock.
	if err := unix.Prctl(unix.PR_SET_IO_FLUSHER, 1, 0, 0, 0); err != nil {
		errs = append(errs, fmt.Errorf("PR_SET_IO_FLUSHER: %w", err))
	}
	// Its pages stay in memory (mlockall, MCL_ONFAULT so that nothing is faulted in ahead): a page the
	// I/O path needs is never read back from a disk while that disk waits on the I/O path.
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		errs = append(errs, fmt.Errorf("mlockall: %w", err))
	}
	// The OOM killer takes nearly anything before it: killing the process fails every I/O of the disk,
	// and the workload's with it (-900, not -1000: a last resort stays).
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-900"), 0); err != nil {
		errs = append(errs, fmt.Errorf("oom_score_adj: %w", err))
	}
	return errs
}
