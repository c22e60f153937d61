// Package journal is the journal store (replication.JournalStore): change-batch payloads as block blobs
// in the cache storage account, one per group and sequence number.
package journal

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/standby-dr/standby/shared/azure/azconn"
	"github.com/standby-dr/standby/shared/replication"
)

// Store keeps payloads in one container of the cache account, and quarantined ones in another.
type Store struct {
	container  *container.Client
	name       string
	quarantine *container.Client
}

// New returns a journal store over the named container (and "<name>-quarantine"); both are created
// on first use.
func New(svc *service.Client, containerName string) *Store {
	return &Store{container: svc.NewContainerClient(containerName), name: containerName,
		quarantine: svc.NewContainerClient(containerName + "-quarantine")}
}

// Put uploads the payload once (If-None-Match: *): a batch already stored with the same bytes is a
// repeat of this upload and fine; with other bytes it is ErrConflict, and the stored one stays.
func (s *Store) Put(ctx context.Context, group string, seq int64, payload []byte) error {
	what := fmt.Sprintf("storing batch %d of %s", seq, group)
	err := upload(ctx, s.container, replication.BatchBlobName(group, seq), payload, nil, &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}})
	if !bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
		return azconn.Translate(err, what)
	}
	stored, getErr := s.Get(ctx, group, seq)
	if getErr != nil {
		return fmt.Errorf("%s: it exists, and reading it back: %w", what, getErr)
	}
	return replication.SameBatchOrConflict(group, seq, stored, payload)
}

// Replace overwrites a stored batch (StoreBatch: a forger's that does not verify).
func (s *Store) Replace(ctx context.Context, group string, seq int64, payload []byte) error {
	return azconn.Translate(upload(ctx, s.container, replication.BatchBlobName(group, seq), payload, nil, nil), fmt.Sprintf("replacing batch %d of %s", seq, group))
}

// Quarantine stores a payload that failed verification in the quarantine container, with the reason
// as metadata.
func (s *Store) Quarantine(ctx context.Context, group string, seq int64, payload []byte, reason string) error {
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	meta := map[string]*string{"reason": &reason}
	return azconn.Translate(upload(ctx, s.quarantine, replication.BatchBlobName(group, seq), payload, meta, nil), fmt.Sprintf("quarantining batch %d of %s", seq, group))
}

// upload writes a block blob, creating the container on first use.
func upload(ctx context.Context, c *container.Client, name string, payload []byte, meta map[string]*string, cond *blob.AccessConditions) error {
	put := func() error {
		_, err := c.NewBlockBlobClient(name).UploadBuffer(ctx, payload, &blockblob.UploadBufferOptions{Metadata: meta, AccessConditions: cond})
		return err
	}
	err := put()
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		if _, cerr := c.Create(ctx, nil); cerr != nil && !bloberror.HasCode(cerr, bloberror.ContainerAlreadyExists) {
			return cerr
		}
		err = put()
	}
	return err
}

// Get downloads a payload; a missing batch → ErrNotFound.
func (s *Store) Get(ctx context.Context, group string, seq int64) ([]byte, error) {
	resp, err := s.container.NewBlobClient(replication.BatchBlobName(group, seq)).DownloadStream(ctx, nil)
	if err != nil {
		return nil, azconn.Translate(err, fmt.Sprintf("reading batch %d of %s", seq, group))
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > replication.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: batch %d of %s has %d bytes, more than any agent stores (%d)", replication.ErrCorrupt, seq, group, *resp.ContentLength, int64(replication.MaxPayloadBytes))
	}
	if resp.ContentLength != nil && *resp.ContentLength >= 0 { // read into one buffer of the right size
		data := make([]byte, *resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return nil, azconn.Translate(err, fmt.Sprintf("reading batch %d of %s", seq, group))
		}
		return data, nil
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, replication.MaxPayloadBytes+1))
	if err != nil {
		return nil, azconn.Translate(err, fmt.Sprintf("reading batch %d of %s", seq, group))
	}
	if n > replication.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: batch %d of %s is more than %d bytes", replication.ErrCorrupt, seq, group, int64(replication.MaxPayloadBytes))
	}
	return buf.Bytes(), nil
}

// Delete removes a payload; deleting a missing one succeeds.
func (s *Store) Delete(ctx context.Context, group string, seq int64) error {
	_, err := s.container.NewBlobClient(replication.BatchBlobName(group, seq)).Delete(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	return azconn.Translate(err, fmt.Sprintf("deleting batch %d of %s", seq, group))
}

// List returns the group's stored sequence numbers in ascending order.
func (s *Store) List(ctx context.Context, group string) ([]int64, error) {
	var out []int64
	err := s.eachBatch(ctx, group, func(seq int64, _ *container.BlobItem) error {
		out = append(out, seq)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, err
}

// Prune deletes the group's batches up to throughSeq last modified before olderThan.
func (s *Store) Prune(ctx context.Context, group string, throughSeq int64, olderThan time.Time) (int, error) {
	n := 0
	err := s.eachBatch(ctx, group, func(seq int64, item *container.BlobItem) error {
		if seq > throughSeq || item.Properties == nil || item.Properties.LastModified == nil || !item.Properties.LastModified.Before(olderThan) {
			return nil
		}
		if err := s.Delete(ctx, group, seq); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// eachBatch visits the group's batch blobs (none when the container does not exist yet).
func (s *Store) eachBatch(ctx context.Context, group string, visit func(seq int64, item *container.BlobItem) error) error {
	prefix := group + "/"
	pager := s.container.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return nil
		}
		if err != nil {
			return azconn.Translate(err, "listing the journal of "+group)
		}
		for _, item := range page.Segment.BlobItems {
			seq, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(*item.Name, prefix), ".batch"), 10, 64)
			if err != nil {
				continue // not a batch
			}
			if err := visit(seq, item); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ replication.JournalStore = (*Store)(nil)
