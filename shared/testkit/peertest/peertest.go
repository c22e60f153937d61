// Package peertest is the contract suite of the PeerSite port (recovery.PeerSite): what reprotect and
// failback rely on of the other region's deployment — idempotent enables, states, failovers queued
// once per job id, readable jobs, idempotent removal, and refusals that wrap the domain's errors (which
// the jobs do not retry). tests/peer_contract_test.go runs it over apiserver.Peer against the real api
// function.
package peertest

import (
	"context"
	"errors"
	"testing"

	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// Fixture is a peer site and a way to give one of its groups a recovery point (so that an unplanned
// failover is admitted there).
type Fixture struct {
	Peer         recovery.PeerSite
	GivePointsTo func(t *testing.T, group string)
}

// Spec is a small group spec whose disks need no source on the peer (agent-written).
func Spec() replication.GroupSpec {
	return replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "os", SizeBytes: 1 << 20, Source: "agent"}}}}}
}

// Run checks the port's contract.
func Run(t *testing.T, open func(t *testing.T) Fixture) {
	ctx := context.Background()
	t.Run("EnableIsIdempotent", func(t *testing.T) {
		f := open(t)
		for i := 0; i < 2; i++ {
			if err := f.Peer.EnableGroup(ctx, "shop", Spec()); err != nil {
				t.Fatalf("enable %d: %v", i+1, err)
			}
		}
		st, err := f.Peer.GroupStatus(ctx, "shop")
		if err != nil || st.State != replication.StateInitialReplication {
			t.Fatalf("status %+v, %v", st, err)
		}
		other := Spec()
		other.VMs[0].Disks[0].SizeBytes = 2 << 20
		if err := f.Peer.EnableGroup(ctx, "shop", other); !errors.Is(err, replication.ErrConflict) {
			t.Errorf("a different spec for the same group: %v, want ErrConflict", err)
		}
	})
	t.Run("RefusalsWrapTheDomainsErrors", func(t *testing.T) {
		f := open(t)
		if _, err := f.Peer.GroupStatus(ctx, "nosuch"); !errors.Is(err, replication.ErrNotFound) {
			t.Errorf("an unknown group: %v, want ErrNotFound", err)
		}
		if err := f.Peer.EnableGroup(ctx, "bad name!", Spec()); !errors.Is(err, replication.ErrInvalid) {
			t.Errorf("a bad group name: %v, want ErrInvalid", err)
		}
		if err := f.Peer.EnableGroup(ctx, "shop", Spec()); err != nil {
			t.Fatal(err)
		}
		// A planned failover of a group still in initial replication: the state refuses it.
		if err := f.Peer.StartFailover(ctx, "shop", recovery.JobPlannedFailover, recovery.NewJobID()); !errors.Is(err, replication.ErrConflict) {
			t.Errorf("a failover the state refuses: %v, want ErrConflict", err)
		}
		if _, err := f.Peer.Job(ctx, recovery.NewJobID()); !errors.Is(err, replication.ErrNotFound) {
			t.Errorf("an unknown job: %v, want ErrNotFound", err)
		}
	})
	t.Run("FailoverOncePerJobID", func(t *testing.T) {
		f := open(t)
		if err := f.Peer.EnableGroup(ctx, "shop", Spec()); err != nil {
			t.Fatal(err)
		}
		f.GivePointsTo(t, "shop")
		id := recovery.NewJobID()
		for i := 0; i < 2; i++ {
			if err := f.Peer.StartFailover(ctx, "shop", recovery.JobUnplannedFailover, id); err != nil {
				t.Fatalf("failover %d with the same id: %v", i+1, err)
			}
		}
		if j, err := f.Peer.Job(ctx, id); err != nil || j.State != recovery.JobQueued {
			t.Errorf("the job: %+v, %v", j, err)
		}
		if err := f.Peer.StartFailover(ctx, "shop", recovery.JobUnplannedFailover, recovery.NewJobID()); !errors.Is(err, replication.ErrConflict) {
			t.Errorf("a second failover while the first holds the group: %v, want ErrConflict", err)
		}
	})
	t.Run("RemoveIsIdempotent", func(t *testing.T) {
		f := open(t)
		if err := f.Peer.EnableGroup(ctx, "shop", Spec()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := f.Peer.RemoveGroup(ctx, "shop"); err != nil {
				t.Fatalf("remove %d: %v", i+1, err)
			}
		}
		if _, err := f.Peer.GroupStatus(ctx, "shop"); !errors.Is(err, replication.ErrNotFound) {
			t.Errorf("a removed group: %v, want ErrNotFound", err)
		}
	})
}
