package replication

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
)

// fence makes this applier the group's only writer. Event Hubs moves a partition between instances
// while its old owner may still be in the middle of a write set; without a fence that owner could land
// an older write on a block after a newer one. Holding the lease of every target disk (taken over from
// any other holder, renewed well before it lapses) makes the other instance's next write fail instead.
// Whatever it wrote before that belongs to the write set being redone, so nothing older survives. The
// returned context carries the lease to the writes.
func (a *Applier) fence(ctx context.Context, g *Group) (context.Context, error) {
	a.leaseOnce.Do(func() { a.leaseID, a.leased = NewLeaseID(), map[string]time.Time{} })
	group := g.Record.Group()
	a.leaseMu.Lock()
	at, held := a.leased[group]
	a.leaseMu.Unlock()
	if !held || time.Since(at) > LeaseDuration/3 {
		start := time.Now()
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(max(1, a.Parallelism))
		for _, d := range g.Spec.Disks() {
			ref := g.TargetDisk(d.Key)
			eg.Go(func() error { return a.Pages.AcquireLease(ectx, ref, a.leaseID) })
		}
		if err := eg.Wait(); err != nil {
			return ctx, err
		}
		a.leaseMu.Lock()
		a.leased[group] = start
		a.leaseMu.Unlock()
		if !held {
			a.Log.Info("leased the target disks", "group", group, "disks", len(g.Spec.Disks()))
		}
	}
	return WithLease(ctx, a.leaseID), nil
}

// unfence forgets the group's leases after a write was refused: another writer took them, or they
// lapsed. The retry takes them again.
func (a *Applier) unfence(group string) {
	a.leaseMu.Lock()
	delete(a.leased, group)
	a.leaseMu.Unlock()
}
