package pageblobs

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// leaseConditions carry the context's lease (replication.WithLease), if any.
func leaseConditions(ctx context.Context) *blob.AccessConditions {
	id := replication.LeaseOf(ctx)
	if id == "" {
		return nil
	}
	return &blob.AccessConditions{LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: &id}}
}

// AcquireLease takes the disk's lease for id (renewing it when id holds it), breaking another writer's
// (never an infinite one: refuseVMLease).
func (s *Store) AcquireLease(ctx context.Context, d replication.DiskRef, id string) error {
	lc, err := lease.NewBlobClient(s.page(d), &lease.BlobClientOptions{LeaseID: &id})
	if err != nil {
		return err
	}
	duration := int32(replication.LeaseDuration / time.Second)
	_, err = lc.AcquireLease(ctx, duration, nil)
	if bloberror.HasCode(err, bloberror.LeaseAlreadyPresent) { // another writer's: take over, fencing it
		props, perr := s.page(d).GetProperties(ctx, nil)
		if perr != nil {
			return azconn.Translate(perr, "reading the lease of "+d.String())
		}
		if err := refuseVMLease(d, props, "taken over"); err != nil {
			return err
		}
		zero := int32(0)
		if _, err = lc.BreakLease(ctx, &lease.BlobBreakOptions{BreakPeriod: &zero}); err == nil {
			_, err = lc.AcquireLease(ctx, duration, nil)
		}
	}
	return azconn.Translate(err, "leasing "+d.String())
}

// refuseVMLease answers a conflict for an infinite lease: not a writer's (they take 60 s leases) but,
// most likely, a VM's on a disk it has attached, which is never taken over or broken.
func refuseVMLease(d replication.DiskRef, props blob.GetPropertiesResponse, what string) error {
	if props.LeaseDuration != nil && *props.LeaseDuration == lease.DurationTypeInfinite {
		return fmt.Errorf("%s holds an infinite lease (is it attached to a VM?): it is not %s: %w", d, what, replication.ErrConflict)
	}
	return nil
}

// BreakLease ends a writer's lease on the disk at once; an infinite lease (a VM's) is left alone and
// reported.
func (s *Store) BreakLease(ctx context.Context, d replication.DiskRef) error {
	props, err := s.page(d).GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	if err != nil {
		return azconn.Translate(err, "reading the lease of "+d.String())
	}
	if props.LeaseState == nil || *props.LeaseState != lease.StateTypeLeased {
		return nil
	}
	if err := refuseVMLease(d, props, "broken"); err != nil {
		return err
	}
	lc, err := lease.NewBlobClient(s.page(d), nil)
	if err != nil {
		return err
	}
	zero := int32(0)
	_, err = lc.BreakLease(ctx, &lease.BlobBreakOptions{BreakPeriod: &zero})
	if err == nil || bloberror.HasCode(err, bloberror.LeaseNotPresentWithLeaseOperation, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	return azconn.Translate(err, "breaking the lease of "+d.String())
}
