package replication_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/standby-dr/standby/shared/replication"
	"github.com/standby-dr/standby/shared/standin/memstore"
)

// slowInserts widens the moment between an enable's quota check and its group's rows, where two
// concurrent enables could both fit a quota that has room for one.
type slowInserts struct{ *memstore.State }

func (s slowInserts) Insert(ctx context.Context, table string, entity any) (replication.ETag, error) {
	if table == replication.GroupsTable {
		time.Sleep(20 * time.Millisecond)
	}
	return s.State.Insert(ctx, table, entity)
}

func TestConcurrentEnablesTakeTheQuotaOnce(t *testing.T) {
	ctx := context.Background()
	svc := &replication.Groups{Deps: replication.Deps{State: slowInserts{memstore.NewState()}, Pages: memstore.NewPages(), Journal: memstore.NewJournal(), Log: slog.New(slog.DiscardHandler), Now: time.Now}, MaxTargetBytes: 3 << 20}
	var mu sync.Mutex
	enabled, refused := 0, 0
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 2 << 20, Source: "agent"}}}}}
			_, _, err := svc.Enable(ctx, fmt.Sprintf("g%d", i), spec)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				enabled++
			case errors.Is(err, replication.ErrConflict):
				refused++
			default:
				t.Errorf("g%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if enabled != 1 || refused != 5 {
		t.Fatalf("%d enabled and %d refused under a quota with room for one of six", enabled, refused)
	}
	// A refused enable gave its reservation back: the room the one group left is still there.
	spec := replication.GroupSpec{VMs: []replication.VMSpec{{Name: "vm", Disks: []replication.DiskSpec{{Name: "d", SizeBytes: 1 << 20, Source: "agent"}}}}}
	if _, _, err := svc.Enable(ctx, "small", spec); err != nil {
		t.Fatalf("a group that fits after the race: %v", err)
	}
}
