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

func TestPageBlobRef(t *testing.T) {
	for src, want := range map[string]string{
		"pageblob:https://acct.blob.core.windows.net/disks/vm1/os.vhd": "disks/vm1/os.vhd",
		"pageblob:http://127.0.0.1:10000/devstoreaccount1/disks/os":    "disks/os",
	} {
		ref, err := replication.PageBlobRef(src)
		if err != nil || ref.String() != want {
			t.Errorf("PageBlobRef(%s) = %v, %v; want %s", src, ref, err, want)
		}
	}
	if _, err := replication.PageBlobRef("pageblob:https://acct.blob.core.windows.net/onlycontainer"); err == nil {
		t.Error("a URL without a blob name was accepted")
	}
}

func TestReverseSpec(t *testing.T) {
	spec := replication.GroupSpec{
		VMs: []replication.VMSpec{{Name: "web", Subnet: "prod/app", StaticIP: "10.0.0.4", Zone: "2", Disks: []replication.DiskSpec{
			{Name: "os", SizeBytes: 1 << 20, Source: "pageblob:http://127.0.0.1:10000/devstoreaccount1/disks/web-os"}}}},
		Network: replication.NetworkSpec{Mappings: []replication.NetworkMapping{{Source: "prod/app", Target: "dr/app", Test: "dr/test"}}},
	}
	spec.Normalize("g")
	// A store opened with a SAS gives URLs with it: the reversed spec (stored and sent to the peer) has none.
	url := func(d replication.DiskRef) string {
		return "https://dr.blob.core.windows.net/" + d.String() + "?sv=2024&sig=SECRET"
	}
	rev, seeds, err := recovery.ReverseSpec("g", spec, "g-failover", url, nil)
	if err != nil || len(seeds) != 0 {
		t.Fatal(err)
	}
	vm := rev.VMs[0]
	if vm.Disks[0].Source != "pageblob:https://dr.blob.core.windows.net/g-failover/web/os.vhd" || rev.Target.Disks["web/os"] != "disks/web-os" ||
		rev.Target.Container != "disks" || vm.Subnet != "dr/app" || vm.StaticIP != "10.0.0.4" || vm.Zone != "2" {
		t.Fatalf("reversed spec: %+v", rev)
	}
	if m := rev.Network.Mappings[0]; m != (replication.NetworkMapping{Source: "dr/app", Target: "prod/app"}) {
		t.Fatalf("reversed mapping: %+v", m)
	}
	if got := rev.TargetDisk("web/os"); got.String() != "disks/web-os" {
		t.Fatalf("target disk of web/os: %s", got)
	}
	spec.VMs[0].Disks[0].Source = "file:/dev/sdb"
	_, _, err = recovery.ReverseSpec("g", spec, "g-failover", url, nil)
	if err == nil || !strings.Contains(err.Error(), `vms[0].disks[0] (web/os): reprotect replicates back into the original disk: give its managedDisk`) {
		t.Fatalf("a file: source without a managed disk: %v", err)
	}

	// Managed original disks: the peer seeds them, the VMs fail back into their resource group, and
	// the agent on the failed-over VM reads Azure's device names unless told otherwise.
	osID := "/subscriptions/0000/resourceGroups/prod-rg/providers/Microsoft.Compute/disks/web-os"
	spec.VMs[0].Disks[0].ManagedDisk = osID
	spec.VMs[0].Disks = append(spec.VMs[0].Disks, replication.DiskSpec{Name: "data", SizeBytes: 2 << 20, Source: "file:/dev/sdc", Role: "data", SKU: "Premium_LRS",
		ManagedDisk: "/subscriptions/0000/resourceGroups/prod-rg/providers/Microsoft.Compute/disks/web-data"})
	rev, seeds, err = recovery.ReverseSpec("g", spec, "g-failover", url, map[string]string{"web/data": "file:/mnt/data.img"})
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != 2 || seeds[0] != (replication.SeedDisk{Key: "web/os", ManagedDisk: osID, SizeBytes: 1 << 20}) || rev.Target.ResourceGroup != "prod-rg" ||
		rev.Target.Disks["web/data"] != spec.Target.Container+"/web/data.vhd" || rev.VMs[0].Disks[0].Source != "file:/dev/disk/azure/root" ||
		rev.VMs[0].Disks[1].Source != "file:/mnt/data.img" || rev.VMs[0].Disks[1].SKU != "Premium_LRS" || rev.VMs[0].Disks[1].ManagedDisk != "" {
		t.Fatalf("reversed spec %+v, seeds %+v", rev, seeds)
	}
	if _, _, err := recovery.ReverseSpec("g", spec, "g-failover", url, map[string]string{"web/nope": "file:/x"}); err == nil || !strings.Contains(err.Error(), "sources[web/nope]: the group has no such disk") {
		t.Fatalf("an unknown disk's source: %v", err)
	}
	if _, _, err := recovery.ReverseSpec("g", spec, "g-failover", url, map[string]string{"web/os": "ftp:/x"}); err == nil || !strings.Contains(err.Error(), "the reversed spec: vms[0].disks[0].source") {
		t.Fatalf("a bad source: %v", err)
	}
}

func TestTargetDisksValidation(t *testing.T) {
	for _, c := range []struct {
		disks map[string]string
		want  string
	}{
		{map[string]string{"web/data": "c1/x"}, "target.disks[web/data]: no such disk in the group (want vm/disk)"},
		{map[string]string{"web/os": "Bad_Container/x"}, `target.disks[web/os]: "Bad_Container/x", want container/blob (letters, digits, '.', '_', '-', '/')`},
		{map[string]string{"web/os": "disks"}, `target.disks[web/os]: "disks", want container/blob (letters, digits, '.', '_', '-', '/')`},
		{map[string]string{"web/os": "disks/a~b"}, `target.disks[web/os]: "disks/a~b", want container/blob (letters, digits, '.', '_', '-', '/')`},
		// Another group's failover and test disks: its jobs write them, so adopting them would let it
		// overwrite this group's replica (and this group theirs).
		{map[string]string{"web/os": replication.FailoverContainer("shop") + "/web/os.vhd"}, `target.disks[web/os]: "shop-failover/web/os.vhd" is in a group's failover or test-failover container, whose disks its jobs write: never a replica`},
		{map[string]string{"web/os": replication.TestContainer("shop") + "/web/os.vhd"}, `target.disks[web/os]: "shop-test/web/os.vhd" is in a group's failover or test-failover container, whose disks its jobs write: never a replica`},
	} {
		spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "web", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "agent"}}}},
			Target: replication.TargetSpec{Disks: c.disks}}
		spec.Normalize("g")
		if err := spec.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %s", c.disks, err, c.want)
		}
	}
}

// peerStub is the other site as a failback sees it: its job runs, then fails.
type peerStub struct {
	started []string
	polls   int
}

func (p *peerStub) EnableGroup(context.Context, string, replication.GroupSpec) error { return nil }
func (p *peerStub) GroupStatus(context.Context, string) (recovery.PeerGroup, error) {
	return recovery.PeerGroup{}, nil
}
func (p *peerStub) RemoveGroup(context.Context, string) error { return nil }
func (p *peerStub) SeedDisks(context.Context, string, replication.SeedRequest) (replication.SeedStatus, error) {
	return replication.SeedStatus{Done: true}, nil
}
func (p *peerStub) StartFailover(_ context.Context, group, kind, id string) error {
	p.started = append(p.started, group+" "+kind+" "+id)
	return nil
}
func (p *peerStub) Job(context.Context, string) (recovery.PeerJob, error) {
	if p.polls++; p.polls < 3 {
		return recovery.PeerJob{State: recovery.JobRunning, Current: "wait-source-drained: waiting for the agent to stop"}, nil
	}
	return recovery.PeerJob{State: recovery.JobFailed, Error: "step start-copies failed 10 times: storage unavailable"}, nil
}

// A failback whose peer job fails ends Failed at once with the peer's reason (no retries: they cannot
// help), and the peer's job carries this job's id however often the step ran.
func TestFailbackFailsWithThePeersReason(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	peer := &peerStub{}
	f.runner.Peer = peer
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State = replication.StateReprotected
		return nil
	})
	job, _ := recovery.NewJob("g1", recovery.JobFailback, "", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	f.drain(t)
	j := f.job(t, job.ID())
	want := "step wait-peer-failover: the planned failover on the peer site failed: step start-copies failed 10 times: storage unavailable"
	if j.State != recovery.JobFailed || j.Error != want {
		t.Fatalf("job %s: %q, want Failed: %q", j.State, j.Error, want)
	}
	for _, s := range peer.started {
		if s != "g1 planned "+job.ID() {
			t.Fatalf("peer failovers started: %v", peer.started)
		}
	}
	if g, _ := replication.LoadGroup(ctx, f.state, "g1"); g.Record.State != replication.StateReprotected {
		t.Fatalf("group state after a failed failback: %s", g.Record.State)
	}
	f.runner.Peer = nil
	again, _ := recovery.NewJob("g1", recovery.JobFailback, "", time.Now())
	recovery.StartJob(ctx, f.state, f.q, again)
	f.drain(t)
	if j := f.job(t, again.ID()); j.Error != "step peer-planned-failover: no peer site is configured (set StandbyPeerApi to the other region's Standby API)" {
		t.Fatalf("without a peer: %s %q", j.State, j.Error)
	}
}

// Removing a reversed group's data leaves the original disks it was given (only its snapshots of them
// go) and removes everything else it made: created disks, rows of every table, the journal.
func TestRemoveGroupKeepsGivenDisks(t *testing.T) {
	ctx := context.Background()
	state, pages, journal := memstore.NewState(), memstore.NewPages(), memstore.NewJournal()
	orig := replication.DiskRef{Container: "orig", Name: "a-os"}
	pages.EnsureContainer(ctx, "orig")
	replication.CreateFixedVHD(ctx, pages, orig, 1<<20, time.Now())
	pages.WritePages(ctx, orig, 0, bytes.Repeat([]byte{5}, 512))
	spec := replication.GroupSpec{VMs: []replication.VMSpec{
		{Name: "a", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "agent"}}},
		{Name: "b", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "agent"}}}},
		Target: replication.TargetSpec{Disks: map[string]string{"a/os": "orig/a-os"}}}
	svc := &replication.Groups{Deps: replication.Deps{State: state, Pages: pages, Journal: journal, Log: slog.New(slog.DiscardHandler), Now: time.Now}}
	g, _, err := svc.Enable(ctx, "g", spec)
	if err != nil {
		t.Fatal(err)
	}
	created := g.TargetDisk("b/os")
	snapA, _ := pages.Snapshot(ctx, orig, "")
	snapB, _ := pages.Snapshot(ctx, created, "")
	snaps := map[string]string{"a/os": snapA, "b/os": snapB}
	state.Upsert(ctx, replication.MarkersTable, replication.MarkerRecord{Keys: replication.Keys{PartitionKey: "g", RowKey: "m1"}, Seq: 1, Snapshots: snaps})
	state.Upsert(ctx, replication.PointsTable, replication.RecoveryPoint{Keys: replication.Keys{PartitionKey: "g", RowKey: "p1"}, ID: "rp-1", Snapshots: snaps})
	state.Upsert(ctx, replication.HoldsTable, replication.PointHold{Keys: replication.Keys{PartitionKey: "g", RowKey: "rp-1"}})
	replication.RecordEvent(ctx, state, "g", "health", "Normal", time.Now())
	journal.Put(ctx, "g", 1, []byte("batch"))

	if err := replication.RemoveGroup(ctx, state, pages, journal, g); err != nil {
		t.Fatal(err)
	}
	if got, err := pages.ReadRange(ctx, orig, "", 0, 512); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{5}, 512)) {
		t.Fatalf("the given disk after removal: %v", err)
	}
	if _, err := pages.ReadRange(ctx, orig, snapA, 0, 512); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the group's snapshot of the given disk: %v, want ErrNotFound", err)
	}
	if _, err := pages.Size(ctx, created); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("the created disk: %v, want ErrNotFound", err)
	}
	for _, table := range []string{replication.GroupsTable, replication.MarkersTable, replication.PointsTable, replication.HoldsTable, replication.EventsTable} {
		if rows, _, _ := replication.QueryAll[replication.Keys](ctx, state, table, "g"); len(rows) != 0 {
			t.Errorf("%s keeps %d rows of the group", table, len(rows))
		}
	}
	if seqs, _ := journal.List(ctx, "g"); len(seqs) != 0 {
		t.Errorf("the journal keeps %v", seqs)
	}
	if err := replication.RemoveGroup(ctx, state, pages, journal, g); err != nil {
		t.Fatalf("removing again: %v", err)
	}
}

// unreachablePeer is a peer site whose region is down.
type unreachablePeer struct{ peerStub }

func (unreachablePeer) StartFailover(context.Context, string, string, string) error {
	return errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
}

// A peer site that does not answer is tried again, backing off, for half an hour (its region may be
// recovering), then the job fails saying so. Refusals fail it at once (TestFailbackFailsWithThePeersReason).
func TestPeerSiteThatDoesNotAnswer(t *testing.T) {
	ctx := context.Background()
	f := newJobFixture(t)
	f.runner.Peer = &unreachablePeer{}
	clock := time.Now()
	f.runner.Now = func() time.Time { clock = clock.Add(4 * time.Minute); return clock }
	replication.UpdateGroup(ctx, f.state, "g1", replication.AllRows, func(r *replication.GroupRecord) error {
		r.State = replication.StateReprotected
		return nil
	})
	job, _ := recovery.NewJob("g1", recovery.JobFailback, "", time.Now())
	recovery.StartJob(ctx, f.state, f.q, job)
	step := f.take(t)
	if err := f.runner.Run(ctx, step, 1); err != nil {
		t.Fatal(err)
	}
	j := f.job(t, job.ID())
	if j.State != recovery.JobRunning || len(f.q.Pending()) != 1 ||
		j.Steps[0].Outcome != "the peer site does not answer, trying again: starting the planned failover on the peer site: dial tcp 10.0.0.1:443: connect: connection refused" {
		t.Fatalf("after the first try: %s, %d messages, outcome %q", j.State, len(f.q.Pending()), j.Steps[0].Outcome)
	}
	f.drain(t)
	want := "step peer-planned-failover: the peer site did not answer for 30m0s: starting the planned failover on the peer site: dial tcp 10.0.0.1:443: connect: connection refused"
	if j := f.job(t, job.ID()); j.State != recovery.JobFailed || j.Error != want {
		t.Fatalf("after half an hour: %s %q", j.State, j.Error)
	}
}
