// Package pageblobs is the page store (replication.PageStore) over Azure page blobs: target disks,
// their snapshots and server-side copies.
package pageblobs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// Store is a page store over one storage account.
type Store struct {
	svc *service.Client
	// emulator: the account is Azurite's, whose server-side copy of a page blob snapshot shares page
	// ranges with the source, so writing the copy changes the snapshot. Copies are made client-side there.
	emulator bool
}

// EmulatorAccount is the storage emulator's well-known account name.
const EmulatorAccount = "devstoreaccount1"

// New wraps a blob service client.
func New(svc *service.Client) *Store {
	return &Store{svc: svc, emulator: strings.Contains(svc.URL(), "/"+EmulatorAccount)}
}

// ServiceClient builds a blob service client from a resolved connection setting.
func ServiceClient(s azconn.Setting) (*service.Client, error) {
	opts := &azblob.ClientOptions{ClientOptions: azconn.ClientOptions()}
	c, err := azconn.Connect(s, func(cs string) (*azblob.Client, error) {
		return azblob.NewClientFromConnectionString(cs, opts)
	}, func(cred azcore.TokenCredential) (*azblob.Client, error) {
		return azblob.NewClient(s.ServiceURI, cred, opts)
	})
	if err != nil {
		return nil, err
	}
	return c.ServiceClient(), nil
}

// Ping checks that the Blob service answers (the health check): it lists one container. That needs
// only Microsoft.Storage/storageAccounts/blobServices/containers/read, which every Storage Blob Data
// role grants; Get Blob Service Properties (blobServices/read) is not in those roles.
func (s *Store) Ping(ctx context.Context) error {
	max := int32(1)
	_, err := s.svc.NewListContainersPager(&service.ListContainersOptions{MaxResults: &max}).NextPage(ctx)
	return azconn.Translate(err, "listing containers")
}

func (s *Store) page(d replication.DiskRef) *pageblob.Client {
	return s.svc.NewContainerClient(d.Container).NewPageBlobClient(d.Name)
}

func (s *Store) snapshotClient(d replication.DiskRef, snapshot string) (*pageblob.Client, error) {
	pb := s.page(d)
	if snapshot == "" {
		return pb, nil
	}
	return pb.WithSnapshot(snapshot)
}

// EnsureContainer creates the container when missing.
func (s *Store) EnsureContainer(ctx context.Context, container string) error {
	_, err := s.svc.NewContainerClient(container).Create(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return azconn.Translate(err, "creating container "+container)
	}
	return nil
}

// Create makes a new zeroed page blob of size bytes; an existing one → ErrConflict (never overwritten).
func (s *Store) Create(ctx context.Context, d replication.DiskRef, size int64) error {
	if size <= 0 || size%replication.PageSize != 0 || size > replication.MaxDiskSize {
		return fmt.Errorf("disk %s: size %d is not a positive multiple of 512 up to 8 TiB: %w", d, size, replication.ErrInvalid)
	}
	any := azcore.ETagAny
	_, err := s.page(d).Create(ctx, size, &pageblob.CreateOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &any}}})
	return azconn.Translate(err, "creating disk "+d.String())
}

// Size returns the blob's size.
func (s *Store) Size(ctx context.Context, d replication.DiskRef) (int64, error) {
	props, err := s.page(d).GetProperties(ctx, nil)
	if err != nil {
		return 0, azconn.Translate(err, "reading properties of "+d.String())
	}
	return *props.ContentLength, nil
}

// Delete removes the blob with its snapshots; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, d replication.DiskRef) error {
	include := blob.DeleteSnapshotsOptionTypeInclude
	_, err := s.page(d).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: &include, AccessConditions: leaseConditions(ctx)})
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	return azconn.Translate(err, "deleting "+d.String())
}

// WritePages writes data at offset in one Put Page call.
func (s *Store) WritePages(ctx context.Context, d replication.DiskRef, offset int64, data []byte) error {
	if err := replication.CheckPageRange(offset, int64(len(data))); err != nil {
		return err
	}
	if len(data) > replication.MaxPageWrite {
		return fmt.Errorf("write of %d bytes exceeds 4 MiB: %w", len(data), replication.ErrInvalid)
	}
	_, err := s.page(d).UploadPages(ctx, streaming.NopCloser(bytes.NewReader(data)),
		blob.HTTPRange{Offset: offset, Count: int64(len(data))}, &pageblob.UploadPagesOptions{AccessConditions: leaseConditions(ctx)})
	return azconn.Translate(err, fmt.Sprintf("writing %d bytes at %d of %s", len(data), offset, d))
}

// ClearPages deallocates a range: it reads as zeros and costs nothing to store.
func (s *Store) ClearPages(ctx context.Context, d replication.DiskRef, offset, length int64) error {
	if err := replication.CheckPageRange(offset, length); err != nil {
		return err
	}
	_, err := s.page(d).ClearPages(ctx, blob.HTTPRange{Offset: offset, Count: length}, &pageblob.ClearPagesOptions{AccessConditions: leaseConditions(ctx)})
	return azconn.Translate(err, fmt.Sprintf("clearing %d bytes at %d of %s", length, offset, d))
}

// ReadRange reads a range of the disk or of one of its snapshots.
func (s *Store) ReadRange(ctx context.Context, d replication.DiskRef, snapshot string, offset, length int64) ([]byte, error) {
	pb, err := s.snapshotClient(d, snapshot)
	if err != nil {
		return nil, err
	}
	resp, err := pb.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: offset, Count: length}})
	if err != nil {
		return nil, azconn.Translate(err, fmt.Sprintf("reading %d bytes at %d of %s", length, offset, d))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, azconn.Translate(err, "reading "+d.String())
	}
	if int64(len(data)) != length {
		return nil, fmt.Errorf("reading %s: got %d bytes at %d, want %d: %w", d, len(data), offset, length, replication.ErrInvalid)
	}
	return data, nil
}

// AllocatedRanges lists the written ranges, merged and in order.
func (s *Store) AllocatedRanges(ctx context.Context, d replication.DiskRef, snapshot string) ([]replication.PageRange, error) {
	var out []replication.PageRange
	opts := &pageblob.GetPageRangesOptions{}
	if snapshot != "" {
		opts.Snapshot = &snapshot
	}
	pager := s.page(d).NewGetPageRangesPager(opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azconn.Translate(err, "listing page ranges of "+d.String())
		}
		for _, r := range page.PageRange {
			start, end := *r.Start, *r.End+1 // the service's End is inclusive
			if n := len(out); n > 0 && out[n-1].End() == start {
				out[n-1].Length += end - start
				continue
			}
			out = append(out, replication.PageRange{Offset: start, Length: end - start})
		}
	}
	return out, nil
}

// ChangedRanges lists what changed between two snapshots (Get Page Ranges with prevsnapshot): written
// and cleared ranges, merged. Azurite's diff reports every allocated range but no cleared one, so the
// ranges allocated in the previous snapshot and not in this one are added: a trim is never missed.
func (s *Store) ChangedRanges(ctx context.Context, d replication.DiskRef, snapshot, prevSnapshot string) ([]replication.PageRange, error) {
	before, err := s.AllocatedRanges(ctx, d, prevSnapshot)
	if err != nil {
		return nil, err
	}
	after, err := s.AllocatedRanges(ctx, d, snapshot)
	if err != nil {
		return nil, err
	}
	pb, err := s.snapshotClient(d, snapshot)
	if err != nil {
		return nil, err
	}
	var all []replication.PageRange
	pager := pb.NewGetPageRangesDiffPager(&pageblob.GetPageRangesDiffOptions{PrevSnapshot: &prevSnapshot})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azconn.Translate(err, "diffing page ranges of "+d.String())
		}
		for _, r := range page.PageRange {
			all = append(all, replication.PageRange{Offset: *r.Start, Length: *r.End + 1 - *r.Start})
		}
		for _, r := range page.ClearRange {
			all = append(all, replication.PageRange{Offset: *r.Start, Length: *r.End + 1 - *r.Start})
		}
	}
	return replication.MergeRanges(append(all, replication.SubtractRanges(before, after)...)), nil
}

// URL is the disk's blob URL.
func (s *Store) URL(d replication.DiskRef) string { return s.page(d).URL() }

// PutBlob uploads a small block blob.
func (s *Store) PutBlob(ctx context.Context, ref replication.DiskRef, data []byte, contentType string) error {
	bb := s.svc.NewContainerClient(ref.Container).NewBlockBlobClient(ref.Name)
	_, err := bb.UploadBuffer(ctx, data, &blockblob.UploadBufferOptions{HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &contentType}})
	return azconn.Translate(err, "writing "+ref.String())
}

// GetBlob downloads a block blob.
func (s *Store) GetBlob(ctx context.Context, ref replication.DiskRef) ([]byte, error) {
	resp, err := s.svc.NewContainerClient(ref.Container).NewBlockBlobClient(ref.Name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, azconn.Translate(err, "reading "+ref.String())
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return data, azconn.Translate(err, "reading "+ref.String())
}

var _ replication.PageStore = (*Store)(nil)
