package recovery_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// scriptedRuns answers RunCommand from a table of scripts (the rest of the Compute port is the local
// compute's, on a launcher without QEMU).
type scriptedRuns struct {
	recovery.Compute
	answers map[string]recovery.CommandResult
	ran     []string // "vm: script"
}

func (s *scriptedRuns) RunCommand(ctx context.Context, rg, vm string, cmd recovery.Command) (recovery.CommandResult, error) {
	if err := recovery.CheckCommand(&cmd); err != nil {
		return recovery.CommandResult{}, err
	}
	s.ran = append(s.ran, vm+": "+cmd.Script)
	res := s.answers[cmd.Script]
	res.Started, res.Ended = time.Now(), time.Now()
	return res, nil
}

// drillFixture is a group with a drill of two checks, on a compute whose commands answer from a table.
func drillFixture(t *testing.T, answers map[string]recovery.CommandResult) (*jobFixture, *launcher, *scriptedRuns, *recovery.Admission) {
	f := newJobFixture(t)
	// Service Bus's duplicate detection (the deployed queues have it): a stale message's resend of the
	// current step is dropped, as on Azure; every message still comes twice (drain).
	f.q = memstore.NewQueue(memstore.QueueOptions{DuplicateDetection: time.Hour})
	f.q.SetClock(func() time.Time { return time.Now().AddDate(1, 0, 0) })
	f.runner.Jobs = f.q
	f.g.Spec.Drill = replication.DrillSpec{Checks: []replication.DrillCheck{
		{Name: "db-integrity", VM: "vm", Command: "sqlite3 /data/app.db 'pragma integrity_check'", ExpectOutput: `(?m)^ok$`, TimeoutSeconds: 60},
		{Name: "service", VM: "vm", Command: "systemctl is-active app", TimeoutSeconds: 30},
	}}
	l := withCompute(t, f, func() (bool, bool) { return true, true })
	replication.UpdateGroup(context.Background(), f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.LastPointTime = replication.StateProtected, f.point.SourceTime
		return nil
	})
	runs := &scriptedRuns{Compute: f.runner.Compute, answers: answers}
	f.runner.Compute = runs
	adm := &recovery.Admission{State: f.state, Pages: f.pages, Jobs: f.q, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	return f, l, runs, adm
}

// A drill whose check fails ends Failed with the check's (redacted) output, after its cleanup removed
// the VM; the group records the drill and may drill again; the failure is alerted.
func TestDrillWithAFailingCheckCleansUpAndFails(t *testing.T) {
	ctx := context.Background()
	f, l, runs, adm := drillFixture(t, map[string]recovery.CommandResult{
		"sqlite3 /data/app.db 'pragma integrity_check'": {Output: "ok\n"},
		"systemctl is-active app":                       {ExitCode: 3, Output: "inactive\nconnecting to https://x.blob.core.windows.net/c?sv=2024&sig=SECRET\n"},
	})
	job, err := adm.Start(ctx, recovery.Request{Group: "g1", Type: recovery.JobDrill})
	if err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	j := f.job(t, job.ID())
	if j.State != recovery.JobFailed || !strings.Contains(j.Error, "1 of 2 checks failed: service (exit code 3, expected 0)") {
		t.Fatalf("job %s %q", j.State, j.Error)
	}
	states := map[string]string{}
	for _, s := range j.Steps {
		states[s.Name] = s.State
	}
	if states["run-checks"] != "failed" || states["delete-test-vms"] != "done" || states["release-holds"] != "done" || states["end-drill"] != "done" || !l.stopped[1] {
		t.Fatalf("steps %v, VMs stopped %v", states, l.stopped)
	}
	if len(runs.ran) != 2 || !strings.HasPrefix(runs.ran[0], "vm-"+job.ID()[:8]+": ") {
		t.Fatalf("commands run: %q", runs.ran)
	}
	d, err := recovery.LoadDrill(ctx, f.state, "g1", job.ID())
	if err != nil {
		t.Fatal(err)
	}
	if d.Result != recovery.JobFailed || len(d.Checks) != 2 || !d.Checks[0].Passed || d.Checks[1].Passed || d.PointID != "rp-5" || d.RTOSeconds <= 0 ||
		len(d.VMs) != 1 || !strings.Contains(d.VMs[0].Evidence, "healthy") || !strings.Contains(d.Cleanup, "delete-test-vms: ") {
		t.Fatalf("report %+v", d)
	}
	if out := d.Checks[1].Output; strings.Contains(out, "SECRET") || !strings.Contains(out, "inactive") {
		t.Fatalf("a check's output in the report: %q", out)
	}
	g, _ := replication.LoadGroup(ctx, f.state, "g1")
	if g.Record.ActiveTestFailover != "" || g.Record.LastDrillJob != job.ID() || g.Record.LastDrillResult != recovery.JobFailed || !g.Record.LastDrillSucceededAt.IsZero() {
		t.Fatalf("the group after a failed drill: %+v", g.Record.GroupState)
	}
	alerts, _, _ := replication.QueryAll[replication.AlertRow](ctx, f.state, replication.AlertsTable, replication.AlertPartition)
	if len(alerts) != 1 || alerts[0].Kind != replication.AlertJobFailed || !strings.Contains(alerts[0].Message, "drill job") {
		t.Fatalf("alerts %+v", alerts)
	}

	// Fixed, the next drill passes.
	runs.answers["systemctl is-active app"] = recovery.CommandResult{Output: "active\n"}
	again, err := adm.Start(ctx, recovery.Request{Group: "g1", Type: recovery.JobDrill})
	if err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	if j := f.job(t, again.ID()); j.State != recovery.JobSucceeded {
		t.Fatalf("the second drill: %s %q", j.State, j.Error)
	}
	g, _ = replication.LoadGroup(ctx, f.state, "g1")
	if g.Record.LastDrillResult != recovery.JobSucceeded || g.Record.LastDrillSucceededAt.IsZero() || g.Record.ActiveTestFailover != "" {
		t.Fatalf("the group after a passing drill: %+v", g.Record.GroupState)
	}
	if drills, _ := recovery.ListDrills(ctx, f.state, "g1"); len(drills) != 2 || drills[0].Job() != again.ID() {
		t.Fatalf("drills listed: %d", len(drills))
	}
}

// A drill that fails before its checks (a VM that never comes up) skips them and still cleans up.
func TestDrillFailingBeforeItsChecksStillCleansUp(t *testing.T) {
	ctx := context.Background()
	f, l, runs, adm := drillFixture(t, nil)
	f.runner.BootTimeout = time.Nanosecond
	healthy := false
	l.health = func() (bool, bool) { return true, healthy }
	job, err := adm.Start(ctx, recovery.Request{Group: "g1", Type: recovery.JobDrill})
	if err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	j := f.job(t, job.ID())
	if j.State != recovery.JobFailed || !strings.Contains(j.Error, "did not report healthy") || j.Steps[len(j.Steps)-1].State != "done" || len(runs.ran) != 0 {
		t.Fatalf("job %s %q, steps %+v, ran %q", j.State, j.Error, j.Steps, runs.ran)
	}
	for _, s := range j.Steps {
		if s.Name == "run-checks" && s.State != "skipped" {
			t.Fatalf("run-checks is %s", s.State)
		}
	}
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); g.Record.ActiveTestFailover != "" {
		t.Fatal("the drill's claim stayed after its cleanup")
	}
}

// The timer starts a scheduled drill once per slot: again on the same tick, by a second instance that
// read the group before the first recorded the slot, it is the same job; a slot the group's state
// refuses, or one the timer missed by hours, is recorded as skipped with the reason and not retried.
func TestScheduledDrillsStartOncePerSlot(t *testing.T) {
	ctx := context.Background()
	f, _, _, adm := drillFixture(t, map[string]recovery.CommandResult{"systemctl is-active app": {Output: "active\n"}, "sqlite3 /data/app.db 'pragma integrity_check'": {Output: "ok\n"}})
	setSchedule := func(s string) {
		replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.Drill.Schedule = s; return nil })
	}
	setSchedule("* * * * *")
	tick := recovery.ScheduleDrills(adm)
	g, _ := replication.LoadGroup(ctx, f.state, "g1")
	now := g.Record.CreatedAt.Add(150 * time.Second)
	lines, err := tick(ctx, "g1", now)
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], "started for the slot") {
		t.Fatalf("first tick: %q, %v", lines, err)
	}
	if lines, err := tick(ctx, "g1", now); err != nil || len(lines) != 0 {
		t.Fatalf("the same tick again: %q, %v", lines, err)
	}
	g, _ = replication.LoadGroup(ctx, f.state, "g1")
	slot, first := g.Record.LastDrillSlot, g.Record.ActiveTestFailover
	if slot.After(now) || now.Sub(slot) >= time.Minute || first == "" {
		t.Fatalf("slot %s at %s, drill %q", slot, now, first)
	}
	// A second instance that read the group before the slot was recorded starts the same job.
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.LastDrillSlot = time.Time{}; return nil })
	if lines, err := tick(ctx, "g1", now); err != nil || len(lines) != 1 || !strings.Contains(lines[0], first) {
		t.Fatalf("a second instance: %q, %v", lines, err)
	}
	jobs, _ := adm.ListJobs(ctx, recovery.JobFilter{Group: "g1"}, 50)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs for one slot", len(jobs))
	}
	// The next slot comes while that drill runs: skipped, with the reason, once.
	lines, err = tick(ctx, "g1", slot.Add(time.Minute))
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], "skipped") || !strings.Contains(lines[0], "is active") {
		t.Fatalf("a slot during a drill: %q, %v", lines, err)
	}
	if lines, _ := tick(ctx, "g1", slot.Add(time.Minute)); len(lines) != 0 {
		t.Fatalf("a skipped slot was tried again: %q", lines)
	}
	f.drain(t)
	if j := f.job(t, first); j.State != recovery.JobSucceeded {
		t.Fatalf("the scheduled drill: %s %q", j.State, j.Error)
	}
	if d, _ := recovery.LoadDrill(ctx, f.state, "g1", first); !d.Slot.Equal(slot) {
		t.Fatalf("the report's slot %s, want %s", d.Slot, slot)
	}
	// A daily slot the timer missed by two hours is not run late.
	setSchedule("0 0 * * *")
	midnight := slot.Truncate(24 * time.Hour).Add(24 * time.Hour)
	lines, err = tick(ctx, "g1", midnight.Add(2*time.Hour))
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], "missed") {
		t.Fatalf("a missed slot: %q, %v", lines, err)
	}
	if jobs, _ := adm.ListJobs(ctx, recovery.JobFilter{Group: "g1"}, 50); len(jobs) != 1 {
		t.Fatalf("a missed slot started a drill: %d jobs", len(jobs))
	}
}

// A plan's drill: the plan's test failover brings the VMs up in boot-group order, the plan drill's
// checks run (VMs named group/vm), and its cleanup — every group's test failover cleaned up — always
// runs; the plan records the drill, and the timer starts it once per slot of the plan's schedule.
func TestPlanDrillChecksAndCleansUpEveryGroup(t *testing.T) {
	ctx := context.Background()
	f, l, runs, adm := drillFixture(t, map[string]recovery.CommandResult{"systemctl is-active app": {ExitCode: 3, Output: "inactive\n"}})
	// A plan job polls its groups' jobs: with the fixture's clock a year ahead, duplicate detection
	// would take two polls in one millisecond for one; each message is delivered once here instead.
	f.q = memstore.NewQueue(memstore.QueueOptions{})
	f.q.SetClock(func() time.Time { return time.Now().AddDate(1, 0, 0) })
	f.runner.Jobs, adm.Jobs = f.q, f.q
	plans := recovery.Plans{State: f.state, Now: time.Now}
	spec := recovery.PlanSpec{Groups: []string{"g1"}, BootGroups: []recovery.BootGroup{{Name: "all", VMs: []string{"g1/vm"}}},
		Drill: replication.DrillSpec{Checks: []replication.DrillCheck{{Name: "svc", VM: "g1/vm", Command: "systemctl is-active app"}}}}
	if _, err := plans.Put(ctx, "p1", spec); err != nil {
		t.Fatal(err)
	}
	bad := spec
	bad.Drill.Checks = []replication.DrillCheck{{Name: "svc", VM: "vm", Command: "true"}}
	if _, err := plans.Put(ctx, "p2", bad); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), `drill.checks[0].vm: "vm" is none of the group's VMs`) {
		t.Fatalf("a plan drill's check naming no group/vm: %v", err)
	}
	job, err := adm.StartPlan(ctx, recovery.PlanRequest{Plan: "p1", Type: "drill"})
	if err != nil {
		t.Fatal(err)
	}
	runOnce(t, f)
	j := f.job(t, job.ID())
	states := map[string]string{}
	for _, s := range j.Steps {
		states[s.Name] = s.State
	}
	if j.State != recovery.JobFailed || !strings.Contains(j.Error, "1 of 1 checks failed: svc (exit code 3, expected 0)") ||
		states["plan-checks"] != "failed" || states["cleanup-groups"] != "done" || states["wait-cleanup"] != "done" || states["end-drill"] != "done" || !l.stopped[1] {
		t.Fatalf("plan drill %s %q, steps %v, stopped %v", j.State, j.Error, states, l.stopped)
	}
	if len(runs.ran) != 1 || !strings.HasPrefix(runs.ran[0], "vm-") {
		t.Fatalf("commands: %q", runs.ran)
	}
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); g.Record.ActiveTestFailover != "" {
		t.Fatalf("the group's test failover stayed: %s", g.Record.ActiveTestFailover)
	}
	d, err := adm.DrillOf(ctx, recovery.DrillOwner{Plan: "p1"}, job.ID())
	if err != nil || d.Report.Result != recovery.JobFailed || len(d.Report.VMs) != 1 || d.Report.VMs[0].Name != "g1/vm" || len(d.Report.Checks) != 1 {
		t.Fatalf("the plan drill's report: %+v, %v", d.Report, err)
	}
	rec, _ := plans.Get(ctx, "p1")
	if rec.LastDrillJob != job.ID() || rec.LastDrillResult != recovery.JobFailed || rec.Readiness(time.Now()).Ready {
		t.Fatalf("the plan after a failed drill: %+v", rec)
	}
	if lt := rec.LastTest; lt.Job != job.ID() || lt.Type != recovery.JobPlanDrill || lt.Result != recovery.JobFailed || lt.At.IsZero() || lt.RTOSeconds <= 0 {
		t.Fatalf("the plan's last test failover: %+v", lt)
	}

	// The schedule's slot starts the next one, once; this time the check passes.
	runs.answers["systemctl is-active app"] = recovery.CommandResult{Output: "active\n"}
	spec.Drill.Schedule = "* * * * *"
	if _, err := plans.Put(ctx, "p1", spec); err != nil {
		t.Fatal(err)
	}
	tick := recovery.SchedulePlanDrills(adm)
	now := time.Now().Add(90 * time.Second)
	lines, err := tick(ctx, now)
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0], "plan p1: drill") {
		t.Fatalf("the plan's schedule: %q, %v", lines, err)
	}
	if lines, _ := tick(ctx, now); len(lines) != 0 {
		t.Fatalf("the same slot again: %q", lines)
	}
	runOnce(t, f)
	rec, _ = plans.Get(ctx, "p1")
	if rec.LastDrillResult != recovery.JobSucceeded || !rec.Readiness(time.Now()).Ready || rec.LastDrillSlot.IsZero() {
		t.Fatalf("the plan after its scheduled drill: %+v", rec)
	}
	if drills, _ := adm.DrillsOf(ctx, recovery.DrillOwner{Plan: "p1"}, 10); len(drills) != 2 || drills[0].Report.Slot.IsZero() {
		t.Fatalf("the plan's drills: %d", len(drills))
	}
}

// runOnce runs the queue's messages, each delivered once, until none is left.
func runOnce(t *testing.T, f *jobFixture) {
	t.Helper()
	for n := 0; len(f.q.Pending()) > 0; n++ {
		if n > 10000 {
			t.Fatal("the jobs do not end")
		}
		if err := f.runner.Run(context.Background(), f.take(t), 1); err != nil {
			t.Fatal(err)
		}
	}
}

// A plan whose scheduled drills have not succeeded within its window raises drill-overdue once.
func TestPlanDrillOverdueIsAlertedOnce(t *testing.T) {
	ctx := context.Background()
	f, _, _, adm := drillFixture(t, nil)
	plans := recovery.Plans{State: f.state, Now: time.Now}
	spec := recovery.PlanSpec{Groups: []string{"g1"}, BootGroups: []recovery.BootGroup{{Name: "all", VMs: []string{"g1/vm"}}},
		Drill: replication.DrillSpec{Schedule: "0 3 1 1 *", ReadinessDays: 1}}
	if _, err := plans.Put(ctx, "p1", spec); err != nil {
		t.Fatal(err)
	}
	tick := recovery.SchedulePlanDrills(adm)
	later := time.Now().Add(49 * time.Hour)
	for range 2 {
		if _, err := tick(ctx, later); err != nil {
			t.Fatal(err)
		}
	}
	alerts, _, _ := replication.QueryAll[replication.AlertRow](ctx, f.state, replication.AlertsTable, replication.AlertPartition)
	if len(alerts) != 1 || alerts[0].Kind != replication.AlertDrillOverdue || !strings.Contains(alerts[0].Message, "plan p1: no drill has succeeded") {
		t.Fatalf("alerts %+v", alerts)
	}
}

// A drill cancelled while its VMs come up skips to its cleanup, which runs whole: the job ends Failed,
// "cancelled by the operator", with no alert; only a job with a cleanup can be cancelled.
func TestCancelledDrillRunsItsCleanup(t *testing.T) {
	ctx := context.Background()
	f, l, runs, adm := drillFixture(t, nil)
	job, err := adm.Start(ctx, recovery.Request{Group: "g1", Type: recovery.JobDrill})
	if err != nil {
		t.Fatal(err)
	}
	for f.job(t, job.ID()).Next < 8 { // through deploy-vms
		if err := f.runner.Run(ctx, f.take(t), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.Cancel(ctx, job.ID()); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	j := f.job(t, job.ID())
	if j.State != recovery.JobFailed || !strings.HasPrefix(j.Error, "cancelled by the operator before step wait-vms") || j.Steps[len(j.Steps)-1].State != "done" || !l.stopped[1] || len(runs.ran) != 0 {
		t.Fatalf("cancelled drill: %s %q, stopped %v, ran %q", j.State, j.Error, l.stopped, runs.ran)
	}
	if alerts, _, _ := replication.QueryAll[replication.AlertRow](ctx, f.state, replication.AlertsTable, replication.AlertPartition); len(alerts) != 0 {
		t.Fatalf("a cancelled drill raised %+v", alerts)
	}
	if _, err := adm.Cancel(ctx, job.ID()); !errors.Is(err, replication.ErrState) {
		t.Fatalf("cancelling an ended job: %v", err)
	}
	other, _ := recovery.NewJob("g1", recovery.JobUnplannedFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, other)
	if _, err := adm.Cancel(ctx, other.ID()); !errors.Is(err, replication.ErrState) || !strings.Contains(err.Error(), "only drills are cancelled") {
		t.Fatalf("cancelling a failover: %v", err)
	}
}
