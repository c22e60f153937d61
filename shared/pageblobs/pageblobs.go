// Package pageblobs is the page store (replication.PageStore) over Azure page blobs: target disks,
// their snapshots and server-side copies.
package pageblobs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/standby-dr/standby/shared/azconn"
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
	if s.ConnectionString != "" {
		c, err := azblob.NewClientFromConnectionString(s.ConnectionString, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		return c.ServiceClient(), nil
	}
	cred, err := azconn.Credential()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	c, err := azblob.NewClient(s.ServiceURI, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return c.ServiceClient(), nil
}

// Ping checks that the Blob service answers (the health check).
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.svc.GetProperties(ctx, nil)
	return azconn.Translate(err, "reading blob service properties")
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

func checkRange(offset, length int64) error {
	if offset < 0 || length <= 0 || offset%replication.PageSize != 0 || length%replication.PageSize != 0 {
		return fmt.Errorf("range [%d, +%d) is not 512-byte aligned: %w", offset, length, replication.ErrInvalid)
	}
	return nil
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
	if err := checkRange(offset, int64(len(data))); err != nil {
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
	if err := checkRange(offset, length); err != nil {
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

// StartCopy starts a server-side copy of the snapshot into dst (on the emulator: copies client-side
// before it returns, see Store.emulator).
func (s *Store) StartCopy(ctx context.Context, src replication.DiskRef, snapshot string, dst replication.DiskRef) error {
	pb, err := s.snapshotClient(src, snapshot)
	if err != nil {
		return err
	}
	if s.emulator {
		return s.copyClientSide(ctx, src, snapshot, dst)
	}
	_, err = s.page(dst).StartCopyFromURL(ctx, pb.URL(), nil)
	return azconn.Translate(err, fmt.Sprintf("copying %s@%s to %s", src, snapshot, dst))
}

// copiedMeta marks a blob a client-side copy completed (CopyStatus reports it like a finished copy).
const copiedMeta = "standbycopy"

func (s *Store) copyClientSide(ctx context.Context, src replication.DiskRef, snapshot string, dst replication.DiskRef) error {
	size, err := s.snapshotSize(ctx, src, snapshot)
	if err != nil {
		return err
	}
	if err := s.Delete(ctx, dst); err != nil {
		return err
	}
	if err := s.Create(ctx, dst, size); err != nil {
		return err
	}
	ranges, err := s.AllocatedRanges(ctx, src, snapshot)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		for off := r.Offset; off < r.End(); off += replication.MaxPageWrite {
			n := min(int64(replication.MaxPageWrite), r.End()-off)
			data, err := s.ReadRange(ctx, src, snapshot, off, n)
			if err != nil {
				return err
			}
			if err := s.WritePages(ctx, dst, off, data); err != nil {
				return err
			}
		}
	}
	done := "success"
	_, err = s.page(dst).SetMetadata(ctx, map[string]*string{copiedMeta: &done}, nil)
	return azconn.Translate(err, "marking the copy "+dst.String())
}

func (s *Store) snapshotSize(ctx context.Context, d replication.DiskRef, snapshot string) (int64, error) {
	pb, err := s.snapshotClient(d, snapshot)
	if err != nil {
		return 0, err
	}
	props, err := pb.GetProperties(ctx, nil)
	if err != nil {
		return 0, azconn.Translate(err, "reading properties of "+d.String())
	}
	return *props.ContentLength, nil
}

// CopyStatus reports the copy into dst.
func (s *Store) CopyStatus(ctx context.Context, dst replication.DiskRef) (replication.CopyState, error) {
	props, err := s.page(dst).GetProperties(ctx, nil)
	if err != nil {
		return replication.CopyState{}, azconn.Translate(err, "reading copy status of "+dst.String())
	}
	for k, v := range props.Metadata {
		if strings.EqualFold(k, copiedMeta) && v != nil {
			return replication.CopyState{Status: *v, Copied: *props.ContentLength, Total: *props.ContentLength}, nil
		}
	}
	var st replication.CopyState
	if props.CopyStatus != nil {
		st.Status = string(*props.CopyStatus)
	}
	if props.CopyStatusDescription != nil {
		st.Description = *props.CopyStatusDescription
	}
	if props.CopyProgress != nil { // "copied/total"
		if a, b, ok := strings.Cut(*props.CopyProgress, "/"); ok {
			st.Copied, _ = strconv.ParseInt(a, 10, 64)
			st.Total, _ = strconv.ParseInt(b, 10, 64)
		}
	}
	return st, nil
}

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
