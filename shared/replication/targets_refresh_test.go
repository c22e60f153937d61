package replication_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// racingTargets refreshes deployment d1 to Succeeded, while an enable records a newer deployment d2.
type racingTargets struct {
	state replication.StateStore
}

func (racingTargets) Provision(context.Context, string, replication.GroupSpec) (replication.TargetResources, error) {
	return replication.TargetResources{}, nil
}

func (r racingTargets) Refresh(ctx context.Context, res replication.TargetResources) (replication.TargetResources, error) {
	replication.UpdateGroup(ctx, r.state, "g1", replication.AllRows, func(g *replication.GroupRecord) error {
		g.Resources = replication.TargetResources{ResourceGroup: "rg", Deployment: "d2", State: replication.TargetsRunning}
		return nil
	})
	res.State = replication.TargetsSucceeded
	return res, nil
}

// The timer's refresh of a running deployment is kept only over that deployment: a newer one an enable
// recorded meanwhile is not overwritten with the old one's outcome.
func TestRefreshKeepsANewerDeployment(t *testing.T) {
	ctx := context.Background()
	state := memstore.NewState()
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	spec.Normalize("g1")
	replication.CreateGroup(ctx, state, "g1", spec, time.Now())
	replication.UpdateGroup(ctx, state, "g1", replication.AllRows, func(g *replication.GroupRecord) error {
		g.Resources = replication.TargetResources{ResourceGroup: "rg", Deployment: "d1", State: replication.TargetsRunning}
		return nil
	})
	upkeep := &replication.Upkeep{Deps: replication.Deps{State: state, Pages: memstore.NewPages(), Log: slog.New(slog.DiscardHandler), Now: time.Now},
		Targets: racingTargets{state: state}}
	if _, err := upkeep.Run(ctx, replication.TimerRun{}); err != nil {
		t.Fatal(err)
	}
	g, _ := replication.LoadGroup(ctx, state, "g1")
	if r := g.Record.Resources; r.Deployment != "d2" || r.State != replication.TargetsRunning {
		t.Errorf("resources %+v: the newer deployment was overwritten with the old one's outcome", r)
	}
}
