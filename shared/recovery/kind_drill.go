package recovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/protocol/ncrontab"
	"github.com/standby-dr/standby/shared/replication"
)

// The drill family: a test failover that proves itself. The group's VMs come up from a point in the
// isolated test network, every VM healthy; the drill's checks run in them (Compute.RunCommand); and the
// cleanup always runs, also when a check failed or a step before it did. Each drill leaves a report
// (drills.go). A drill holds the group's test failover claim while it runs.

// JobDrill is the drill's job type.
const JobDrill = "drill"

var _ = register(Kind{
	Name:     JobDrill,
	Steps:    append(append([]stepDef{{"begin-drill", beginDrill}}, materialize...), stepDef{"run-checks", runChecks}),
	Cleanup:  append(slices.Clone(cleanupSteps), stepDef{"end-drill", endDrill}),
	Isolated: true,
	Precheck: func(_ context.Context, _ *Admission, g *replication.Group, req *Request) error {
		if err := g.Spec.CheckTestNetwork(); err != nil {
			return fmt.Errorf("%w: cannot run a drill: %v", replication.ErrState, err)
		}
		if req.RecoveryPoint == "" {
			req.RecoveryPoint = g.Spec.Drill.Point
		}
		return defaultPoint(req)
	},
	Admits: testFailoverAdmits,
	Claim: func(_ context.Context, _ *Admission, rec *replication.GroupRecord, job Job) error {
		rec.ActiveTestFailover = job.ID()
		if slot := job.Work.DrillSlot(); slot.After(rec.LastDrillSlot) {
			rec.LastDrillSlot = slot
		}
		return nil
	},
})

// drillLateness bounds how late a scheduled drill starts: a slot the timer missed by more (the app was
// down) is recorded as missed, not run at a time nobody planned for.
const drillLateness = time.Hour

// ScheduleDrills starts a group's drill when its schedule's slot has come; the cutpoints timer calls it
// for every group on every tick. The slot is the newest since the last slot taken (or since the group
// was enabled), so slots never pile up. Once per slot across restarts and instances: the drill's job id
// is made of the group and the slot, so a second start of a slot answers its job. A slot the group's
// state refuses (a test failover active, no point yet, failed over) or that came more than
// drillLateness ago is recorded in the group's history as skipped, with the reason, and not tried again.
func ScheduleDrills(a *Admission) replication.GroupScheduler {
	return func(ctx context.Context, group string, now time.Time) ([]string, error) {
		g, err := replication.LoadGroup(ctx, a.State, group)
		if errors.Is(err, replication.ErrNoGroup) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		schedule := g.Spec.Drill.DrillSchedule()
		if schedule == nil {
			return nil, nil
		}
		slot := dueSlot(schedule, g.Record.LastDrillSlot, g.Record.CreatedAt, now)
		if slot.IsZero() {
			return nil, nil
		}
		job, reason, err := startSlot(slot, now, func() (Job, error) {
			return a.Start(ctx, Request{Group: group, Type: JobDrill, JobID: drillJobID(group, slot), DrillSlot: slot})
		})
		if err != nil {
			return nil, err
		}
		if reason == "" {
			return []string{fmt.Sprintf("group %s: drill %s started for the slot %s", group, job.ID(), slot.Format(time.RFC3339))}, nil
		}
		if _, err := replication.UpdateGroup(ctx, a.State, group, replication.StateRow, func(rec *replication.GroupRecord) error {
			if !slot.After(rec.LastDrillSlot) {
				return replication.ErrUnchanged
			}
			rec.LastDrillSlot = slot
			return nil
		}); err != nil {
			return nil, err
		}
		line := fmt.Sprintf("scheduled drill for the slot %s skipped: %s", slot.Format(time.RFC3339), reason)
		if err := replication.RecordEvent(ctx, a.State, group, "drill", line, now); err != nil {
			return nil, err
		}
		a.Log.Warn("scheduled drill skipped", "group", group, "slot", slot, "reason", reason)
		return []string{"group " + group + ": " + line}, nil
	}
}

// dueSlot is the newest slot of the schedule after the last one taken (or, before any, after begun)
// and at or before now (zero: none), so that slots never pile up.
func dueSlot(schedule *ncrontab.Schedule, last, begun, now time.Time) time.Time {
	from := last
	if from.IsZero() {
		from = begun
	}
	var slot time.Time
	for next, n := schedule.Next(from.UTC()), 0; !next.After(now) && n < 100000; next, n = schedule.Next(next), n+1 {
		slot = next
	}
	return slot
}

// startSlot starts a due slot's drill with start, or says why the slot is skipped: it came more than
// drillLateness ago, or admission refused it. Any other error is returned: the next tick tries again.
func startSlot(slot, now time.Time, start func() (Job, error)) (Job, string, error) {
	if late := now.Sub(slot); late > drillLateness {
		return Job{}, fmt.Sprintf("missed: the timer ran %s after it", late.Round(time.Second)), nil
	}
	job, err := start()
	switch {
	case err == nil:
		return job, "", nil
	case errors.Is(err, replication.ErrState) || errors.Is(err, replication.ErrInvalid) || errors.Is(err, replication.ErrNotConfigured) ||
		errors.Is(err, replication.ErrConflict) || errors.Is(err, replication.ErrNotFound):
		return Job{}, err.Error(), nil
	}
	return Job{}, "", err
}

// drillJobID is the job id of a group's drill for a schedule's slot: the same for every instance and
// every tick that starts it.
func drillJobID(group string, slot time.Time) string {
	sum := sha256.Sum256([]byte("standby-drill\x00" + group + "\x00" + slot.UTC().Format(time.RFC3339)))
	return hex.EncodeToString(sum[:16])
}

// runChecks runs the drill's next check, one per step run (each bounded by its own timeout, far under
// a function's), and records its result in the drill's report; once every check ran, the step fails
// if any of them did.
func runChecks(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	return r.nextCheck(ctx, j, g.Spec.Drill.Checks, func(vm string) (string, string, error) {
		return resourceGroupOf(g), vmName(j, vm), nil
	})
}

// nextCheck runs the next of the checks, finding each check's VM with locate (its resource group and
// name); after the last, it fails when any failed.
func (r *JobRunner) nextCheck(ctx context.Context, j *Job, checks []replication.DrillCheck, locate func(vm string) (rg, name string, err error)) (string, time.Duration, error) {
	done := j.Work.ChecksDone()
	if done >= len(checks) {
		report, err := LoadDrill(ctx, r.State, drillPartition(j), j.ID())
		if err != nil && !errors.Is(err, replication.ErrNotFound) {
			return "", 0, err
		}
		var failed []string
		for _, c := range report.Checks {
			if !c.Passed {
				failed = append(failed, c.Name+" ("+c.Reason+")")
			}
		}
		if len(failed) > 0 {
			return "", 0, permanentError{fmt.Errorf("%d of %d checks failed: %s", len(failed), len(checks), strings.Join(failed, "; "))}
		}
		return fmt.Sprintf("%d checks passed", len(checks)), 0, nil
	}
	c := checks[done]
	res, err := r.runCheck(ctx, c, locate)
	if err != nil {
		return "", 0, err // the store or the compute failed, not the check: the step is tried again
	}
	if err := r.recordCheck(ctx, j, res); err != nil {
		return "", 0, err
	}
	j.Work.SetChecksDone(done + 1)
	verdict := "passed"
	if !res.Passed {
		verdict = "failed: " + res.Reason
	}
	return fmt.Sprintf("check %d of %d, %s: %s", done+1, len(checks), c.Name, verdict), time.Millisecond, nil
}

// maxReportOutput is how much of a check's output its report keeps (its end).
const maxReportOutput = 1024

// runCheck runs one check. A check that cannot run — its VM stopped or gone, a command the compute
// refuses — fails with the reason; only a failure of the compute itself is an error.
func (r *JobRunner) runCheck(ctx context.Context, c replication.DrillCheck, locate func(vm string) (rg, name string, err error)) (CheckResult, error) {
	res := CheckResult{Name: c.Name, VM: c.VM, Kind: "command", Started: r.Now().UTC()}
	if r.Compute == nil {
		res.Reason = "no compute configured"
		res.Ended = res.Started
		return res, nil
	}
	rg, name, err := locate(c.VM)
	if err != nil {
		return r.checkFailed(res, err)
	}
	script := c.Command
	if c.HTTP != nil {
		res.Kind = "http"
		trg, target, err := locate(c.HTTP.VM)
		if err == nil {
			target, err = r.privateAddress(ctx, trg, target)
		}
		if err != nil {
			return r.checkFailed(res, err)
		}
		script = probeScript(target, c.HTTP.Port, c.HTTP.Path, c.Timeout())
	}
	out, err := r.Compute.RunCommand(ctx, rg, name, Command{Script: script, Timeout: c.Timeout()})
	if err != nil {
		return r.checkFailed(res, err)
	}
	res.ExitCode, res.TimedOut, res.Started, res.Ended = out.ExitCode, out.TimedOut, out.Started, out.Ended
	output := out.Output
	res.Truncated = out.Truncated
	switch {
	case out.TimedOut:
		res.Reason = fmt.Sprintf("timed out after %s", c.Timeout())
	case c.HTTP != nil:
		status, _ := strconv.Atoi(strings.TrimSpace(lastLine(output)))
		res.Status = status
		res.Passed = status == c.HTTP.ExpectStatus
		if !res.Passed {
			res.Reason = fmt.Sprintf("HTTP status %d, expected %d", status, c.HTTP.ExpectStatus)
			if status == 0 {
				res.Reason = "no HTTP answer: " + strings.TrimSpace(output)
			}
		}
	case out.ExitCode != c.ExpectExitCode:
		res.Reason = fmt.Sprintf("exit code %d, expected %d", out.ExitCode, c.ExpectExitCode)
	case c.ExpectOutput != "" && !regexp.MustCompile(c.ExpectOutput).MatchString(output):
		res.Reason = fmt.Sprintf("the output does not match %q", c.ExpectOutput)
	default:
		res.Passed = true
	}
	res.Output = boundedOutput(output)
	return res, nil
}

// checkFailed ends a check that could not run: the reason when the compute refused it, an error (the
// step is tried again) when the compute itself failed.
func (r *JobRunner) checkFailed(res CheckResult, err error) (CheckResult, error) {
	if refusedRun(err) {
		res.Reason, res.Ended = replication.Redact(err.Error()), r.Now().UTC()
		return res, nil
	}
	return res, err
}

// privateAddress asks the VM for its address in the test network (its first global IPv4 address): the
// guest knows it on Azure and locally alike, with no other API.
func (r *JobRunner) privateAddress(ctx context.Context, rg, vm string) (string, error) {
	out, err := r.Compute.RunCommand(ctx, rg, vm, Command{Script: addressScript, Timeout: 30 * time.Second})
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(lastLine(out.Output))
	if out.ExitCode != 0 || !ipv4.MatchString(addr) {
		return "", fmt.Errorf("%w: VM %s has no IPv4 address in the test network (%q)", replication.ErrState, vm, boundedOutput(out.Output))
	}
	return addr, nil
}

var ipv4 = regexp.MustCompile(`^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$`)

// addressScript prints the guest's first global IPv4 address (iproute2 and busybox's ip alike).
const addressScript = `ip -4 -o addr show scope global | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p' | head -n 1`

// probeScript GETs http://addr:port/path from inside a VM and prints the status code last (0 when
// nothing answered): with curl where the guest has it, else a plain HTTP/1.0 request through nc
// (busybox's too). The values are checked against strict grammars (an IPv4 address, a port,
// replication's probe path), so none can break out of the quotes.
func probeScript(addr string, port int, path string, timeout time.Duration) string {
	secs := max(int(timeout/time.Second)-2, 1)
	return fmt.Sprintf(`host='%s' port=%d path='%s'
if command -v curl >/dev/null 2>&1; then
  curl -s -o /dev/null -m %d -w '%%{http_code}\n' "http://$host:$port$path" || true
else
  status=$(printf 'GET %%s HTTP/1.0\r\nHost: %%s\r\n\r\n' "$path" "$host" | timeout %d nc "$host" "$port" 2>/dev/null | head -n 1 | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p')
  echo "${status:-0}"
fi
`, addr, port, path, secs, secs)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// boundedOutput is an output's end as a report keeps it: redacted, at most maxReportOutput bytes.
func boundedOutput(s string) string {
	s = replication.Redact(s)
	if len(s) > maxReportOutput {
		s = s[len(s)-maxReportOutput:]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// endDrill ends the drill: its report gets the point, the VMs' boot evidence, the RTO and the result;
// the group records the drill and gives up the test failover claim.
func endDrill(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	now := r.Now().UTC()
	var vms []string
	for _, vm := range g.Spec.VMs {
		vms = append(vms, vm.Name)
	}
	report, err := r.finishReport(ctx, j, vms, now)
	if err != nil {
		return "", 0, err
	}
	_, err = replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		if rec.LastDrillJob == j.ID() {
			return replication.ErrUnchanged // recorded before the message came again
		}
		if rec.ActiveTestFailover == j.ID() {
			rec.ActiveTestFailover = ""
		}
		rec.LastDrillJob, rec.LastDrillAt, rec.LastDrillResult = j.ID(), report.Started, report.Result
		if report.Result == JobSucceeded {
			rec.LastDrillSucceededAt = report.Started
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return fmt.Sprintf("drill %s: report recorded", strings.ToLower(report.Result)), 0, nil
}
