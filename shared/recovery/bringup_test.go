package recovery_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/testkit/testenv"
)

// launcher stands in for QEMU: it counts the VMs started and says what their guests report.
type launcher struct {
	mu      sync.Mutex
	started int
	stopped map[int]bool
	health  func() (running, healthy bool)
}

func (l *launcher) Start(context.Context, localcompute.MachineSpec) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.started++
	return l.started, nil
}
func (l *launcher) Running(pid int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	running, _ := l.health()
	return pid > 0 && pid <= l.started && !l.stopped[pid] && running
}
func (l *launcher) Stop(pid int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped[pid] = true
	return nil
}
func (l *launcher) Healthy(string) (bool, string) {
	_, healthy := l.health()
	return healthy, "STANDBY-INITRD-FAIL: cannot mount /dev/vda (ext4)"
}

// withCompute gives the fixture's group a network mapping and the runner a local compute.
func withCompute(t *testing.T, f *jobFixture, health func() (bool, bool)) *launcher {
	ctx := context.Background()
	spec := f.g.Spec
	spec.VMs[0].Subnet = "src/app"
	spec.Network = replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "src/app", Target: "dr/app", Test: "drtest/app",
		TargetPrefix: "10.2.0.0/24", TestPrefix: "10.3.0.0/24"}}}
	replication.DeleteGroupRows(ctx, f.state, "g1")
	f.g, _ = replication.CreateGroup(ctx, f.state, "g1", spec, time.Now())
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.LastSourceTime = time.Now(); return nil })
	l := &launcher{stopped: map[int]bool{}, health: health}
	f.runner.Compute = &localcompute.Compute{Dir: t.TempDir(), Types: testenv.PublishedTypes(t), Pages: f.pages, Launcher: l, Log: slog.New(slog.DiscardHandler)}
	f.runner.StorageAccountID = "/subscriptions/local/resourceGroups/local/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
	return l
}

// Every message of the job comes twice (at-least-once delivery, a handler killed after its work): the
// VM is still deployed once, and the drill's cleanup removes it.
func TestBringUpIsIdempotentAndCleanedUp(t *testing.T) {
	f := newJobFixture(t)
	l := withCompute(t, f, func() (bool, bool) { return true, true })
	ctx := context.Background()
	job, _ := recovery.NewJob("g1", recovery.JobTestFailover, "latestProcessed", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	f.drain(t)
	j := f.job(t, job.ID())
	if j.State != recovery.JobSucceeded || !strings.HasSuffix(j.Result["vm:vm"], "running healthy") || l.started != 1 {
		t.Fatalf("job %s %q, result %v, %d VMs started", j.State, j.Error, j.Result, l.started)
	}
	cleanup, _ := recovery.NewJob("g1", recovery.JobCleanupTest, "", time.Now())
	recovery.StartJob(ctx, f.state, f.q, cleanup)
	f.drain(t)
	if c := f.job(t, cleanup.ID()); c.State != recovery.JobSucceeded || !l.stopped[1] {
		t.Fatalf("cleanup %s %q, stopped %v", c.State, c.Error, l.stopped)
	}
}

// A deployment the compute refuses fails the job at once, naming what was refused; a VM that stops
// before reporting healthy fails it with its console's last lines; one that never reports healthy
// fails it after the boot timeout.
func TestBringUpFailuresNameTheCause(t *testing.T) {
	ctx := context.Background()
	run := func(f *jobFixture, before func(step string)) recovery.Job {
		job, _ := recovery.NewJob("g1", recovery.JobUnplannedFailover, "latestProcessed", time.Now())
		recovery.StartJob(ctx, f.state, f.q, job)
		for len(f.q.Pending()) > 0 {
			msg := f.take(t)
			if j := f.job(t, job.ID()); msg.Step < len(j.Steps) {
				before(j.Steps[msg.Step].Name)
			}
			f.runner.Run(ctx, msg, 1)
		}
		return f.job(t, job.ID())
	}
	f := newJobFixture(t)
	withCompute(t, f, func() (bool, bool) { return true, true })
	j := run(f, func(step string) {
		if step == "deploy-vms" { // the copy's footer is damaged: no longer an importable VHD
			f.pages.WritePages(ctx, replication.DiskIn("g1-failover", "vm/d"), 1<<20, bytes.Repeat([]byte{1}, 512))
		}
	})
	if j.State != recovery.JobFailed || !strings.Contains(j.Error, "step deploy-vms: the deployment of vm was refused") || !strings.Contains(j.Error, "is not a fixed VHD") {
		t.Errorf("a refused deployment: %s %q", j.State, j.Error)
	}
	f = newJobFixture(t)
	withCompute(t, f, func() (bool, bool) { return false, false })
	if j := run(f, func(string) {}); j.State != recovery.JobFailed || !strings.Contains(j.Error, "vm stopped before it reported healthy") ||
		!strings.Contains(j.Error, "STANDBY-INITRD-FAIL") {
		t.Errorf("a VM that stopped: %s %q", j.State, j.Error)
	}
	f = newJobFixture(t)
	withCompute(t, f, func() (bool, bool) { return true, false })
	f.runner.BootTimeout = time.Nanosecond
	if j := run(f, func(string) {}); j.State != recovery.JobFailed || !strings.Contains(j.Error, "vm did not report healthy within 1ns") {
		t.Errorf("a VM that never came up: %s %q", j.State, j.Error)
	}
}

// A change of recovery point re-creates the VMs: the failover's go, the new point's come up, one per
// source VM.
func TestChangePointRecreatesTheVMs(t *testing.T) {
	f := newJobFixture(t)
	l := withCompute(t, f, func() (bool, bool) { return true, true })
	ctx := context.Background()
	for _, typ := range []string{recovery.JobUnplannedFailover, recovery.JobChangePoint} {
		job, _ := recovery.NewJob("g1", typ, "rp-5", time.Now())
		recovery.StartJob(ctx, f.state, f.q, job)
		if typ == recovery.JobUnplannedFailover { // the admission's claim, which the change of point finds
			replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error { r.FailoverJob = job.ID(); return nil })
		}
		f.drain(t)
		if j := f.job(t, job.ID()); j.State != recovery.JobSucceeded {
			t.Fatalf("%s: %s %q", typ, j.State, j.Error)
		}
	}
	if l.started != 2 || !l.stopped[1] || l.stopped[2] {
		t.Fatalf("started %d, stopped %v: want the failover's VM replaced by the new point's", l.started, l.stopped)
	}
}
