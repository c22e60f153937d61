package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// DiskSnapshots tracks managed disks with nothing in their guests, the way Azure Disk Backup and the
// backup products do: incremental snapshots (Microsoft.Compute/snapshots with incremental: true) made
// readable, and the page ranges written between two of them (Get Page Ranges with
// x-ms-previous-snapshot-url on the newer snapshot's address).
//
// Contract: Azure allows at most SnapshotsPerWindow incremental snapshots of a disk in any
// SnapshotWindow, and read access to at most MaxReadableSnapshots of a disk's snapshots at a time; a
// call beyond either fails with ErrConflict and changes nothing. Missing disks or snapshots →
// ErrNotFound. Errors never carry an address with its signature.
type DiskSnapshots interface {
	// DescribeDisk is the managed disk's size and, for an OS disk, what a VM boots it as.
	DescribeDisk(ctx context.Context, diskID string) (DiskInfo, error)
	// SnapshotDisk takes an incremental snapshot of the disk, named name in the disk's resource group,
	// and grants read access to it; it returns the snapshot's resource id. A name that exists is returned
	// as it is, so a retried call takes no second snapshot.
	SnapshotDisk(ctx context.Context, diskID, name string) (string, error)
	// ChangedRanges lists the ranges written or cleared in snapshot since prev, an older snapshot of the
	// same disk, merged and in order; with prev "", every allocated range of snapshot.
	ChangedRanges(ctx context.Context, snapshotID, prevID string) ([]PageRange, error)
	// ReadSnapshot reads length bytes at offset (both page-aligned) of a readable snapshot.
	ReadSnapshot(ctx context.Context, snapshotID string, offset, length int64) ([]byte, error)
	// DeleteSnapshot revokes the snapshot's access and deletes it; one already gone is fine.
	DeleteSnapshot(ctx context.Context, snapshotID string) error
}

// DiskInfo is what the source region's compute says of a managed disk: its size and, for an OS disk,
// the OS, Hyper-V generation and security type a VM boots it with ("" where it says nothing).
type DiskInfo struct {
	SizeBytes                              int64
	OSType, HyperVGeneration, SecurityType string
}

// Azure's limits on incremental snapshots (learn.microsoft.com, "Create an incremental snapshot for
// managed disks", Restrictions): seven per disk every five minutes, and SAS addresses for at most five
// snapshots of one disk's family at a time.
const (
	SnapshotsPerWindow   = 7
	SnapshotWindow       = 5 * time.Minute
	MaxReadableSnapshots = 5
)

// SnapshotSpacing is the shortest even spacing of a disk's snapshots that stays within Azure's rate.
const SnapshotSpacing = (SnapshotWindow + SnapshotsPerWindow - 1) / SnapshotsPerWindow

// snapshotID is the grammar of a snapshot's resource id (a name: 1-80 letters, digits, '_', '-' or '.',
// starting with a letter, digit or '_', as for disks).
var snapshotID = regexp.MustCompile(`^/subscriptions/([A-Za-z0-9-]{1,64})/resourceGroups/([-\w._()]{1,90})/providers/Microsoft\.Compute/snapshots/([A-Za-z0-9_][A-Za-z0-9_.-]{0,79})$`)

// ResourceName is a managed disk's or snapshot's id split: subscription, resource group and name.
type ResourceName struct{ Subscription, ResourceGroup, Name string }

// ParseManagedDiskID splits a managed disk's resource id (ErrInvalid for anything else).
func ParseManagedDiskID(id string) (ResourceName, error) {
	m := managedDiskID.FindStringSubmatch(id)
	if m == nil {
		return ResourceName{}, fmt.Errorf("%w: %q is not a managed disk's resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/disks/<name>)", ErrInvalid, id)
	}
	return ResourceName{m[1], m[2], m[3]}, nil
}

// ParseSnapshotID splits a snapshot's resource id (ErrInvalid for anything else).
func ParseSnapshotID(id string) (ResourceName, error) {
	m := snapshotID.FindStringSubmatch(id)
	if m == nil {
		return ResourceName{}, fmt.Errorf("%w: %q is not a snapshot's resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.Compute/snapshots/<name>)", ErrInvalid, id)
	}
	return ResourceName{m[1], m[2], m[3]}, nil
}

// SnapshotIDOf is the id of the snapshot named name next to the disk (in its resource group).
func SnapshotIDOf(disk ResourceName, name string) (string, error) {
	id := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/snapshots/%s", disk.Subscription, disk.ResourceGroup, name)
	_, err := ParseSnapshotID(id)
	return id, err
}

// TrackingSnapshotName names a group's n-th snapshot of a disk: "standby-" and a digest of the group
// and the disk's key, so that names stay within Azure's 80 characters whatever the names, and the
// group's snapshots are recognisable in the portal.
func TrackingSnapshotName(group, diskKey string, n int64) string {
	sum := sha256.Sum256([]byte(group + "\x00" + diskKey))
	return fmt.Sprintf("standby-%s-%d", hex.EncodeToString(sum[:8]), n)
}
