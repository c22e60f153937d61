package recovery

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// Reprotect and failback work across the two regions. Each region runs its own Standby deployment (a
// function app next to the disks it writes): the forward one applies the source's writes in the target
// region; after a failover the reverse one, in the source region, applies the failed-over disks' writes
// to the original disks. The forward deployment's jobs drive the reverse one through its API (PeerSite):
// reprotect enables the reversed group there, failback runs a planned failover there.

// ReverseSpec is the spec that replicates a failed-over group back: the failed-over VMs' disks are the
// sources and the original disks the targets, so only the blocks that differ travel; the network
// mapping points back. An original disk is either a managed disk (the disk's managedDisk: seeds lists
// what the peer exports and copies into a fixed VHD blob of its storage first, and the VMs fail back
// into the original disks' resource group) or a page blob (the disk's pageblob: source, written as it
// is). sources gives, by disk key, where the agent on a failed-over VM reads each disk; by default the
// device Azure's Linux VMs name it by (/dev/disk/azure/root, /dev/disk/azure/scsi1/lun<N>), or for a
// page-blob original its failover copy at url.
func ReverseSpec(group string, spec replication.GroupSpec, failoverContainer string, url func(replication.DiskRef) string, sources map[string]string) (replication.GroupSpec, []replication.SeedDisk, error) {
	rev := replication.GroupSpec{Policy: spec.Policy, Target: replication.TargetSpec{Disks: map[string]string{}}}
	for _, m := range spec.Network.Mappings {
		// The source region's isolated test subnet is not known: test failovers of the reversed group
		// are refused until the operator maps one.
		rev.Network.Mappings = append(rev.Network.Mappings, replication.NetworkMapping{Source: m.Target, Target: m.Source})
	}
	var seeds []replication.SeedDisk
	for i, vm := range spec.VMs {
		rvm := replication.VMSpec{Name: vm.Name, StaticIP: vm.StaticIP, Zone: vm.Zone, AvailabilitySet: vm.AvailabilitySet, Size: vm.Size}
		if m, ok := spec.Network.MappingFor(vm.Subnet); ok {
			rvm.Subnet = m.Target
		}
		lun := 0
		for j, d := range vm.Disks {
			key := replication.DiskKey(vm.Name, d.Name)
			rd := d
			rd.ManagedDisk = ""
			switch orig, err := replication.PageBlobRef(d.Source); {
			case d.ManagedDisk != "":
				rev.Target.Container = spec.Target.Container
				rev.Target.Disks[key] = replication.DiskIn(spec.Target.Container, key).String()
				seeds = append(seeds, replication.SeedDisk{Key: key, ManagedDisk: d.ManagedDisk, SizeBytes: d.SizeBytes})
				if rg := replication.ResourceGroupOfDisk(d.ManagedDisk); d.Role == replication.DiskRoleOS && rg != "" {
					rev.Target.ResourceGroup = rg
				}
				rd.Source = "file:/dev/disk/azure/root"
				if d.Role != replication.DiskRoleOS {
					rd.Source = fmt.Sprintf("file:/dev/disk/azure/scsi1/lun%d", lun)
				}
			case err == nil:
				if rev.Target.Container == "" {
					rev.Target.Container = orig.Container
				}
				rev.Target.Disks[key] = orig.String()
				// The blob's address only: a store opened with a SAS puts it in its URLs, and the agent
				// reads with its own credentials.
				address, _, _ := strings.Cut(url(replication.DiskIn(failoverContainer, key)), "?")
				rd.Source = replication.Source{Kind: replication.SourcePageBlob, Ref: address}.String()
			default:
				return replication.GroupSpec{}, nil, fmt.Errorf("vms[%d].disks[%d] (%s): reprotect replicates back into the original disk: give its managedDisk (the source VM's managed disk id), or a pageblob: source; the source is %q", i, j, key, d.Source)
			}
			if d.Role != replication.DiskRoleOS {
				lun++
			}
			if src, ok := sources[key]; ok {
				rd.Source = src
			}
			rvm.Disks = append(rvm.Disks, rd)
		}
		rev.VMs = append(rev.VMs, rvm)
	}
	for key := range sources {
		if _, ok := rev.Target.Disks[key]; !ok {
			return replication.GroupSpec{}, nil, fmt.Errorf("sources[%s]: the group has no such disk (want vm/disk)", key)
		}
	}
	rev.Normalize(group)
	if err := rev.Validate(); err != nil {
		return replication.GroupSpec{}, nil, fmt.Errorf("the reversed spec: %w", err)
	}
	return rev, seeds, nil
}

func (e permanentError) Unwrap() error { return e.error }

// reverseSpecOf is the group's reversed spec: sources are the disks of the failover that was committed
// (or where the reprotect request says the agent reads them).
func (r *JobRunner) reverseSpecOf(ctx context.Context, j *Job, g *replication.Group) (replication.GroupSpec, []replication.SeedDisk, error) {
	var failover Job
	if _, err := r.State.Get(ctx, JobsTable, g.Record.FailoverJob, JobRow, &failover); err != nil {
		return replication.GroupSpec{}, nil, fmt.Errorf("the failover job %q: %w", g.Record.FailoverJob, err)
	}
	return ReverseSpec(g.Record.Group(), g.Spec, failover.Container, r.Pages.URL, sourcesOf(j))
}

// sourcesOf are a reprotect request's sources, kept in the job's work.
func sourcesOf(j *Job) map[string]string { return j.Work.Sources() }

// seedOnPeer has the peer copy the original managed disks into its storage (the reversed group's
// targets), polling until every copy is done; original disks that are page blobs need no seeding.
func seedOnPeer(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	rev, seeds, err := r.reverseSpecOf(ctx, j, g)
	if err != nil {
		return "", 0, permanentError{err}
	}
	if len(seeds) == 0 {
		return "the original disks are page blobs: nothing to seed", 0, nil
	}
	st, err := r.Peer.SeedDisks(ctx, j.Group, replication.SeedRequest{Container: rev.Target.Container, Disks: seeds})
	if err != nil {
		return r.peerFailed(j, "seeding the original disks on the peer site", err)
	}
	var copied, total int64
	for _, d := range st.Disks {
		if d.State == "failed" {
			return "", 0, permanentError{fmt.Errorf("copying %s's original managed disk on the peer site: %s", d.Key, d.Error)}
		}
		copied, total = copied+d.Copied, total+d.Total
	}
	if !st.Done {
		return fmt.Sprintf("the peer copies the original managed disks: %d of %d bytes", copied, total), r.poll(j, 2*time.Second), nil
	}
	return fmt.Sprintf("%d original managed disks exported and copied into the peer's storage (%d bytes)", len(st.Disks), total), 0, nil
}

func enableOnPeer(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	rev, _, err := r.reverseSpecOf(ctx, j, g)
	if err != nil {
		return "", 0, permanentError{err}
	}
	if err := r.Peer.EnableGroup(ctx, j.Group, rev); err != nil {
		return r.peerFailed(j, "enabling the reversed group on the peer site", err)
	}
	return fmt.Sprintf("reversed group enabled on the peer site: %d disks from %s back to the original disks", len(rev.Disks()), g.Record.FailoverJob), 0, nil
}

// waitPeerProtected polls the peer until its agent's first sync (a checksum comparison with the
// original disks) is applied and the reversed group is Protected.
func waitPeerProtected(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	pg, err := r.Peer.GroupStatus(ctx, j.Group)
	if err != nil {
		return r.peerFailed(j, "reading the reversed group on the peer site", err)
	}
	if pg.State != replication.StateProtected || pg.BlocksCompared < g.Spec.Blocks() { // the agent's final count may come a heartbeat later
		if pg.SyncTotalBytes == 0 {
			return fmt.Sprintf("peer group %s: waiting for the agent on the failed-over VMs to start (agent run -group %s against the peer's API)", pg.State, j.Group), r.poll(j, 2*time.Second), nil
		}
		pct := 100 * float64(pg.SyncDoneBytes) / float64(pg.SyncTotalBytes)
		return fmt.Sprintf("peer group %s: %.0f%% compared, %d blocks sent", pg.State, pct, pg.BlocksSent), r.poll(j, 2*time.Second), nil
	}
	j.Result = blockCounts(pg.BlocksSent, pg.BlocksCompared)
	return fmt.Sprintf("peer group Protected: %d of %d blocks differed and were sent", pg.BlocksSent, pg.BlocksCompared), 0, nil
}

// blockCounts is a checksum sync's outcome as a job result.
func blockCounts(sent, compared int64) map[string]string {
	return map[string]string{"blocksSent": strconv.FormatInt(sent, 10), "blocksCompared": strconv.FormatInt(compared, 10)}
}

func markReprotected(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		return rec.Move(replication.StateReprotected, fmt.Sprintf("replicating back to the original disks through the peer site (reprotect job %s)", j.ID()), r.Now().UTC())
	})
	return "group state Reprotected", 0, err
}

func peerPlannedFailover(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	// The peer's job takes this job's id: a retry of this step finds it instead of starting another.
	if err := r.Peer.StartFailover(ctx, j.Group, JobPlannedFailover, j.ID()); err != nil {
		return r.peerFailed(j, "starting the planned failover on the peer site", err)
	}
	return "planned failover job " + j.ID() + " queued on the peer site", 0, nil
}

func waitPeerFailover(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	pj, err := r.Peer.Job(ctx, j.ID())
	if err != nil {
		return r.peerFailed(j, "reading the planned failover on the peer site", err)
	}
	switch pj.State {
	case JobSucceeded:
		j.Result = map[string]string{"peerJob": j.ID()}
		for k, v := range pj.Result {
			j.Result[k] = v
		}
		j.PointID = pj.Point
		return fmt.Sprintf("the peer failed over to %s", pj.Point), 0, nil
	case JobFailed:
		return "", 0, permanentError{fmt.Errorf("the planned failover on the peer site failed: %s", pj.Error)}
	}
	return fmt.Sprintf("peer job %s: %s", pj.State, pj.Current), r.poll(j, 2*time.Second), nil
}

func markFailedBack(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	_, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow, func(rec *replication.GroupRecord) error {
		return rec.Move(replication.StateFailedBack, fmt.Sprintf("failed back to the original region at %s by job %s", j.PointID, j.ID()), r.Now().UTC())
	})
	return "group state FailedBack", 0, err
}

func retirePeerGroup(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	if err := r.Peer.RemoveGroup(ctx, j.Group); err != nil {
		return r.peerFailed(j, "removing the reversed group from the peer site", err)
	}
	return "the reversed group is removed from the peer site; the original disks stay", 0, nil
}

// resumeProtection restarts replication this way: the agent on the VMs (back on their original disks)
// is told to resync, comparing block checksums with the replicas, which still hold the failover's point.
func resumeProtection(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	// The failover's point needs no hold any more: retention may prune it. Released before the group
	// forgets which job that was, so that a redelivered message still finds them.
	if failover := g.Record.FailoverJob; failover != "" {
		if _, err := r.releaseHolds(ctx, j.Group, func(h replication.PointHold) bool { return h.HeldByJob == failover }); err != nil {
			return "", 0, err
		}
	}
	if _, err := replication.UpdateGroup(ctx, r.State, j.Group, replication.StateRow|replication.AgentRow, func(rec *replication.GroupRecord) error {
		if rec.State != replication.StateFailedBack {
			return replication.ErrUnchanged // done before the message came again
		}
		rec.StopRequested, rec.AgentStoppedSeq, rec.FailoverJob = false, 0, ""
		rec.BaselineBlocks, rec.BaselineBlocksSent = 0, 0
		return rec.Move(replication.StateResyncRequired, "reprotected after failback: the agent compares the disks with the replicas and sends the blocks that differ", r.Now().UTC())
	}); err != nil {
		return "", 0, err
	}
	return "group state ResyncRequired: the agent resyncs by checksum", 0, nil
}

func waitProtected(ctx context.Context, r *JobRunner, j *Job, g *replication.Group) (string, time.Duration, error) {
	rec := g.Record
	if rec.State == replication.StateResyncRequired {
		return fmt.Sprintf("ResyncRequired: waiting for the agent on the VMs, back on their own disks, to resync (agent run -group %s)", j.Group), r.poll(j, 2*time.Second), nil
	}
	if rec.State != replication.StateProtected || rec.BaselineBlocks < g.Spec.Blocks() {
		return fmt.Sprintf("%s: %d of %d blocks compared, %d sent", rec.State, rec.BaselineBlocks, g.Spec.Blocks(), rec.BaselineBlocksSent), r.poll(j, 2*time.Second), nil
	}
	j.Result = blockCounts(rec.BaselineBlocksSent, rec.BaselineBlocks)
	return fmt.Sprintf("Protected: %d of %d blocks differed and were sent", rec.BaselineBlocksSent, rec.BaselineBlocks), 0, nil
}
