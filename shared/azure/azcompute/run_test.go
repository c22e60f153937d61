package azcompute

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/testkit/fakearm"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// The managed run command's calls, in the shapes the published type definitions give: the PUT body
// passes them, the result is read from the instance view (exit code apart from the output), a timeout
// and a failed script are told apart, and the run command resource is deleted after every call.
func TestRunCommandOnFakeARM(t *testing.T) {
	ctx := context.Background()
	f, c, _ := newFake(t)
	f.NewGroups().Add("rg1") // answers 404 for a VM no emulation has
	rc := f.NewRunCommands("rg1", "web-1", func(script string, timeout int) fakearm.RunOutcome {
		switch {
		case strings.Contains(script, "sleep"):
			return fakearm.RunOutcome{State: "TimedOut", Output: "started\n"}
		case strings.Contains(script, "cancel"):
			return fakearm.RunOutcome{State: "Canceled"}
		}
		return fakearm.RunOutcome{State: "Failed", ExitCode: 3, Output: "hello\n", Error: "to-stderr\n"}
	})
	res, err := c.RunCommand(ctx, "rg1", "web-1", recovery.Command{Script: "echo hello; exit 3"})
	if err != nil || res.ExitCode != 3 || res.TimedOut || res.Output != "hello\nto-stderr\n" || res.Ended.Sub(res.Started).Seconds() != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	if res, err := c.RunCommand(ctx, "rg1", "web-1", recovery.Command{Script: "sleep 999"}); err != nil || !res.TimedOut {
		t.Fatalf("a timed-out script: %+v, %v", res, err)
	}
	if _, err := c.RunCommand(ctx, "rg1", "web-1", recovery.Command{Script: "cancel"}); err == nil || !strings.Contains(err.Error(), "ended Canceled") {
		t.Fatalf("a canceled run: %v", err)
	}
	if rc.Left() != 0 || len(rc.Deleted) != 3 {
		t.Fatalf("run commands left on the VM: %d (deleted %v)", rc.Left(), rc.Deleted)
	}
	call, _ := f.Last("PUT", rgPath+"/providers/Microsoft.Compute/virtualMachines/web-1/runCommands/"+rc.Deleted[0])
	if call.APIVersion != "2025-04-01" {
		t.Errorf("api-version %q", call.APIVersion)
	}
	types := testenv.PublishedTypes(t)
	for i, body := range rc.Bodies {
		body["name"] = rc.Deleted[i] // a REST body's name is its path's
		if errs := types.Check("Microsoft.Compute/virtualMachines/runCommands", "2025-04-01", body); len(errs) > 0 {
			t.Errorf("the PUT body does not pass the published types: %v", errs)
		}
		props := body["properties"].(map[string]any)
		if body["location"] != "westeurope" || props["asyncExecution"] != false || props["treatFailureAsDeploymentFailure"] != false || props["timeoutInSeconds"] != float64(300) {
			t.Errorf("body %v", body)
		}
	}
	if _, err := c.RunCommand(ctx, "rg1", "gone", recovery.Command{Script: "true"}); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("a VM that does not exist: %v", err)
	}
}
