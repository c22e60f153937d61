package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/api/apiv1"
)

// startDrill starts a drill now of the group or plan at base ("/v1/groups/G", "/v1/plans/P"); with
// --wait, it follows it and prints its report.
func startDrill(ctx context.Context, c *call, base string) error {
	var body any
	if c.o.point != "" {
		body = apiv1.DrillRequest{RecoveryPoint: c.o.point}
	}
	var job apiv1.JobView
	if _, err := c.cl.Do(ctx, http.MethodPost, base+"/drills", body, &job); err != nil {
		return err
	}
	fmt.Fprintf(c.w, "drill %s queued\n", job.ID)
	if !c.o.wait {
		return nil
	}
	followErr := follow(ctx, c, job.ID)
	if err := drillReport(ctx, c, base, job.ID); err != nil {
		return err
	}
	return followErr
}

// listDrills prints the drills of the group or plan at base as a table.
func listDrills(ctx context.Context, c *call, base string) error {
	var list apiv1.DrillList
	if text, err := read(ctx, c, base+"/drills", &list); !text {
		return err
	}
	fmt.Fprintf(c.w, "%-32s %-20s %-9s %-10s %8s  %s\n", "DRILL", "STARTED", "RESULT", "POINT", "RTO", "CHECKS")
	for _, d := range list.Drills {
		passed := 0
		for _, ch := range d.Checks {
			if ch.Passed {
				passed++
			}
		}
		fmt.Fprintf(c.w, "%-32s %-20s %-9s %-10s %7.1fs  %d of %d passed\n", d.ID, d.Started.UTC().Format(time.RFC3339), d.State, orDash(d.Point), d.RTOSeconds, passed, len(d.Checks))
	}
	return nil
}

// drillReport prints one drill's report as an auditor keeps it: what ran when, against which point,
// what each VM and check showed, and the cleanup.
func drillReport(ctx context.Context, c *call, base, id string) error {
	var d apiv1.DrillView
	if text, err := read(ctx, c, base+"/drills/"+id, &d); !text {
		return err
	}
	printDrill(c.w, d)
	return nil
}

func printDrill(w io.Writer, d apiv1.DrillView) {
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	of := "group " + d.Group
	if d.Plan != "" {
		of = "plan " + d.Plan
	}
	fmt.Fprintf(w, "Drill %s of %s: %s\n", d.ID, of, d.State)
	slot := "on request"
	if d.Slot != nil {
		slot = "scheduled, slot " + ts(d.Slot)
	}
	fmt.Fprintf(w, "  started   %s (%s), ended %s\n", d.Started.UTC().Format(time.RFC3339), slot, ts(d.Ended))
	fmt.Fprintf(w, "  point     %s at %s (%.0f s old when the drill started)\n", orDash(d.Point), ts(d.PointTime), d.PointAgeSeconds)
	fmt.Fprintf(w, "  RTO       %.1f s to every VM healthy\n", d.RTOSeconds)
	for _, vm := range d.VMs {
		fmt.Fprintf(w, "  VM %-6s %s\n", vm.Name, orDash(vm.Evidence))
	}
	for _, c := range d.Checks {
		verdict := "PASSED"
		if !c.Passed {
			verdict = "FAILED: " + c.Reason
		}
		fmt.Fprintf(w, "  check %s on %s (%s, %.1f s): %s\n", c.Name, c.VM, c.Kind, c.Ended.Sub(c.Started).Seconds(), verdict)
		if out := strings.TrimRight(c.Output, "\n"); out != "" {
			for _, line := range strings.Split(out, "\n") {
				fmt.Fprintf(w, "      | %s\n", line)
			}
		}
	}
	fmt.Fprintln(w, "  steps")
	for _, s := range d.Steps {
		took := ""
		if !s.Started.IsZero() && !s.Ended.IsZero() {
			took = fmt.Sprintf("%.1f s", s.Ended.Sub(s.Started).Seconds())
		}
		fmt.Fprintf(w, "    %-20s %-8s %8s  %s\n", s.Name, s.State, took, s.Outcome)
	}
	fmt.Fprintf(w, "  cleanup   %s\n", orDash(d.Cleanup))
	if d.Error != "" {
		fmt.Fprintf(w, "  error     %s\n", d.Error)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
