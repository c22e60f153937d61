package azcompute

import (
	"testing"

	"github.com/standby-dr/standby/shared/testkit/computetest"
	"github.com/standby-dr/standby/shared/testkit/fakearm"
)

// The Azure adapter keeps the Compute contract against the fake ARM's stateful groups and disks.
func TestComputeContract(t *testing.T) {
	computetest.Run(t, func(t *testing.T) computetest.Fixture {
		f, c, _ := newFake(t)
		groups := f.NewGroups()
		disks := map[string]*fakearm.Disks{}
		return computetest.Fixture{Compute: c,
			GroupID: func(rg string) string { return "/subscriptions/" + fakearm.Sub + "/resourceGroups/" + rg },
			NewDisk: func(t *testing.T, rg, name string) string {
				groups.Add(rg)
				if disks[rg] == nil {
					disks[rg] = f.NewDisks(rg)
				}
				return disks[rg].Create(name, 1<<20, nil)
			}}
	})
}
