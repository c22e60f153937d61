//go:build !linux

package agent

// protectIOPath has nothing to set where the kernel's NBD client does not exist.
func protectIOPath() []error { return nil }
