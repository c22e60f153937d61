package localcompute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/standby-dr/standby/shared/replication"
)

// The source region's managed disks, for agentless tracking. Here a managed disk that no deployment made
// is a page blob of Pages (CreateDisk makes one, as `az disk create` would), which any process may write
// as a VM would; its incremental snapshots are the blob's snapshots. The Compute provider's rules are
// kept: seven snapshots per disk in five minutes, read access to five of a disk's snapshots at a time
// (learn.microsoft.com, "Create an incremental snapshot for managed disks", Restrictions).
//
// Azure tracks a disk's writes and its diff lists every page written since the older snapshot. Nothing
// tracks writes to an emulator's blob, and Azurite's own diff lists every allocated range, so the
// stand-in finds the pages whose content differs: the same pages Azure lists, less any rewritten with
// the bytes they held. The agent reads only what this reports, so the count of pages it reads can be
// checked against the pages a test changed.

var _ replication.DiskSnapshots = (*Compute)(nil)

// managedContainer holds the source region's managed disks, each as "<resource group>/<name>".
const managedContainer = "standby-managed-disks"

// snapshotFile is a snapshot as the stand-in keeps it.
type snapshotFile struct {
	ID           string    `json:"id"`
	SourceDisk   string    `json:"sourceResourceId"`
	BlobSnapshot string    `json:"blobSnapshot"`
	Created      time.Time `json:"timeCreated"`
	Incremental  bool      `json:"incremental"`
}

// ManagedDiskBlob is the page blob behind a source-region managed disk.
func ManagedDiskBlob(diskID string) (replication.DiskRef, error) {
	d, err := replication.ParseManagedDiskID(diskID)
	return replication.DiskRef{Container: managedContainer, Name: d.ResourceGroup + "/" + d.Name}, err
}

// CreateDisk makes an empty managed disk of size bytes (a whole number of MiB) in the resource group,
// creating the group when missing, and returns its id; a disk that exists is refused.
func (c *Compute) CreateDisk(ctx context.Context, rg, name string, size int64) (string, error) {
	if size <= 0 || size%(1<<20) != 0 {
		return "", fmt.Errorf("%w: disk size %d: a positive whole number of MiB", replication.ErrInvalid, size)
	}
	if _, err := c.EnsureResourceGroup(ctx, rg); err != nil {
		return "", err
	}
	id := "/subscriptions/local/resourceGroups/" + rg + "/providers/Microsoft.Compute/disks/" + name
	ref, err := ManagedDiskBlob(id)
	if err != nil {
		return "", err
	}
	if _, err := c.Pages.Size(ctx, ref); err == nil {
		return "", fmt.Errorf("%w: disk %s exists", replication.ErrConflict, name)
	}
	if err := c.Pages.EnsureContainer(ctx, managedContainer); err != nil {
		return "", err
	}
	if err := c.Pages.Create(ctx, ref, size); err != nil {
		return "", err
	}
	return id, writeJSON(c.path(rg, "disks", name+".json"), map[string]any{"id": id, "properties": map[string]any{
		"creationData": map[string]any{"createOption": "Empty"}, "diskSizeBytes": size}})
}

// DiskSize is the disk's blob size.
func (c *Compute) DescribeDisk(ctx context.Context, diskID string) (replication.DiskInfo, error) {
	ref, err := ManagedDiskBlob(diskID)
	if err != nil {
		return replication.DiskInfo{}, err
	}
	size, err := c.Pages.Size(ctx, ref)
	// The local compute's source disks are bare page blobs: they say nothing of how they boot.
	return replication.DiskInfo{SizeBytes: size}, err
}

// SnapshotDisk takes the disk's blob snapshot and records it as an incremental snapshot, readable at once.
func (c *Compute) SnapshotDisk(ctx context.Context, diskID, name string) (string, error) {
	disk, err := replication.ParseManagedDiskID(diskID)
	if err != nil {
		return "", err
	}
	id, err := replication.SnapshotIDOf(disk, name)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var existing snapshotFile
	if err := readJSON(c.path(disk.ResourceGroup, "snapshots", name+".json"), &existing); err == nil {
		if existing.SourceDisk != diskID {
			return "", fmt.Errorf("%w: snapshot %s exists and is of another disk", replication.ErrConflict, name)
		}
		return id, nil
	}
	family, err := c.snapshotsOf(disk.ResourceGroup, diskID)
	if err != nil {
		return "", err
	}
	if len(family) >= replication.MaxReadableSnapshots {
		return "", fmt.Errorf("%w: disk %s already has %d snapshots with read access; revoke one first", replication.ErrConflict, disk.Name, len(family))
	}
	times := c.path(disk.ResourceGroup, "disks", disk.Name+".snapshot-times.json")
	var taken []time.Time
	readJSON(times, &taken)
	now := time.Now().UTC()
	var recent []time.Time
	for _, t := range taken {
		if now.Sub(t) < replication.SnapshotWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= replication.SnapshotsPerWindow {
		return "", fmt.Errorf("%w: disk %s had %d incremental snapshots in the last %s, the most Azure allows; next at %s", replication.ErrConflict,
			disk.Name, len(recent), replication.SnapshotWindow, recent[0].Add(replication.SnapshotWindow).Format(time.RFC3339))
	}
	ref, _ := ManagedDiskBlob(diskID)
	snap, err := c.Pages.Snapshot(ctx, ref, "")
	if err != nil {
		return "", err
	}
	if err := writeJSON(times, append(recent, now)); err != nil {
		return "", err
	}
	return id, writeJSON(c.path(disk.ResourceGroup, "snapshots", name+".json"),
		snapshotFile{ID: id, SourceDisk: diskID, BlobSnapshot: snap, Created: now, Incremental: true})
}

// snapshotsOf lists the disk's snapshots in its resource group.
func (c *Compute) snapshotsOf(rg, diskID string) ([]snapshotFile, error) {
	files, err := filepath.Glob(c.path(rg, "snapshots", "*.json"))
	var out []snapshotFile
	for _, f := range files {
		var s snapshotFile
		if readJSON(f, &s) == nil && s.SourceDisk == diskID {
			out = append(out, s)
		}
	}
	return out, err
}

func (c *Compute) snapshot(id string) (snapshotFile, error) {
	s, err := replication.ParseSnapshotID(id)
	if err != nil {
		return snapshotFile{}, err
	}
	var f snapshotFile
	if err := readJSON(c.path(s.ResourceGroup, "snapshots", s.Name+".json"), &f); err != nil {
		return f, fmt.Errorf("snapshot %s: %w", s.Name, err)
	}
	return f, nil
}

// ChangedRanges compares the two snapshots page by page where either has anything allocated.
func (c *Compute) ChangedRanges(ctx context.Context, snapshotID, prevID string) ([]replication.PageRange, error) {
	now, err := c.snapshot(snapshotID)
	if err != nil {
		return nil, err
	}
	ref, err := ManagedDiskBlob(now.SourceDisk)
	if err != nil {
		return nil, err
	}
	after, err := c.Pages.AllocatedRanges(ctx, ref, now.BlobSnapshot)
	if prevID == "" || err != nil {
		return after, err
	}
	prev, err := c.snapshot(prevID)
	if err != nil {
		return nil, err
	}
	if prev.SourceDisk != now.SourceDisk || !prev.Created.Before(now.Created) {
		return nil, fmt.Errorf("%w: %s is not an older snapshot of the same disk as %s", replication.ErrInvalid, prevID, snapshotID)
	}
	before, err := c.Pages.AllocatedRanges(ctx, ref, prev.BlobSnapshot)
	if err != nil {
		return nil, err
	}
	var changed []replication.PageRange
	for _, r := range replication.MergeRanges(append(before, after...)) {
		for off := r.Offset; off < r.End(); off += replication.MaxPageWrite {
			n := min(int64(replication.MaxPageWrite), r.End()-off)
			a, err := c.Pages.ReadRange(ctx, ref, prev.BlobSnapshot, off, n)
			if err != nil {
				return nil, err
			}
			b, err := c.Pages.ReadRange(ctx, ref, now.BlobSnapshot, off, n)
			if err != nil {
				return nil, err
			}
			for p := int64(0); p < n; p += replication.PageSize {
				if !bytes.Equal(a[p:p+replication.PageSize], b[p:p+replication.PageSize]) {
					changed = append(changed, replication.PageRange{Offset: off + p, Length: replication.PageSize})
				}
			}
		}
	}
	return replication.MergeRanges(changed), nil
}

// ReadSnapshot reads the snapshot's blob snapshot.
func (c *Compute) ReadSnapshot(ctx context.Context, snapshotID string, offset, length int64) ([]byte, error) {
	if err := replication.CheckPageRange(offset, length); err != nil { // the port's rule (page-aligned), which azsnapshots checks too
		return nil, err
	}
	s, err := c.snapshot(snapshotID)
	if err != nil {
		return nil, err
	}
	ref, err := ManagedDiskBlob(s.SourceDisk)
	if err != nil {
		return nil, err
	}
	return c.Pages.ReadRange(ctx, ref, s.BlobSnapshot, offset, length)
}

// DeleteSnapshot drops the blob snapshot and the record.
func (c *Compute) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	s, err := c.snapshot(snapshotID)
	if errors.Is(err, replication.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ref, err := ManagedDiskBlob(s.SourceDisk)
	if err != nil {
		return err
	}
	if err := c.Pages.DeleteSnapshot(ctx, ref, s.BlobSnapshot); err != nil && !errors.Is(err, replication.ErrNotFound) {
		return err
	}
	name, _ := replication.ParseSnapshotID(snapshotID)
	return os.Remove(c.path(name.ResourceGroup, "snapshots", name.Name+".json"))
}
