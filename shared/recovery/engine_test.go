package recovery_test

import (
	"bytes"
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

type jobFixture struct {
	state   *memstore.State
	pages   *memstore.Pages
	journal *memstore.Journal
	q       *memstore.Queue
	runner  *recovery.JobRunner
	g       *replication.Group
	point   replication.RecoveryPoint
}

func newJobFixture(t *testing.T) *jobFixture {
	ctx := context.Background()
	f := &jobFixture{state: memstore.NewState(), pages: memstore.NewPages(), journal: memstore.NewJournal(), q: memstore.NewQueue(memstore.QueueOptions{})}
	// The tests run the steps by hand: the queue's clock runs a year ahead, so scheduled steps are due at once.
	f.q.SetClock(func() time.Time { return time.Now().AddDate(1, 0, 0) })
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	f.pages.EnsureContainer(ctx, spec.Target.Container)
	f.g, _ = replication.CreateGroup(ctx, f.state, "g1", spec, time.Now())
	replication.CreateFixedVHD(ctx, f.pages, f.g.TargetDisk("vm/d"), 1<<20, time.Now())
	f.pages.WritePages(ctx, f.g.TargetDisk("vm/d"), 0, bytes.Repeat([]byte{7}, 4096))
	snap, _ := f.pages.Snapshot(ctx, f.g.TargetDisk("vm/d"), "")
	f.pages.WritePages(ctx, f.g.TargetDisk("vm/d"), 0, bytes.Repeat([]byte{8}, 4096)) // after the point
	f.point = replication.RecoveryPoint{Keys: replication.Keys{PartitionKey: "g1", RowKey: "x"}, ID: "rp-5", Kind: "crash", Seq: 5,
		SourceTime: time.Now().Add(-time.Minute), Snapshots: map[string]string{"vm/d": snap}, Sizes: map[string]int64{"vm/d": 1 << 20}}
	f.state.Upsert(ctx, replication.PointsTable, f.point)
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.LastSourceTime = f.point.SourceTime.Add(time.Second)
		return nil
	})
	f.runner = &recovery.JobRunner{State: f.state, Pages: f.pages, Journal: f.journal, Jobs: f.q, Log: slog.New(slog.DiscardHandler),
		Now: time.Now, MaxDeliveries: 3, Restorer: &replication.Restorer{State: f.state, Pages: f.pages, Journal: f.journal, Parallelism: 2}}
	return f
}

// take receives and completes the queue's next message, which must be there.
func (f *jobFixture) take(t *testing.T) recovery.StepMessage {
	t.Helper()
	ctx := context.Background()
	msgs, err := f.q.Receive(ctx, 1, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("no message to take (%v)", err)
	}
	if err := f.q.Complete(ctx, msgs[0]); err != nil {
		t.Fatal(err)
	}
	step, err := recovery.DecodeStepMessage(msgs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	return step
}

// drain runs queued messages until none is left; every message runs twice (at-least-once delivery).
func (f *jobFixture) drain(t *testing.T) {
	for len(f.q.Pending()) > 0 {
		step := f.take(t)
		for delivery := int64(1); delivery <= 2; delivery++ {
			if err := f.runner.Run(context.Background(), step, delivery); err != nil {
				t.Fatalf("step %d: %v", step.Step, err)
			}
		}
	}
}

func (f *jobFixture) job(t *testing.T, id string) recovery.Job {
	var j recovery.Job
	if _, err := f.state.Get(context.Background(), recovery.JobsTable, id, recovery.JobRow, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestTestFailoverAndCleanup(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	job, err := recovery.NewJob("g1", recovery.JobTestFailover, "latestProcessed", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := recovery.StartJob(ctx, f.state, f.q, job); err != nil {
		t.Fatal(err)
	}
	f.drain(t)
	j := f.job(t, job.ID())
	if j.State != recovery.JobSucceeded || j.PointID != "rp-5" || j.Result["container"] != "g1-test" || !strings.Contains(j.Result["template:vm"], `"createOption":"Import"`) {
		t.Fatalf("job %+v", j)
	}
	for _, s := range j.Steps {
		if s.State != "done" || s.Ended.IsZero() {
			t.Fatalf("step %+v", s)
		}
	}
	// The group keeps how its last test failover went, for its readiness.
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); g.Record.LastTest.Job != job.ID() || g.Record.LastTest.Result != recovery.JobSucceeded ||
		g.Record.LastTest.Point != "rp-5" || !g.Record.LastTest.PointTime.Equal(f.point.SourceTime) || g.Record.LastTest.At.IsZero() {
		t.Fatalf("the group's last test failover: %+v", g.Record.LastTest)
	}
	got, _ := f.pages.ReadRange(ctx, replication.DiskIn("g1-test", "vm/d"), "", 0, 4096)
	if !bytes.Equal(got, bytes.Repeat([]byte{7}, 4096)) {
		t.Fatal("the test disk is not the point's content")
	}
	// The copy is an importable fixed VHD: its last 512 bytes are the footer of a disk of its size.
	if err := replication.CheckFixedVHD(ctx, f.pages, replication.DiskIn("g1-test", "vm/d"), 1<<20); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(j.Result["template:vm"], "g1-test/vm/d.vhd") {
		t.Fatalf("the machine definition attaches another blob: %s", j.Result["template:vm"])
	}
	if tpl, err := f.pages.GetBlob(ctx, recovery.TemplateBlob("g1-test", "vm")); err != nil || string(tpl) != j.Result["template:vm"] ||
		j.Result["templateUrl:vm"] != "https://memstore.invalid/g1-test/vm.template.json" {
		t.Fatalf("the machine definition next to the disks: %v; result %v", err, j.Result)
	}
	holds, _, _ := replication.QueryAll[replication.PointHold](ctx, f.state, replication.HoldsTable, "g1")
	if len(holds) != 1 || holds[0].RowKey != "rp-5" {
		t.Fatalf("holds %+v", holds)
	}
	cleanup, _ := recovery.NewJob("g1", recovery.JobCleanupTest, "", time.Now())
	recovery.StartJob(ctx, f.state, f.q, cleanup)
	f.drain(t)
	if j := f.job(t, cleanup.ID()); j.State != recovery.JobSucceeded {
		t.Fatalf("cleanup %+v", j)
	}
	if _, err := f.pages.Size(ctx, replication.DiskIn("g1-test", "vm/d")); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("test disk after cleanup: %v", err)
	}
	if holds, _, _ := replication.QueryAll[replication.PointHold](ctx, f.state, replication.HoldsTable, "g1"); len(holds) != 0 {
		t.Fatalf("holds after cleanup: %+v", holds)
	}
	if _, err := f.pages.GetBlob(ctx, recovery.TemplateBlob("g1-test", "vm")); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the machine definition after cleanup: %v", err)
	}
}

// A step that keeps failing (the point's snapshot is gone, so its copy cannot start) is tried again on
// each delivery and fails the job on the last, with one job-failed alert.
func TestFailingStepFailsTheJobOnTheLastDelivery(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	f.pages.DeleteSnapshot(ctx, f.g.TargetDisk("vm/d"), f.point.Snapshots["vm/d"])
	job, _ := recovery.NewJob("g1", recovery.JobTestFailover, "rp-5", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	first, _ := recovery.DecodeStepMessage(f.q.Pending()[0].Body)
	var failures int
	for len(f.q.Pending()) > 0 {
		step := f.take(t)
		for delivery := int64(1); delivery <= 3; delivery++ {
			err := f.runner.Run(ctx, step, delivery)
			if err == nil {
				break
			}
			failures++
			if j := f.job(t, job.ID()); (delivery < 3) != (j.State != recovery.JobFailed) {
				t.Fatalf("after delivery %d the job is %s", delivery, j.State)
			}
		}
	}
	j := f.job(t, job.ID())
	if failures != 3 || !strings.Contains(j.Error, "step start-copies failed 3 times") || j.Steps[2].State != "failed" || j.Steps[2].Tries != 3 {
		t.Fatalf("%d failures, job %+v", failures, j)
	}
	if err := f.runner.Run(ctx, first, 4); err != nil {
		t.Fatalf("a message for an ended job: %v", err)
	}
	// One job-failed alert, though a message came again after the failure.
	alerts, _, _ := replication.QueryAll[replication.AlertRow](ctx, f.state, replication.AlertsTable, replication.AlertPartition)
	if len(alerts) != 1 || alerts[0].Kind != replication.AlertJobFailed || alerts[0].Job != job.ID() || alerts[0].Group != "g1" ||
		alerts[0].Severity != replication.SeverityCritical || !strings.Contains(alerts[0].Message, recovery.JobTestFailover+" job "+job.ID()+" failed: step start-copies") {
		t.Fatalf("alerts %+v", alerts)
	}
}

// A point choice that resolves to nothing fails the job at its first delivery, with one reason that
// names the choices there are, and leaves no test failover active: nothing was made yet.
func TestAnUnresolvablePointFailsOnceAndLeavesNoDrillActive(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	job, _ := recovery.NewJob("g1", recovery.JobTestFailover, "rp-404", time.Now())
	replication.UpdateGroup(ctx, f.state, "g1", replication.StateRow, func(r *replication.GroupRecord) error { r.ActiveTestFailover = job.ID(); return nil })
	recovery.StartJob(ctx, f.state, f.q, job)
	step := f.take(t)
	if err := f.runner.Run(ctx, step, 1); err != nil {
		t.Fatalf("the first delivery: %v", err)
	}
	j := f.job(t, job.ID())
	if j.State != recovery.JobFailed || j.Steps[0].State != "failed" || strings.Contains(j.Error, "times") ||
		!strings.Contains(j.Error, "no recovery point rp-404") || !strings.Contains(j.Error, "choose latest (through ") || !strings.Contains(j.Error, "a point id (rp-5 … rp-5, 1 points)") {
		t.Fatalf("job %s: %q", j.State, j.Error)
	}
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); g.Record.ActiveTestFailover != "" || g.Record.LastTest.Job != job.ID() || g.Record.LastTest.Result != recovery.JobFailed {
		t.Fatalf("test failover %s still active; the last test %+v", g.Record.ActiveTestFailover, g.Record.LastTest)
	}
}

func TestBadJobMessages(t *testing.T) {
	for body, want := range map[string]string{
		`{"job":"x","step":0}`:                                 `job message field job: "x" is not a job id`,
		`{"job":"0123456789abcdef0123456789abcdef","step":-1}`: "job message field step: -1 is negative",
		`{"job":"0123456789abcdef0123456789abcdef","x":1}`:     `unknown field "x"`,
	} {
		if _, err := recovery.DecodeStepMessage([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

func TestUnplannedFailoverThenCommit(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	// A second, older point: commit must delete it and keep the one failed over to.
	older := f.point
	older.ID, older.Seq, older.RowKey, older.SourceTime = "rp-2", 2, "y", f.point.SourceTime.Add(-time.Hour)
	oldSnap, _ := f.pages.Snapshot(ctx, f.g.TargetDisk("vm/d"), "")
	older.Snapshots = map[string]string{"vm/d": oldSnap}
	f.state.Upsert(ctx, replication.PointsTable, older)
	job, _ := recovery.NewJob("g1", recovery.JobUnplannedFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	f.drain(t)
	j := f.job(t, job.ID())
	g, _ := replication.LoadGroup(ctx, f.state, "g1")
	if j.State != recovery.JobSucceeded || g.Record.State != replication.StateFailedOver || g.Record.FailoverJob != job.ID() || j.Result["container"] != "g1-failover" {
		t.Fatalf("job %s, group %s (%s)", j.State, g.Record.State, g.Record.Reason)
	}
	got, _ := f.pages.ReadRange(ctx, replication.DiskIn("g1-failover", "vm/d"), "", 0, 4096)
	if !bytes.Equal(got, bytes.Repeat([]byte{7}, 4096)) {
		t.Fatal("the failed-over disk is not the point's content")
	}
	commit, _ := recovery.NewJob("g1", recovery.JobCommit, "", time.Now())
	recovery.StartJob(ctx, f.state, f.q, commit)
	f.drain(t)
	points, _ := replication.ListPoints(ctx, f.state, "g1")
	g, _ = replication.LoadGroup(ctx, f.state, "g1")
	if len(points) != 1 || points[0].ID != "rp-5" || g.Record.State != replication.StateCommitted {
		t.Fatalf("after commit: %d points, state %s", len(points), g.Record.State)
	}
	if _, err := f.pages.ReadRange(ctx, f.g.TargetDisk("vm/d"), oldSnap, 0, 512); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the other point's snapshot: %v", err)
	}
}

func TestPlannedFailoverWaitsForTheFinalPoint(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.Watermark = replication.StateProtected, 5
		return nil
	})
	job, _ := recovery.NewJob("g1", recovery.JobPlannedFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	run := func() {
		step := f.take(t)
		if err := f.runner.Run(ctx, step, 1); err != nil {
			t.Fatal(err)
		}
	}
	run() // stop-source
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); !g.Record.StopRequested {
		t.Fatal("the agent was not told to stop")
	}
	run() // wait-source-drained: the agent has not stopped
	if j := f.job(t, job.ID()); j.Next != 1 || len(f.q.Pending()) != 1 {
		t.Fatalf("the job moved on before the agent stopped: next %d", j.Next)
	}
	// The agent stops at sequence 9; apply reaches it; the final point is promoted.
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.AgentStoppedSeq = 9; return nil })
	run()
	if j := f.job(t, job.ID()); j.Next != 1 {
		t.Fatal("the job moved on before apply caught up")
	}
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.Watermark = 9; return nil })
	final := f.point
	final.ID, final.Seq, final.RowKey = "rp-9", 9, "a"
	f.state.Upsert(ctx, replication.PointsTable, final)
	f.drain(t)
	j := f.job(t, job.ID())
	if j.State != recovery.JobSucceeded || j.PointID != "rp-9" {
		t.Fatalf("planned failover: %s to %s (%s)", j.State, j.PointID, j.Error)
	}
}

func TestChangeRecoveryPointThenCommitKeepsTheNewPoint(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	older := f.point
	older.ID, older.Seq, older.RowKey, older.SourceTime = "rp-2", 2, "y", f.point.SourceTime.Add(-time.Hour)
	f.pages.WritePages(ctx, f.g.TargetDisk("vm/d"), 0, bytes.Repeat([]byte{2}, 4096))
	oldSnap, _ := f.pages.Snapshot(ctx, f.g.TargetDisk("vm/d"), "")
	older.Snapshots = map[string]string{"vm/d": oldSnap}
	f.state.Upsert(ctx, replication.PointsTable, older)
	for _, step := range []struct{ typ, point string }{{recovery.JobUnplannedFailover, "latest"}, {recovery.JobChangePoint, "rp-2"}, {recovery.JobCommit, ""}} {
		job, err := recovery.NewJob("g1", step.typ, step.point, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		recovery.StartJob(ctx, f.state, f.q, job)
		f.drain(t)
		if j := f.job(t, job.ID()); j.State != recovery.JobSucceeded {
			t.Fatalf("%s: %s %s", step.typ, j.State, j.Error)
		}
		if step.typ == recovery.JobUnplannedFailover {
			if j := f.job(t, job.ID()); j.PointID != "rp-5" || !hasReplayTime(j) {
				t.Fatalf("latest resolved to %s (work %v)", j.PointID, j.Work)
			}
		}
	}
	got, _ := f.pages.ReadRange(ctx, replication.DiskIn("g1-failover", "vm/d"), "", 0, 4096)
	if !bytes.Equal(got, bytes.Repeat([]byte{2}, 4096)) {
		t.Fatal("the failover disk is not the changed point's content")
	}
	points, _ := replication.ListPoints(ctx, f.state, "g1")
	if len(points) != 1 || points[0].ID != "rp-2" {
		t.Fatalf("commit kept %+v, want only rp-2", points)
	}
}

func TestMachineDefinitionsFollowTheNetworkMapping(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	// Re-create the group's spec with a network mapping, a static IP and a zone.
	spec := f.g.Spec
	spec.VMs[0].Subnet, spec.VMs[0].StaticIP, spec.VMs[0].Zone = "prod-vnet/app", "10.1.0.7", "2"
	spec.Network = replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "prod-vnet/app", Target: "dr-vnet/app", Test: "dr-test-vnet/app",
		TargetPrefix: "10.1.0.0/24", TestPrefix: "10.1.0.0/24"}}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	replication.DeleteGroupRows(ctx, f.state, "g1")
	replication.CreateGroup(ctx, f.state, "g1", spec, time.Now())
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.LastSourceTime = time.Now(); return nil })
	if loaded, _ := replication.LoadGroup(ctx, f.state, "g1"); loaded.Spec.VMs[0].StaticIP != "10.1.0.7" || len(loaded.Spec.Network.Mappings) != 1 {
		t.Fatalf("the network spec did not survive the store: %+v", loaded.Spec)
	}
	for typ, subnet := range map[string]string{recovery.JobTestFailover: `"vnetName":{"value":"dr-test-vnet"}`, recovery.JobUnplannedFailover: `"vnetName":{"value":"dr-vnet"}`} {
		job, _ := recovery.NewJob("g1", typ, "latestProcessed", time.Now())
		recovery.StartJob(ctx, f.state, f.q, job)
		f.drain(t)
		tpl := f.job(t, job.ID()).Result["template:vm"]
		for _, want := range []string{subnet, `"subnetName":{"value":"app"}`, `"privateIPAddress":{"value":"10.1.0.7"}`, `"privateIPAllocationMethod":"Static"`,
			`"zone":{"value":"2"}`, `"zones":["[parameters('zone')]"]`} {
			if !strings.Contains(tpl, want) {
				t.Fatalf("%s template lacks %s:\n%s", typ, want, tpl)
			}
		}
	}
	// An availability set instead of a zone; a mapping without a test subnet fails a drill, saying why.
	spec.VMs[0].Zone, spec.VMs[0].AvailabilitySet = "", "web-set"
	spec.Network.Mappings[0].Test, spec.Network.Mappings[0].TestPrefix = "", ""
	replication.DeleteGroupRows(ctx, f.state, "g1")
	replication.CreateGroup(ctx, f.state, "g1", spec, time.Now())
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.LastSourceTime = time.Now(); return nil })
	job, _ := recovery.NewJob("g1", recovery.JobUnplannedFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	f.drain(t)
	tpl := f.job(t, job.ID()).Result["template:vm"]
	for _, want := range []string{`"availabilitySet":{"id":"[resourceId('Microsoft.Compute/availabilitySets', parameters('availabilitySetName'))]"}`,
		`"availabilitySetName":{"value":"web-set"}`} {
		if !strings.Contains(tpl, want) {
			t.Fatalf("template lacks %s:\n%s", want, tpl)
		}
	}
	if strings.Contains(tpl, `"zones"`) {
		t.Fatalf("a VM in an availability set got a zone:\n%s", tpl)
	}
	drill, _ := recovery.NewJob("g1", recovery.JobTestFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, drill)
	f.drain(t)
	want := "step machine-definitions: the network mapping of prod-vnet/app names no isolated test subnet: a test failover cannot place vm"
	if j := f.job(t, drill.ID()); j.State != recovery.JobFailed || j.Error != want {
		t.Fatalf("a drill without a test subnet: %s %q", j.State, j.Error)
	}
}

func TestNetworkSpecValidation(t *testing.T) {
	base := func() replication.GroupSpec {
		s := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Subnet: "v/s", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
			Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "v/s", Target: "t/s", Test: "x/s"}}}}
		s.Normalize("g")
		return s
	}
	cases := []struct {
		mutate func(*replication.GroupSpec)
		want   string
	}{
		{func(s *replication.GroupSpec) { s.VMs[0].Subnet = "other/s" }, `vms[0].subnet: "other/s" has no network mapping`},
		{func(s *replication.GroupSpec) { s.Network.Mappings[0].Test = "t/s" }, `network.mappings[0].test: "t/s" is the production subnet`},
		{func(s *replication.GroupSpec) { s.Network.Mappings[0].Target = "nosubnet" }, `network.mappings[0].target: "nosubnet", want vnet/subnet`},
		{func(s *replication.GroupSpec) { s.VMs[0].StaticIP = "10.0.0.300" }, `vms[0].staticIP: "10.0.0.300" is not an IPv4 address`},
		{func(s *replication.GroupSpec) { s.VMs[0].Zone = "4" }, `vms[0].zone: "4", want 1, 2 or 3`},
		{func(s *replication.GroupSpec) { s.VMs[0].AvailabilitySet = "set/1" }, `vms[0].availabilitySet: "set/1" must be 1-80 letters, digits, '.', '-' or '_'`},
		{func(s *replication.GroupSpec) { s.VMs[0].AvailabilitySet, s.VMs[0].Zone = "set1", "1" }, `vms[0].availabilitySet: a VM is placed in a zone or an availability set, not both`},
		{func(s *replication.GroupSpec) {
			s.Network.Mappings = append(s.Network.Mappings, s.Network.Mappings[0])
		}, `network.mappings[1].source: "v/s" is mapped twice`},
		{func(s *replication.GroupSpec) { s.Network.Mappings[0].TargetPrefix = "10.0.0.0" }, `network.mappings[0].targetPrefix: "10.0.0.0", want an IPv4 CIDR prefix`},
		{func(s *replication.GroupSpec) { s.Network.Mappings[0].TargetPrefix = "10.0.0.0/30" }, `of at most /29`},
		{func(s *replication.GroupSpec) {
			s.Network.Mappings[0].Test, s.Network.Mappings[0].TestPrefix = "", "10.1.0.0/24"
		}, `network.mappings[0].testPrefix: given without a test subnet`},
		{func(s *replication.GroupSpec) {
			s.Network.Mappings[0].Test, s.Network.Mappings[0].TargetPrefix, s.Network.Mappings[0].TestPrefix = "t/x", "10.0.0.0/16", "10.0.5.0/24"
		}, `network.mappings[0].testPrefix: 10.0.5.0/24 overlaps 10.0.0.0/16 in virtual network t`},
		{func(s *replication.GroupSpec) {
			s.Network.Mappings[0].Target = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
			s.Network.Mappings[0].TargetPrefix = "10.0.0.0/24"
		}, `network.mappings[0].targetPrefix: the subnet /subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s exists (it is given by id)`},
		{func(s *replication.GroupSpec) {
			s.Network.Mappings[0].Target = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s/../x"
		}, `want vnet/subnet (in the recovery resource group) or a subnet's full resource id`},
		{func(s *replication.GroupSpec) {
			s.Network.Mappings[0].TargetPrefix, s.VMs[0].StaticIP = "10.4.0.0/24", "10.5.0.4"
		},
			`vms[0].staticIP: 10.5.0.4 is not in the target subnet t/s (10.4.0.0/24)`},
	}
	for _, c := range cases {
		s := base()
		c.mutate(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
	if s := base(); s.Validate() != nil {
		t.Fatal("a valid network spec was refused")
	}
}

// A step whose state change the group's life cycle refuses fails the job on its first delivery: the
// group went on without it (here, a committed group cannot fail over again behind the job's back).
func TestAStepTheLifeCycleRefusesFailsTheJobAtOnce(t *testing.T) {
	f := newJobFixture(t)
	ctx := context.Background()
	job, _ := recovery.NewJob("g1", recovery.JobUnplannedFailover, "latestProcessed", time.Now())
	if err := recovery.StartJob(ctx, f.state, f.q, job); err != nil {
		t.Fatal(err)
	}
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State = replication.StateCommitted // as if another failover had been committed meanwhile
		return nil
	})
	for len(f.q.Pending()) > 0 {
		step := f.take(t)
		if err := f.runner.Run(ctx, step, 1); err != nil {
			t.Fatalf("step %d: %v", step.Step, err)
		}
	}
	var got recovery.Job
	f.state.Get(ctx, recovery.JobsTable, job.ID(), recovery.JobRow, &got)
	if got.State != recovery.JobFailed || !strings.Contains(got.Error, "mark-failed-over") || !strings.Contains(got.Error, "cannot become FailedOver") {
		t.Fatalf("job %s: %q", got.State, got.Error)
	}
}

func hasReplayTime(j recovery.Job) bool {
	_, ok := j.Work.ReplayTime()
	return ok
}

// Admission refuses a point choice that does not resolve now — none of the kinds of choices, a point
// that is not there, a time before every point — with 400 naming the choices, and records nothing.
func TestAdmissionRefusesAnUnresolvablePoint(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State, r.LastPointTime = replication.StateProtected, f.point.SourceTime
		return nil
	})
	adm := &recovery.Admission{State: f.state, Pages: f.pages, Jobs: f.q, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	for point, why := range map[string]string{
		"yesterday":            `recovery point "yesterday": want latest, latestProcessed, latestAppConsistent, a point id (rp-N) or an RFC 3339 time`,
		"rp-404":               "no recovery point rp-404",
		"2001-01-01T00:00:00Z": "no recovery point at or before 2001-01-01T00:00:00Z",
		"latestAppConsistent":  "no app-consistent recovery point",
	} {
		for _, kind := range []string{recovery.JobTestFailover, recovery.JobUnplannedFailover} {
			_, err := adm.Start(ctx, recovery.Request{Group: "g1", Type: kind, RecoveryPoint: point})
			if !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "choose latest (through") {
				t.Errorf("%s to %q: %v", kind, point, err)
			}
		}
	}
	if n := len(f.q.Pending()); n != 0 {
		t.Fatalf("%d jobs queued", n)
	}
	if _, err := adm.Start(ctx, recovery.Request{Group: "g1", Type: recovery.JobTestFailover, RecoveryPoint: "rp-5"}); err != nil {
		t.Fatalf("a point that is there: %v", err)
	}
}

// A group's operations are what admission's state rules say: a protected group with a point can be
// tested, drilled and failed over; nothing is failed over to commit, reprotect or fail back, and no
// test failover waits for its cleanup — each refusal says why.
func TestOperationsFollowTheStateRules(t *testing.T) {
	rec := &replication.GroupRecord{}
	rec.State, rec.LastPointTime = replication.StateProtected, time.Now()
	allowed, why := []string{}, map[string]string{}
	for _, op := range recovery.Operations(rec) {
		if op.Allowed {
			allowed = append(allowed, op.Name)
		} else {
			why[op.Name] = op.Why
		}
	}
	if strings.Join(allowed, ",") != "test,drill,planned,unplanned" || why[recovery.JobCleanupTest] != "no test failover to clean up" ||
		why[recovery.JobCommit] == "" || why[recovery.JobReprotect] == "" || why[recovery.JobFailback] == "" || why[recovery.JobChangePoint] == "" {
		t.Fatalf("allowed %v, refused %v", allowed, why)
	}
	rec.ActiveTestFailover = "0123456789abcdef0123456789abcdef"
	for _, op := range recovery.Operations(rec) {
		if op.Name == recovery.JobTestFailover && (op.Allowed || !strings.Contains(op.Why, "is active: clean it up first")) {
			t.Fatalf("a second test failover: %+v", op)
		}
		if op.Name == recovery.JobCleanupTest && !op.Allowed {
			t.Fatalf("the cleanup of an active test failover: %+v", op)
		}
	}
}

// Jobs are listed by group, state and type; a state or type there cannot be is refused naming the
// ones there are.
func TestJobsAreFilteredByStateTypeAndGroup(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	adm := &recovery.Admission{State: f.state, Pages: f.pages, Jobs: f.q, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	for _, j := range []struct{ group, kind, state string }{{"g1", recovery.JobTestFailover, recovery.JobFailed}, {"g1", recovery.JobCleanupTest, recovery.JobSucceeded},
		{"g2", recovery.JobTestFailover, recovery.JobSucceeded}} {
		job, _ := recovery.NewJob(j.group, j.kind, "", time.Now())
		job.State = j.state
		f.state.Insert(ctx, recovery.JobsTable, job)
	}
	count := func(filter recovery.JobFilter) int {
		jobs, err := adm.ListJobs(ctx, filter, 50)
		if err != nil {
			t.Fatalf("%+v: %v", filter, err)
		}
		return len(jobs)
	}
	if n := [...]int{count(recovery.JobFilter{}), count(recovery.JobFilter{State: recovery.JobFailed}), count(recovery.JobFilter{Type: recovery.JobTestFailover}),
		count(recovery.JobFilter{Group: "g1", State: recovery.JobSucceeded})}; n != [...]int{3, 1, 2, 1} {
		t.Fatalf("all, failed, test failovers, g1's succeeded: %v", n)
	}
	for filter, want := range map[recovery.JobFilter]string{{State: "failed"}: `state "failed": want Queued, Running, Succeeded or Failed`,
		{Type: "restore"}: `type "restore": want change-recovery-point`} {
		if _, err := adm.ListJobs(ctx, filter, 50); !errors.Is(err, replication.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v", filter, err)
		}
	}
}
