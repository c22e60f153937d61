package pageblobs

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// Snapshot takes a snapshot and returns its id.
func (s *Store) Snapshot(ctx context.Context, d replication.DiskRef, tag string) (string, error) {
	var opts *blob.CreateSnapshotOptions
	if tag != "" {
		opts = &blob.CreateSnapshotOptions{Metadata: map[string]*string{tagMeta: &tag}}
	}
	resp, err := s.page(d).CreateSnapshot(ctx, opts)
	if err != nil {
		return "", azconn.Translate(err, "snapshotting "+d.String())
	}
	return *resp.Snapshot, nil
}

// tagMeta is the metadata name of a snapshot's tag.
const tagMeta = "standbytag"

// TaggedSnapshots lists the disk's snapshots whose tag is tag.
func (s *Store) TaggedSnapshots(ctx context.Context, d replication.DiskRef, tag string) ([]string, error) {
	pager := s.svc.NewContainerClient(d.Container).NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix: &d.Name, Include: container.ListBlobsInclude{Snapshots: true, Metadata: true}})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azconn.Translate(err, "listing the snapshots of "+d.String())
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || *item.Name != d.Name || item.Snapshot == nil || *item.Snapshot == "" {
				continue
			}
			for k, v := range item.Metadata {
				if strings.EqualFold(k, tagMeta) && v != nil && *v == tag {
					out = append(out, *item.Snapshot)
				}
			}
		}
	}
	return out, nil
}

// DeleteSnapshot deletes one snapshot; a missing one is not an error.
func (s *Store) DeleteSnapshot(ctx context.Context, d replication.DiskRef, snapshot string) error {
	if snapshot == "" {
		return fmt.Errorf("deleting a snapshot of %s: empty snapshot id: %w", d, replication.ErrInvalid)
	}
	pb, err := s.snapshotClient(d, snapshot)
	if err != nil {
		return err
	}
	_, err = pb.Delete(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	return azconn.Translate(err, "deleting snapshot "+snapshot+" of "+d.String())
}
