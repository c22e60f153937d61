package azsnapshots

import (
	"context"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"github.com/standby-dr/standby/shared/replication"
)

// Snapshots tracks the source region's managed disks with incremental snapshots: PUT
// Microsoft.Compute/snapshots {incremental: true, creationData: {createOption: Copy, sourceResourceId}},
// POST …/beginGetAccess for a read SAS, then the snapshot's page ranges through that SAS (Get Page Ranges,
// with x-ms-previous-snapshot-url for the diff, storage version 2019-07-07 or later). The SAS addresses
// stay in memory: never logged, never in an error.
type Snapshots struct {
	SubscriptionID string
	// Access is how long a snapshot's SAS is valid; it must outlast a scan.
	Access       time.Duration
	PollInterval time.Duration
	Log          *slog.Logger
	// Transport carries the SAS calls to storage (nil: the SDK's default).
	Transport policy.Transporter

	disks     *armcompute.DisksClient
	snapshots *armcompute.SnapshotsClient

	mu  sync.Mutex
	sas map[string]string // snapshot id → its read SAS
}

var _ replication.DiskSnapshots = (*Snapshots)(nil)

// RequiredActions are the ARM actions Snapshots takes, and all it needs of the agent's identity:
// infra/modules/agent-snapshots.bicep grants exactly these (TestAgentSnapshotRoleIsWhatTrackingCalls,
// TestMainBicepTypes).
var RequiredActions = []string{
	"Microsoft.Compute/disks/read",
	"Microsoft.Compute/snapshots/read",
	"Microsoft.Compute/snapshots/write",
	"Microsoft.Compute/snapshots/delete",
	"Microsoft.Compute/snapshots/beginGetAccess/action",
	"Microsoft.Compute/snapshots/endGetAccess/action",
}

// NewSnapshots builds the clients; opts may point them at another ARM endpoint (a test server).
func NewSnapshots(subscriptionID string, cred azcore.TokenCredential, opts *arm.ClientOptions) (*Snapshots, error) {
	if err := azarm.CheckSubscriptionID(subscriptionID); err != nil {
		return nil, err
	}
	s := &Snapshots{SubscriptionID: subscriptionID, Access: 6 * time.Hour, PollInterval: 2 * time.Second,
		Log: slog.New(slog.DiscardHandler), sas: map[string]string{}}
	var err error
	if s.disks, err = armcompute.NewDisksClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	if s.snapshots, err = armcompute.NewSnapshotsClient(subscriptionID, cred, opts); err != nil {
		return nil, err
	}
	return s, nil
}

// disk checks that id names a managed disk of this subscription.
func (s *Snapshots) disk(id string) (replication.ResourceName, error) {
	d, err := replication.ParseManagedDiskID(id)
	if err == nil && !strings.EqualFold(d.Subscription, s.SubscriptionID) {
		err = fmt.Errorf("%w: disk %s is not in subscription %s", replication.ErrInvalid, d.Name, s.SubscriptionID)
	}
	return d, err
}

func (s *Snapshots) snapshot(id string) (replication.ResourceName, error) {
	r, err := replication.ParseSnapshotID(id)
	if err == nil && !strings.EqualFold(r.Subscription, s.SubscriptionID) {
		err = fmt.Errorf("%w: snapshot %s is not in subscription %s", replication.ErrInvalid, r.Name, s.SubscriptionID)
	}
	return r, err
}

// DiskSize is the disk's diskSizeBytes.
func (s *Snapshots) DescribeDisk(ctx context.Context, diskID string) (replication.DiskInfo, error) {
	d, err := s.disk(diskID)
	if err != nil {
		return replication.DiskInfo{}, err
	}
	res, err := s.disks.Get(ctx, d.ResourceGroup, d.Name, nil)
	if err != nil {
		return replication.DiskInfo{}, azarm.Translate(err, "reading disk "+d.Name)
	}
	p := res.Properties
	if p == nil || p.DiskSizeBytes == nil {
		return replication.DiskInfo{}, fmt.Errorf("disk %s: the Compute provider gave no diskSizeBytes", d.Name)
	}
	info := replication.DiskInfo{SizeBytes: *p.DiskSizeBytes}
	// DiskProperties.osType, hyperVGeneration and securityProfile.securityType (DiskRP
	// stable/2025-01-02): set on a disk made from an OS image or an OS disk, absent on data disks.
	if p.OSType != nil {
		info.OSType = string(*p.OSType)
	}
	if p.HyperVGeneration != nil {
		info.HyperVGeneration = string(*p.HyperVGeneration)
	}
	if p.SecurityProfile != nil && p.SecurityProfile.SecurityType != nil {
		info.SecurityType = string(*p.SecurityProfile.SecurityType)
	}
	return info, nil
}

// SnapshotDisk creates the incremental snapshot in the disk's region and resource group unless it
// exists, then grants read access.
func (s *Snapshots) SnapshotDisk(ctx context.Context, diskID, name string) (string, error) {
	d, err := s.disk(diskID)
	if err != nil {
		return "", err
	}
	id, err := replication.SnapshotIDOf(d, name)
	if err != nil {
		return "", err
	}
	existing, err := s.snapshots.Get(ctx, d.ResourceGroup, name, nil)
	switch err = azarm.Translate(err, "reading snapshot "+name); {
	case err == nil:
		if src := existing.Properties; src == nil || src.CreationData == nil || src.CreationData.SourceResourceID == nil ||
			!strings.EqualFold(*src.CreationData.SourceResourceID, diskID) {
			return "", fmt.Errorf("%w: snapshot %s exists and is not of disk %s", replication.ErrConflict, name, d.Name)
		}
	case errors.Is(err, replication.ErrNotFound):
		if err := s.create(ctx, d, name, diskID); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	if _, err := s.grant(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Snapshots) create(ctx context.Context, d replication.ResourceName, name, diskID string) error {
	disk, err := s.disks.Get(ctx, d.ResourceGroup, d.Name, nil)
	if err != nil {
		return azarm.Translate(err, "reading disk "+d.Name)
	}
	poller, err := s.snapshots.BeginCreateOrUpdate(ctx, d.ResourceGroup, name, armcompute.Snapshot{
		Location: disk.Location,
		Tags:     map[string]*string{"standby-tracking": to.Ptr(d.Name)},
		Properties: &armcompute.SnapshotProperties{Incremental: to.Ptr(true),
			CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionCopy), SourceResourceID: to.Ptr(diskID)}},
	}, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: s.PollInterval})
	}
	if err != nil {
		return azarm.Translate(err, "taking an incremental snapshot of disk "+d.Name)
	}
	s.Log.Info("incremental snapshot taken", "disk", d.Name, "snapshot", name)
	return nil
}

// grant returns the snapshot's read SAS, asking for one when this process has none.
func (s *Snapshots) grant(ctx context.Context, id string) (string, error) {
	s.mu.Lock()
	sas, ok := s.sas[id]
	s.mu.Unlock()
	if ok {
		return sas, nil
	}
	r, err := s.snapshot(id)
	if err != nil {
		return "", err
	}
	poller, err := s.snapshots.BeginGrantAccess(ctx, r.ResourceGroup, r.Name, armcompute.GrantAccessData{
		Access: to.Ptr(armcompute.AccessLevelRead), DurationInSeconds: to.Ptr(int32(s.Access / time.Second))}, nil)
	var res armcompute.SnapshotsClientGrantAccessResponse
	if err == nil {
		res, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: s.PollInterval})
	}
	if err != nil {
		return "", azarm.Translate(err, "granting read access to snapshot "+r.Name)
	}
	if res.AccessSAS == nil || *res.AccessSAS == "" {
		return "", fmt.Errorf("granting read access to snapshot %s: the Compute provider returned no address", r.Name)
	}
	s.mu.Lock()
	s.sas[id] = *res.AccessSAS
	s.mu.Unlock()
	return *res.AccessSAS, nil
}

// blobOptions are the storage calls' options: no credential travels (the SAS authorizes them).
func (s *Snapshots) blobOptions() policy.ClientOptions {
	return policy.ClientOptions{Transport: s.Transport, Retry: policy.RetryOptions{MaxRetries: 4, RetryDelay: 200 * time.Millisecond}}
}

// ChangedRanges asks the snapshot's blob for its page ranges, or for the diff against prev's address.
func (s *Snapshots) ChangedRanges(ctx context.Context, snapshotID, prevID string) ([]replication.PageRange, error) {
	sas, err := s.grant(ctx, snapshotID)
	if err != nil {
		return nil, err
	}
	pb, err := pageblob.NewClientWithNoCredential(sas, &pageblob.ClientOptions{ClientOptions: s.blobOptions()})
	if err != nil {
		return nil, azarm.Translate(err, "opening snapshot")
	}
	if prevID == "" {
		return pageList(ctx, pb.NewGetPageRangesPager(nil), func(r pageblob.GetPageRangesResponse) pageblob.PageList { return r.PageList },
			"listing the page ranges of a snapshot")
	}
	prev, err := s.grant(ctx, prevID)
	if err != nil {
		return nil, err
	}
	return pageList(ctx, pb.NewGetPageRangesDiffPager(&pageblob.GetPageRangesDiffOptions{PrevSnapshotURL: &prev}),
		func(r pageblob.GetPageRangesDiffResponse) pageblob.PageList { return r.PageList }, "diffing two snapshots' page ranges")
}

// pageList collects a page-range listing's pages: written and cleared ranges alike (both differ from
// what the older snapshot held), merged. The service's End is inclusive.
func pageList[T any](ctx context.Context, pager *runtime.Pager[T], list func(T) pageblob.PageList, what string) ([]replication.PageRange, error) {
	var out []replication.PageRange
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azarm.Translate(err, what)
		}
		l := list(page)
		for _, r := range l.PageRange {
			out = append(out, replication.PageRange{Offset: *r.Start, Length: *r.End + 1 - *r.Start})
		}
		for _, r := range l.ClearRange {
			out = append(out, replication.PageRange{Offset: *r.Start, Length: *r.End + 1 - *r.Start})
		}
	}
	return replication.MergeRanges(out), nil
}

// ReadSnapshot downloads a range through the snapshot's SAS.
func (s *Snapshots) ReadSnapshot(ctx context.Context, snapshotID string, offset, length int64) ([]byte, error) {
	if err := replication.CheckPageRange(offset, length); err != nil {
		return nil, err
	}
	sas, err := s.grant(ctx, snapshotID)
	if err != nil {
		return nil, err
	}
	b, err := blob.NewClientWithNoCredential(sas, &blob.ClientOptions{ClientOptions: s.blobOptions()})
	if err != nil {
		return nil, azarm.Translate(err, "opening snapshot")
	}
	resp, err := b.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: offset, Count: length}})
	if err != nil {
		return nil, azarm.Translate(err, "reading a snapshot")
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, azarm.Translate(err, "reading a snapshot")
	}
	if int64(len(data)) != length {
		return nil, fmt.Errorf("reading a snapshot: got %d bytes at %d, want %d: %w", len(data), offset, length, replication.ErrUnavailable)
	}
	return data, nil
}

// DeleteSnapshot revokes access (POST …/endGetAccess) and deletes the snapshot.
func (s *Snapshots) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	r, err := s.snapshot(snapshotID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.sas, snapshotID)
	s.mu.Unlock()
	revoke, err := s.snapshots.BeginRevokeAccess(ctx, r.ResourceGroup, r.Name, nil)
	if err == nil {
		_, err = revoke.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: s.PollInterval})
	}
	if err = azarm.Translate(err, "revoking access to snapshot "+r.Name); err != nil && !errors.Is(err, replication.ErrNotFound) {
		return err
	}
	del, err := s.snapshots.BeginDelete(ctx, r.ResourceGroup, r.Name, nil)
	if err == nil {
		_, err = del.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: s.PollInterval})
	}
	if err = azarm.Translate(err, "deleting snapshot "+r.Name); err != nil && !errors.Is(err, replication.ErrNotFound) {
		return err
	}
	s.Log.Info("snapshot deleted", "snapshot", r.Name)
	return nil
}
