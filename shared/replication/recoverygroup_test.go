package replication_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// A spec that names no recovery resource group gets the deployment's (where the template granted the
// app its role), not "<group>-asr", where the app has none; a spec that names one keeps it; the same
// spec again changes nothing.
func TestEnableDefaultsToTheDeploymentsRecoveryGroup(t *testing.T) {
	ctx := context.Background()
	deps := replication.Deps{State: memstore.NewState(), Pages: memstore.NewPages(), Journal: memstore.NewJournal(), Log: slog.New(slog.DiscardHandler), Now: time.Now}
	groups := &replication.Groups{Deps: deps, DefaultResourceGroup: "standby-prod-asr"}
	spec := func(rg string) replication.GroupSpec {
		return replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}},
			Target: replication.TargetSpec{ResourceGroup: rg}}
	}
	g, _, err := groups.Enable(ctx, "shop", spec(""))
	if err != nil || g.Spec.Target.ResourceGroup != "standby-prod-asr" || g.Spec.Target.ResourceGroupName("shop") != "standby-prod-asr" {
		t.Fatalf("default: %+v, %v", g, err)
	}
	if _, outcome, err := groups.Enable(ctx, "shop", spec("")); err != nil || outcome == replication.Enabled {
		t.Errorf("the same spec again: outcome %v, %v", outcome, err)
	}
	g, _, err = groups.Enable(ctx, "books", spec("books-rg"))
	if err != nil || g.Spec.Target.ResourceGroup != "books-rg" {
		t.Fatalf("named: %+v, %v", g, err)
	}
	local := &replication.Groups{Deps: deps}
	if g, _, err = local.Enable(ctx, "toys", spec("")); err != nil || g.Spec.Target.ResourceGroupName("toys") != "toys-asr" {
		t.Fatalf("without a deployment's group: %+v, %v", g, err)
	}
}
