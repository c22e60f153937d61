package localcompute_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/standby-dr/standby/shared/standin/localcompute"
	"github.com/standby-dr/standby/shared/standin/memstore"
	"github.com/standby-dr/standby/shared/testkit/computetest"
)

// The local compute keeps the Compute contract.
func TestComputeContract(t *testing.T) {
	computetest.Run(t, func(t *testing.T) computetest.Fixture {
		c := &localcompute.Compute{Dir: t.TempDir(), Pages: memstore.NewPages(), Log: slog.New(slog.DiscardHandler)}
		return computetest.Fixture{Compute: c,
			GroupID: func(rg string) string { return "/subscriptions/local/resourceGroups/" + rg },
			NewDisk: func(t *testing.T, rg, name string) string {
				if _, err := c.EnsureResourceGroup(context.Background(), rg); err != nil {
					t.Fatal(err)
				}
				id, err := c.CreateDisk(context.Background(), rg, name, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				return id
			}}
	})
}
