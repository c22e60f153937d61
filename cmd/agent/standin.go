//go:build standin

package main

// The local build of the agent (make build, the tests, the demo) can write to the embedded broker and
// track the local compute's managed disks; the Azure build (no tag) links neither.
import _ "github.com/standby-dr/standby/shared/backends/standins"
