//go:build !linux

package qemu

import "syscall"

// sysProcAttr: without Linux's parent-death signal, QEMU is only killed when the Boot context ends.
func sysProcAttr() *syscall.SysProcAttr { return nil }
