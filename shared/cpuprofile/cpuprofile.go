// Package cpuprofile writes a process's CPU profile (runtime/pprof, read with go tool pprof): the agent
// takes a file with -cpuprofile, the handler — which the Functions host or devhost starts — from
// STANDBY_CPUPROFILE; make bench keeps both under .local/bench.
package cpuprofile

import (
	"os"
	"runtime/pprof"
)

// Setting names the handler's profile file.
const Setting = "STANDBY_CPUPROFILE"

// Start profiles the process into path until stop is called ("" profiles nothing).
func Start(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
