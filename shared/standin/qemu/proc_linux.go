package qemu

import "syscall"

// sysProcAttr kills QEMU when the thread that started it (and so the parent process) dies. Go only ends
// an OS thread when a goroutine that locked it exits, so Boot must not be called from a goroutine that
// holds runtime.LockOSThread and then exits.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
